"""A diagonal mass matrix each chain adapts in warm-up, from the draws and the gradients its cache holds.

MALA with an identity mass and HMC with unit momentum move every direction by the same step, so the
narrowest direction of the posterior sets the step for all of them. With a diagonal mass M⁻¹ = diag(s²) a
kernel runs on u = z / s, where a target whose unit i has scale σ_i looks isotropic once s_i ≈ σ_i.

The estimate is nutpie's (Seyboldt et al.): s_i⁴ = Var(z_i) / Var(∂_i log π), exact for any Gaussian with a
diagonal covariance (the gradient's variance is 1/σ_i²) and, by using the gradients as well as the draws,
much less noisy than Var(z_i) alone from a short, autocorrelated window. Each window's estimate is shrunk
towards s = 1 by its length (`SHRINK`): the kernels run where the target's scale is already about 1 (the
paper's N(0, I) prior, or a fitted prior's preconditioner), so a short window's estimate, taken while the
chains still drift, must not outweigh it. Each chain estimates its own s from
its own warm-up (running sums over windows of 25, 50, 100, ... iterations, as Stan's doubling windows), so
a chain never depends on the chains beside it; s is frozen when warm-up ends (the loop's t, counted from
its end, is no longer negative), which makes every later transition exact for π. At each window's end the
step reports `Info.metric_changed` and the loop starts dual averaging over (Stan's restart), so the step is
tuned for the new s alone; the step needs iterations after the last window to settle, as Stan's terminal
window gives it, so no window closes in warm-up's last `TERMINAL` iterations.

The wrapper keeps the loop's state in z's coordinates (what checkpoints, traces and samples hold): a step
maps the cache to u (u = z/s, ∇_u = s·∇_z), runs the base kernel on the scaled target, and maps back; a
rejected chain keeps its z, value and gradient exactly. Everything a chain carries (its iteration count, the
window's sums and s, then whatever the base kernel carries itself: GHMC's momentum) lives in `State.memory`,
which checkpoints store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from repro.errors import BadInput
from repro.samplers.bounds import Bounds
from repro.samplers.state import Draws, Info, State, Target
from repro.samplers.state import init as init_state

FIRST_WINDOW = 25  # iterations before the first estimate; each later window is twice the one before
# How far one window's estimate may move s, as a factor either way: a window in which a chain barely moved
# (all proposals rejected) has Var(z) ≈ 0, which must not collapse its step.
MAX_CHANGE = 100.0
# Iterations' worth of belief in s = 1 that a window's estimate is pooled with, on log s (Stan regularises
# its windows' variances the same way, towards 1e-3): a window of n iterations sets log s to n / (n + SHRINK)
# of its estimate's. Measured on the embedded posterior at β = 10 under the fitted prior's preconditioner
# (tools/sampler_efficiency.py, 3 seeds), unshrunk estimates from the first short windows, taken while the
# chains still drift, cost MALA 2× and HMC 5× against no mass at all; shrunk, the mass gains MALA 1.7×.
SHRINK = 100
# Warm-up's last iterations, in which no window closes: the restarted dual averaging's to settle in (Stan's
# term_buffer). Without them a window closing at warm-up's last iteration froze the restart's first step
# (1.0, far from any tuned one): mala-mass at 300 iterations (warm-up 75, the quick report's beyond rows)
# then accepted no proposal after warm-up, and a window closing 5 iterations before its end left mala-mass,
# ghmc and hmc-jitter chains accepting anywhere from 0.10 to 0.95 (N(0, I) in 64 dimensions, 3 chains).
TERMINAL = 50
# Layout of a chain's memory row: its iteration count, then five blocks of D (sums of z, of z², of ∇, of ∇²
# over the open window, and s), then the base kernel's own columns. Warm-up is a prefix of the run, so every
# window it closes is whole: the window's length follows from the count and is not stored.
_HEAD = 1


def init(target: Target, z0: np.ndarray, own: int = 0) -> State:
    """The cached state with memory: counts 0, empty sums, s = 1 (the identity mass to start with), and
    `own` zero columns the base kernel keeps for itself."""
    state = init_state(target, z0)
    chains, dim = state.z.shape
    memory = np.zeros((chains, _HEAD + 5 * dim + own))
    memory[:, _HEAD + 4 * dim : _HEAD + 5 * dim] = 1.0
    return State(state.z, state.logp, state.grad, memory)


def scale(state: State) -> np.ndarray:
    """[C, D] each chain's s (the square root of its inverse mass's diagonal)."""
    dim = state.z.shape[1]
    return state.memory[:, _HEAD + 4 * dim : _HEAD + 5 * dim]


def iteration(state: State) -> np.ndarray:
    """[C] the iterations each chain has taken (all equal within a run): the jitter's counter."""
    return state.memory[:, 0]


