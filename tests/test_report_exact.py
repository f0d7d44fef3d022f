"""The report's exact rows: importance sampling from the prior, recomputed here through torch in float64
(no ORT, no repro.evaluate.posterior_reference), and the MCMC rows' distance from them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from repro.cli import main
from repro.modelsets import resolve
from repro.posterior import posterior_model
from repro.report.document import model_or_sampler
from repro.report.run import EXACT_STREAM, load_cell
from repro.runtime.torch import TorchBackend
from tests.test_report import CODE, write_tiny_set

ROWS = "mala,mala-da,exact,exact-g10"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("exact")
    models = write_tiny_set(root / "tiny")
    out = root / "out"
    args = ["report", "--models", str(models), "--quick", "--chains", "3", "--budget", "0.02"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPRO_CACHE", str(root / "cache"))
        assert main([*args, "--map-steps", "20", "--rows", ROWS, "-o", str(out)]) == 0
    return {"models": models, "out": out, "metrics": json.loads((out / "metrics.json").read_text())}


def _cells(out, row: str) -> dict[int, dict]:
    metas = {}
    for path in (out / "cells").glob(f"{row}-c*.npz"):
        data = load_cell(path)
        if data.meta["row"] == row:
            metas[data.meta["class_index"]] = data.meta
    return metas


@pytest.mark.parametrize(("row", "beta"), [("exact", 1.0), ("exact-g10", 10.0)])
def test_exact_estimates_are_importance_sampling_from_the_prior(report, row, beta):
    """p(k) and the posterior mean of the classifier's p(class), from the same prior draws scored by torch
    in float64: within float32's rounding of the logits (2e-4 relative)."""
    metrics = report["metrics"]
    entry = next(r for r in metrics["rows"] if r["key"] == row)
    draws = entry["exact"]["draws"]
    rng = np.random.default_rng(np.random.SeedSequence([metrics["settings"]["seed"], EXACT_STREAM, 0]))
    z = rng.standard_normal((draws, CODE))  # N(0, I): mala's prior
    ms = resolve(str(report["models"]))
    logits = TorchBackend(posterior_model(ms), dtype=torch.float64).logits(z)
    logits = np.asarray(logits, np.float64)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    cells = _cells(report["out"], row)
    assert sorted(cells) == [0, 1, 2]
    for k, meta in cells.items():
        exact = meta["exact"]
        w = p[:, k] ** beta
        assert exact["draws"] == draws and exact["beta"] == beta
        np.testing.assert_allclose(exact["p_k"], w.mean(), rtol=2e-4)
        if exact["estimates"] is None:  # below the floor: withheld, and the reason says so
            assert draws * w.mean() < 30 and "below the floor" in exact["reason"]
            continue
        expected = np.sum(w * p[:, k]) / np.sum(w)
        np.testing.assert_allclose(exact["estimates"]["target_confidence"], expected, rtol=2e-4)
        norm = np.sum(z**2, 1) / CODE
        np.testing.assert_allclose(
            exact["estimates"]["code_sq_norm"], np.sum(w * norm) / np.sum(w), rtol=1e-6
        )


def test_every_mcmc_row_is_measured_against_its_own_exact_row(report):
    rows = {r["key"]: r for r in report["metrics"]["rows"]}
    assert rows["mala"]["vs_exact"]["reference"] == "exact"
    assert rows["mala-da"]["vs_exact"]["reference"] == "exact"
    assert rows["exact"]["vs_exact"] is None and rows["exact"]["tuning"] == "exact"
    # the difference is the chains' mean minus the exact estimate, averaged over classes
    exact = _cells(report["out"], "exact")
    mala = _cells(report["out"], "mala")
    got = rows["mala"]["vs_exact"]["differences"]["code_sq_norm"]
    gaps = [
        np.mean(mala[k]["per_chain"]["code_sq_norm"]) - exact[k]["exact"]["estimates"]["code_sq_norm"]
        for k in exact
    ]
    np.testing.assert_allclose(got["difference"], np.mean(gaps), rtol=1e-9)
    assert got["classes"] == 3 and got["z"] == pytest.approx(got["difference"] / got["se"])
    assert rows["mala"]["vs_exact"]["reached"] == all(
        abs(d["z"]) <= 2 for d in rows["mala"]["vs_exact"]["differences"].values()
    )


def test_an_exact_row_resamples_as_many_codes_as_a_row_has_chains_and_the_page_shows_it(report):
    cells = _cells(report["out"], "exact-g10")
    for meta in cells.values():
        assert len(meta["per_chain"]["code_sq_norm"]) == meta["chains"] == 3
    md = (report["out"] / "report.md").read_text()
    assert "## Samplers against the exact posterior" in md
    assert "exact posterior (importance sampling, guidance β = 10)" in md


def test_a_failed_claim_is_attributed_to_the_model_or_the_sampler():
    def claim(n, paper, exact):
        return {"number": n, "verdict": paper, "verdicts": {"paper": {}, "exact": {"verdict": exact}}}

    text = model_or_sampler(
        [
            claim(1, "not reproduced", "not reproduced"),
            claim(2, "not reproduced", "reproduced"),
            claim(3, "reproduced", "reproduced"),
            claim(4, "not reproduced", "not tested"),
        ]
    )
    assert "claim 1 fails on the exact posterior too: it is the model's" in text
    assert "claim 2 holds on the exact posterior: its failure belongs to the samplers" in text
    assert "claim 3" not in text and "claim 4" not in text
    assert model_or_sampler([{"number": 1, "verdict": "reproduced", "verdicts": {"paper": {}}}]) is None


def test_a_worker_lets_go_of_the_backends_no_later_row_samples(tmp_path, monkeypatch):
    """A full-size backend holds about 1.5 GB: the guidance rows' backends are dropped once they ran."""
    from repro.report.plan import make_plan
    from repro.report.run import Worker, _backend_key, pending_units

    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    ms = resolve(str(write_tiny_set(tmp_path / "tiny")))
    only = ["mala-da", "mala-da-g10", "exact", "exact-g10", "mala-released"]
    plan = make_plan(ms, [0, 1], 2, 0.01, map_steps=20, only=only, guidance=(10.0,))
    worker = Worker(ms, plan, progress=False)
    (tmp_path / "out" / "cells").mkdir(parents=True)
    held = []
    for unit in pending_units(plan, {c.key: None for c in plan.cells}):
        worker.run_unit(unit, tmp_path / "out")
        held.append((unit.row.key, set(worker._backends)))
    keys = {r.key: _backend_key(r) for r in plan.rows}
    assert held[0] == ("mala-da", {keys["mala-da"]})  # mala-da's backend serves the exact rows later
    assert held[1] == ("mala-da-g10", {keys["mala-da"], keys["mala-da-g10"]})
    assert held[2] == ("exact", {keys["mala-da"]})  # β = 10 dropped: no later row samples it
    assert keys["exact-g10"] == keys["mala-da"]
    assert held[-1] == ("mala-released", {keys["mala-released"]})
