"""`repro sample` as one unit: a killed run continues from its checkpoint to the files an uninterrupted run
writes, the files replace the output folder together, leftovers of killed runs go, and an output folder that
must not be written is refused before any model is converted."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import repro.sample_job as sample_job
from repro import caffe
from repro.cli import main
from repro.errors import BadInput
from repro.modelsets import SAMPLE_USES, models_id, resolve
from repro.samplers import checkpoint
from tests.test_report import CLASSIFIER, write_tiny_set

STEPS = 60  # checkpoints every max(25, STEPS // 20) = 25 steps: at 25, 50 and 60


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_set(tmp_path_factory.mktemp("tiny") / "set")


def args(tiny: Path, out: Path, *extra: str, method: str = "mala", chains: int = 3) -> list[str]:
    return [
        "sample",
        "--models",
        str(tiny),
        "--class",
        "1",
        "--method",
        method,
        "--chains",
        str(chains),
        "--steps",
        str(STEPS),
        *extra,
        "-o",
        str(out),
    ]


class Killed(Exception):
    """Stands in for SIGKILL: nothing in repro catches it, so no cleanup of ours runs after it either."""


class Calls:
    """Counts the backends' value_and_grad calls; raises Killed at call `die_after` + 1 (None: never)."""

    def __init__(self, die_after: int | None = None):
        self.n = 0
        self.die_after = die_after


class Counted:
    def __init__(self, inner, calls: Calls):
        self._inner = inner
        self._calls = calls

    def value_and_grad(self, z, classes):
        self._calls.n += 1
        if self._calls.die_after is not None and self._calls.n > self._calls.die_after:
            raise Killed
        return self._inner.value_and_grad(z, classes)

    def __getattr__(self, name):
        return getattr(self._inner, name)


MAKE_BACKEND = sample_job.make_backend


def counting(monkeypatch, die_after: int | None = None) -> Calls:
    """From now on the job's backends count their calls (replacing any earlier counting)."""
    calls = Calls(die_after)
    monkeypatch.setattr(sample_job, "make_backend", lambda *a, **k: Counted(MAKE_BACKEND(*a, **k), calls))
    return calls


def outputs(folder: Path) -> tuple:
    """The files' names, samples.npz's arrays, the PNGs' bytes and run.json without its wall-clock times."""
    names = sorted(p.name for p in folder.iterdir())
    with np.load(folder / "samples.npz") as f:
        arrays = {k: f[k] for k in f.files}
    pngs = {p.name: p.read_bytes() for p in folder.glob("*.png")}
    record = json.loads((folder / "run.json").read_text())
    del record["timings"]
    record["diagnostics"].pop("seconds")  # wall time again, and ESS per second derived from it
    for summary in record["diagnostics"]["summaries"].values():
        summary.pop("ess_per_second")
    return names, arrays, pngs, json.dumps(record, sort_keys=True)


def assert_same(a: tuple, b: tuple) -> None:
    assert a[0] == b[0]
    assert a[1].keys() == b[1].keys()
    for key in a[1]:
        np.testing.assert_array_equal(a[1][key], b[1][key], err_msg=key, strict=True)
    assert a[2] == b[2]
    assert a[3] == b[3]


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its bytes (None for folders): to show that nothing changed."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


def refused(capsys, argv: list[str], root: Path, expected: str) -> None:
    """The command exits 2 with one stderr line, `expected`, and leaves every file under root as it was."""
    before = tree(root)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [expected]
    assert "Traceback" not in err
    assert tree(root) == before


def no_models_converted(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("a model was converted before the output folder was checked")

    for name in ("ImageMetrics", "posterior_model", "make_backend"):
        monkeypatch.setattr(sample_job, name, fail)


@pytest.fixture(scope="module")
def whole(tiny, tmp_path_factory):
    """The uninterrupted mala run (parity check included) and the backend calls it made."""
    out = tmp_path_factory.mktemp("whole") / "out"
    with pytest.MonkeyPatch.context() as mp:
        calls = counting(mp)
        assert main(args(tiny, out)) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]  # no checkpoint or temporaries left
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # a folder made as mkdir makes one, not 0700
    return outputs(out), calls.n


