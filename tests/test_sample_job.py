"""`repro sample` end to end on a tiny model set: the method table's published settings reach the sampler,
the parity gate runs against the other backend, and the files written match what the sampler computed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from repro.cli import main
from repro.modelsets import resolve
from repro.posterior import posterior_model
from repro.runtime import BACKENDS, make_backend
from repro.samplers import METHODS, load_bounds
from tests.test_report import CODE, write_tiny_set


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_set(tmp_path_factory.mktemp("tiny") / "set")


@pytest.mark.parametrize(("method", "backend"), [("map-clip", "ort"), ("hmc", "torch"), ("mala", "ort")])
def test_sample_writes_what_the_sampler_computed(tiny, tmp_path, method, backend):
    out = tmp_path / "out"
    args = ["sample", "--models", str(tiny), "--class", "1", "--method", method, "--chains", "3"]
    assert main([*args, "--steps", "8", "--backend", backend, "-o", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    m = METHODS[method]
    assert record["method"] == method and record["objective"] == m.objective
    assert record["prior_sigma"] == m.prior_sigma and record["backend"] == backend
    assert record["step_size"] == resolve(str(tiny)).start_step(m)
    for option, value in m.published.items():
        assert record["options"][option] == value
    labels = {"ort": "ORT-VJP", "torch": "torch autograd"}
    sides = [labels[backend], labels[BACKENDS[backend].checked_against]]  # the sampling side gates
    assert [(c["name"].split(" (")[0], c["gates"]) for c in record["parity"]] == [
        (f"{what}: {side} vs torch autograd float64", side == sides[0])
        for side in sides
        for what in ("forward logp", "gradient")
    ]
    assert all(c["passed"] for c in record["parity"] if c["gates"])
    gradients_per_step = m.kernel.gradients_per_step(**m.published)
    assert record["n_grad"] == 8 * gradients_per_step + 1  # no clipped MCMC here: no extra evaluations

    with np.load(out / "samples.npz") as f:
        z_image, images, logp = f["z_image"], f["images"], f["logp"]
    assert logp.shape == (8, 3) and z_image.shape == (3, CODE)
    assert sorted(p.name for p in out.glob("chain_*.png")) == [
        "chain_000.png",
        "chain_001.png",
        "chain_002.png",
    ]
    ms = resolve(str(tiny))
    check = make_backend("ort", posterior_model(ms, m.objective, m.prior_sigma))
    np.testing.assert_allclose(images, check.images(z_image.astype(np.float32)), atol=1e-3)
    if m.clip:
        upper = load_bounds(ms.clip_bounds, CODE)
        assert (z_image >= 0).all() and (z_image <= upper + 1e-12).all()


def test_sample_rejects_a_class_outside_the_set(tiny, tmp_path, capsys):
    args = ["sample", "--models", str(tiny), "--class", "7", "--method", "mala", "-o", str(tmp_path / "o")]
    assert main(args) == 2
    assert "outside model set tiny's 3 classes" in capsys.readouterr().err


def test_sample_scores_its_images_with_a_given_judge(tiny, tmp_path):
    from repro.dcgan import DcganFiles, random_judge, write_judge
    from repro.evaluate.judges import DcganJudge

    judge_dir = tmp_path / "judge"
    write_judge(judge_dir, random_judge(1))
    out = tmp_path / "out"
    args = [
        "sample",
        "--models",
        str(tiny),
        "--class",
        "0",
        "--method",
        "map",
        "--chains",
        "2",
        "--steps",
        "3",
    ]
    assert main([*args, "--judge", str(judge_dir), "--judge-file", "png", "-o", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())["judge"]
    assert (record["kind"], record["preprocess"], record["file_format"]) == ("dcgan", "authors", "png")
    with np.load(out / "samples.npz") as f:
        images = f["images"]
    expected = DcganJudge(DcganFiles(judge_dir, "authors", "png")).log_p_real(images)
    np.testing.assert_allclose(record["log_p_real"], expected, rtol=0, atol=1e-12)
