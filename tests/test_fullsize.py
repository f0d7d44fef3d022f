"""The paper's own models end to end, as a user holding their files runs them (tests/fullsize.py builds the
folder: the real fc6 generator, CaffeNet and BVLC GoogLeNet architectures with seeded random weights, the
DCGAN judge's real index and parameter files): the report command with the GoogLeNet deploy net (declared
batch 10) as the evaluator, and `repro sample` on the DGN-AM baseline and MALA with the parity gate on.

Slow (minutes, several GB of memory); CI runs it. Skips cleanly without ../shared.
"""

from __future__ import annotations

import json
import math

import pytest

from repro.cli import main
from repro.parity import FORWARD_TOL, GRAD_TOL
from tests import fullsize

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not fullsize.AVAILABLE, reason="../shared/reference is absent"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return fullsize.build(tmp_path_factory.mktemp("dgn-caffenet"))


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path_factory.getbasetemp() / "fullsize-cache"))


def test_report_on_the_paper_size_nets_fills_table2_and_every_metric(folder, tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["report", "--models", f"dgn-caffenet={folder}", "--judge", str(folder / "judge")]
    evaluator = [str(folder / "bvlc_googlenet.prototxt"), str(folder / "bvlc_googlenet.caffemodel")]
    argv += ["--evaluator", *evaluator]
    argv += ["--real-images", str(folder / "real"), "--classes", str(fullsize.CLASS)]
    argv += ["--chains", "2", "--budget", "0.005", "--map-steps", "20", "-o", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["models"]["name"] == "dgn-caffenet"
    assert metrics["models"]["evaluator"]["prototxt"].endswith("bvlc_googlenet.prototxt")
    assert [t["method"] for t in metrics["table2"]] == ["MAP+clip", "MALA+clip", "MALA", "HMC"]
    for t in metrics["table2"]:
        assert t["ours"]["n"] == 2 and math.isfinite(t["ours"]["mean"]), t
    defined = set(metrics["metric_definitions"])
    # Every row carries every metric; those of every image (judge, evaluator, real-image comparisons) and
    # of every run have a number; the sampler diagnostics have one where the row has an accept step.
    always = {"judge_log_p_real", "target_confidence", "evaluator_accuracy", "diversity", "kid", "fd"}
    always |= {"precision", "recall", "pixels_at_clip", "hsv_saturation", "code_beyond_bounds", "n_grad"}
    always |= {"seconds"}
    assert always <= defined
    for row in metrics["rows"]:
        assert set(row["metrics"]) == defined, row["key"]
        measured = always - ({"n_grad", "seconds"} if row["tuning"] == "exact" else set())  # no sampler run
        missing = [k for k in measured if row["metrics"][k]["mean"] is None]
        assert not missing, (row["key"], missing)
        if row["method"] in ("mala", "mala-clip", "hmc") and row["tuning"] != "exact":
            assert row["metrics"]["acceptance"]["mean"] is not None, row["key"]
    assert metrics["reference"]["images_per_class"] == 4  # max(chains, 4) of the folder's 6
    assert metrics["reference"]["metrics"]["judge_log_p_real"]["n"] == 4
    assert {c["verdict"] for c in metrics["claims"]} <= {"reproduced", "not reproduced", "not tested"}
    assert (out / "index.html").stat().st_size > 0 and (out / "figure2.png").exists()


@pytest.mark.parametrize(("method", "backend"), [("map-clip", "ort"), ("mala", "ort"), ("map", "torch")])
def test_sample_passes_the_parity_gate_on_the_paper_size_nets(folder, tmp_path, method, backend, capsys):
    """At the default 4 chains; the steps are cut to keep CI short (the gate runs on the start codes). On the
    logit objective torch float32's chain 0 takes one generator LeakyReLU the other way (1.3e-3 before the
    kink allowance): the torch backend passes by the allowance, and says so."""
    out = tmp_path / method
    argv = ["sample", "--models", f"dgn-caffenet={folder}", "--class", str(fullsize.CLASS)]
    argv += ["--method", method, "--backend", backend, "--steps", "3", "-o", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    record = json.loads((out / "run.json").read_text())
    assert record["chains"] == 4
    side = {"ort": "ORT-VJP", "torch": "torch autograd"}[backend]
    gating = [c for c in record["parity"] if c["gates"]]
    assert [c["name"].split(" (")[0] for c in gating] == [
        f"forward logp: {side} vs torch autograd float64",
        f"gradient: {side} vs torch autograd float64",
    ]
    assert gating[0]["passed"] and gating[0]["error"] <= FORWARD_TOL
    assert gating[1]["passed"] and gating[1]["error"] <= GRAD_TOL
