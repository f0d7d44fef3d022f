"""HMC with a jittered number of leapfrog steps and a diagonal mass each chain adapts in warm-up.

With a fixed L, the trajectory length ε·L lands wherever dual averaging puts ε, and on a near-Gaussian target
a length near half a period of some direction sends the chain back towards where it started (a resonance):
the paper's L = 10 with a tuned ε mixed ‖z‖² four times slower per gradient than MALA. Iteration n takes
L_n = 1 + ⌊frac(n·φ)·(2L̄ − 1)⌋ leapfrog steps, φ the golden ratio: uniform over 1 … 2L̄ − 1 with mean L̄, so a
run costs what `n_leapfrog` = L̄ prices. The sequence is deterministic, as TFP's ChEES jitters its
trajectories by a Halton sequence: each L_n leaves π invariant, so the chain is exact whatever the
sequence, it depends on nothing beside the chain's own count (never on the other chains), a resumed run
continues it, and all chains of a batch take the same L_n, so a batched call never waits on one long
trajectory. The mass is repro.samplers.diagonal_mass's. Beyond the paper: run with dual averaging, as the
report's `hmc-jitter-da` row.
"""

from __future__ import annotations

import numpy as np

from repro.samplers import diagonal_mass, hmc
from repro.samplers.bounds import Bounds

__all__ = ["OPTIONS", "TARGET_ACCEPT", "build", "gradients_per_step", "init", "leapfrog_steps"]

OPTIONS = hmc.OPTIONS  # n_leapfrog is L̄ here, the mean number of leapfrog steps
TARGET_ACCEPT = hmc.TARGET_ACCEPT
DRAWS = True
IMAGE_AT_LAST_START = False
GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
init = diagonal_mass.init
gradients_per_step = hmc.gradients_per_step  # L̄ per iteration, on average


def leapfrog_steps(iteration: int, n_leapfrog: int) -> int:
    """L_n for iteration n (counted from 0): 1 … 2·n_leapfrog − 1, mean n_leapfrog."""
    return 1 + int(((iteration * GOLDEN) % 1.0) * (2 * n_leapfrog - 1))


def build(bounds: Bounds | None = None, *, n_leapfrog: int = OPTIONS["n_leapfrog"].default):
    steps = {length: hmc.build(None, n_leapfrog=length) for length in range(1, 2 * n_leapfrog)}

    def base(state):
        return steps[leapfrog_steps(int(diagonal_mass.iteration(state)[0]), n_leapfrog)]

    return diagonal_mass.wrap(base, bounds)
