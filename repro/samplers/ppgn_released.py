"""PPGN's sampler (Evolving-AI-Lab/ppgn at f0dbbad, `sampler.py` as `1_class_conditional_sampling.sh` runs
it): the same lab's successor to DGN-AM, and what a user would pick instead of the paper's samplers today. A
named preset: docs/released_samplers.md lists where it departs from an exact sampler of any posterior.

One iteration at the chain's code h, step s (the script's lr, 1 throughout):

    p        = p(k | G(h)), the classifier's softmax probability of the class
    d_prior  = E(G(h)) − h                 the denoising autoencoder's score: the set's encoder (CaffeNet's
                                           fc6 for the DGN sets) read back from the generator's image
    d_cond   = (1 − p)·∂a_k/∂h             ∂log p/∂a_k on the class's own logit only: the −p_j·∂a_j terms
                                           of the other logits are dropped
    d_h      = ε1·d_prior + ε2·d_cond + ε3·ξ,   ξ ~ N(0, I)
    h        ← clip(h + s·d_h / mean|d_h|, 0, upper)

with ε1 = 1e-5, ε2 = 1, ε3 = 1e-17 (a standard deviation) and upper = 30, one bound for every unit. There is
no accept step; the image it records is the crop generated from h before the update, as MAP's. A chain whose
step is not finite (or whose d_h is all zero) stays where it is and counts as non-finite.

Cost: a value-and-grad at the new code, a logits call and a generator-plus-encoder forward at the current one
per iteration (`gradients_per_step` = 2, as the released MALA's gradient and logits call are priced).
"""

from __future__ import annotations

import numpy as np

from repro.errors import BadInput
from repro.samplers.bounds import Bounds
from repro.samplers.map import dgn_am_step
from repro.samplers.options import Option, in_range
from repro.samplers.state import Draws, Info, State, class_probability, evaluate, finite_rows
from repro.samplers.state import init as init_state

__all__ = ["OPTIONS", "TARGET_ACCEPT", "build", "gradients_per_step", "init"]

OPTIONS = {
    "eps1": Option(1e-5, in_range(0.0, low_open=False)),
    "eps2": Option(1.0, in_range(0.0, low_open=False)),
    "eps3": Option(1e-17, in_range(0.0, low_open=False)),
    "upper": Option(30.0, in_range(0.0, low_open=True)),
}
TARGET_ACCEPT = None  # no accept step
DRAWS = True  # the ε3 noise
IMAGE_AT_LAST_START = True  # sampler.py records the crop generated from h before the update
init = init_state


def gradients_per_step(**params) -> int:
    return 2


def build(
    bounds: Bounds | None = None,
    *,
    eps1: float = 1e-5,
    eps2: float = 1.0,
    eps3: float = 1e-17,
    upper: float = 30.0,
):
    if bounds is not None:
        raise BadInput(f"option clip: PPGN clips every unit to [0, {upper:g}] itself (its option `upper`)")

    def step(state: State, target, lr: np.ndarray, draws: Draws, t: int) -> tuple[State, Info]:
        p = class_probability(target, state.z, state.logp)
        d_prior = np.asarray(target.autoencode(state.z), np.float64) - state.z
        d_condition = (1.0 - p)[:, None] * state.grad
        d_h = eps1 * d_prior + eps2 * d_condition + eps3 * draws.normal
        delta, moved = dgn_am_step(d_h, lr)  # no step for a chain whose d_h is not finite, or all zero
        z = np.where(moved[:, None], np.clip(state.z + delta, 0.0, upper), state.z)
        logp, grad = evaluate(target, z)
        n = len(z)
        broken = ~moved | ~finite_rows(logp, grad)
        return State(z, logp, grad), Info(np.ones(n, dtype=bool), np.ones(n), broken, gradients_per_step())

    return step
