"""How to share a machine's cores: value-and-grad throughput of P processes with T threads each.

    python -m tools.thread_split [--models embedded] [--batch 20] [--seconds 20] [--splits 1x2,2x1,2x2]
                                 [--backend ort] [--json OUT]

Ray tasks are processes, and each task's backend computes with ceil(--cpus-per-task) threads. On small nets
a thread pool spends much of each call with threads waiting for each other, so several one-thread processes
can outrun one process holding every thread. This measures it on a model set, so `--cpus-per-task` is chosen
from a number. The processes of a split start timing together (after their warm-up calls) and the splits run
one after the other; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue
import sys
import time
from pathlib import Path

import numpy as np

from repro.atomic import write_text
from repro.errors import ReproError
from repro.modelsets import resolve


def _worker(models: str, backend: str, threads: int, batch: int, seconds: float, start, out) -> None:
    from repro.posterior import posterior_model
    from repro.runtime import make_backend

    b = make_backend(backend, posterior_model(resolve(models)), "cpu", threads)
    z = np.random.default_rng(0).standard_normal((batch, b.code_size)).astype(np.float32)
    for _ in range(3):
        b.value_and_grad(z, 0)
    start.wait()
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        b.value_and_grad(z, 0)
        calls += 1
    out.put(calls * batch / (time.perf_counter() - t0))


def measure(models: str, backend: str, processes: int, threads: int, batch: int, seconds: float) -> dict:
    """Chain-gradients per second summed over `processes` processes running at once."""
    ctx = mp.get_context("spawn")  # a fresh interpreter per process: no thread pool inherited from this one
    start, out = ctx.Barrier(processes), ctx.Queue()
    args = (models, backend, threads, batch, seconds, start, out)
    procs = [ctx.Process(target=_worker, args=args) for _ in range(processes)]
    for p in procs:
        p.start()
    rates: list[float] = []
    while len(rates) < processes:
        try:
            rates.append(out.get(timeout=1.0))
        except queue.Empty:
            # A process that died leaves the others waiting at the barrier: stop them all, do not hang.
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if failed:
                for p in procs:
                    p.terminate()
                raise RuntimeError(f"a measuring process exited with {failed[0]}") from None
    for p in procs:
        p.join()
    return {
        "processes": processes,
        "threads": threads,
        "chain_gradients_per_s": round(sum(rates), 1),
        "per_process": [round(r, 1) for r in rates],
    }


def _split(text: str) -> tuple[int, int]:
    p, _, t = text.partition("x")
    if not (p.isdigit() and t.isdigit() and int(p) > 0 and int(t) > 0):
        raise argparse.ArgumentTypeError(f"a split is PROCESSESxTHREADS, e.g. 2x1; got {text!r}")
    return int(p), int(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="embedded")
    ap.add_argument("--backend", default="ort", choices=["ort", "torch"])
    ap.add_argument("--batch", type=int, default=20, help="chains per call (a report row's classes × chains)")
    ap.add_argument("--seconds", type=float, default=20.0, help="timed seconds per split")
    ap.add_argument("--splits", default="1x2,2x1,2x2", help="comma-separated PROCESSESxTHREADS")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    try:
        splits = [_split(s) for s in args.splits.split(",")]
    except argparse.ArgumentTypeError as e:
        print(f"error: --splits: {e}", file=sys.stderr)
        return 2
    try:
        resolve(args.models)  # a bad model set is reported here, before any process starts
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = []
    for processes, threads in splits:
        row = measure(args.models, args.backend, processes, threads, args.batch, args.seconds)
        rows.append(row)
        print(
            f"{processes} process(es) × {threads} thread(s): {row['chain_gradients_per_s']:8.1f} "
            f"chain-gradients/s (batch {args.batch}, {args.backend})",
            flush=True,
        )
    result = {"models": args.models, "backend": args.backend, "batch": args.batch, "splits": rows}
    if args.json is not None:
        write_text(args.json, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
