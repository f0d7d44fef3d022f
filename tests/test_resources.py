"""Resources found out before work: a run whose traces, samples, images and value-and-grad calls cannot fit
in the available memory is refused in one line naming the options and the estimate (exit 2), within seconds
and before any model is converted; and every integer option has a range, so no value reaches numpy as an
overflow. The available memory is pinned (16 GB) so the cases do not depend on the machine running them."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import numpy as np
import pytest

from repro import resources
from repro.cli import main
from repro.errors import BadInput
from repro.modelsets import resolve
from tests.test_report import write_tiny_set

AVAILABLE = 16 * 10**9


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_set(tmp_path_factory.mktemp("tiny") / "set")


@pytest.fixture(autouse=True)
def pinned_memory(monkeypatch):
    monkeypatch.setattr(resources, "available_bytes", lambda: AVAILABLE)


@pytest.fixture
def no_conversion(monkeypatch):
    """A refusal must come before any model is converted: converting fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was converted before the refusal")

    for where in ("repro.posterior", "repro.evaluate.sessions"):
        monkeypatch.setattr(f"{where}.convert_net", refuse)


def tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def refused(capsys, args: list[str]) -> str:
    started = time.perf_counter()
    assert main(args) == 2
    assert time.perf_counter() - started < 20  # before any work
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], err
    assert len([line for line in lines if line.startswith("error: ")]) == 1, err
    return lines[-1]


@pytest.mark.usefixtures("no_conversion")
def test_sample_with_a_million_chains_is_refused_before_work(tmp_path, capsys):
    out = tmp_path / "out"
    err = refused(
        capsys, ["sample", "--class", "0", "--method", "map", "--chains", "1000000", "-o", str(out)]
    )
    assert re.fullmatch(
        r"error: --chains 1000000 × --steps 200: the run would hold at least [\d.]+ TB \(traces, samples and "
        r"images [\d.]+ GB, a value-and-grad call over every chain [\d.]+ GB\), this machine has 16 GB "
        r"available; lower --chains or --steps",
        err,
    ), err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output, no lock, no work folder


@pytest.mark.usefixtures("no_conversion")
def test_sample_with_ten_million_steps_is_refused_before_work(tmp_path, capsys):
    out = tmp_path / "out"
    err = refused(
        capsys, ["sample", "--class", "0", "--method", "mala", "--steps", "10000000", "-o", str(out)]
    )
    assert err.startswith("error: --chains 4 × --steps 10000000: the run would hold at least 165 GB"), err
    assert err.endswith("this machine has 16 GB available; lower --chains or --steps")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.usefixtures("no_conversion")
