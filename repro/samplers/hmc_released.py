"""The authors' released HMC (BowenXu/synthesizing, branch bowen_HMC, commit a382fc2, `act_max.py`) as that
code computes it: a named preset, never the default. docs/released_samplers.md lists every place it departs
from the paper's equations, each with the line of the released code it comes from.

One iteration, step ε (DGN-AM's linear schedule), momentum p ~ N(0, I), at the chain's code z, L + 1 times:

    score z (p(k | G(z)), the softmax probability of the unit), g = ε·h/mean|h| with h = ∇a_k(z)
    z += g                       (`make_step_generator` adds DGN-AM's step to the input blob in place)
    p += ε·g/2                   (every kick is a half kick)
    z += ε·p                     (all but the last time)

then u ≤ min(1, exp(H_prev − H)), H = −log p(k | G(c_L)) + ½‖p‖², with c_L the last scored code, and
H_prev = −log p_prev + ½‖p_0‖²: p_prev is the probability saved at the last acceptance (at first, that of
the first code scored), p_0 this iteration's initial momentum. No prior, decay or clipping. `curr_code` and
`prev_code` are both views of the generator's input blob, so a rejection restores nothing: the chain ends
the iteration where its trajectory (and the in-place steps) took it, whatever the test says. The test only
decides p_prev, which the chain carries in `State.memory` with a flag saying whether it is set yet.

The test is the shared one (`metropolis_hastings`): both of its candidates hold the same code and differ
only in p_prev; a NaN ratio becomes +inf, as Python's min(1.0, nan) is 1.0.

Cost per iteration: L + 1 value-and-grad calls (the trajectory's first is the previous iteration's last,
cached) and one logits call at c_L, `gradients_per_step` = L + 2; the first iteration makes one logits call
more, for the first p_prev. The released code gets each probability from its forward-backward. A chain whose
trajectory meets a non-finite value or a zero gradient is frozen for the rest of it (the target never sees
NaN or inf), returns to the code it started from and counts as non-finite; the released code has no such
guard.
"""

from __future__ import annotations

import numpy as np

from repro.errors import BadInput
from repro.samplers import hmc
from repro.samplers import state as states
from repro.samplers.accept import metropolis_hastings
from repro.samplers.bounds import Bounds
from repro.samplers.map import dgn_am_step
from repro.samplers.options import Option, at_least
from repro.samplers.state import (
    ClassifierTarget,
    Draws,
    Info,
    State,
    class_probability,
    evaluate,
    finite_rows,
)

__all__ = ["OPTIONS", "TARGET_ACCEPT", "build", "gradients_per_step", "init"]

OPTIONS = {"n_leapfrog": Option(5, at_least(1))}  # update_tracking(..., iteration=5)
# It has an accept step (so an acceptance rate); only `adapt`, which the released code lacks, reads the goal.
TARGET_ACCEPT = hmc.TARGET_ACCEPT
DRAWS = True
IMAGE_AT_LAST_START = False


def gradients_per_step(n_leapfrog: int = OPTIONS["n_leapfrog"].default, **params) -> int:
    return n_leapfrog + 2


def init(target: ClassifierTarget, z0: np.ndarray) -> State:
    """State.memory columns: whether p_prev is set (the released `prev_posterior is None`), then p_prev."""
    s = states.init(target, z0)
    return State(s.z, s.logp, s.grad, np.zeros((s.z.shape[0], 2)))


def build(bounds: Bounds | None = None, *, n_leapfrog: int = OPTIONS["n_leapfrog"].default):
    """The released HMC step: the momentum is the draws' standard normal, its accept test their uniform."""
    if bounds is not None:
        raise BadInput("option clip: the released HMC does not clip (a382fc2 removed its clipping)")

    def step(
        state: State, target: ClassifierTarget, eps: np.ndarray, draws: Draws, t: int
    ) -> tuple[State, Info]:
        e = eps[:, None]
        calls = 0
        p_prev = state.memory[:, 1]
        unset = state.memory[:, 0] == 0
        if unset.any():
            p_prev = np.where(unset, class_probability(target, state.z, state.logp), p_prev)
            calls += 1
        momentum = draws.normal
        z, p, logp, grad = state.z, momentum, state.logp, state.grad
        broken = ~np.isfinite(p_prev)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            for i in range(n_leapfrog + 1):
                if i:
                    logp, grad = evaluate(target, np.where(broken[:, None], state.z, z))
                    broken |= ~finite_rows(logp, grad)
                    calls += 1
                scored = z
                g, moved = dgn_am_step(grad, eps)
                broken |= ~moved
                z = z + g
                p = p + e * g / 2.0
                if i < n_leapfrog:
                    z = z + e * p
                broken |= ~finite_rows(z, p)
            p_last = class_probability(target, np.where(broken[:, None], state.z, scored), logp)
            end = np.where(broken[:, None], state.z, z)
            logp_end, grad_end = evaluate(target, end)
            calls += 2
            h_prev = -1.0 * np.log(p_prev) + 0.5 * np.sum(momentum**2, axis=1)
            h_last = -1.0 * np.log(p_last) + 0.5 * np.sum(p**2, axis=1)
            log_ratio = -1.0 * h_last + h_prev
        broken |= ~np.isfinite(p_last)
        log_ratio = np.where(np.isnan(log_ratio), np.inf, log_ratio)
        energy_error = np.where(broken, np.nan, -log_ratio)

        kept = np.where(broken[:, None], state.memory, np.stack([np.ones_like(p_prev), p_prev], axis=1))
        rejected = State(end, logp_end, grad_end, kept)
        accepted = State(end, logp_end, grad_end, np.stack([np.ones_like(p_last), p_last], axis=1))
        decision = metropolis_hastings(target, rejected, accepted, log_ratio, ~broken, draws.uniform, None)
        info = Info(
            decision.accepted,
            decision.accept_prob,
            broken,
            calls,
            energy_error,
            hmc.divergent(energy_error, broken),
        )
        return decision.state, info

    return step
