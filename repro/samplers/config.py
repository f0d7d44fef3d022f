"""Option checking for `sample`: every option is named, typed and allowed per method (methods.py).

With no options each method is the one its table entry describes (textbook MALA and HMC target exactly
exp(logp)); every departure is an explicit option. The loop's own options are checked here, each kernel's
from its `OPTIONS`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repro.errors import BadInput
from repro.samplers.bounds import Bounds, check_clip, per_item
from repro.samplers.methods import Method, method
from repro.samplers.options import boolean, integer, real
from repro.samplers.schedules import SCHEDULES, Schedule

SCHEDULE_OPTIONS = {"schedule", "lr_end", "poly_b", "poly_gamma"}
COMMON = SCHEDULE_OPTIONS | {"clip", "thin"}
RUNTIME = {"checkpoint", "checkpoint_every", "resume", "progress"}


def allowed_options(m: Method) -> set[str]:
    """The options `sample` accepts for a method: the loop's, its kernel's, and warm-up where it accepts."""
    return COMMON | RUNTIME | set(m.kernel.OPTIONS) | ({"adapt"} if m.mcmc else set())


@dataclass(frozen=True)
class Config:
    method: Method
    steps: int
    seed: int
    step_size: np.ndarray  # [C]
    schedule: Schedule
    bounds: Bounds | None
    thin: int
    params: dict  # the kernel's options, checked, defaults filled in
    adapt: int = 0
    checkpoint: Path | None = None
    checkpoint_every: int = 100
    resume: bool = False
    progress: bool = False

    def fingerprint(self) -> dict:
        """What a checkpoint must agree on to be continued (the step count may differ, see run.py)."""
        return {
            "method": self.method.name,
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
            "params": self.params,
            "adapt": self.adapt,
        }


def _step_size(value: object, chains: int) -> np.ndarray:
    arr = per_item(value, chains, "step_size")
    if not (np.isfinite(arr).all() and (arr > 0).all()):
        raise BadInput(f"step_size: expected finite values > 0, got {value!r}")
    return arr


def resolve(
    name: str, chains: int, dim: int, steps: int | None, seed: int, step_size: object, options: dict
) -> Config:
    m = method(name)
    allowed = allowed_options(m)
    for option in options:
        if option not in allowed:
            raise BadInput(
                f"option {option!r} is not known for method {name!r}: "
                f"expected one of {', '.join(sorted(allowed))}"
            )
    opts = {**m.defaults, **options}

    steps = m.steps if steps is None else steps
    if steps is None:
        raise BadInput(f"steps: method {name!r} needs a number of steps")
    steps = integer("steps", steps, 1)
    seed = integer("seed", seed, 0)
    step_size = m.step_size if step_size is None else step_size
    if step_size is None:
        raise BadInput(f"step_size: method {name!r} needs a step size")

    kind = opts.get("schedule", "constant")
    if kind not in SCHEDULES:
        raise BadInput(f"option schedule: expected one of {', '.join(SCHEDULES)}, got {kind!r}")
    for option, needs in (("lr_end", "linear"), ("poly_b", "poly"), ("poly_gamma", "poly")):
        if option in opts and kind != needs:
            raise BadInput(f"option {option} applies only to schedule {needs!r}, not {kind!r}")
    schedule = Schedule(
        kind,
        lr_end=real("option lr_end", opts.get("lr_end", 1e-10), low=0.0, low_open=False),
        poly_b=real("option poly_b", opts.get("poly_b", 1.0), low=0.0, low_open=True),
        poly_gamma=real("option poly_gamma", opts.get("poly_gamma", 0.55), low=0.0, low_open=False),
    )

    if "clip" in opts:
        bounds = check_clip(opts["clip"], dim)
    elif m.clip:
        raise BadInput(
            f"option clip: method {name!r} needs bounds, e.g. clip=dgn_am_box(load_bounds(path, {dim}))"
        )
    else:
        bounds = None

    checkpoint = opts.get("checkpoint")
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise BadInput(f"option checkpoint: expected a file path, got {checkpoint!r}")
    resume = boolean("option resume", opts.get("resume", False))
    if resume and checkpoint is None:
        raise BadInput("option resume: needs option checkpoint (the file to continue from)")
    adapt = integer("option adapt", opts.get("adapt", 0), 0)
    if adapt >= steps:
        raise BadInput(f"option adapt: expected fewer warm-up steps than steps={steps}, got {adapt}")

    return Config(
        method=m,
        steps=steps,
        seed=seed,
        step_size=_step_size(step_size, chains),
        schedule=schedule,
        bounds=bounds,
        thin=integer("option thin", opts.get("thin", 1), 1),
        params={option: spec.value(option, opts) for option, spec in m.kernel.OPTIONS.items()},
        adapt=adapt,
        checkpoint=None if checkpoint is None else Path(checkpoint),
        checkpoint_every=integer("option checkpoint_every", opts.get("checkpoint_every", 100), 1),
        resume=resume,
        progress=boolean("option progress", opts.get("progress", False)),
    )
