"""The catalogue of bad input: every case exits 2 (a failed run 1) with one line naming what is wrong, no
traceback, within seconds, and leaves every input as it was.

Cases elsewhere in the same spirit, beside the fixtures they share: manifests, their fields and the files'
sha256 (tests/test_manifest_schema.py), `repro sample` outputs, leftovers and resume
(tests/test_sample_resume.py), nets that convert but would not run (tests/test_convert_runs.py), Caffe
files (tests/test_caffe_read.py), judge files (tests/test_dcgan.py), `repro convert`
(tests/test_convert_cli.py), and the seeded fuzz test of the readers (tests/test_fuzz_readers.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest

from repro.cli import main
from tests.test_report import write_tiny_set


def digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def one_line(capsys, args: list[str], code: int = 2) -> str:
    started = time.perf_counter()
    assert main(args) == code
    assert time.perf_counter() - started < 60
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_set(tmp_path_factory.mktemp("tiny") / "set")


@pytest.mark.parametrize("target", ["caffemodel", "prototxt", "hard link to the caffemodel"])
def test_convert_never_writes_over_its_inputs(files, tmp_path, capsys, target):
    prototxt, caffemodel = files
    before = digest(prototxt, caffemodel)
    out = {"caffemodel": caffemodel, "prototxt": prototxt}.get(target)
    if out is None:
        out = tmp_path / "alias.onnx"
        os.link(caffemodel, out)
    err = one_line(capsys, ["convert", str(prototxt), str(caffemodel), "-o", str(out)])
    assert "refusing to write over an input" in err and str(out) in err
    assert digest(prototxt, caffemodel) == before


def test_grad_never_writes_over_its_input(files, tmp_path, capsys):
    prototxt, caffemodel = files
    model = tmp_path / "tiny.onnx"
    assert main(["convert", str(prototxt), str(caffemodel), "-o", str(model)]) == 0
    capsys.readouterr()
    before = digest(model)
    err = one_line(capsys, ["grad", str(model), "-o", str(model), "--wrt", "data", "--of", "prob"])
    assert "refusing to write over an input" in err
    assert digest(model) == before


@pytest.mark.parametrize(("name", "content"), [("net.prototxt", 'name: "x"\n'), ("net.json", "{}\n")])
def test_grad_refuses_files_that_are_not_onnx(tmp_path, capsys, name, content):
    path = tmp_path / name
    path.write_text(content)
    err = one_line(capsys, ["grad", str(path), "-o", str(tmp_path / "o.onnx"), "--wrt", "a", "--of", "b"])
    assert str(path) in err and "not an ONNX model" in err
    assert not (tmp_path / "o.onnx").exists()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["sample", "--class", "0", "--method", "map", "--seed", "-1", "-o", "OUT"], "--seed"),
        (["report", "--budget", "inf", "-o", "OUT"], "--budget"),
        (["report", "--budget", "nan", "-o", "OUT"], "--budget"),
        (["parity", "--batch", "0"], "--batch"),
        (["parity", "--directions", "0"], "--directions"),
        (["bench", "--batch", "0"], "--batch"),
        (["bench", "--batch", "-1"], "--batch"),
        (["bench", "--batch", "1,x"], "--batch"),
        (["bench", "--repeats", "0"], "--repeats"),
        (["sample", "--class", "0", "--method", "nuts", "-o", "OUT"], "--method"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_options_are_one_line_before_any_work(tiny, tmp_path, capsys, args, named):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    if args[0] in ("sample", "report", "parity", "bench"):
        args += ["--models", str(tiny)]
    err = one_line(capsys, args)
    assert named in err
    assert not (tmp_path / "out").exists()


def test_a_damaged_conversion_cache_heals(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    assert main(["parity", "--models", str(tiny), "--json"]) == 0
    capsys.readouterr()
    entries = sorted((tmp_path / "cache").glob("*.onnx"))
    assert entries, "the parity run converts and caches the generator and classifier"
    good = entries[0].read_bytes()
    entries[0].write_bytes(good[: len(good) // 2])  # a truncated write
    assert main(["parity", "--models", str(tiny), "--json"]) == 0
    err = capsys.readouterr().err
    assert f"notice: discarded the unreadable cached conversion {entries[0]}" in err
    assert entries[0].read_bytes() == good  # rebuilt, byte for byte
    onnx.checker.check_model(onnx.load(entries[0]))
    assert main(["parity", "--models", str(tiny), "--json"]) == 0
    assert "notice" not in capsys.readouterr().err  # and used again from then on


def test_a_failing_bench_worker_is_reported_not_waited_on(tiny):
    """A child that fails (here: ONNX Runtime refuses a graph that lost a weight) ends the bench at once with
    its message; before, the parent waited forever on the queue."""
    from repro import bench
    from repro.errors import ReproError
    from repro.modelsets import resolve
    from repro.posterior import posterior_model

    model = posterior_model(resolve(str(tiny)))
    del model.graph.initializer[0]
    started = time.perf_counter()
    with pytest.raises(ReproError, match=r"^ort at batch 1: .*"):
        bench.run_bench(model, (1,), 1)
    assert time.perf_counter() - started < 60


def test_a_full_disk_names_the_file_and_leaves_nothing_half_written(files, tmp_path, monkeypatch, capsys):
    import errno

    prototxt, caffemodel = files
    out = tmp_path / "tiny.onnx"

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    err = one_line(capsys, ["convert", str(prototxt), str(caffemodel), "-o", str(out)])
    assert err == f"error: No space left on device: {out}"
    assert not out.exists() and not list(tmp_path.glob(".tiny.onnx.*"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "{path}: the prototxt defines no layers and no inputs"),
        (
            'name: "x"\nlayer { name: "a" type: "ReLU" bottom: "d" top: "d" \n',
            '{path}: prototxt syntax error at line 2: Expected "}". (column 49)',
        ),
    ],
    ids=["empty", "unclosed brace"],
)
def test_a_bad_prototxt_says_what_and_where(files, tmp_path, capsys, text, message):
    _, caffemodel = files
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(text)
    before = digest(prototxt, caffemodel)
    err = one_line(capsys, ["convert", str(prototxt), str(caffemodel), "-o", str(tmp_path / "net.onnx")])
    assert message.replace("{path}", str(prototxt)) in err and "line None" not in err, err
    assert digest(prototxt, caffemodel) == before and not (tmp_path / "net.onnx").exists()


def held(lock: Path):
    """An flock on `lock` through its own open file, as a second repro process would hold it."""
    f = open(lock, "a+")  # noqa: SIM115 (closed by the caller)
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return f


def test_a_second_sample_into_a_busy_folder_is_refused(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["sample", "--models", str(tiny), "--class", "1", "--method", "map", "--steps", "3"]
    argv += ["--chains", "2", "--no-parity-check", "-o", str(out)]
    lock = held(tmp_path / ".out.sample-lock")
    try:
        err = one_line(capsys, argv)
    finally:
        lock.close()
    assert err.startswith(f"error: output folder {out}: another repro process") and "is writing it" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.sample-lock"]  # nothing else touched
    assert main(argv) == 0  # the holder gone, the same command runs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # and its lock goes with it


def test_a_second_report_into_a_busy_folder_is_refused(tiny, tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    lock = held(out / ".report-lock")
    try:
        err = one_line(
            capsys,
            [
                "report",
                "--models",
                str(tiny),
                "--classes",
                "0",
                "--chains",
                "2",
                "--budget",
                "0.002",
                "-o",
                str(out),
            ],
        )
    finally:
        lock.close()
    assert f"output folder {out}: another repro process" in err
    assert not list((out / "cells").glob("*.npz")) and not (out / "metrics.json").exists()


@pytest.mark.slow
def test_sample_killed_by_sigkill_resumes_to_the_uninterrupted_files(tiny, tmp_path):
    """A real SIGKILL of a `repro sample` process mid-run (not an exception standing in for one): the same
    command again continues from the checkpoint to files bit-identical to an uninterrupted run."""
    from tests.test_sample_resume import assert_same, outputs

    def argv(out: Path) -> list[str]:
        return [
            "sample", "--models", str(tiny), "--class", "1", "--method", "mala", "--chains", "3",
            "--steps", "6000", "--no-parity-check", "-o", str(out),
        ]  # fmt: skip

    whole = tmp_path / "whole"
    assert main(argv(whole)) == 0
    out = tmp_path / "killed"
    checkpoint = tmp_path / ".killed.sample-work" / "checkpoint.npz"
    code = "import sys; from repro.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, *argv(out)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL, "the run ended before it could be killed mid-way"
    assert checkpoint.exists() and not out.exists()
    assert main(argv(out)) == 0
    assert_same(outputs(out), outputs(whole))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed", "whole"]  # work folder and lock gone
