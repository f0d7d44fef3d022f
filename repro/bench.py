"""`repro bench`: value-and-grad speed of the ORT-VJP and torch-autograd backends and of a hand-written torch
eager port (`repro.eager_port`), side by side in one run.

Each runs in its own child process so that its peak resident memory (VmHWM) is its own, and the children take
their timed calls in turn (ORT, torch, eager, ORT, …), so that the ratios compare the backends at the same
moments of a machine whose speed drifts (on a shared 2-core machine, one backend measured alone varied
by half from run to run). The children read the posterior from a file with its weights beside it, as
`repro.runtime.make_backend` takes it: ORT maps them from there, torch loads them once into its tensors.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

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


def _from_file(name: str, path: str, device: str):
    return make_backend(name, Path(path), device)


def _eager(parts: PosteriorParts, device: str):
    from repro.eager_port import EagerPosterior

    return EagerPosterior(parts, device)


TIMED_CLASS = 0  # the class timed calls aim at: a call costs the same for every class
PAUSE_S = 0.2  # between two children's calls, so that one's spinning worker threads are idle before the next


def _child(make: Callable, batch: int, seed: int, conn) -> None:
    """A child's job: build the backend, warm it up, then one timed call per "run" until "stop"; any failure
    is sent back as a message, so the parent never waits on a dead child."""
    try:
        backend = make()
        z = np.random.default_rng(seed).standard_normal((batch, backend.code_size)).astype(np.float32)
        backend.value_and_grad(z, TIMED_CLASS)  # warm-up: allocations, kernel selection
        conn.send({"ready": True})
        while conn.recv() == "run":
            t0 = time.perf_counter()
            backend.value_and_grad(z, TIMED_CLASS)
            conn.send({"time_s": time.perf_counter() - t0})
        where = str(getattr(backend, "device", "cpu"))  # what it ran on (a backend falls back to the CPU)
        conn.send({"peak_rss_mb": _peak_rss_mb(), "device": where})
    except BaseException as e:  # noqa: BLE001 (everything must reach the parent, which decides the exit)
        conn.send({"error": f"{type(e).__name__}: {e}", "bad_input": isinstance(e, BadInput)})


def call_times(backend, batch: int, repeats: int, seed: int = 0) -> list[float]:
    """Seconds of `repeats` value-and-grad calls at `batch` chains, after one warm-up call."""
    z = np.random.default_rng(seed).standard_normal((batch, backend.code_size)).astype(np.float32)
    backend.value_and_grad(z, TIMED_CLASS)  # warm-up: allocations, kernel selection
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        backend.value_and_grad(z, TIMED_CLASS)
        times.append(time.perf_counter() - t0)
    return times


class _Child:
    """One backend in its own process, so that its peak resident memory (VmHWM) is its own."""

    def __init__(self, ctx, name: str, make: Callable, batch: int, seed: int):
        self.what = f"{name} at batch {batch}"
        self.conn, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=_child, args=(make, batch, seed, theirs))
        self.proc.start()

    def receive(self) -> dict:
        """The child's next message, or an error as soon as it has died without one."""
        while not self.conn.poll(0.5):
            if not self.proc.is_alive():
                raise ReproError(f"{self.what}: the benchmark process died (exit code {self.proc.exitcode})")
        message = self.conn.recv()
        if "error" in message:
            self.proc.join()
            raise (BadInput if message["bad_input"] else ReproError)(f"{self.what}: {message['error']}")
        return message

    def ask(self, command: str) -> dict:
        self.conn.send(command)
        return self.receive()

    def close(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()


def _interleaved(ctx, makers: dict[str, Callable], batch: int, repeats: int, seed: int) -> dict[str, dict]:
    """Every backend's call times at `batch`, their calls taken in turn: a backend's median and the ratios
    between backends then see the same moments of a shared, noisy machine."""
    children: dict[str, _Child] = {}
    try:
        for name, make in makers.items():  # built and warmed up one after another, not competing
            children[name] = _Child(ctx, name, make, batch, seed)
            children[name].receive()
        times: dict[str, list[float]] = {name: [] for name in children}
        for _ in range(repeats):
            for name, child in children.items():
                time.sleep(PAUSE_S)
                times[name].append(child.ask("run")["time_s"])
        return {name: {"times_s": times[name], **child.ask("stop")} for name, child in children.items()}
    finally:
        for child in children.values():
            child.close()


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
        makers = {name: partial(_from_file, name, path, device) for name in BACKENDS}
        if eager["available"]:
            makers[EAGER] = partial(_eager, models, device)
        for batch in batches:
            for name, result in _interleaved(ctx, makers, batch, repeats, seed).items():
                median = statistics.median(result["times_s"])
                rows.append(
                    {
                        "backend": name,
                        "device": result["device"],
                        "batch": batch,
                        "median_s": median,
                        "s_per_chain": median / batch,
                        "gflops": flops / (median / batch) / 1e9,
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
