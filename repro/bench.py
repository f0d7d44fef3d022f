"""`repro bench`: value-and-grad speed of the ORT-VJP and torch-autograd backends and of a hand-written torch
eager port (`repro.eager_port`), side by side in one run.

Each runs in its own child process so that its peak resident memory (VmHWM) is its own. The children read
the posterior from a file with its weights beside it, so that a child holds the weights once, as a process
that built the posterior itself would.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from queue import Empty

import numpy as np
import onnx

from repro.errors import BadInput, ReproError
from repro.posterior import PosteriorParts
from repro.runtime import BACKENDS, make_backend

FLOP_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
EAGER = "eager"


def forward_flops(model: onnx.ModelProto) -> float:
    """Multiply-adds ×2 of the convolutions and matrix products for one chain (batch 1)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        shapes[vi.name] = [
            d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim
        ]
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    total = 0.0
    for node in model.graph.node:
        if node.op_type not in FLOP_OPS or node.input[1] not in weights:
            continue
        w = weights[node.input[1]]
        if node.op_type == "Conv":
            out = shapes.get(node.output[0])
            if out:
                total += 2.0 * np.prod(out[1:]) * np.prod(w[1:])
        elif node.op_type == "ConvTranspose":
            inp = shapes.get(node.input[0])
            if inp:
                total += 2.0 * np.prod(inp[1:]) * np.prod(w[1:])
        else:
            total += 2.0 * np.prod(w)
    return total


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _ort_or_torch(name: str, path: str, device: str):
    return make_backend(name, onnx.load(path), 0, device)


def _eager(parts: PosteriorParts, device: str):
    from repro.eager_port import EagerPosterior

    return EagerPosterior(parts, 0, device)


def _measure(make: Callable, batch: int, repeats: int, seed: int, queue) -> None:
    """The child's job; any failure is sent back as a message, so the parent never waits on a dead child."""
    try:
        queue.put(_timed(make, batch, repeats, seed))
    except BaseException as e:  # noqa: BLE001 (everything must reach the parent, which decides the exit)
        queue.put({"error": f"{type(e).__name__}: {e}", "bad_input": isinstance(e, BadInput)})


def call_times(backend, batch: int, repeats: int, seed: int = 0) -> list[float]:
    """Seconds of `repeats` value-and-grad calls at `batch` chains, after one warm-up call."""
    z = np.random.default_rng(seed).standard_normal((batch, backend.code_size)).astype(np.float32)
    backend.value_and_grad(z)  # warm-up: allocations, kernel selection
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        backend.value_and_grad(z)
        times.append(time.perf_counter() - t0)
    return times


def _timed(make: Callable, batch: int, repeats: int, seed: int) -> dict:
    backend = make()
    times = call_times(backend, batch, repeats, seed)
    where = str(getattr(backend, "device", "cpu"))  # what it ran on (a backend falls back to the CPU)
    return {
        "median_s": statistics.median(times),
        "times_s": times,
        "peak_rss_mb": _peak_rss_mb(),
        "device": where,
    }


def _result_of(proc, queue, what: str) -> dict:
    """The child's result, or an error as soon as it has died without one (never a wait on a dead child)."""
    while True:
        try:
            result = queue.get(timeout=0.5)
            break
        except Empty:
            if not proc.is_alive():
                raise ReproError(f"{what}: the benchmark process died (exit code {proc.exitcode})") from None
    proc.join()
    if "error" in result:
        raise (BadInput if result["bad_input"] else ReproError)(f"{what}: {result['error']}")
    return result


def eager_baseline(models: PosteriorParts | None) -> dict:
    """Whether the eager port runs on this model set, and why not where it does not."""
    from repro.eager_port import unavailable

    why = "no model set given" if models is None else unavailable(models)
    return {"available": why is None, "note": why or "repro.eager_port: hand-written torch eager port"}


def run_bench(
    posterior: onnx.ModelProto,
    batches=(1, 8),
    repeats: int = 5,
    seed: int = 0,
    progress=None,
    models: PosteriorParts | None = None,
    device: str = "cpu",
) -> dict:
    """Rows per batch: each backend of BACKENDS, then the eager port where `models` (the parts `posterior`
    was built from, with posterior_model's default objective and prior) are the architectures it ports."""
    from repro.runtime.ort import external_weights, write_header

    eager = eager_baseline(models)
    ctx = mp.get_context("spawn")
    rows = []
    with tempfile.TemporaryDirectory(prefix="repro-bench-") as folder:
        header = external_weights(posterior, Path(folder))  # shape inference never copies the weights
        flops = 2.0 * forward_flops(header)  # forward + input-gradient sweep ≈ 2× forward (no weight grads)
        path = str(write_header(header, Path(folder)))
        makers = {name: partial(_ort_or_torch, name, path, device) for name in BACKENDS}
        if eager["available"]:
            makers[EAGER] = partial(_eager, models, device)
        for batch in batches:
            for name, make in makers.items():
                queue = ctx.Queue()
                proc = ctx.Process(target=_measure, args=(make, batch, repeats, seed, queue))
                proc.start()
                result = _result_of(proc, queue, f"{name} at batch {batch}")
                per_chain = result["median_s"] / batch
                rows.append(
                    {
                        "backend": name,
                        "device": result["device"],
                        "batch": batch,
                        "median_s": result["median_s"],
                        "s_per_chain": per_chain,
                        "gflops": flops / per_chain / 1e9,
                        "peak_rss_mb": result["peak_rss_mb"],
                        "times_s": result["times_s"],
                    }
                )
                if progress:
                    progress(rows[-1])
    for batch in batches:
        of = {r["backend"]: r for r in rows if r["batch"] == batch}
        of["ort"]["speedup_vs_torch"] = of["torch"]["median_s"] / of["ort"]["median_s"]
        if EAGER in of:
            of["ort"]["speedup_vs_eager"] = of[EAGER]["median_s"] / of["ort"]["median_s"]
    return {"gflop_per_chain": flops / 1e9, "repeats": repeats, "eager": eager, "rows": rows}
