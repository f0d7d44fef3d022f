"""The Metropolis–Hastings test every MCMC kernel ends with, written once.

A kernel computes its own log acceptance ratio (MALA: target ratio and proposal densities; HMC: the energy
error) and says which chains produced a usable proposal; everything after that is the same for all kernels:
an unusable or NaN ratio rejects, each chain accepts or rejects on its own, and with bounds the accepted
position is projected onto the box with the cache refreshed (the paper's "+clip", no longer an exact kernel).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from repro.samplers.bounds import Bounds
from repro.samplers.state import State, Target, clip_state, select


class Decision(NamedTuple):
    state: State  # the chains' next states
    accepted: np.ndarray  # [C] bool
    accept_prob: np.ndarray  # [C] min(1, MH ratio), the statistic dual averaging tunes on
    extra_evals: int  # target calls spent refreshing clipped chains (0 or 1)


def metropolis_hastings(
    target: Target,
    current: State,
    proposal: State,
    log_ratio: np.ndarray,
    usable: np.ndarray,
    uniform: np.ndarray,
    bounds: Bounds | None,
) -> Decision:
    """Accept chain i's proposal when log u_i < log_ratio_i; `usable` [C] False forces a rejection."""
    log_ratio = np.where(usable & ~np.isnan(log_ratio), log_ratio, -np.inf)
    accept_prob = np.exp(np.minimum(log_ratio, 0.0))
    with np.errstate(divide="ignore"):
        accepted = np.log(uniform) < log_ratio
    new = select(accepted, proposal, current)
    extra = 0
    if bounds is not None:
        new, extra = clip_state(target, new, bounds)
    return Decision(new, accepted, accept_prob, extra)
