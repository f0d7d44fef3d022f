"""`repro report`'s output folder holds the user's work too: a folder with files the report did not write is
refused before any model is converted (--replace writes beside them, never over them), an earlier report's
folder is continued, and a cell that is not what was written (edited, damaged, or without the sha256 cells
carry now) is run again with a notice, to the numbers of a fresh run.

A small grid (3 rows × 2 classes, one row per class and call) keeps each run to seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from repro.cli import main
from repro.report import build
from repro.report.build import RECORD, REPORT_FILES
from tests.test_report import write_tiny_set

ARGS = [
    "--quick", "--chains", "2", "--budget", "0.01", "--map-steps", "20", "--rows", "map-clip,mala,mala-clip",
    "--classes", "0,1",
]  # fmt: skip
N_CELLS = 6


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_set(tmp_path_factory.mktemp("tiny") / "set")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh conversion cache, so a test sees whether a model was converted."""
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def fresh(tiny, tmp_path_factory):
    """A finished report, run once: the numbers every continued or repaired folder must come back to."""
    root = tmp_path_factory.mktemp("fresh")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPRO_CACHE", str(root / "cache"))
        assert main(report(tiny, root / "out")) == 0
    return root / "out"


def report(tiny: Path, out: Path, *more: str) -> list[str]:
    return ["report", "--models", str(tiny), *ARGS, *more, "-o", str(out)]


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def numbers(out: Path) -> list[dict]:
    """metrics.json's rows without the timings, which differ from run to run."""
    rows = json.loads((out / "metrics.json").read_text())["rows"]
    for row in rows:
        del row["metrics"]["seconds"]
        for c in row["per_class"]:
            c["metrics"].pop("seconds", None)
    return rows


def cell_counts(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())["cells"]


def assert_record_matches(out: Path) -> None:
    """The record names every top-level file the report wrote, with its sha256, as `sha256sum -c` reads it."""
    lines = (out / RECORD).read_text().splitlines()
    recorded = dict(reversed(line.split("  ", 1)) for line in lines)
    assert len(recorded) == len(lines)  # one sha256 per file once the report has finished
    written = {p.name for p in out.iterdir() if p.name in REPORT_FILES}
    assert set(recorded) == written
    for name, digest in recorded.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: output folder ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("mine", "replace", "named", "why"),
    [
        (["thesis.tex", "notes/today.md"], False, "notes", "pass --replace to write the report beside it"),
        (["index.html", "thesis.tex"], False, "index.html", "a report would overwrite it"),
        (["index.html", "thesis.tex"], True, "index.html", "even --replace never overwrites"),
        (["report.md"], True, "report.md", "which repro report did not write"),
        (["cells/my-notes.txt"], False, "cells/my-notes.txt", "pass --replace"),
        (["metrics.json"], True, "metrics.json", "which repro report did not write"),
    ],
)
def test_a_folder_of_the_users_files_is_refused_untouched(
    tiny, tmp_path, cache, capsys, mine, replace, named, why
):
    out = tmp_path / "thesis"
    for i, name in enumerate(mine):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(f"the user's own {name}, {i}\n".encode())
    before = files(out)
    assert main(report(tiny, out, *(["--replace"] if replace else []))) == 2
    err = one_error_line(capsys)
    assert f"holds {named}," in err and why in err
    assert files(out) == before  # byte for byte, and nothing added
    assert sorted(p.name for p in out.iterdir()) == sorted({Path(n).parts[0] for n in mine})
    assert not list(cache.glob("*.onnx"))  # refused before any model was converted


def test_replace_writes_beside_the_users_files_and_never_over_them(tiny, tmp_path, cache, capsys, fresh):
    out = tmp_path / "thesis"
    (out / "figures").mkdir(parents=True)
    (out / "thesis.tex").write_text("\\documentclass{article}\n")
    (out / "figures" / "plot.png").write_bytes(b"not a png, but the user's")
    mine = files(out)
    assert main(report(tiny, out, "--replace")) == 0
    assert {k: v for k, v in files(out).items() if k in mine} == mine
    assert numbers(out) == numbers(fresh)
    assert_record_matches(out)
    assert "thesis.tex" not in (out / RECORD).read_text()
    capsys.readouterr()

    # the folder still holds the user's files: every run into it needs --replace, and continues
    assert main(report(tiny, out)) == 2
    assert "holds figures, which repro report did not write" in one_error_line(capsys)
    assert main(report(tiny, out, "--replace")) == 0
    assert cell_counts(out) == {"total": N_CELLS, "run": 0, "reused": N_CELLS}
    assert {k: v for k, v in files(out).items() if k in mine} == mine


