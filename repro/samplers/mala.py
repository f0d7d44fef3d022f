"""Metropolis-adjusted Langevin with separate drift step τ and noise multiplier σ (DESIGN §6).

Proposal z' = z + τ∇log π(z) + √(2τ)·σ·ξ. The MH test uses the density of exactly this proposal in both
directions (drift τ, standard deviation s = √(2τ)·σ, gradients at both ends), which is what keeps annealed
noise (σ < 1) and any pre-set τ schedule exact for π. Each chain accepts or rejects on its own.
"""

from __future__ import annotations

import numpy as np

from repro.samplers.bounds import Bounds
from repro.samplers.state import Info, State, Target, clip_state, evaluate, finite_rows, init, select

__all__ = ["init", "step"]


def step(
    state: State,
    target: Target,
    tau: np.ndarray,
    sigma: float,
    noise: np.ndarray,
    uniform: np.ndarray,
    *,
    bounds: Bounds | None = None,
) -> tuple[State, Info]:
    """One MALA transition: per-chain step `tau` [C], standard normal `noise` [C, D], `uniform` [C] in [0, 1).

    With `bounds`, the accepted position is projected onto the box afterwards (the paper's MALA+clip, which
    is no longer an exact MCMC kernel) and re-evaluated where it moved.
    """
    tau = tau[:, None]
    std = np.sqrt(2.0 * tau) * sigma
    proposal_z = state.z + tau * state.grad + std * noise
    logp, grad = evaluate(target, proposal_z)
    proposal = State(proposal_z, logp, grad)

    # log q(z'|z) − log q(z|z'): the normalising constants cancel because s is the same both ways.
    log_q_forward = -0.5 * np.sum(noise**2, axis=1)
    backward = state.z - proposal_z - tau * grad
    log_q_backward = -np.sum(backward**2, axis=1) / (2.0 * std[:, 0] ** 2)
    finite = finite_rows(proposal_z, logp, grad)
    with np.errstate(invalid="ignore", over="ignore"):
        log_ratio = logp - state.logp + log_q_backward - log_q_forward
    log_ratio = np.where(finite & ~np.isnan(log_ratio), log_ratio, -np.inf)
    accept_prob = np.exp(np.minimum(log_ratio, 0.0))
    with np.errstate(divide="ignore"):
        accepted = np.log(uniform) < log_ratio

    new = select(accepted, proposal, state)
    n_eval = 1
    if bounds is not None:
        new, extra = clip_state(target, new, bounds)
        n_eval += extra
    return new, Info(accepted, accept_prob, ~finite, n_eval)
