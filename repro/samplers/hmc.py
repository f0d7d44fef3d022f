"""Hamiltonian Monte Carlo: unit mass, a fixed number of leapfrog steps, a per-chain accept.

H(z, p) = −log π(z) + ½‖p‖²; accept with min(1, exp(H_old − H_new)). The gradient at the start of a
trajectory is the cached one, so an iteration costs L gradient evaluations (`gradients_per_step`, which the
report's budget also uses). A chain whose trajectory meets a non-finite value is frozen for the rest of that
trajectory (the target never sees NaN or inf) and rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from repro.samplers.accept import metropolis_hastings
from repro.samplers.bounds import Bounds
from repro.samplers.options import Option, at_least
from repro.samplers.state import Draws, Info, State, Target, evaluate, finite_rows, init

__all__ = [
    "OPTIONS",
    "TARGET_ACCEPT",
    "Trajectory",
    "build",
    "divergent",
    "gaussian_kick",
    "gradients_per_step",
    "init",
    "leapfrog",
]

OPTIONS = {"n_leapfrog": Option(10, at_least(1))}
TARGET_ACCEPT = 0.65  # Beskos et al.'s optimal HMC acceptance, the dual-averaging goal
DRAWS = True
IMAGE_AT_LAST_START = False
DIVERGENCE = 1000.0


def gradients_per_step(n_leapfrog: int = OPTIONS["n_leapfrog"].default, **params) -> int:
    return n_leapfrog


class Trajectory(NamedTuple):
    """Where L leapfrog steps from the cached state ended, per chain."""

    state: State  # position, value and gradient at the end (a broken chain's row is its start)
    momentum: np.ndarray  # [C, D] at the end
    energy_error: np.ndarray  # [C] H_new − H_old, NaN where broken
    broken: np.ndarray  # [C] bool: the trajectory met a non-finite value


# (momentum [C, D], gradient [C, D], time τ [C]) → the momentum after τ with the gradient held fixed, and
# the change [C] in kinetic energy the update makes (minus the log of its Jacobian where it has one)
Kick = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def gaussian_kick(momentum: np.ndarray, grad: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HMC's kick, p + τ∇log π, with ½‖p‖²'s change: over a trajectory the changes add up to ½‖p_end‖² −
    ½‖p_start‖², so the energy error is H_new − H_old."""
    moved = momentum + tau[:, None] * grad
    return moved, 0.5 * np.sum(moved**2, axis=1) - 0.5 * np.sum(momentum**2, axis=1)


def leapfrog(
    state: State,
    target: Target,
    eps: np.ndarray,
    momentum: np.ndarray,
    n_leapfrog: int,
    kick: Kick = gaussian_kick,
) -> Trajectory:
    """L leapfrog steps of size ε (per chain) from (state.z, momentum), starting from the cached gradient: L
    target calls. The position moves by ε·momentum; `kick` is the momentum's half of the step, HMC's own or
    repro.samplers.mclmc's isokinetic one, and the energy error is log π(start) − log π(end) plus the kicks'
    changes. A chain that meets a non-finite value is frozen where it started, so the target never sees NaN
    or inf."""
    z, p, grad = state.z, momentum, state.grad
    logp = state.logp
    broken = np.zeros(z.shape[0], dtype=bool)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        p, kinetic = kick(p, grad, 0.5 * eps)
        for i in range(n_leapfrog):
            z = z + eps[:, None] * p
            broken |= ~finite_rows(z)
            logp, grad = evaluate(target, np.where(broken[:, None], state.z, z))
            broken |= ~finite_rows(logp, grad)
            p, change = kick(p, grad, eps if i < n_leapfrog - 1 else 0.5 * eps)
            kinetic = kinetic + change
        broken |= ~finite_rows(p, kinetic)
        energy_error = np.where(broken, np.nan, state.logp - logp + kinetic)
    return Trajectory(State(z, logp, grad), p, energy_error, broken)


def divergent(energy_error: np.ndarray, broken: np.ndarray) -> np.ndarray:
    """[C] bool: broken, or an energy error beyond DIVERGENCE (Stan's threshold)."""
    return broken | (np.abs(np.where(broken, 0.0, energy_error)) > DIVERGENCE)


def build(bounds: Bounds | None = None, *, n_leapfrog: int = OPTIONS["n_leapfrog"].default):
    """The HMC step: the momentum is the draws' standard normal, its accept test their uniform."""

    def step(state: State, target: Target, eps: np.ndarray, draws: Draws, t: int) -> tuple[State, Info]:
        end = leapfrog(state, target, eps, draws.normal, n_leapfrog)
        decision = metropolis_hastings(
            target, state, end.state, -end.energy_error, ~end.broken, draws.uniform, bounds
        )
        n_eval = gradients_per_step(n_leapfrog) + decision.extra_evals
        info = Info(
            decision.accepted,
            decision.accept_prob,
            end.broken,
            n_eval,
            end.energy_error,
            divergent(end.energy_error, end.broken),
        )
        return decision.state, info

    return step