def test_an_earlier_report_is_continued_and_a_file_edited_since_is_kept(tiny, tmp_path, cache, capsys, fresh):
    out = tmp_path / "out"
    shutil.copytree(fresh, out)
    assert main(report(tiny, out)) == 0
    assert cell_counts(out) == {"total": N_CELLS, "run": 0, "reused": N_CELLS}
    assert set(p.name for p in out.iterdir()) <= REPORT_FILES | {RECORD, "cells"}
    assert_record_matches(out)

    # A report from before the record existed: known by its metrics.json, continued without --replace.
    (out / RECORD).unlink()
    assert main(report(tiny, out)) == 0
    assert cell_counts(out)["reused"] == N_CELLS
    assert_record_matches(out)
    capsys.readouterr()

    # report.md edited after the report wrote it is the user's now: refused, even with --replace
    (out / "report.md").write_text((out / "report.md").read_text() + "\nMy notes on claim 3.\n")
    kept = files(out)
    for more in ([], ["--replace"]):
        assert main(report(tiny, out, *more)) == 2
        err = one_error_line(capsys)
        assert "holds report.md, changed since repro report wrote it, and a report would overwrite it" in err
    assert files(out) == kept


class Killed(BaseException):
    """Stands in for a kill: nothing in repro catches it."""


class KillAtMove:
    """build's `os`, but for `replace`, which moves `moves` files and then is killed."""

    def __init__(self, moves: int):
        self.left = moves

    def __getattr__(self, name):
        return getattr(os, name)

    def replace(self, src, dst):
        if self.left == 0:
            raise Killed
        self.left -= 1
        os.replace(src, dst)


def test_a_report_killed_while_its_files_move_in_is_continued(
    tiny, tmp_path, cache, capsys, monkeypatch, fresh
):
    out = tmp_path / "out"
    shutil.copytree(fresh, out)
    before = files(out)
    with monkeypatch.context() as m:
        m.setattr(build, "os", KillAtMove(4))  # figure2, figure3, index.html, metrics.json
        with pytest.raises(Killed):
            main(report(tiny, out))
    assert files(out)["metrics.json"] != before["metrics.json"]  # its time and counts are new
    assert files(out)["report.md"] == before["report.md"]  # not moved in yet
    assert (out / RECORD).read_text().count("  metrics.json\n") == 2  # the old and the new sha256
    assert main(report(tiny, out)) == 0  # the old files and the new: all the report's
    assert not (out / ".report-staging").exists()
    assert_record_matches(out)
    assert numbers(out) == numbers(fresh)
    assert "error" not in capsys.readouterr().err


def _rewrite(path: Path, change) -> None:
    """Save the cell again with `change` applied to its arrays and meta record, the sha256 kept as it was."""
    with np.load(path) as f:
        arrays = {name: f[name] for name in f.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta, arrays)
    arrays["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _judge_score(meta, arrays):
    meta["per_chain"]["judge_log_p_real"][0] = 0.0  # a better score than any earned


def _codes(meta, arrays):
    arrays["z"] = arrays["z"] + 1e-3


@pytest.mark.parametrize(
    ("damage", "notice"),
    [
        (lambda p: _rewrite(p, _judge_score), "the cell {cell}: its content does not match its sha256"),
        (lambda p: _rewrite(p, _codes), "the cell {cell}: its content does not match its sha256"),
        (lambda p: p.write_bytes(p.read_bytes()[:-100]), "the unreadable cell {cell}"),
    ],
    ids=["meta edited", "codes edited", "truncated"],
)
def test_a_cell_that_is_not_what_was_written_is_run_again(
    tiny, tmp_path, cache, capsys, fresh, damage, notice
):
    out = tmp_path / "out"
    shutil.copytree(fresh, out)
    cell = next((out / "cells").glob("mala-clip-c1-*.npz"))
    damage(cell)
    capsys.readouterr()
    assert main(report(tiny, out)) == 0
    notices = [line for line in capsys.readouterr().err.splitlines() if line.startswith("notice: discarded")]
    assert notices == [f"notice: discarded {notice.format(cell=cell)}; running it again"]
    assert cell_counts(out) == {"total": N_CELLS, "run": 1, "reused": N_CELLS - 1}  # one class per call
    assert numbers(out) == numbers(fresh)
    assert main(report(tiny, out)) == 0
    assert "notice: discarded" not in capsys.readouterr().err  # the cell run again is whole


def test_cells_from_before_their_sha256_are_run_again(tiny, tmp_path, cache, capsys, fresh):
    """A folder as a report before this change left it: no record, cells without a sha256."""
    out = tmp_path / "out"
    shutil.copytree(fresh, out)
    (out / RECORD).unlink()
    for cell in (out / "cells").iterdir():
        _rewrite(cell, lambda meta, arrays: meta.pop("sha256"))
    capsys.readouterr()
    assert main(report(tiny, out)) == 0
    notices = [line for line in capsys.readouterr().err.splitlines() if line.startswith("notice: discarded")]
    assert len(notices) == N_CELLS
    assert all("it has no sha256 (an older repro wrote it); running it again" in n for n in notices)
    assert cell_counts(out) == {"total": N_CELLS, "run": N_CELLS, "reused": 0}
    assert numbers(out) == numbers(fresh)
    assert_record_matches(out)
