"""The report on Ray: the same numbers as in one process, bit for bit; and the dry run's cost estimate.

The Ray test starts a local 2-CPU Ray (loopback only) as `repro report --executor ray` does without
`--address`; it skips where Ray is not installed (it is part of the test extra, so CI runs it).
"""

from __future__ import annotations

import json
import re

import pytest

from repro.cli import main
from tests.test_report import QUICK_ARGS, ROW_KEYS, write_tiny_set

TIMINGS = {"wall_seconds", "seconds", "cell_seconds", "ess_per_second", "timings", "sample_s"}


def numbers(record):
    """Everything in metrics.json but wall-clock times (and what is derived from them)."""
    if isinstance(record, dict):
        if record.get("key") in TIMINGS:  # a metric's definition or value keyed by its name
            return None
        return {k: numbers(v) for k, v in record.items() if k not in TIMINGS}
    if isinstance(record, list):
        return [numbers(v) for v in record]
    return record


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_set(tmp_path_factory.mktemp("tiny") / "set")


@pytest.mark.slow
def test_ray_executor_gives_the_local_numbers_bit_for_bit(tiny, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    args = ["report", "--models", str(tiny), *QUICK_ARGS, "--classes", "0,1"]
    assert main([*args, "-o", str(tmp_path / "local")]) == 0
    assert main([*args, "--executor", "ray", "--cpus-per-task", "1", "-o", str(tmp_path / "ray")]) == 0
    local = json.loads((tmp_path / "local" / "metrics.json").read_text())
    on_ray = json.loads((tmp_path / "ray" / "metrics.json").read_text())
    n = len(ROW_KEYS) * 2  # rows × classes
    assert on_ray["cells"] == local["cells"] == {"total": n, "run": n, "reused": 0}
    assert numbers(on_ray) == numbers(local)
    # the cells Ray's tasks saved are the report's cells: a rerun reuses all of them
    assert main([*args, "--executor", "ray", "-o", str(tmp_path / "ray")]) == 0
    again = json.loads((tmp_path / "ray" / "metrics.json").read_text())
    assert again["cells"] == {"total": n, "run": 0, "reused": n}


def test_a_task_computes_with_its_share_of_the_cores(tiny, tmp_path, monkeypatch):
    """Ray does not pin a task to its CPUs, so a task's ORT would size its thread pool by the whole
    machine; each task's backends are built with ceil(--cpus-per-task) threads instead."""
    from repro.modelsets import resolve
    from repro.report import executors
    from repro.report.plan import make_plan
    from repro.report.run import pending_units

    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    ms = resolve(str(tiny))
    plan = make_plan(ms, classes=[0], chains=2, budget=0.01, map_steps=2, only=["map-clip"])
    spec = executors.WorkerSpec(ms, plan, "ort", "cpu", threads=1)
    monkeypatch.setattr(executors, "_WORKERS", {})
    (unit,) = pending_units(plan, {c.key: None for c in plan.cells})
    executors._run_unit(spec, unit, str(tmp_path / "out"))
    (worker,) = executors._WORKERS.values()
    (backend,) = worker._backends.values()
    assert backend._session.get_session_options().intra_op_num_threads == 1
    assert executors.RayExecutor(cpus_per_task=1.5).threads == 2
    assert executors.RayExecutor(cpus_per_task=0.25).threads == 1


def test_address_needs_the_ray_executor(tiny, tmp_path, capsys):
    args = ["report", "--models", str(tiny), *QUICK_ARGS, "--address", "127.0.0.1:6379", "-o", str(tmp_path)]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == "error: --address: only --executor ray joins a cluster"
    assert not (tmp_path / "cells").exists()


def test_dry_run_counts_every_gradient_and_runs_nothing(tiny, tmp_path, capsys):
    from repro.modelsets import resolve
    from repro.report.build import QUICK
    from repro.report.plan import make_plan
    from repro.samplers.methods import METHODS

    out = tmp_path / "out"
    args = ["report", "--models", str(tiny), *QUICK_ARGS, "--classes", "0,1", "--dry-run", "-o", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    quick = {k: QUICK[k] for k in ("beyond", "guidance", "exact_draws")}
    plan = make_plan(resolve(str(tiny)), [0, 1], 2, 0.01, map_steps=20, **quick)  # --quick
    table = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] in {r.key for r in plan.rows}:
            table[fields[0]] = fields
    assert list(table) == [r.key for r in plan.rows]
    total = 0
    for row in plan.rows:
        per_chain = row.steps * METHODS[row.method].kernel.gradients_per_step(**row.options)
        if row.kind == "exact":  # prior draws, forward passes only: no gradients
            per_chain = 0
        gradients = per_chain * 2 * 2  # chains × classes
        total += gradients
        cells, calls, batch = (int(v) for v in table[row.key][1:4])
        assert cells == 2
        assert (calls, batch) == ((1, 4) if row.batches_classes else (2, 2)), row.key
        assert int(table[row.key][5].replace(",", "")) == per_chain, row.key
        assert int(table[row.key][6].replace(",", "")) == gradients, row.key
    all_line = next(line for line in text.splitlines() if line.startswith("all "))
    assert f"{total:,}" in all_line.split()
    assert re.search(r"ORT|ort on cpu", text) and "ms" in text