@dataclass(frozen=True)
class Scaled:
    """The target on u = z / s, row by row: log π(s·u), gradient s·∇log π."""

    target: Target
    s: np.ndarray  # [C, D]

    def value_and_grad(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logp, grad = self.target.value_and_grad(u * self.s)
        return logp, np.asarray(grad, np.float64) * self.s


def closing_window(count: int) -> int:
    """The length of the window that closes after `count` iterations, 0 where none does: windows close
    after 25, 75, 175, 375, ... iterations (lengths 25, 50, 100, 200, ...)."""
    size, end = FIRST_WINDOW, FIRST_WINDOW
    while end < count:
        size *= 2
        end += size
    return size if end == count else 0


def _update(memory: np.ndarray, z: np.ndarray, grad: np.ndarray, left: int) -> tuple[np.ndarray, bool]:
    """Add this iteration to the window's sums; at a window's end, unless fewer than TERMINAL warm-up
    iterations are `left` after this one, re-estimate s and empty the sums. Also whether a window closed (s
    changed)."""
    dim = z.shape[1]
    memory = memory[:, : _HEAD + 5 * dim].copy()
    blocks = [memory[:, _HEAD + k * dim : _HEAD + (k + 1) * dim] for k in range(5)]
    sum_z, sum_z2, sum_g, sum_g2, s = blocks
    memory[:, 0] += 1
    sum_z += z
    sum_z2 += z * z
    sum_g += grad
    sum_g2 += grad * grad
    n = closing_window(int(memory[0, 0])) if left >= TERMINAL else 0
    if not n:
        return memory, False
    with np.errstate(invalid="ignore", divide="ignore"):
        var_z = np.maximum(sum_z2 / n - (sum_z / n) ** 2, 0.0)
        var_g = np.maximum(sum_g2 / n - (sum_g / n) ** 2, 0.0)
        estimate = (var_z / var_g) ** (0.25 * n / (n + SHRINK))  # σ̂ shrunk towards 1 on log s
    usable = np.isfinite(estimate) & (estimate > 0)
    s[:] = np.where(usable, np.clip(estimate, s / MAX_CHANGE, s * MAX_CHANGE), s)
    for block in (sum_z, sum_z2, sum_g, sum_g2):
        block[:] = 0.0
    return memory, True


BaseStep = Callable[[State, Target, np.ndarray, Draws, int], tuple[State, Info]]


def wrap(base: Callable[[State], BaseStep], bounds: Bounds | None) -> BaseStep:
    """The step of a base kernel run on u = z / s; `base(state)` builds the base step for this iteration
    (HMC's jittered step reads the state's count), given the state in z's coordinates. The base sees its own
    memory columns (None where it keeps none) and returns them for every chain, accepted or not."""
    if bounds is not None:
        raise BadInput("clip: an adapted mass rescales the code's coordinates; it cannot be clipped")

    def step(state: State, target: Target, eps: np.ndarray, draws: Draws, t: int):
        s = scale(state)
        mass_columns = _HEAD + 5 * s.shape[1]
        own = state.memory[:, mass_columns:] if state.memory.shape[1] > mass_columns else None
        inner = State(state.z / s, state.logp, state.grad * s, own)
        moved, info = base(state)(inner, Scaled(target, s), eps, draws, t)
        keep = ~info.accepted[:, None]
        z = np.where(keep, state.z, moved.z * s)
        grad = np.where(keep, state.grad, moved.grad / s)
        logp = np.where(info.accepted, moved.logp, state.logp)
        if t < 0:  # warm-up, this iteration and −t − 1 more: learn s; afterwards it stays fixed
            memory, changed = _update(state.memory, z, grad, -t - 1)
            info = dataclasses.replace(info, metric_changed=changed)
        else:
            memory = state.memory[:, :mass_columns].copy()
            memory[:, 0] += 1
        if own is not None:
            memory = np.concatenate([memory, moved.memory], axis=1)
        return State(z, logp, grad, memory), info

    return step
