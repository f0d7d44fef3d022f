"""The authors' released MALA (BowenXu/synthesizing, branch bowen_MCMC, commit f21b857, `act_max.py`) as that
code computes it: a named preset, never the default. docs/released_samplers.md lists every place it departs
from the paper's equations, each with the line of the released code it comes from.

One iteration i, step s (DGN-AM's linear schedule), at the chain's code b (the generator's input blob):

    p   = p(k | G(b)), the softmax probability of the unit (no prior), scored at b
    d   = s·h/mean|h|, h = ∇a_k(b): DGN-AM's step, added to b in place (`dgn_am_step`)
    y   = decay·(b + d) + √(2s)·σ_i·ξ,  σ_i = (1 + i)^−noise_anneal
    MH  u ≤ min(1, p·q(x | y) / (p_prev·q(y | x))),  q(a | c) = ‖N(a; c + g·s, s²)‖₂ over the coordinates

with g = d on the y side and g_prev on the x side. x is the code the released loop keeps (`prev_code`);
p_prev and g_prev were saved at the chain's last acceptance and so belong to the code *before* the accepted
one: the loop scores only the code it starts an iteration from, never the proposal. Until a chain's first
acceptance `prev_code` is the generator's input blob itself, so the in-place drift moves it too: x = b + d,
and a rejected step leaves the chain there; afterwards x = b. Before the first iteration p_prev and g_prev
are unset (None) and take this iteration's values.

The test itself is the shared one (`metropolis_hastings`): u ≤ min(1, r) and log u < log r differ only on
ties; a NaN ratio becomes +inf, as Python's min(1.0, nan) is 1.0, and a density that underflows to 0 becomes
an unusable proposal, as the released acceptance is then 0. The state it falls back to is x, not the step's
start, and the new code's value and gradient are computed after the decision (the released loop scores it
at the start of the next iteration), so both candidates enter the test unscored. What the chain carries
between acceptances (whether `prev_code` is still the blob, p_prev, g_prev) is its `State.memory`.

Cost: one logits call at b and one value-and-grad at the new code per iteration (`gradients_per_step` = 2;
the released code gets both from one forward-backward). A chain whose gradient or probability is not finite,
or whose gradient is zero, stays where it is for the step and counts as non-finite; the released loop stops
there.
"""

from __future__ import annotations

import numpy as np

from repro.errors import BadInput
from repro.samplers import mala
from repro.samplers import state as states
from repro.samplers.accept import metropolis_hastings
from repro.samplers.bounds import Bounds
from repro.samplers.map import dgn_am_step
from repro.samplers.options import Option, in_range
from repro.samplers.schedules import noise_scale
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

# decay: its script's `--L2 0.99`; noise_anneal: `1.0 / np.power((1 + i), 0.55)`.
OPTIONS = {
    "decay": Option(0.99, in_range(0.0, low_open=True, high=1.0)),
    "noise_anneal": Option(0.55, in_range(0.0, low_open=False), schedule=True),
}
# It has an accept step (so an acceptance rate); only `adapt`, which the released code lacks, reads the goal.
TARGET_ACCEPT = mala.TARGET_ACCEPT
DRAWS = True
IMAGE_AT_LAST_START = True  # `best_xx` is the crop generated from the code the last iteration started from

# State.memory columns: the phase, p_prev, then g_prev [D].
UNSET, ALIASED, OWN = 0.0, 1.0, 2.0  # prev_* None / prev_code is the input blob / prev_code is its own array


def gradients_per_step(**params) -> int:
    return 2


def init(target: ClassifierTarget, z0: np.ndarray) -> State:
    s = states.init(target, z0)
    return State(s.z, s.logp, s.grad, np.zeros((s.z.shape[0], 2 + s.z.shape[1])))


def _density(a: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """act_max.py's `calc_transition_prob`: norm(st.norm.pdf(a, mean, std)), the 2-norm of the densities."""
    y = (a - mean) / std
    pdf = np.exp(-(y**2) / 2.0) / np.sqrt(2.0 * np.pi) / std
    return np.sqrt(np.sum(pdf**2, axis=1))


def _memory(phase: np.ndarray, p_prev: np.ndarray, g_prev: np.ndarray) -> np.ndarray:
    return np.concatenate([phase[:, None], p_prev[:, None], g_prev], axis=1)


def build(bounds: Bounds | None = None, *, decay: float = 0.99, noise_anneal: float = 0.55):
    """The released MALA step; σ_i = (1 + t)^−noise_anneal after warm-up (t counted from its end), 1 in it."""
    if bounds is not None:
        raise BadInput("option clip: the released MALA does not clip (f21b857 comments its clipping out)")

    def step(
        state: State, target: ClassifierTarget, s: np.ndarray, draws: Draws, t: int
    ) -> tuple[State, Info]:
        sigma = 1.0 if t < 0 else noise_scale(noise_anneal, t)
        phase, p_prev, g_prev = state.memory[:, 0], state.memory[:, 1], state.memory[:, 2:]
        p = class_probability(target, state.z, state.logp)  # curr_posterior: the start code's, not y's
        drift, moved = dgn_am_step(state.grad, s)  # also curr_g (docs/released_samplers.md)
        unset = phase == UNSET
        p_prev = np.where(unset, p, p_prev)
        g_prev = np.where(unset[:, None], drift, g_prev)
        blob = state.z + drift
        kept = np.where((phase == OWN)[:, None], state.z, blob)  # prev_code
        std = s[:, None]
        proposal = blob * decay + np.sqrt(2.0 * std) * (sigma * draws.normal)
        broken = ~(moved & np.isfinite(p) & finite_rows(proposal))
        with np.errstate(invalid="ignore", over="ignore", divide="ignore", under="ignore"):
            q_forward = _density(proposal, kept + g_prev * std, std)  # q_curr_given_prev
            q_backward = _density(kept, proposal + drift * std, std)  # q_prev_given_curr
            ratio = (p * q_backward) / (p_prev * q_forward)
            log_ratio = np.where(np.isnan(ratio), np.inf, np.log(ratio))
        usable = ~broken & (q_forward > 0) & (q_backward > 0)

        unscored = np.full_like(state.logp, np.nan), np.full_like(state.grad, np.nan)
        rejected = State(
            np.where(broken[:, None], state.z, kept),
            *unscored,
            np.where(broken[:, None], state.memory, _memory(np.maximum(phase, ALIASED), p_prev, g_prev)),
        )
        accepted = State(proposal, *unscored, _memory(np.full_like(phase, OWN), p, drift))
        decision = metropolis_hastings(target, rejected, accepted, log_ratio, usable, draws.uniform, None)
        z = decision.state.z
        logp, grad = evaluate(target, z)
        info = Info(decision.accepted, decision.accept_prob, broken, gradients_per_step())
        return State(z, logp, grad, decision.state.memory), info

    return step
