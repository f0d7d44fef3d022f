"""Non-finite runs are never reported as fine: a chain whose log density or images became NaN or inf is named
(chains and first step) in one line, `repro sample` keeps its files, nulls the judge's and evaluator's scores
of those chains in run.json and exits 1, and the report leaves those chains out of every metric and marks
their rows in metrics.json and on the page."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

import repro.samplers
from repro.cli import main
from repro.evaluate.finite import nonfinite_chains
from repro.report.results import schema_errors
from tests.test_report import write_tiny_set
from tests.test_resources import tree_digest

EMBEDDED = Path(__file__).resolve().parents[1] / "models" / "embedded"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_set(tmp_path_factory.mktemp("tiny") / "set")


@pytest.fixture(scope="module")
def exploding(tmp_path_factory):
    """The tiny set with a MAP start step so large that every MAP chain's images overflow at once."""
    root = write_tiny_set(tmp_path_factory.mktemp("exploding") / "set")
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, "map_lr": 1e200}))
    return root


def run(capsys, args: list[str], code: int) -> list[str]:
    """The command's exit code checked, within seconds, with no traceback or warning; its stderr lines
    (progress bars left out)."""
    started = time.perf_counter()
    assert main(args) == code
    assert time.perf_counter() - started < 20
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Warning" not in err, err
    return [line for line in err.replace("\r", "\n").splitlines() if line.startswith(("error: ", "notice: "))]


def poisoned(monkeypatch, chain: int, step: int, method: str) -> None:
    """The sampler as it is, but `chain`'s log density NaN from `step` (1-based) on in runs of `method`."""
    real = repro.samplers.sample

    def sample(target, name, *args, **kwargs):
        result = real(target, name, *args, **kwargs)
        if name == method:
            result.logp[step - 1 :, chain] = np.nan
        return result

    monkeypatch.setattr(repro.samplers, "sample", sample)


