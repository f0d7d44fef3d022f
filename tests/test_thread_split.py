"""tools/thread_split: processes × threads splits measured on a tiny set, and a malformed split refused."""

from __future__ import annotations

import json

import pytest

from tests.test_report import write_tiny_set
from tools.thread_split import main


@pytest.mark.slow
def test_each_split_runs_its_processes_with_their_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    tiny = write_tiny_set(tmp_path / "set")
    out = tmp_path / "split.json"
    args = ["--models", str(tiny), "--batch", "2", "--seconds", "0.3", "--splits", "1x1,2x1"]
    assert main([*args, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [(s["processes"], s["threads"]) for s in result["splits"]] == [(1, 1), (2, 1)]
    for s in result["splits"]:
        assert len(s["per_process"]) == s["processes"]
        assert all(r > 0 for r in s["per_process"])
        assert s["chain_gradients_per_s"] == pytest.approx(sum(s["per_process"]), abs=0.2)


def test_a_malformed_split_is_refused(capsys):
    assert main(["--splits", "2x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --splits: a split is PROCESSESxTHREADS, e.g. 2x1; got '2x'"


def test_a_missing_model_set_is_refused_before_any_process_starts(tmp_path, capsys):
    assert main(["--models", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "nope" in err[0]
