"""Metropolis-adjusted microcanonical Langevin Monte Carlo: repro.samplers.ghmc's persistent, one-step
iteration run on isokinetic dynamics (Robnik et al., MCHMC 2023; adjusted, MAMS, arXiv:2503.01707).

Why: on the embedded posterior at β = 1, GHMC's slowest summary is log π itself. With a Gaussian momentum,
log π can only move as far as the kinetic energy lets it, and GHMC refreshes the momentum only partly, so
the kinetic energy, and with it log π, wanders slowly. Isokinetic dynamics keep the velocity u a unit vector;
what the position gains or loses in log π goes into the velocity's direction and a scalar the MH test
accounts for, not into a store that must be refreshed, so log π moves as freely as any linear summary
(measured in tools/sampler_efficiency.py's table, README).

The dynamics (the energy-sampling Hamiltonian, ESH) on u = z / s with g = ∇log π: dz/dt = u,
du/dt = (I − u uᵀ) g / (D − 1). With g held fixed over a time τ the velocity has a closed form: with
e = g / ‖g‖, c = e·u and δ = τ‖g‖ / (D − 1), u ← (u + e(sinh δ + c(cosh δ − 1))) / (cosh δ + c sinh δ), and
the map's Jacobian on the sphere is exp(−ΔK), ΔK = (D − 1) log(cosh δ + c sinh δ). A leapfrog step
(velocity half step, position step z ← z + ε·u, velocity half step) followed by u ← −u is an involution, and
its MH ratio is exp(−W) with W = log π(z) − log π(z*) + ΣΔK: the energy error `persistent` tests, with
Neal's lifted uniform and the reversal on rejection as in GHMC. A position step moves z by ε in all, where
GHMC's moves it by ε·‖p‖ ≈ ε√D, so the tuned ε here is about √D times GHMC's.

The partial refresh u ← normalise(α√D·u + √(1 − α²)·ξ), α = exp(−ε / (√D · PERSISTENCE)) (MCLMC's Langevin
noise on the sphere), has a density in u* that depends on u·u* alone, so it is symmetric and leaves the
uniform law on the sphere invariant; α gives the velocity the memory GHMC's momentum has, in GHMC's time
(√D distance a unit of time). A chain's first iteration draws u = ξ / ‖ξ‖. u and v are the kernel's own
memory columns after the mass's, as GHMC's p and v are. Beyond the paper: the report's `mclmc-da` rows.
"""

from __future__ import annotations

import numpy as np

from repro.errors import BadInput
from repro.samplers import diagonal_mass, ghmc, hmc
from repro.samplers.bounds import Bounds
from repro.samplers.hmc import Trajectory
from repro.samplers.state import State, Target

__all__ = ["OPTIONS", "TARGET_ACCEPT", "build", "gradients_per_step", "init", "integrate", "kick", "refresh"]

OPTIONS = ghmc.OPTIONS
TARGET_ACCEPT = ghmc.TARGET_ACCEPT
DRAWS = True
IMAGE_AT_LAST_START = False
# The velocity's memory, in GHMC's time. Measured on the embedded posterior (tools/sampler_efficiency.py's
# functions, class 0, 2000 gradients, 4 chains, seeds 0–3; bulk ESS per gradient of the worst summary): at
# β = 1 under N(0, I), PERSISTENCE 2, 4, 8 gave 0.067–0.072, 0.074–0.085, 0.049–0.092 (medians 0.068,
# 0.081, 0.064); at β = 10 under the fitted prior 0.0050–0.0128, 0.0066–0.0150 (medians 0.0102, 0.0121),
# 0.0057–0.0087 (seeds 2, 3).
PERSISTENCE = 4.0
gradients_per_step = ghmc.gradients_per_step


def init(target: Target, z0: np.ndarray) -> State:
    """GHMC's state: the mass, then u and v (drawn on the chain's first iteration)."""
    if z0.shape[1] < 2:
        raise BadInput(
            f"mclmc: the velocity lives on a sphere of dimension D − 1; needs D ≥ 2, got D = {z0.shape[1]}"
        )
    return ghmc.init(target, z0)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def kick(u: np.ndarray, grad: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The velocity after a time τ [C] with the gradient held fixed, and ΔK [C]; written with e^−δ and e^−2δ
    only, so a large δ (a stiff point, a large step) does not overflow cosh and sinh."""
    dim = u.shape[1]
    norm = np.linalg.norm(grad, axis=1)
    e = grad / np.where(norm > 0, norm, 1.0)[:, None]
    c = np.clip(np.sum(e * u, axis=1), -1.0, 1.0)
    delta = tau * norm / (dim - 1)
    once = np.exp(-delta)
    twice = once * once
    zeta = 0.5 * (1.0 + c) + 0.5 * (1.0 - c) * twice  # (cosh δ + c sinh δ)·e^−δ
    moved = u * once[:, None] + e * (0.5 * (1.0 - twice) + c * (0.5 * (1.0 + twice) - once))[:, None]
    return _unit(moved / zeta[:, None]), (dim - 1) * (delta + np.log(zeta))


def integrate(state: State, target: Target, eps: np.ndarray, u: np.ndarray, n_leapfrog: int) -> Trajectory:
    """L isokinetic leapfrog steps from the cached gradient (L target calls): hmc.leapfrog with the
    isokinetic kick, so `energy_error` is W."""
    return hmc.leapfrog(state, target, eps, u, n_leapfrog, kick)


def refresh(u: np.ndarray, eps: np.ndarray, normal: np.ndarray, first: np.ndarray) -> np.ndarray:
    root = np.sqrt(u.shape[1])
    alpha = np.where(first, 0.0, np.exp(-eps / (root * PERSISTENCE)))[:, None]
    return _unit(alpha * root * u + np.sqrt(1.0 - alpha**2) * normal)


def build(bounds: Bounds | None = None, *, n_leapfrog: int = OPTIONS["n_leapfrog"].default):
    return diagonal_mass.wrap(ghmc.persistent(refresh, integrate, n_leapfrog), bounds)
