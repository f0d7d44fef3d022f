"""Where ORT-VJP's time goes: ONNX Runtime's own profiler over value-and-grad calls, summed per op type,
forward vs backward.

    python -m tools.ort_profile [--models random] [--batch 8] [--calls 5] [--json OUT]

Forward nodes are the posterior's own (generator, crop, classifier, log-softmax, prior); backward nodes are
those repro.grad added, which run inside the `If` on `with_grad`: a node is backward when it ran within the
`If`'s span (ORT renames the nodes it fuses or re-lays out, so names cannot tell), and the `If` itself is
not counted, its time being its nodes'. The first call is a warm-up and is left out. Run it on a quiet
machine: the split between op types is what it is for, and contention distorts it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from repro.atomic import write_text
from repro.modelsets import resolve
from repro.posterior import posterior_model
from repro.runtime.ort import OrtBackend


def summarise(events: list[dict], calls: int) -> dict:
    """Kernel time per (pass, op type) in ms per call, over the calls after the first."""
    runs = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    start = runs[1] if len(runs) > 1 else 0  # leave the warm-up call out
    kernels = [
        e
        for e in events
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start
    ]
    gates = [(e["ts"], e["ts"] + e["dur"]) for e in kernels if e.get("args", {}).get("op_name") == "If"]
    totals: dict[tuple[str, str], float] = defaultdict(float)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for e in kernels:
        op = e.get("args", {}).get("op_name", "?")
        if op == "If":
            continue
        inside = any(a <= e["ts"] <= b for a, b in gates)
        key = ("backward" if inside else "forward", op)
        totals[key] += e["dur"] / 1000.0
        counts[key] += 1
    n = max(1, len(runs) - 1) if runs else calls
    rows = [
        {"pass": p, "op_type": op, "ms_per_call": t / n, "nodes_per_call": counts[(p, op)] / n}
        for (p, op), t in sorted(totals.items(), key=lambda kv: -kv[1])
    ]
    total = sum(r["ms_per_call"] for r in rows)
    for r in rows:
        r["share"] = r["ms_per_call"] / total if total else 0.0
    by_pass = {p: sum(r["ms_per_call"] for r in rows if r["pass"] == p) for p in ("forward", "backward")}
    return {"calls_counted": n, "kernel_ms_per_call": total, "by_pass_ms": by_pass, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="random")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--calls", type=int, default=5, help="profiled calls after one warm-up")
    ap.add_argument("--json", dest="out", default=None, help="also write the summary here")
    args = ap.parse_args(argv)
    ms = resolve(args.models)
    print(f"model set {ms.name}: building the posterior ...", file=sys.stderr, flush=True)
    posterior = posterior_model(ms)
    with tempfile.TemporaryDirectory(prefix="repro-profile-") as folder:
        backend = OrtBackend(posterior, profile=os.path.join(folder, "ort"))
        z = np.random.default_rng(0).standard_normal((args.batch, backend.code_size)).astype(np.float32)
        for _ in range(args.calls + 1):
            backend.value_and_grad(z, 0)
        events = json.loads(Path(backend.end_profiling()).read_text())
    summary = {"models": ms.name, "batch": args.batch, **summarise(events, args.calls)}
    print(
        f"batch {args.batch}: {summary['kernel_ms_per_call']:.1f} ms of kernels per value-and-grad call "
        f"(forward {summary['by_pass_ms']['forward']:.1f}, backward {summary['by_pass_ms']['backward']:.1f})"
    )
    for r in summary["rows"]:
        if r["share"] >= 0.005:
            print(
                f"  {r['pass']:<8} {r['op_type']:<22} {r['ms_per_call']:8.2f} ms  {100 * r['share']:5.1f} %  "
                f"({r['nodes_per_call']:.0f} nodes)"
            )
    if args.out:
        write_text(Path(args.out), json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
