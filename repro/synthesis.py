"""One sampling job on a model set, as `repro sample` runs it: parity gate, sampler, images, run record.

The method presets are the paper's and DGN-AM's settings; the sampler API itself stays textbook-plain
(repro.samplers), so every departure from the textbook is written down here, once.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from repro.atomic import atomic_path, write_text
from repro.errors import BadInput, CheckFailed
from repro.modelsets import ModelSet, posterior_model
from repro.report.images import grid, save_png, to_display

METHODS = ("map", "map-clip", "mala", "mala-clip", "hmc")


def presets(ms: ModelSet) -> dict[str, tuple[float, dict]]:
    """method → (step size, sampler options), following DESIGN §6.

    MAP and MAP+clip: DGN-AM's loop on the logit (lr0 → 1e-10 linear, h/mean|h|, ×0.99). MALA and HMC: the
    paper's decaying step a(b+t)^−γ (Teh et al.) and, for MALA, annealed noise σ_t = (1+t)^−0.55.
    """
    dgn = {"schedule": "linear", "lr_end": 1e-10, "normalize": True, "decay": 0.99}
    poly = {"schedule": "poly", "poly_b": 1.0, "poly_gamma": 0.55}
    return {
        "map": (ms.map_lr, dict(dgn)),
        "map-clip": (ms.map_lr, dict(dgn)),
        "mala": (ms.mala_step, {**poly, "noise_anneal": 0.55}),
        "mala-clip": (ms.mala_step, {**poly, "noise_anneal": 0.55}),
        "hmc": (ms.hmc_step, {**poly, "n_leapfrog": 10}),
    }


def objective_for(method: str) -> tuple[str, float | None]:
    """MAP follows DGN-AM (raw logit, no prior); MCMC targets the paper's log p(k|x) + log N(z; 0, I)."""
    return ("logit", None) if method.startswith("map") else ("log_softmax", 1.0)


@dataclass
class SampleJob:
    models: ModelSet
    class_index: int
    method: str
    chains: int = 4
    steps: int | None = None
    seed: int = 0
    backend: str = "ort"
    device: str = "cpu"
    clip_bounds: Path | None = None
    step_size: float | None = None
    adapt: int = 0
    parity_check: bool = True
    progress: bool = True
    options: dict = field(default_factory=dict)


def make_backend(model, classes, backend: str, device: str):
    if backend == "ort":
        from repro.runtime.ort import OrtBackend

        return OrtBackend(model, classes, device=device)
    if backend == "torch":
        from repro.runtime.torch import TorchBackend

        return TorchBackend(model, classes, device=device)
    raise BadInput(f"backend must be ort or torch, got {backend!r}")


def initial_codes(seed: int, chains: int, code_size: int) -> np.ndarray:
    """z0 ~ N(0, I) from a per-chain stream, so chain i starts the same whatever the chain count."""
    seqs = np.random.SeedSequence([seed, 0x5EED]).spawn(chains)
    return np.stack([np.random.default_rng(s).standard_normal(code_size) for s in seqs]).astype(np.float32)


def run_job(job: SampleJob, out_dir: Path) -> dict:
    from repro import samplers
    from repro.parity import ort_vs_torch
    from repro.runtime.ort import OrtBackend
    from repro.runtime.torch import TorchBackend

    if job.method not in METHODS:
        raise BadInput(f"unknown method {job.method!r}: expected one of {', '.join(METHODS)}")
    ms = job.models
    if not 0 <= job.class_index < len(ms.class_names):
        raise BadInput(
            f"class index {job.class_index} is outside model set {ms.name}'s {len(ms.class_names)} classes "
            f"(0..{len(ms.class_names) - 1})"
        )
    objective, prior = objective_for(job.method)
    model = posterior_model(ms, objective, prior)
    backend = make_backend(model, job.class_index, job.backend, job.device)
    code_size = backend.code_size
    z0 = initial_codes(job.seed, job.chains, code_size)

    timings: dict[str, float] = {}
    parity = []
    if job.parity_check:
        t0 = time.perf_counter()
        other = (
            TorchBackend(model, job.class_index)
            if job.backend == "ort"
            else OrtBackend(model, job.class_index)
        )
        checks = (
            ort_vs_torch(backend, other, z0) if job.backend == "ort" else ort_vs_torch(other, backend, z0)
        )
        del other
        parity = [c.as_dict() for c in checks]
        timings["parity_s"] = time.perf_counter() - t0
        failed = [c for c in checks if not c.passed]
        if failed:
            raise CheckFailed(
                "parity check failed before sampling: "
                + "; ".join(f"{c.name} error {c.error:.2e} > {c.tolerance:.0e}" for c in failed)
                + " (use --no-parity-check to sample anyway)"
            )

    step_size, options = presets(ms)[job.method]
    if job.step_size is not None:
        step_size = job.step_size
    steps = job.steps or (200 if job.method.startswith("map") else 600)
    if job.method.endswith("clip"):
        bounds_file = job.clip_bounds or ms.clip_bounds
        if bounds_file is None:
            raise BadInput(
                f"method {job.method} needs clip bounds: model set {ms.name} has none; pass --clip-bounds"
            )
        options["clip"] = (0.0, samplers.load_bounds(bounds_file, code_size))
    if job.adapt:
        options["adapt"] = job.adapt
    options.update(job.options)

    t0 = time.perf_counter()
    result = samplers.sample(
        backend, job.method, z0, steps, job.seed, step_size, progress=job.progress, **options
    )
    timings["sample_s"] = time.perf_counter() - t0

    final = result.z_last_start if job.method.startswith("map") else result.z
    images = backend.images(final)
    out_dir.mkdir(parents=True, exist_ok=True)
    tiles = [to_display(img) for img in images]
    for i, tile in enumerate(tiles):
        save_png(out_dir / f"chain_{i:03d}.png", tile)
    save_png(
        out_dir / "grid.png", grid(tiles, columns=min(8, len(tiles))), scale=max(1, 256 // tiles[0].shape[0])
    )
    with atomic_path(out_dir / "samples.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                z=result.z,
                z_image=final,
                samples=result.samples,
                logp=result.logp,
                accepted=result.accepted,
                images=images,
            )

    from repro.evaluate.diagnostics import summarize

    record = {
        "models": ms.name,
        "class_index": job.class_index,
        "class_name": ms.class_names[job.class_index],
        "method": job.method,
        "objective": objective,
        "prior_sigma": prior,
        "chains": job.chains,
        "steps": steps,
        "seed": job.seed,
        "step_size": step_size,
        "options": {k: (v if not isinstance(v, tuple) else "per-unit bounds") for k, v in options.items()},
        "backend": job.backend,
        "device": str(getattr(backend, "device", job.device)),
        "parity": parity,
        "accept_rate": result.accept_rate.tolist(),
        "n_grad": int(result.n_grad),
        "final_logp": result.logp[-1].tolist(),
        "diagnostics": summarize(result),
        "timings": {**timings, "seconds": result.seconds},
        "versions": versions(),
    }
    write_text(out_dir / "run.json", json.dumps(record, indent=2, default=float))
    return record


def versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    import repro

    return {
        "repro": repro.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
    }