def test_sample_map_with_a_huge_step_fails_and_keeps_its_files(tmp_path, capsys):
    out = tmp_path / "out"
    models = tree_digest(EMBEDDED)
    args = ["sample", "--class", "0", "--method", "map", "--step-size", "1e30", "--chains", "3"]
    lines = run(capsys, [*args, "--steps", "10", "--no-parity-check", "-o", str(out)], 1)
    assert lines == [
        "error: chains 0, 1, 2 of 3 became non-finite: the log density first NaN or inf at step 1 (chain 0); "
        f"their images were not scored; the run is kept in {out} (run.json: nonfinite)"
    ]
    assert sorted(p.name for p in out.iterdir()) == [
        "chain_000.png",
        "chain_001.png",
        "chain_002.png",
        "grid.png",
        "run.json",
        "samples.npz",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no work folder or lock left
    record = json.loads((out / "run.json").read_text())  # strict JSON: no NaN
    assert record["nonfinite"]["count"] == 3 and record["nonfinite"]["first_step"] == [1, 1, 1]
    assert record["final_logp"] == [None, None, None]
    assert record["judge"]["log_p_real"] == [None, None, None] and record["judge"]["excluded_nonfinite"] == 3
    if record.get("evaluator") is not None:
        assert record["evaluator"]["p_class"] == [None, None, None]
    assert tree_digest(EMBEDDED) == models


def test_a_partly_non_finite_sample_scores_only_its_finite_chains(tiny, tmp_path, capsys, monkeypatch):
    from repro.evaluate.judges import make_judge
    from repro.modelsets import resolve

    poisoned(monkeypatch, chain=1, step=3, method="map")
    out = tmp_path / "out"
    args = ["sample", "--models", str(tiny), "--class", "1", "--method", "map", "--chains", "3"]
    lines = run(capsys, [*args, "--steps", "5", "--no-parity-check", "-o", str(out)], 1)
    assert lines == [
        "error: chain 1 of 3 became non-finite: the log density first NaN or inf at step 3 (chain 1); their "
        f"images were not scored; the run is kept in {out} (run.json: nonfinite)"
    ]
    record = json.loads((out / "run.json").read_text())
    assert record["nonfinite"] == {
        "count": 1,
        "chains": [1],
        "first_step": [3],
        "describe": "chain 1 of 3 became non-finite: the log density first NaN or inf at step 3 (chain 1)",
    }
    images = np.load(out / "samples.npz")["images"]
    expected = make_judge(resolve(str(tiny)).judge).log_p_real(images[[0, 2]])
    scores = record["judge"]["log_p_real"]
    assert scores[1] is None and record["judge"]["excluded_nonfinite"] == 1
    np.testing.assert_allclose([scores[0], scores[2]], expected, rtol=0, atol=1e-12)


def test_a_finite_sample_says_none_became_non_finite(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["sample", "--models", str(tiny), "--class", "1", "--method", "map", "--chains", "2"]
    assert run(capsys, [*args, "--steps", "3", "--no-parity-check", "-o", str(out)], 0) == []
    record = json.loads((out / "run.json").read_text())
    assert record["nonfinite"] == {"count": 0, "chains": [], "first_step": [], "describe": None}
    assert all(isinstance(v, float) for v in record["judge"]["log_p_real"])
    assert record["judge"]["excluded_nonfinite"] == 0


REPORT = ["--rows", "map,mala", "--classes", "0,1", "--chains", "2", "--map-steps", "3", "--budget", "0.002"]


def test_report_marks_rows_with_non_finite_chains(exploding, tmp_path, capsys):
    out = tmp_path / "report"
    before = tree_digest(exploding)
    lines = run(capsys, ["report", "--models", str(exploding), *REPORT, "-o", str(out)], 0)
    notices = [line for line in lines if "non-finite" in line]
    assert notices == [
        "notice: 4 chains became non-finite (log density or images NaN or inf) and are left out of every "
        "metric, marked ⚠ in the tables: map class 0: chains 0, 1, first at step 1; map class 1: chains "
        "0, 1, first at step 1"
    ]
    r = json.loads((out / "metrics.json").read_text())
    assert schema_errors(r) == []
    rows = {row["key"]: row for row in r["rows"]}
    assert rows["map"]["nonfinite"] == {
        "chains": 4,
        "cells": [
            {"class_index": 0, "chains": [0, 1], "first_step": [1, 1]},
            {"class_index": 1, "chains": [0, 1], "first_step": [1, 1]},
        ],
    }
    assert all(s["n"] == 0 and s["mean"] is None for s in rows["map"]["metrics"].values())
    assert [c["nonfinite_chains"] for c in rows["map"]["per_class"]] == [2, 2]
    assert rows["mala"]["nonfinite"] == {"chains": 0, "cells": []}
    assert rows["mala"]["metrics"]["judge_log_p_real"]["n"] == 4
    for page in ("index.html", "report.md"):
        text = (out / page).read_text()
        assert "⚠ 4 non-finite chains left out" in text and "map class 1: chains 0, 1" in text
    assert tree_digest(exploding) == before


def test_report_leaves_out_only_the_non_finite_chain(tiny, tmp_path, capsys, monkeypatch):
    poisoned(monkeypatch, chain=1, step=2, method="map")  # the map row's batch: class 0's chains, then 1's
    out = tmp_path / "report"
    lines = run(capsys, ["report", "--models", str(tiny), *REPORT, "-o", str(out)], 0)
    assert [line for line in lines if "non-finite" in line] == [
        "notice: 1 chain became non-finite (log density or images NaN or inf) and is left out of every "
        "metric, marked ⚠ in the tables: map class 0: chain 1, first at step 2"
    ]
    r = json.loads((out / "metrics.json").read_text())
    rows = {row["key"]: row for row in r["rows"]}
    assert rows["map"]["nonfinite"]["chains"] == 1
    for key in ("judge_log_p_real", "target_confidence", "pixels_at_clip", "seconds"):
        assert rows["map"]["metrics"][key]["n"] == 3, key  # 2 classes × 2 chains, one left out
        assert rows["mala"]["metrics"][key]["n"] == 4, key
    assert rows["map"]["metrics"]["diversity"]["n"] == 1  # class 0 has one finite chain: no pair to compare
    cell = next((out / "cells").glob("map-c0-*.npz"))
    from repro.report.run import load_cell

    meta = load_cell(cell).meta
    assert meta["nonfinite_chains"] == {"count": 1, "chains": [1], "first_step": [2]}
    judged = meta["per_chain"]["judge_log_p_real"]
    assert np.isfinite(judged[0]) and np.isnan(judged[1])


def test_an_older_cell_that_measured_non_finite_chains_is_run_again(exploding, tmp_path, capsys):
    from repro.report.run import CellData, load_cell, save_cell

    out = tmp_path / "report"
    argv = ["report", "--models", str(exploding), *REPORT, "-o", str(out)]
    run(capsys, argv, 0)
    for row in ("map", "mala"):  # as a repro from before the nonfinite_chains record wrote them
        path = next((out / "cells").glob(f"{row}-c0-*.npz"))
        data = load_cell(path)
        dropped = ("nonfinite_chains", "cell_version", "version")
        meta = {k: v for k, v in data.meta.items() if k not in dropped}
        save_cell(path, CellData(meta, data.z, data.images, data.logp, data.accepted))
    lines = run(capsys, argv, 0)
    discarded = [line for line in lines if line.startswith("notice: discarded")]
    assert len(discarded) == 1 and "map-c0-" in discarded[0], lines
    assert discarded[0].endswith("it measured 2 non-finite chains as valid; running it again")
    r = json.loads((out / "metrics.json").read_text())
    assert r["cells"] == {"total": 4, "run": 2, "reused": 2}  # the map row again (it batches its classes)


def test_nonfinite_chains_names_the_chains_and_the_first_step():
    logp = np.zeros((5, 4))
    logp[3:, 1] = np.nan
    logp[1, 3] = np.inf  # a state that recovered still counts: it was non-finite
    images = np.zeros((4, 3, 2, 2))
    images[2, 0, 1, 1] = np.inf
    bad = nonfinite_chains(logp, images)
    assert (bad.chains, bad.first_step) == ([1, 2, 3], [4, None, 2])
    assert bad.finite_mask().tolist() == [True, False, False, False]
    assert bad.describe() == (
        "chains 1, 2, 3 of 4 became non-finite: the log density first NaN or inf at step 2 (chain 3), the "
        "images of 1 more NaN or inf"
    )
    assert nonfinite_chains(np.zeros((2, 3)), np.zeros((3, 1))).as_dict() == {
        "count": 0,
        "chains": [],
        "first_step": [],
    }
