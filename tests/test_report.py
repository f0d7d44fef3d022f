"""`repro report` end to end on a tiny but complete model set (real Caffe files with seeded weights):
every file is written, metrics.json follows its documented schema, a re-run reuses every cell, bad input
exits 2, and index.html renders in headless Chromium. One run on the embedded set in quick mode (slow).
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repro import caffe
from repro.cli import main
from repro.samplers.methods import METHODS

CODE = 16
CLASSES = ["alpha", "beta", "gamma"]

GENERATOR = f"""
name: "tiny_generator"
layer {{ name: "feat" type: "Input" top: "feat" input_param {{ shape {{ dim: 1 dim: {CODE} }} }} }}
layer {{ name: "fc" type: "InnerProduct" bottom: "feat" top: "fc" inner_product_param {{ num_output: 48 }} }}
layer {{ name: "relu" type: "ReLU" bottom: "fc" top: "fc" }}
layer {{ name: "reshape" type: "Reshape" bottom: "fc" top: "r"
  reshape_param {{ shape {{ dim: 0 dim: 3 dim: 4 dim: 4 }} }} }}
layer {{ name: "up1" type: "Deconvolution" bottom: "r" top: "up1"
  convolution_param {{ num_output: 8 kernel_size: 4 stride: 2 pad: 1 }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "up1" top: "up1" }}
layer {{ name: "up2" type: "Deconvolution" bottom: "up1" top: "up2"
  convolution_param {{ num_output: 3 kernel_size: 4 stride: 2 pad: 1 }} }}
layer {{ name: "deconv0" type: "Power" bottom: "up2" top: "deconv0" power_param {{ scale: 60 }} }}
"""


def _conv_net(name: str, size: int, head: str) -> str:
    return f"""
name: "{name}"
layer {{ name: "data" type: "Input" top: "data"
  input_param {{ shape {{ dim: 1 dim: 3 dim: {size} dim: {size} }} }} }}
layer {{ name: "scale" type: "Power" bottom: "data" top: "scaled" power_param {{ scale: 0.01 }} }}
layer {{ name: "conv" type: "Convolution" bottom: "scaled" top: "conv"
  convolution_param {{ num_output: 6 kernel_size: 3 stride: 2 }} }}
layer {{ name: "relu" type: "ReLU" bottom: "conv" top: "conv" }}
{head}
"""


CLASSIFIER = _conv_net(
    "tiny_classifier",
    12,
    'layer { name: "fc8" type: "InnerProduct" bottom: "conv" top: "fc8" '
    "inner_product_param { num_output: 3 } }",
)
JUDGE = _conv_net(
    "tiny_judge",
    12,
    'layer { name: "y" type: "InnerProduct" bottom: "conv" top: "y" inner_product_param { num_output: 1 } }\n'
    'layer { name: "p" type: "Sigmoid" bottom: "y" top: "p" }',
)
EVALUATOR = _conv_net(
    "tiny_evaluator",
    14,
    'layer { name: "feat" type: "InnerProduct" bottom: "conv" top: "feat" '
    "inner_product_param { num_output: 8 } }\n"
    'layer { name: "logits" type: "InnerProduct" bottom: "feat" top: "logits" '
    "inner_product_param { num_output: 3 } }",
)


def write_tiny_set(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, (name, text) in enumerate(
        [("generator", GENERATOR), ("classifier", CLASSIFIER), ("judge", JUDGE), ("evaluator", EVALUATOR)]
    ):
        net = caffe.parse_net_text(text, source=name)
        caffe.random_weights(net, seed=10 + i)
        caffe.write_net(net, root / f"{name}.prototxt", root / f"{name}.caffemodel")
    (root / "bounds.txt").write_text(" ".join(f"{v:.3f}" for v in np.linspace(1.0, 3.0, CODE)) + "\n")
    manifest = {
        "name": "tiny",
        "generator": {
            "prototxt": "generator.prototxt",
            "caffemodel": "generator.caffemodel",
            "input": "feat",
            "output": "deconv0",
        },
        "classifier": {
            "prototxt": "classifier.prototxt",
            "caffemodel": "classifier.caffemodel",
            "input": "data",
            "logits": "fc8",
        },
        "judge": {
            "prototxt": "judge.prototxt",
            "caffemodel": "judge.caffemodel",
            "input": "data",
            "output": "p",
        },
        "evaluator": {
            "prototxt": "evaluator.prototxt",
            "caffemodel": "evaluator.caffemodel",
            "input": "data",
            "logits": "logits",
            "features": "feat",
        },
        "crop": {"size": 12, "offset": 2},
        "class_names": CLASSES,
        "clip_bounds": "bounds.txt",
        "map_lr": 2.0,
        "mala_step": 0.01,
        "hmc_step": 0.05,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


QUICK_ARGS = ["--quick", "--chains", "2", "--budget", "0.01", "--map-steps", "20"]
ROW_KEYS = [
    "map-clip",
    "map",
    "map-long",
    "mala-clip",
    "mala-clip-da",
    "mala",
    "mala-da",
    "mala-da-prior",
    "mala-da-g10",  # --quick: the guidance study at β = 10 alone
    "mala-da-prior-g10",
    "exact",  # the exact posterior of each prior and guidance level the MCMC rows sample
    "exact-g10",
    "exact-prior",
    "exact-prior-g10",
    "hmc",
    "hmc-da",
    "hmc-da-prior",
    "mala-released",
    "hmc-released",
    "mala-mass-da",  # the samplers beyond the paper: dual averaging only, under both priors
    "mala-mass-da-prior",
    "hmc-jitter-da",
    "hmc-jitter-da-prior",
    "ghmc-da",
    "ghmc-da-prior",
    "mclmc-da",
    "mclmc-da-prior",
]
METRIC_KEYS = {
    "judge_log_p_real",
    "target_confidence",
    "evaluator_accuracy",
    "diversity",
    "kid",
    "fd",
    "precision",
    "recall",
    "pixels_at_clip",
    "hsv_saturation",
    "code_beyond_bounds",
    "code_sq_norm",
    "acceptance",
    "ess_per_grad",
    "rhat",
    "steps_to_plateau",
    "n_grad",
    "seconds",
}
FIGURES = ["figure2.png", "figure3.png", "traces.png", "metrics.png", "table2.png", "guidance.png"]


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    """Run the quick report twice with the same arguments into the same folder."""
    root = tmp_path_factory.mktemp("report")
    models = write_tiny_set(root / "tiny")
    out = root / "out"
    args = ["report", "--models", str(models), *QUICK_ARGS, "-o", str(out)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPRO_CACHE", str(root / "cache"))
        t0 = time.perf_counter()
        assert main(args) == 0
        first_s = time.perf_counter() - t0
        first = json.loads((out / "metrics.json").read_text())
        cells = {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
        assert main(args) == 0
        again = json.loads((out / "metrics.json").read_text())
        cells_after = {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    return {
        "out": out,
        "models": models,
        "first": first,
        "again": again,
        "first_s": first_s,
        "cells_untouched": cells == cells_after,
    }


def _check_stat(s, where):
    assert set(s) == {"mean", "se", "n"}, where
    for k in ("mean", "se"):
        assert s[k] is None or (isinstance(s[k], float) and math.isfinite(s[k])), where
    assert isinstance(s["n"], int) and s["n"] >= 0, where


def test_quick_report_writes_every_file(tiny_report):
    out = tiny_report["out"]
    for name in ["index.html", "report.md", "metrics.json", *FIGURES]:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for name in FIGURES:
        with Image.open(out / name) as img:
            assert img.width > 100 and img.height > 100
    cells = sorted((out / "cells").iterdir())
    assert len(cells) == len(ROW_KEYS) * 3  # --quick: the first three classes
    # atomic writes and finished checkpoints leave no temporary files behind
    leftovers = [p.name for p in out.rglob("*") if p.name.startswith(".") or "checkpoint" in p.name]
    assert leftovers == []


def test_metrics_json_follows_the_documented_schema(tiny_report):
    from repro.report.results import schema_errors

    r = tiny_report["first"]
    assert schema_errors(r) == []
    assert r["schema"] == "repro.report/1"
    assert set(r) == {
        "schema",
        "models",
        "settings",
        "sampler_variant",
        "metric_definitions",
        "rows",
        "priors",
        "reference",
        "table2",
        "claims",
        "figures",
        "cells",
        "wall_seconds",
        "versions",
    }
    assert r["models"]["name"] == "tiny" and isinstance(r["models"]["id"], str)
    s = r["settings"]
    assert s["classes"] == [0, 1, 2] and s["class_names"] == CLASSES
    assert (s["chains"], s["budget"], s["map_steps"], s["quick"]) == (2, 0.01, 20, True)
    assert set(r["metric_definitions"]) == METRIC_KEYS
    assert [row["key"] for row in r["rows"]] == ROW_KEYS
    for row in r["rows"]:
        assert set(row) >= {
            "key",
            "label",
            "method",
            "tuning",
            "paper_key",
            "steps",
            "step_size",
            "options",
            "clip",
            "metrics",
            "per_class",
        }
        assert set(row["metrics"]) == METRIC_KEYS
        for name, st in row["metrics"].items():
            _check_stat(st, f"{row['key']}.{name}")
        assert row["metrics"]["judge_log_p_real"]["n"] == 3 * 2  # classes × chains
        assert row["metrics"]["diversity"]["n"] == 3  # one per class
        assert [c["class_index"] for c in row["per_class"]] == [0, 1, 2]
        exact = row["tuning"] == "exact"  # importance sampling, no sampler: no acceptance
        assert (row["metrics"]["acceptance"]["mean"] is None) == (exact or not METHODS[row["method"]].mcmc)
        assert row["tuning"] in ("paper", "dual averaging", "exact")
        assert (row["exact"] is not None) == exact
    by_key = {row["key"]: row for row in r["rows"]}
    assert by_key["map-long"]["steps"] == 60 and by_key["mala"]["steps"] == 60
    # The budget counts what the sampler spends: L gradients per HMC iteration (the trajectory's start
    # gradient is cached) plus the initial one, the same number the n_grad metric measures.
    for key in ("hmc", "hmc-da", "mala"):
        leapfrog = by_key[key]["options"].get("n_leapfrog", 1)
        assert by_key[key]["metrics"]["n_grad"]["mean"] == by_key[key]["steps"] * leapfrog + 1
    assert by_key["hmc"]["steps"] == round(60 / 10)
    assert [(t["method"], t["paper"]) for t in r["table2"]] == [
        ("MAP+clip", -6.00),
        ("MALA+clip", -5.53),
        ("MALA", -9.79),
        ("HMC", -7.96),
    ]
    for t in r["table2"]:
        _check_stat(t["ours"], t["method"])
        assert t["ours"] == by_key[t["row"]]["metrics"]["judge_log_p_real"]
    assert [c["number"] for c in r["claims"]] == [1, 2, 3, 4, 5]
    for c in r["claims"]:
        assert c["verdict"] in ("reproduced", "not reproduced", "not tested")
        assert (
            c["reproduced"] == {"reproduced": True, "not reproduced": False, "not tested": None}[c["verdict"]]
        )
        assert c["rule"] and c["evidence"] and c["claim"]
    assert r["reference"] is None  # the tiny set has no data set to draw real images from
    assert set(r["figures"].values()) == set(FIGURES)
    assert r["cells"] == {"total": len(ROW_KEYS) * 3, "run": len(ROW_KEYS) * 3, "reused": 0}
    assert isinstance(r["wall_seconds"], float) and r["wall_seconds"] > 0
    assert "paper's equations" in r["sampler_variant"]


def test_a_rerun_reuses_every_cell(tiny_report):
    r, first = tiny_report["again"], tiny_report["first"]
    assert r["cells"] == {"total": len(ROW_KEYS) * 3, "run": 0, "reused": len(ROW_KEYS) * 3}
    assert r["rows"] == first["rows"] and r["claims"] == first["claims"]
    assert tiny_report["cells_untouched"]


def test_the_report_does_not_hang(tiny_report):
    """A guard against a runaway row (the quick report here is 13 rows × 3 classes), not a speed
    target: those live in `repro bench`."""
    assert tiny_report["first_s"] < 180


def test_confidence_matches_the_posterior_graph(tiny_report):
    """The report's classifier confidence (its own session on the crop) against the posterior graph's
    logits for the same codes: two graphs, one crop convention."""
    from repro.modelsets import resolve
    from repro.posterior import posterior_model
    from repro.report.run import load_cell
    from repro.runtime.ort import OrtBackend

    ms = resolve(str(tiny_report["models"]))
    path = next((tiny_report["out"] / "cells").glob("mala-c1-*.npz"))
    cell = load_cell(path)
    backend = OrtBackend(posterior_model(ms))
    logits = backend.logits(cell.z.astype(np.float32)).astype(np.float64)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(cell.meta["per_chain"]["target_confidence"], p[:, 1], atol=1e-5)
    np.testing.assert_allclose(cell.images, backend.images(cell.z.astype(np.float32)), atol=1e-3)


def test_html_is_self_contained_and_markdown_links_its_figures(tiny_report):
    out = tiny_report["out"]
    html = (out / "index.html").read_text()
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == len(FIGURES) and all(s.startswith("data:image/png;base64,") for s in sources)
    for s in sources:
        assert base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "href=" not in html  # nothing to fetch
    verdicts = {c["verdict"] for c in json.loads((out / "metrics.json").read_text())["claims"]}
    assert verdicts  # every claim has one; each verdict given shows as its own table cell
    for verdict in verdicts:
        assert f">{verdict}<" in html, verdict
    md = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(links) == sorted(FIGURES)
    assert "| MAP+clip | -6.00 |" in md


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_index_html_renders_in_headless_chromium(tiny_report, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install chromium): the HTML rendering check needs it")
    shot = tmp_path / "shot.png"
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,1600",
        f"--screenshot={shot}",
        (tiny_report["out"] / "index.html").resolve().as_uri(),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)}
    )
    assert shot.exists(), f"no screenshot; chromium said: {proc.stderr[-2000:]}"
    pixels = np.asarray(Image.open(shot).convert("RGB"), np.float64)
    assert pixels.shape[:2] == (1600, 1280)
    non_white = np.mean(pixels.min(axis=2) < 200)
    assert pixels.std() > 20 and non_white > 0.02, "the screenshot is blank"


def test_bad_input_exits_2_with_one_line(tiny_report, tmp_path, capsys):
    models = str(tiny_report["models"])
    assert main(["report", "--models", models, "--classes", "0,7", "-o", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "class index 7" in err and len(err.splitlines()) == 1
    assert main(["report", "--models", models, "--classes", "x", "-o", str(tmp_path / "b")]) == 2
    assert "--classes" in capsys.readouterr().err
    assert main(["report", "--models", models, "--budget", "0", "-o", str(tmp_path / "c")]) == 2
    capsys.readouterr()
    missing = tmp_path / "no-such-judge"
    assert main(["report", "--models", models, "--judge", str(missing), "-o", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(missing) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "d").exists()  # found before any output


def test_report_without_judge_or_evaluator_measures_the_rest(tiny_report, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_report["models"], bare)
    manifest = json.loads((bare / "manifest.json").read_text())
    del manifest["judge"], manifest["evaluator"]
    (bare / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out"
    rows = "map-clip,map,map-long,mala,hmc,mala-clip"
    assert main(["report", "--models", str(bare), *QUICK_ARGS, "--rows", rows, "-o", str(out)]) == 0
    r = json.loads((out / "metrics.json").read_text())
    assert r["models"]["judge"] is None and r["models"]["evaluator"] is None
    assert [row["key"] for row in r["rows"]] == [k for k in ROW_KEYS if k in rows.split(",")]
    for row in r["rows"]:
        for metric in ("judge_log_p_real", "evaluator_accuracy", "diversity"):
            assert row["metrics"][metric] == {"mean": None, "se": None, "n": 0}
        assert row["metrics"]["target_confidence"]["n"] == 3 * 2  # measured without them
    assert [t["row"] for t in r["table2"]] == ["map-clip", "mala-clip", "mala", "hmc"]
    assert all(t["ours"]["n"] == 0 for t in r["table2"])
    verdicts = {c["number"]: c for c in r["claims"]}
    for number in (1, 2, 3):
        claim = verdicts[number]
        assert claim["verdict"] == "not tested" and "no judge given" in claim["evidence"]
    assert verdicts[4]["verdict"] == "not tested" and "no evaluator given" in verdicts[4]["evidence"]
    assert "No judge given" in (out / "report.md").read_text()


EMBEDDED = Path(__file__).resolve().parents[1] / "models" / "embedded" / "manifest.json"


@pytest.mark.slow
@pytest.mark.skipif(not EMBEDDED.exists(), reason="the embedded model set is not built (models/embedded)")
def test_quick_report_on_the_embedded_set(tmp_path, monkeypatch):
    from repro.report.results import schema_errors

    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    rc = main(
        [
            "report",
            "--quick",
            "--classes",
            "0,1",
            "--chains",
            "2",
            "--budget",
            "0.005",
            "--map-steps",
            "20",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    r = json.loads((out / "metrics.json").read_text())
    assert schema_errors(r) == []
    assert r["models"]["name"] == "embedded"
    # real images of the procedural data set are the reference row, and score as real with the judge
    assert r["reference"] is not None
    real = r["reference"]["metrics"]
    assert real["evaluator_accuracy"]["mean"] > 0.5
    assert (out / "reference.png").is_file()


def test_each_claim_is_answered_per_setting_and_the_page_opens_with_them(tiny_report):
    from repro.report.claims import SETTINGS

    r = tiny_report["first"]
    for c in r["claims"]:
        assert list(c["verdicts"]) == list(SETTINGS) == ["paper", "released", "fitted-prior", "exact"]
        paper = {k: v for k, v in c["verdicts"]["paper"].items() if k != "kid"}
        assert paper == {"verdict": c["verdict"], "evidence": c["evidence"]}
        assert ("kid" in c["verdicts"]["paper"]) == (c["number"] in (1, 2, 3))  # realism claims only
    by_number = {c["number"]: c for c in r["claims"]}
    # MALA+clip has no released, fitted-prior or exact twin: claim 3 is not tested there, and says why
    for setting in ("released", "fitted-prior", "exact"):
        assert by_number[3]["verdicts"][setting]["verdict"] == "not tested"
        assert "mala-clip" in by_number[3]["verdicts"][setting]["evidence"]
    # claim 1 under the released setting reads the released rows, named by their labels (the tiny set has a
    # judge, so the claim is decided there)
    released = by_number[1]["verdicts"]["released"]["evidence"]
    assert "authors' code" in released
    md = (tiny_report["out"] / "report.md").read_text()
    assert md.index("## What this says") < md.index("figure2.png") < md.index("## Table 2")
    table = md[md.index("## What this says") : md.index("figure2.png")]
    for c in r["claims"]:
        row = next(line for line in table.splitlines() if line.startswith(f"| {c['number']} |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")][2:]
        for cell, s in zip(cells, SETTINGS, strict=True):
            v = c["verdicts"][s]
            assert cell == v["verdict"] + (f" (KID: {v['kid']['verdict']})" if "kid" in v else "")