@pytest.mark.parametrize("method", ["mala", "map-clip"])
def test_killed_run_continues_to_the_uninterrupted_files(tiny, tmp_path, monkeypatch, whole, method):
    if method == "mala":
        expected, full_calls = whole
    else:
        calls = counting(monkeypatch)
        assert main(args(tiny, tmp_path / "whole" / "out", method=method)) == 0
        expected, full_calls = outputs(tmp_path / "whole" / "out"), calls.n
    parent = tmp_path / "killed"
    out = parent / "out"
    counting(monkeypatch, die_after=full_calls * 3 // 5)
    with pytest.raises(Killed):
        main(args(tiny, out, method=method))
    assert not out.exists()  # nothing of the killed run is in OUT's place
    work = parent / ".out.sample-work"
    meta, _ = checkpoint.load(work / "checkpoint.npz")
    assert 0 < meta["t"] < STEPS
    assert json.loads((work / "job.json").read_text())["settings"]["method"] == method
    # what SIGKILL could leave besides: a half-written checkpoint temporary and a half-filled staging folder
    (work / ".checkpoint.npz.k1ll3d.tmp").write_bytes(b"PK\x03")
    staging = parent / ".out.sample-new-0123456789ab"
    staging.mkdir()
    (staging / "chain_000.png").write_bytes(b"\x89PNG")
    (parent / ".out.sample-new-notours").mkdir()  # not the pattern of a temporary of ours: kept
    (parent / ".other.sample-new-0123456789ab").mkdir()  # another OUT's: kept

    calls = counting(monkeypatch)
    assert main(args(tiny, out, method=method)) == 0
    assert calls.n < full_calls  # it continued; it did not start over
    assert_same(outputs(out), expected)
    assert sorted(p.name for p in parent.iterdir()) == [
        ".other.sample-new-0123456789ab",
        ".out.sample-new-notours",
        "out",
    ]


def test_run_killed_while_writing_its_files_leaves_out_alone(tiny, tmp_path, monkeypatch, whole):
    expected, full_calls = whole
    out = tmp_path / "out"
    real = sample_job.save_png
    written = []

    def save_once(path, *a, **k):
        if written:
            raise Killed
        written.append(path)
        real(path, *a, **k)

    monkeypatch.setattr(sample_job, "save_png", save_once)
    with pytest.raises(Killed):
        main(args(tiny, out))
    monkeypatch.setattr(sample_job, "save_png", real)
    assert not out.exists()
    assert written[0].parent.name.startswith(".out.sample-new-") and written[0].exists()

    calls = counting(monkeypatch)
    assert main(args(tiny, out)) == 0
    assert calls.n <= full_calls - STEPS  # the finished checkpoint was used: no sampling again
    assert_same(outputs(out), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_same_settings_again_replace_out_with_the_same_run(tiny, tmp_path, monkeypatch, whole):
    expected, _ = whole
    out = tmp_path / "out"
    assert main(args(tiny, out)) == 0
    # a stale work folder (a run killed before its first checkpoint) is simply dropped
    (tmp_path / ".out.sample-work").mkdir()
    (tmp_path / ".out.sample-work" / "job.json").write_text('{"settings": {"seed": 7}}')

    real = os.rename

    def killed_between_renames(src, dst, *a, **k):
        if Path(dst) == out and not out.exists():
            raise Killed  # the old OUT is aside, the new one not yet in place
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "rename", killed_between_renames)
    with pytest.raises(Killed):
        main(args(tiny, out))
    monkeypatch.setattr(os, "rename", real)
    assert not out.exists()
    left = sorted(p.name[: len(".out.sample-new")] for p in tmp_path.iterdir())
    assert left == [".out.sample-new", ".out.sample-old", ".out.sample-wor"]

    assert main(args(tiny, out)) == 0
    assert_same(outputs(out), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert main(args(tiny, out)) == 0  # and once more over the finished run: the same files
    assert_same(outputs(out), expected)


def test_fewer_chains_into_an_earlier_run_need_replace_and_leave_no_stale_chain(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(args(tiny, out, "--no-parity-check")) == 0
    assert (out / "chain_002.png").exists()
    fewer = args(tiny, out, "--no-parity-check", chains=2)
    refused(
        capsys,
        fewer,
        tmp_path,
        f"error: output folder {out}: holds another run (its run.json has chains=3, this run chains=2); "
        "pass --replace to replace it",
    )
    assert main([*fewer, "--replace"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "chain_000.png",
        "chain_001.png",
        "grid.png",
        "run.json",
        "samples.npz",
    ]
    assert json.loads((out / "run.json").read_text())["chains"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def other_models(root: Path) -> Path:
    """The tiny set with other classifier weights: the same files by name, other content."""
    shutil.copytree(root, root.parent / "other")
    net = caffe.parse_net_text(CLASSIFIER, source="classifier")
    caffe.random_weights(net, seed=99)
    other = root.parent / "other"
    caffe.write_net(net, other / "classifier.prototxt", other / "classifier.caffemodel")
    return other


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (["--seed", "1"], "its run.json has seed=0, this run seed=1"),
        (["--step-size", "0.02"], "its run.json has step_size=0.01, this run step_size=0.02"),
        (["--adapt", "5"], "its run.json has options.adapt=null, this run options.adapt=5"),
        ("models", "its run.json has models_id="),
    ],
)
def test_another_runs_folder_is_refused_unless_replace(tiny, tmp_path, capsys, change, why):
    out = tmp_path / "out"
    assert main(args(tiny, out, "--no-parity-check")) == 0
    if change == "models":
        models = other_models(tiny)
        assert models_id(resolve(str(models)), SAMPLE_USES) != models_id(resolve(str(tiny)), SAMPLE_USES)
        again = args(models, out, "--no-parity-check")
    else:
        again = args(tiny, out, "--no-parity-check", *change)
    before = tree(tmp_path)
    capsys.readouterr()
    assert main(again) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"error: output folder {out}: holds another run ({why}")
    assert err.rstrip().endswith("); pass --replace to replace it")
    assert tree(tmp_path) == before
    assert main([*again, "--replace"]) == 0
    assert (
        json.loads((out / "run.json").read_text())["settings"]
        != json.loads(before["out/run.json"])["settings"]
    )
    if change == "models":
        shutil.rmtree(tiny.parent / "other")


def test_the_same_model_files_elsewhere_are_the_same_run(tiny, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    assert models_id(resolve(str(copy)), SAMPLE_USES) == models_id(resolve(str(tiny)), SAMPLE_USES)


def test_folders_of_older_or_partial_runs_are_refused_unless_replace(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "chain_000.png").write_bytes(b"\x89PNG")
    (out / "samples.npz").write_bytes(b"PK")
    argv = args(tiny, out, "--no-parity-check")
    refused(
        capsys,
        argv,
        tmp_path,
        f"error: output folder {out}: holds another run (without a run.json); pass --replace to replace it",
    )
    (out / "run.json").write_text(json.dumps({"method": "mala", "chains": 3}))  # an older repro's record
    refused(
        capsys,
        argv,
        tmp_path,
        f"error: output folder {out}: holds another run (its run.json records no settings); "
        "pass --replace to replace it",
    )
    assert main([*argv, "--replace"]) == 0
    assert len(list(out.glob("chain_*.png"))) == 3


def test_a_folder_with_other_files_is_never_replaced(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(args(tiny, out, "--no-parity-check")) == 0
    (out / "notes.txt").write_text("mine")
    for extra in ([], ["--replace"]):
        refused(
            capsys,
            args(tiny, out, "--no-parity-check", *extra),
            tmp_path,
            f"error: output folder {out}: holds notes.txt, which repro sample does not write; choose another "
            "folder (one with other files is never replaced, even with --replace)",
        )


def test_a_file_put_into_out_during_the_run_stops_the_swap(tiny, tmp_path, monkeypatch, capsys, whole):
    expected, full_calls = whole
    out = tmp_path / "out"
    assert main(args(tiny, out)) == 0
    before = tree(out)
    real = sample_job.samplers.sample

    def sample_meanwhile(*a, **k):
        (out / "notes.txt").write_text("mine")
        return real(*a, **k)

    monkeypatch.setattr(sample_job.samplers, "sample", sample_meanwhile)
    capsys.readouterr()
    assert main(args(tiny, out)) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"error: output folder {out}: notes.txt appeared in it during the run, so it is not replaced; move "
        "that away and run the command again (it continues from its checkpoint)"
    )
    assert tree(out) == {**before, "notes.txt": b"mine"}
    monkeypatch.setattr(sample_job.samplers, "sample", real)
    (out / "notes.txt").unlink()
    calls = counting(monkeypatch)
    assert main(args(tiny, out)) == 0
    assert calls.n <= full_calls - STEPS
    assert_same(outputs(out), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_another_runs_checkpoint_is_not_continued(tiny, tmp_path, monkeypatch, capsys, whole):
    _, full_calls = whole
    out = tmp_path / "out"
    counting(monkeypatch, die_after=full_calls * 3 // 5)
    with pytest.raises(Killed):
        main(args(tiny, out))
    ckpt = tmp_path / ".out.sample-work" / "checkpoint.npz"
    assert ckpt.exists()
    counting(monkeypatch)
    other = args(tiny, out, "--seed", "1")
    refused(
        capsys,
        other,
        tmp_path,
        f"error: output folder {out}: {ckpt} is the checkpoint of an interrupted run (written with seed=0, "
        "this run seed=1); run that command again to finish it, or pass --replace to discard it",
    )
    assert main([*other, "--replace"]) == 0
    assert json.loads((out / "run.json").read_text())["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_unwritable_parent_is_refused_before_any_model_is_converted(tiny, tmp_path, monkeypatch, capsys):
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        if os.access(parent, os.W_OK):
            pytest.skip("this user can write into a 0o500 folder (root)")
        no_models_converted(monkeypatch)
        for out in (parent / "out", parent / "deeper" / "out"):
            refused(
                capsys,
                args(tiny, out),
                tmp_path,
                f"error: output folder {out}: cannot write in {out.parent} (Permission denied)",
            )
    finally:
        parent.chmod(0o700)


def test_a_parent_that_refuses_writes_is_refused_even_as_root(tiny, tmp_path, monkeypatch, capsys):
    """The same refusal where the file system, not the mode bits, says no (root ignores 0o500)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real = Path.mkdir

    def mkdir(self, *a, **k):
        if locked in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    no_models_converted(monkeypatch)
    out = locked / "out"
    refused(
        capsys,
        args(tiny, out),
        tmp_path,
        f"error: output folder {out}: cannot write in {locked} (Permission denied)",
    )


def test_a_file_in_place_of_out_or_of_its_parent_is_refused_before_any_model_is_converted(
    tiny, tmp_path, monkeypatch, capsys
):
    no_models_converted(monkeypatch)
    out = tmp_path / "out"
    out.write_text("not a folder")
    before = tree(tmp_path)
    assert main(args(tiny, out)) == 2  # the command line's own check of -o
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: repro sample: Invalid value for '-o' / '--out': Directory '{out}' is a file."
    ]
    assert tree(tmp_path) == before
    job = sample_job.SampleJob(resolve(str(tiny)), 1, "mala", chains=2, steps=3)
    with pytest.raises(BadInput, match=rf"^output folder {out}: exists and is not a folder$"):
        sample_job.run_job(job, out)
    refused(
        capsys,
        args(tiny, out / "sub"),
        tmp_path,
        f"error: output folder {out / 'sub'}: {out} is a file, not a folder",
    )
