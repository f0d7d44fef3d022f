"""tools/gpu_check.sh, the one prepared GPU run, on a machine without a GPU: its CPU fallback runs the same
checks and writes the same JSON file, saying it ran on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_report import write_tiny_set

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "gpu_check.sh"


@pytest.mark.slow
def test_gpu_check_falls_back_to_the_cpu_and_writes_one_json(tmp_path):
    models = write_tiny_set(tmp_path / "tiny")
    out = tmp_path / "check.json"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MODELS": str(models),
        "BATCHES": "1,2",
        "REPRO_CACHE": str(tmp_path / "cache"),
    }
    env.pop("DEVICE", None)
    proc = subprocess.run(
        ["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(out.read_text())
    import torch

    assert record["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert record["exit_status"] == 0
    checks = record["parity"]["checks"]
    assert checks and all(c["passed"] for c in checks)
    # ORT's provider, then torch's device (and the float64 torch's), each where the record says it ran
    cuda = record["device"] == "cuda" and "CUDAExecutionProvider" in record["ort_providers"]
    provider = "CUDAExecutionProvider" if cuda else "CPUExecutionProvider"
    device = record["device"]
    for c in checks:
        assert [p.strip() for p in c["devices"].split(",")] in (
            [provider, device],
            [provider, device, f"float64 {device}"],
        ), c
    rows = record["bench"]["rows"]
    assert {(r["backend"], r["batch"]) for r in rows} >= {("ort", 1), ("torch", 1), ("ort", 2), ("torch", 2)}
