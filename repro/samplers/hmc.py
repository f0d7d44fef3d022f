"""Hamiltonian Monte Carlo: unit mass, fixed number of leapfrog steps, per-chain accept (DESIGN §6).

H(z, p) = −log π(z) + ½‖p‖²; accept with min(1, exp(H_old − H_new)). The gradient at the start of a
trajectory is the cached one, so an iteration costs L gradient evaluations. A chain whose trajectory meets a
non-finite value is frozen for the rest of that trajectory (the target never sees NaN or inf) and rejected.
"""

from __future__ import annotations

import numpy as np

from repro.samplers.bounds import Bounds
from repro.samplers.state import Info, State, Target, clip_state, evaluate, finite_rows, init, select

__all__ = ["init", "step"]

DIVERGENCE = 1000.0


def step(
    state: State,
    target: Target,
    eps: np.ndarray,
    n_leapfrog: int,
    momentum: np.ndarray,
    uniform: np.ndarray,
    *,
    bounds: Bounds | None = None,
) -> tuple[State, Info]:
    """One HMC transition: per-chain step `eps` [C], standard normal `momentum` [C, D], `uniform` [C]."""
    e = eps[:, None]
    z, p, grad = state.z, momentum, state.grad
    logp = state.logp
    broken = np.zeros(z.shape[0], dtype=bool)
    with np.errstate(invalid="ignore", over="ignore"):
        p = p + 0.5 * e * grad
        for i in range(n_leapfrog):
            z = z + e * p
            broken |= ~finite_rows(z)
            logp, grad = evaluate(target, np.where(broken[:, None], state.z, z))
            broken |= ~finite_rows(logp, grad)
            p = p + (e if i < n_leapfrog - 1 else 0.5 * e) * grad
        broken |= ~finite_rows(p)
        h_old = -state.logp + 0.5 * np.sum(momentum**2, axis=1)
        h_new = -logp + 0.5 * np.sum(p**2, axis=1)
        energy_error = np.where(broken, np.nan, h_new - h_old)
    log_ratio = np.where(broken, -np.inf, -energy_error)
    accept_prob = np.exp(np.minimum(log_ratio, 0.0))
    with np.errstate(divide="ignore"):
        accepted = np.log(uniform) < log_ratio
    divergent = broken | (np.abs(np.where(broken, 0.0, energy_error)) > DIVERGENCE)

    new = select(accepted, State(z, logp, grad), state)
    n_eval = n_leapfrog
    if bounds is not None:
        new, extra = clip_state(target, new, bounds)
        n_eval += extra
    return new, Info(accepted, accept_prob, broken, n_eval, energy_error, divergent)
