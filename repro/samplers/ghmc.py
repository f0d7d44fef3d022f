"""Generalised HMC (Horowitz 1991) with Neal's (2020) non-reversible accept test and an adapted diagonal mass.

Why: on the paper's posterior the step is bound by a few stiff directions whose curvature swings 40-fold from
draw to draw (tools/posterior_curvature.py), so a tuned step is small, and plain HMC, which draws a fresh
momentum every L gradients, moves only ε·L per L gradients: its trajectories are too short to cross the wide
directions, and longer ones cost more gradients per draw. Here the momentum is kept from one iteration to the
next and only partly refreshed, so a chain keeps going the way it went, one leapfrog step (one gradient) per
iteration: the motion is ballistic over about PERSISTENCE of time, where MALA's is a random walk, and every
step is tested, so a stiff point costs a rejection there and not a whole trajectory. Each rejection reverses
the momentum; Neal's non-reversible uniform clusters the rejections together so the runs between reversals
are long ("Non-reversibly updating a uniform [0,1] value for Metropolis accept/reject decisions", 2020).

An iteration, on u = z / s (repro.samplers.diagonal_mass), each chain on its own:
1. p ← α·p + √(1 − α²)·ξ with α = exp(−ε / PERSISTENCE), ξ the draws' normal (a chain's first iteration
   draws p = ξ and v = 2·uniform − 1 afresh);
2. v ← v + DELTA, wrapped into [−1, 1);
3. one leapfrog step (u, p) → (u*, p*) (hmc.leapfrog), energy error ΔH;
4. accept when |v| < exp(−ΔH): (u, p) ← (u*, p*) and v ← v·exp(ΔH); otherwise p ← −p.
Each of these leaves π(u)·N(p; 0, I)·Uniform(v; −1, 1) invariant: 1 is an AR(1) step on p, 2 a translation
of v modulo 2, and 3–4 a volume-preserving involution (the leapfrog step, then p negated) applied on the set
it maps onto itself, with v rescaled by π(old)/π(new) so the joint density is kept; the final negation is
one more such involution. So with s, ε and α frozen after warm-up every transition is exact for π. The
momentum and v live in the chain's memory (checkpoints store them), after the mass's columns. Beyond the
paper: run with dual averaging, as the report's `ghmc-da` row.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from repro.samplers import diagonal_mass, hmc
from repro.samplers.accept import metropolis_hastings
from repro.samplers.bounds import Bounds
from repro.samplers.options import Option, at_least
from repro.samplers.state import Draws, Info, State, Target

__all__ = ["OPTIONS", "TARGET_ACCEPT", "build", "gradients_per_step", "init", "persistent", "refresh"]

OPTIONS = {"n_leapfrog": Option(1, at_least(1))}
TARGET_ACCEPT = 0.9  # each rejection reverses the momentum, so rejections must be rare (0.8 measured worse)
DRAWS = True
IMAGE_AT_LAST_START = False
# The momentum's memory, in the kernel's time (a unit-scale direction's period is 2π), and v's drift per
# iteration. Measured on the embedded posterior (tools/sampler_efficiency.py's functions, class 0, 2000
# gradients, 4 chains, 2 seeds; × MALA with dual averaging on the same seeds): at β = 10 under the fitted
# prior, PERSISTENCE 1, 2, 4 gave 1.8–4.6×, 3.3–5.4×, 2.0–5.2× (DELTA 0.02); at β = 1 under N(0, I), where
# the worst summary was log π, DELTA 0.1 gave 3.0–3.2× against 2.1–2.5× for 0.02 (PERSISTENCE 2).
PERSISTENCE = 2.0
DELTA = 0.1


def gradients_per_step(n_leapfrog: int = OPTIONS["n_leapfrog"].default, **params) -> int:
    return n_leapfrog


def init(target: Target, z0: np.ndarray) -> State:
    """The mass's state, with the momentum p and v (zero until the chain's first iteration draws them)."""
    return diagonal_mass.init(target, z0, own=z0.shape[1] + 1)


def refresh(momentum: np.ndarray, eps: np.ndarray, normal: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Step 1: p ← α·p + √(1 − α²)·ξ, α = exp(−ε / PERSISTENCE); a chain's first iteration draws p = ξ."""
    alpha = np.where(first, 0.0, np.exp(-eps / PERSISTENCE))[:, None]
    return alpha * momentum + np.sqrt(1.0 - alpha**2) * normal


# (momentum, ε, the draws' normal, first iteration) → the refreshed momentum: an exact update of its law
Refresh = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# (state, target, ε, momentum, steps) → where the dynamics ended, its energy error the log of the MH ratio
Integrate = Callable[[State, Target, np.ndarray, np.ndarray, int], hmc.Trajectory]


def persistent(refresh: Refresh, integrate: Integrate, n_leapfrog: int):
    """Steps 1–4 above over any dynamics whose step, followed by negating the momentum, is an involution
    with the energy error as the log of its MH ratio (the Jacobian included): the base step for
    diagonal_mass.wrap. repro.samplers.mclmc runs it on isokinetic dynamics."""

    def base(outer: State):
        first = diagonal_mass.iteration(outer) == 0

        def step(state: State, target: Target, eps: np.ndarray, draws: Draws, t: int):
            momentum, v = state.memory[:, :-1], state.memory[:, -1]
            p = refresh(momentum, eps, draws.normal, first)
            v = np.where(first, 2.0 * draws.uniform - 1.0, v)
            v = (v + 1.0 + DELTA) % 2.0 - 1.0
            end = integrate(state, target, eps, p, n_leapfrog)
            decision = metropolis_hastings(
                target, state, end.state, -end.energy_error, ~end.broken, np.abs(v), None
            )
            accepted = decision.accepted
            with np.errstate(over="ignore", invalid="ignore"):
                v = np.where(accepted, v * np.exp(np.where(accepted, end.energy_error, 0.0)), v)
            p = np.where(accepted[:, None], end.momentum, -p)
            memory = np.concatenate([p, v[:, None]], axis=1)
            info = Info(
                accepted,
                decision.accept_prob,
                end.broken,
                n_leapfrog,
                end.energy_error,
                hmc.divergent(end.energy_error, end.broken),
            )
            return State(decision.state.z, decision.state.logp, decision.state.grad, memory), info

        return step

    return base


def build(bounds: Bounds | None = None, *, n_leapfrog: int = OPTIONS["n_leapfrog"].default):
    return diagonal_mass.wrap(persistent(refresh, hmc.leapfrog, n_leapfrog), bounds)
