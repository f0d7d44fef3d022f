"""Metropolis-adjusted Langevin with separate drift step τ and noise multiplier σ (docs/architecture.md).

Proposal z' = z + τ∇log π(z) + √(2τ)·σ·ξ. The MH test uses the density of exactly this proposal in both
directions (drift τ, standard deviation s = √(2τ)·σ, gradients at both ends), which is what keeps annealed
noise (σ < 1) and any pre-set τ schedule exact for π. Each chain accepts or rejects on its own.
"""

from __future__ import annotations

import numpy as np

from repro.samplers.accept import metropolis_hastings
from repro.samplers.bounds import Bounds
from repro.samplers.options import Option, in_range
from repro.samplers.schedules import noise_scale
from repro.samplers.state import Draws, Info, State, Target, evaluate, finite_rows, init

__all__ = ["OPTIONS", "TARGET_ACCEPT", "build", "gradients_per_step", "init"]

OPTIONS = {"noise_anneal": Option(0.0, in_range(0.0, low_open=False), schedule=True)}
TARGET_ACCEPT = 0.574  # Roberts & Rosenthal's optimal MALA acceptance, the dual-averaging goal
DRAWS = True
IMAGE_AT_LAST_START = False


def gradients_per_step(**params) -> int:
    return 1


def build(bounds: Bounds | None = None, *, noise_anneal: float = 0.0):
    """The MALA step; σ_t = (1 + t)^−noise_anneal after warm-up (t counted from its end), 1 during it."""

    def step(state: State, target: Target, tau: np.ndarray, draws: Draws, t: int) -> tuple[State, Info]:
        sigma = 1.0 if t < 0 else noise_scale(noise_anneal, t)
        tau = tau[:, None]
        std = np.sqrt(2.0 * tau) * sigma
        noise = draws.normal
        proposal_z = state.z + tau * state.grad + std * noise
        logp, grad = evaluate(target, proposal_z)

        # log q(z'|z) − log q(z|z'): the normalising constants cancel because s is the same both ways.
        log_q_forward = -0.5 * np.sum(noise**2, axis=1)
        backward = state.z - proposal_z - tau * grad
        log_q_backward = -np.sum(backward**2, axis=1) / (2.0 * std[:, 0] ** 2)
        finite = finite_rows(proposal_z, logp, grad)
        with np.errstate(invalid="ignore", over="ignore"):
            log_ratio = logp - state.logp + log_q_backward - log_q_forward
        decision = metropolis_hastings(
            target, state, State(proposal_z, logp, grad), log_ratio, finite, draws.uniform, bounds
        )
        info = Info(decision.accepted, decision.accept_prob, ~finite, 1 + decision.extra_evals)
        return decision.state, info

    return step