def test_sample_on_a_user_model_set_leaves_it_and_the_output_folder_unchanged(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text("{}\n")  # an earlier run's, to be left as it is
    before = tree_digest(tiny), tree_digest(out)
    argv = ["sample", "--models", str(tiny), "--class", "0", "--method", "map"]
    err = refused(capsys, [*argv, "--chains", "1000000", "--steps", "100000", "-o", str(out)])
    assert "--chains 1000000 × --steps 100000" in err and "lower --chains or --steps" in err
    assert (tree_digest(tiny), tree_digest(out)) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.usefixtures("no_conversion")
def test_report_refuses_a_sampler_call_that_cannot_fit(tmp_path, capsys):
    out = tmp_path / "report"
    err = refused(capsys, ["report", "--quick", "--chains", "1000000", "-o", str(out)])
    assert re.fullmatch(
        r"error: --chains 1000000 × 3 classes in one sampler call \(row [a-z-]+, \d+ iterations\): "
        r"the report would hold at least [\d.]+ TB \(its traces, samples and images [\d.]+ TB, its "
        r"value-and-grad call [\d.]+ TB, the finished cells kept beside it [\d.]+ TB\), this machine has "
        r"16 GB available; lower --chains(, --classes)? or --(classes|budget|map-steps)",
        err,
    ), err
    assert not out.exists()


def test_report_counts_the_unit_not_the_whole_plan(tiny, tmp_path, capsys, monkeypatch):
    """A clipped MCMC row runs one class per call: its unit is chains × 1, so a plan that fits per unit runs,
    and the same chains batched over classes are refused where they would not fit."""
    from repro.report.build import ReportOptions, plan_report
    from repro.report.estimate import refuse_what_cannot_fit

    ms, plan = plan_report(ReportOptions(models=str(tiny), chains=20_000, budget=0.01, rows=["mala-clip"]))
    monkeypatch.setattr(resources, "available_bytes", lambda: 10**9)
    refuse_what_cannot_fit(ms, plan)  # 20 000 chains of one class at a time: fits
    ms, plan = plan_report(ReportOptions(models=str(tiny), chains=20_000, budget=0.01, rows=["mala"]))
    with pytest.raises(BadInput, match=r"^--chains 20000 × 3 classes in one sampler call \(row mala, 60 "):
        refuse_what_cannot_fit(ms, plan)


@pytest.mark.usefixtures("no_conversion")
def test_bench_with_a_batch_of_a_million_is_refused_before_work(capsys):
    err = refused(capsys, ["bench", "--batch", "1,1000000"])
    assert re.fullmatch(
        r"error: --batch 1000000: the value-and-grad calls would hold at least [\d.]+ TB \(2 backends side "
        r"by side, [\d.]+ TB each\), this machine has 16 GB available; lower --batch",
        err,
    ), err


@pytest.mark.usefixtures("no_conversion")
def test_parity_with_a_batch_of_a_million_is_refused_before_work(capsys):
    err = refused(capsys, ["parity", "--batch", "1000000"])
    assert re.fullmatch(
        r"error: --batch 1000000: parity would hold at least [\d.]+ TB, this machine has 16 GB available; "
        r"lower --batch",
        err,
    ), err


BIG = str(10**20)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["sample", "--class", "0", "--method", "map", "--chains", BIG, "-o", "OUT"], "--chains"),
        (["sample", "--class", "0", "--method", "map", "--steps", BIG, "-o", "OUT"], "--steps"),
        (["sample", "--class", "0", "--method", "map", "--seed", BIG, "-o", "OUT"], "--seed"),
        (["sample", "--class", BIG, "--method", "map", "-o", "OUT"], "--class"),
        (["sample", "--class", "-1", "--method", "map", "-o", "OUT"], "--class"),
        (["sample", "--class", "0", "--method", "mala", "--adapt", BIG, "-o", "OUT"], "--adapt"),
        (["sample", "--class", "0", "--method", "mala", "--adapt", "-1", "-o", "OUT"], "--adapt"),
        (["report", "--chains", BIG, "-o", "OUT"], "--chains"),
        (["report", "--seed", BIG, "-o", "OUT"], "--seed"),
        (["report", "--map-steps", BIG, "-o", "OUT"], "--map-steps"),
        (["report", "--budget", "1e306", "-o", "OUT"], "--budget"),
        (["report", "--cpus-per-task", "1e300", "-o", "OUT"], "--cpus-per-task"),
        (["report", "--gpus-per-task", "1e300", "-o", "OUT"], "--gpus-per-task"),
        (["parity", "--batch", BIG], "--batch"),
        (["parity", "--class", BIG], "--class"),
        (["parity", "--directions", BIG], "--directions"),
        (["parity", "--seed", BIG], "--seed"),
        (["bench", "--batch", f"1,{BIG}"], "--batch"),
        (["bench", "--repeats", BIG], "--repeats"),
        (["convert", "NET.prototxt", "NET.caffemodel", "-o", "OUT", "--batch", BIG], "--batch"),
        (["grad", "IN.onnx", "-o", "OUT", "--wrt", "data", "--of", "prob", "--unit", BIG], "--unit"),
        (["grad", "IN.onnx", "-o", "OUT", "--wrt", "data", "--of", "prob", "--unit", "-1"], "--unit"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
@pytest.mark.usefixtures("no_conversion")
def test_every_integer_option_has_a_range(tmp_path, capsys, args, option):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    err = refused(capsys, args)
    assert option in err and ("range" in err or "expected" in err), err
    assert not (tmp_path / "out").exists()


def test_the_estimate_covers_what_a_small_run_holds(tiny, tmp_path):
    """The traces and samples a real run keeps are within the estimate (which leaves weights out, so it is
    not an upper bound on the process, only on what grows with the options)."""
    from repro.posterior import posterior_model
    from repro.runtime import ClassTarget, make_backend
    from repro.samplers import sample

    ms = resolve(str(tiny))
    sizes = resources.net_sizes(ms)
    backend = make_backend("ort", posterior_model(ms, "log_softmax", 1.0))
    assert sizes.code == backend.code_size
    z0 = np.zeros((3, sizes.code))
    result = sample(ClassTarget(backend, 0), "hmc", z0, 7, 0, 0.01)
    held = sum(a.nbytes for a in (result.logp, result.accepted, result.samples, result.energy_error))
    held += result.divergent.nbytes + backend.images(z0.astype(np.float32)).nbytes
    assert held <= resources.sampling_bytes(sizes, 3, 7)
    assert resources.size_text(2.3e12) == "2.3 TB" and resources.size_text(21e9) == "21 GB"
