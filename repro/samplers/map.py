"""Gradient ascent on log π, written to be DGN-AM's `act_max.py` loop step for step (docs/architecture.md).

With `normalize`, `decay` and `bounds` it is DGN-AM's update z ← decay·clip(z + lr·h/mean|h|); without them
it is plain gradient ascent z ← z + lr·∇log π(z). A chain whose gradient is non-finite or (normalised) zero
does not move this step, as in act_max.py where a NaN norm skips the update. DGN-AM saved the image of the
code it had just scored, the state at the start of the last step, hence IMAGE_AT_LAST_START.
"""

from __future__ import annotations

import numpy as np

from repro.samplers.bounds import Bounds
from repro.samplers.options import Option, boolean, in_range
from repro.samplers.state import Draws, Info, State, Target, evaluate, finite_rows, init

__all__ = ["OPTIONS", "TARGET_ACCEPT", "build", "dgn_am_step", "gradients_per_step", "init"]

OPTIONS = {
    "decay": Option(1.0, in_range(0.0, low_open=True, high=1.0)),
    "normalize": Option(False, boolean),
}
TARGET_ACCEPT = None  # no accept step, so nothing for dual averaging to tune
DRAWS = False
IMAGE_AT_LAST_START = True


def gradients_per_step(**params) -> int:
    return 1


def dgn_am_step(h: np.ndarray, lr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DGN-AM's code step lr·h/mean|h| per chain ([C, D] from h [C, D], lr [C]) and which chains take it.

    A chain whose gradient is non-finite or all zero gets no step. The released MALA and HMC take the same
    step (docs/released_samplers.md), so it is written once, here.
    """
    usable = finite_rows(h)
    scale = np.mean(np.abs(h), axis=1)
    usable &= scale > 0
    # act_max.py: code += step_size / np.abs(g).mean() * g
    factor = np.where(usable, lr / np.where(usable, scale, 1.0), 0.0)
    return factor[:, None] * np.where(usable[:, None], h, 0.0), usable


def build(bounds: Bounds | None = None, *, normalize: bool = False, decay: float = 1.0):
    """One ascent step with per-chain learning rates `lr` [C]; the new position is evaluated once."""

    def step(state: State, target: Target, lr: np.ndarray, draws: Draws | None, t: int) -> tuple[State, Info]:
        h = state.grad
        if normalize:
            delta, usable = dgn_am_step(h, lr)
        else:
            usable = finite_rows(h)
            delta = np.where(usable, lr, 0.0)[:, None] * np.where(usable[:, None], h, 0.0)
        moved = state.z + delta
        overflow = ~finite_rows(moved)
        z = np.where(overflow[:, None], state.z, moved)
        if bounds is not None:
            z = bounds.apply(z)
        if decay != 1.0:
            z = z * decay
        logp, grad = evaluate(target, z)
        n = z.shape[0]
        info = Info(
            accepted=np.ones(n, dtype=bool),
            accept_prob=np.ones(n),
            nonfinite=overflow | ~finite_rows(logp, grad),
            n_eval=1,
        )
        return State(z, logp, grad), info

    return step
