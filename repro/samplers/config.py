"""Method presets and option checking for `sample`: every option is named, typed and allowed per method.

With no options each method is the textbook one (constant step, no annealing, clipping or decay), so MALA
and HMC target exactly exp(logp); every departure is an explicit option or a named preset.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repro.errors import BadInput
from repro.samplers.bounds import Bounds, check_clip, per_item
from repro.samplers.schedules import SCHEDULES, Schedule

# preset → (kernel, option defaults, whether `clip` is required, default steps, default step size)
PRESETS: dict[str, tuple[str, dict, bool, int | None, float | None]] = {
    "map": ("map", {}, False, None, None),
    # DGN-AM's act_max.py as run by its CaffeNet script: 200 iterations, 8.0 → 1e-10, h/mean|h|, ×0.99.
    "map-clip": ("map", {"schedule": "linear", "normalize": True, "decay": 0.99}, True, 200, 8.0),
    "mala": ("mala", {}, False, None, None),
    "mala-clip": ("mala", {}, True, None, None),
    "hmc": ("hmc", {}, False, None, None),
}

COMMON = {"schedule", "lr_end", "poly_b", "poly_gamma", "clip", "thin"}
RUNTIME = {"checkpoint", "checkpoint_every", "resume", "progress"}
PER_KERNEL = {
    "map": {"decay", "normalize"},
    "mala": {"noise_anneal", "adapt"},
    "hmc": {"n_leapfrog", "adapt"},
}
TARGET_ACCEPT = {"mala": 0.574, "hmc": 0.65}


@dataclass(frozen=True)
class Config:
    method: str  # the preset name the caller asked for
    kernel: str  # map, mala or hmc
    steps: int
    seed: int
    step_size: np.ndarray  # [C]
    schedule: Schedule
    bounds: Bounds | None
    thin: int
    noise_anneal: float = 0.0
    n_leapfrog: int = 10
    decay: float = 1.0
    normalize: bool = False
    adapt: int = 0
    checkpoint: Path | None = None
    checkpoint_every: int = 100
    resume: bool = False
    progress: bool = False

    def fingerprint(self) -> dict:
        """What a checkpoint must agree on to be continued (the step count may differ, see run.py)."""
        return {
            "method": self.method,
            "seed": self.seed,
            "step_size": self.step_size.tolist(),
            "schedule": [
                self.schedule.kind,
                self.schedule.lr_end,
                self.schedule.poly_b,
                self.schedule.poly_gamma,
            ],
            "bounds": None if self.bounds is None else self.bounds.digest(),
            "thin": self.thin,
            "noise_anneal": self.noise_anneal,
            "n_leapfrog": self.n_leapfrog,
            "decay": self.decay,
            "normalize": self.normalize,
            "adapt": self.adapt,
        }


def _int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise BadInput(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _float(name: str, value: object, *, low: float, low_open: bool, high: float = np.inf) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok:
        value = float(value)
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if np.isfinite(high) else "")
        raise BadInput(f"{name}: expected a finite number {bound}, got {value!r}")
    return value


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise BadInput(f"option {name}: expected True or False, got {value!r}")
    return bool(value)


def _step_size(value: object, chains: int) -> np.ndarray:
    arr = per_item(value, chains, "step_size")
    if not (np.isfinite(arr).all() and (arr > 0).all()):
        raise BadInput(f"step_size: expected finite values > 0, got {value!r}")
    return arr


def resolve(
    method: str, chains: int, dim: int, steps: int | None, seed: int, step_size: object, options: dict
) -> Config:
    if method not in PRESETS:
        raise BadInput(f"method: expected one of {', '.join(PRESETS)}, got {method!r}")
    kernel, defaults, needs_clip, default_steps, default_step = PRESETS[method]
    allowed = COMMON | RUNTIME | PER_KERNEL[kernel]
    for name in options:
        if name not in allowed:
            raise BadInput(
                f"option {name!r} is not known for method {method!r}: "
                f"expected one of {', '.join(sorted(allowed))}"
            )
    opts = {**defaults, **options}

    steps = default_steps if steps is None else steps
    if steps is None:
        raise BadInput(f"steps: method {method!r} needs a number of steps")
    steps = _int("steps", steps, 1)
    seed = _int("seed", seed, 0)
    step_size = default_step if step_size is None else step_size
    if step_size is None:
        raise BadInput(f"step_size: method {method!r} needs a step size")

    kind = opts.get("schedule", "constant")
    if kind not in SCHEDULES:
        raise BadInput(f"option schedule: expected one of {', '.join(SCHEDULES)}, got {kind!r}")
    for name, needs in (("lr_end", "linear"), ("poly_b", "poly"), ("poly_gamma", "poly")):
        if name in opts and kind != needs:
            raise BadInput(f"option {name} applies only to schedule {needs!r}, not {kind!r}")
    schedule = Schedule(
        kind,
        lr_end=_float("option lr_end", opts.get("lr_end", 1e-10), low=0.0, low_open=False),
        poly_b=_float("option poly_b", opts.get("poly_b", 1.0), low=0.0, low_open=True),
        poly_gamma=_float("option poly_gamma", opts.get("poly_gamma", 0.55), low=0.0, low_open=False),
    )

    if "clip" in opts:
        bounds = check_clip(opts["clip"], dim)
    elif needs_clip:
        raise BadInput(
            f"option clip: method {method!r} needs bounds, e.g. clip=(0.0, load_bounds(path, {dim}))"
        )
    else:
        bounds = None

    checkpoint = opts.get("checkpoint")
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise BadInput(f"option checkpoint: expected a file path, got {checkpoint!r}")
    resume = _bool("resume", opts.get("resume", False))
    if resume and checkpoint is None:
        raise BadInput("option resume: needs option checkpoint (the file to continue from)")
    adapt = _int("option adapt", opts.get("adapt", 0), 0)
    if adapt >= steps:
        raise BadInput(f"option adapt: expected fewer warm-up steps than steps={steps}, got {adapt}")

    return Config(
        method=method,
        kernel=kernel,
        steps=steps,
        seed=seed,
        step_size=_step_size(step_size, chains),
        schedule=schedule,
        bounds=bounds,
        thin=_int("option thin", opts.get("thin", 1), 1),
        noise_anneal=_float("option noise_anneal", opts.get("noise_anneal", 0.0), low=0.0, low_open=False),
        n_leapfrog=_int("option n_leapfrog", opts.get("n_leapfrog", 10), 1),
        decay=_float("option decay", opts.get("decay", 1.0), low=0.0, low_open=True, high=1.0),
        normalize=_bool("normalize", opts.get("normalize", False)),
        adapt=adapt,
        checkpoint=None if checkpoint is None else Path(checkpoint),
        checkpoint_every=_int("option checkpoint_every", opts.get("checkpoint_every", 100), 1),
        resume=resume,
        progress=_bool("progress", opts.get("progress", False)),
    )
