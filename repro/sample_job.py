"""One sampling job on a model set, as `repro sample` runs it: parity gate, sampler, images, run record.

The settings of each method (objective, published schedule, start step) come from its entry in
repro.samplers.methods; the sampler API itself stays textbook-plain, so every departure from the textbook is
written down in that one table.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from repro import samplers
from repro.atomic import atomic_path, write_text
from repro.errors import BadInput, CheckFailed
from repro.evaluate.diagnostics import summarize
from repro.evaluate.judges import make_judge
from repro.images import grid, save_png, to_display
from repro.modelsets import ModelSet
from repro.parity import cross_check
from repro.posterior import posterior_model
from repro.runtime import BACKENDS, make_backend
from repro.samplers.initial import initial_codes
from repro.samplers.methods import method
from repro.versions import versions


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


def run_job(job: SampleJob, out_dir: Path) -> dict:
    m = method(job.method)
    ms = job.models
    if not 0 <= job.class_index < len(ms.class_names):
        raise BadInput(
            f"class index {job.class_index} is outside model set {ms.name}'s {len(ms.class_names)} classes "
            f"(0..{len(ms.class_names) - 1})"
        )
    judge = None if ms.judge is None else make_judge(ms.judge)  # a bad judge file stops us before sampling
    model = posterior_model(ms, m.objective, m.prior_sigma)
    backend = make_backend(job.backend, model, job.class_index, job.device)
    code_size = backend.code_size
    z0 = initial_codes(job.seed, job.chains, code_size)

    timings: dict[str, float] = {}
    parity = []
    if job.parity_check:
        t0 = time.perf_counter()
        other = make_backend(BACKENDS[job.backend].checked_against, model, job.class_index)
        checks = cross_check(backend, other, z0)
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

    step_size = ms.start_step(m) if job.step_size is None else job.step_size
    options = dict(m.published)
    steps = job.steps or m.published_steps
    if m.clip:
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

    final = result.z_image
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

    record = {
        "models": ms.name,
        "class_index": job.class_index,
        "class_name": ms.class_names[job.class_index],
        "method": job.method,
        "objective": m.objective,
        "prior_sigma": m.prior_sigma,
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
        "judge": None
        if judge is None
        else {**judge.describe(), "log_p_real": judge.log_p_real(images).tolist()},
        "timings": {**timings, "seconds": result.seconds},
        "versions": versions(),
    }
    write_text(out_dir / "run.json", json.dumps(record, indent=2, default=float))
    return record
