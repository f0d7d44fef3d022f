"""tools/ort_profile: the per-op-type split of ORT's profile, on a hand-made trace and on a real session."""

from __future__ import annotations

import pytest

from tools.ort_profile import main, summarise


def _node(name, op, ts, dur):
    return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "args": {"op_name": op}}


def test_summarise_splits_by_the_if_span_and_leaves_the_warm_up_out():
    run = lambda ts: {"cat": "Session", "name": "model_run", "ts": ts, "dur": 90}  # noqa: E731
    events = [run(0), _node("conv1", "Conv", 1, 5000)]  # warm-up call: not counted
    for start in (100, 200):
        events += [
            run(start),
            _node("conv1", "Conv", start + 1, 4000),  # forward
            _node("grad/with_grad", "If", start + 10, 50),
            _node("Conv_node_3", "Conv", start + 20, 2000),  # inside the If: backward
            _node("Gemm_node_1", "Gemm", start + 30, 1000),
        ]
    s = summarise(events, calls=2)
    assert s["calls_counted"] == 2
    assert s["by_pass_ms"] == pytest.approx({"forward": 4.0, "backward": 3.0})
    rows = {(r["pass"], r["op_type"]): r for r in s["rows"]}
    assert set(rows) == {("forward", "Conv"), ("backward", "Conv"), ("backward", "Gemm")}  # no If row
    assert rows[("backward", "Conv")]["ms_per_call"] == pytest.approx(2.0)
    assert rows[("forward", "Conv")]["share"] == pytest.approx(4 / 7)


def test_profile_of_a_real_session_has_both_passes(tmp_path, capsys):
    from tests.test_report import write_tiny_set

    root = write_tiny_set(tmp_path / "tiny")
    assert (
        main(["--models", str(root), "--batch", "2", "--calls", "2", "--json", str(tmp_path / "p.json")]) == 0
    )
    import json

    s = json.loads((tmp_path / "p.json").read_text())
    assert s["by_pass_ms"]["forward"] > 0 and s["by_pass_ms"]["backward"] > 0
    assert sum(r["share"] for r in s["rows"]) == pytest.approx(1.0)
    assert "ms of kernels per value-and-grad call" in capsys.readouterr().out
