"""The records every kernel shares (state, randomness, step report) and the one place the target is called.

Every kernel caches the value and gradient of the current position, so one gradient per MALA step (L per
HMC step) is enough: the next step starts from what the last one computed. Arithmetic is float64 whatever the
target's precision, so MH log-ratios of O(1) are not lost next to log-densities of O(10³).

The released samplers (docs/released_samplers.md) need two things more, both kept as small as they could
be: a target that also gives the classifier's logits (`ClassifierTarget`; every backend is one), and a
per-chain `State.memory` for what their test carries from one acceptance to the next, which a checkpoint
stores with the rest of the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from repro.errors import BadInput, ReproError
from repro.samplers.bounds import Bounds


class Target(Protocol):
    def value_and_grad(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class ClassifierTarget(Target, Protocol):
    """A target whose value is one classifier logit a_k(z) (the "logit" objective, no prior) and which also
    gives all K logits: the released samplers' test reads the softmax probability p(k | z)."""

    def logits(self, z: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class State:
    z: np.ndarray  # [C, D] float64 positions
    logp: np.ndarray  # [C] log density at z
    grad: np.ndarray  # [C, D] its gradient
    memory: np.ndarray | None = None  # [C, M] what a kernel carries beyond the cache; None for most kernels


@dataclass(frozen=True)
class Draws:
    """One step's randomness, drawn by the loop from each chain's own stream (normal first, then uniform)."""

    normal: np.ndarray  # [C, D] standard normal: MALA's proposal noise, HMC's momentum
    uniform: np.ndarray  # [C] in [0, 1): the Metropolis–Hastings test


@dataclass(frozen=True)
class Info:
    """What one step did, per chain; `n_eval` is the number of (batched) target calls the step made."""

    accepted: np.ndarray  # [C] bool
    accept_prob: np.ndarray  # [C] min(1, MH ratio); 1 for MAP
    nonfinite: np.ndarray  # [C] bool: the step met a non-finite value (and was rejected / skipped)
    n_eval: int
    energy_error: np.ndarray | None = None  # [C] HMC: H_new − H_old
    divergent: np.ndarray | None = None  # [C] HMC: |ΔH| > threshold or non-finite
    # the kernel changed its metric after this step (an adapted mass's window closed): the step tuned so far
    # was tuned for the old one, so dual averaging starts over, as Stan's does at each window's end
    metric_changed: bool = False


def evaluate(target: Target, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Call the target and check its output, so a broken backend fails here and not deep in an MH test."""
    logp, grad = target.value_and_grad(z)
    logp = np.asarray(logp, dtype=np.float64)
    grad = np.asarray(grad, dtype=np.float64)
    if logp.shape != z.shape[:1] or grad.shape != z.shape:
        raise ReproError(
            f"target.value_and_grad: expected logp {z.shape[:1]} and grad {z.shape} for z {z.shape}, "
            f"got {logp.shape} and {grad.shape}"
        )
    return logp, grad


def init(target: Target, z0: np.ndarray) -> State:
    z = np.array(z0, dtype=np.float64)
    logp, grad = evaluate(target, z)
    return State(z, logp, grad)


def finite_rows(*arrays: np.ndarray) -> np.ndarray:
    """[C] True where every value of the chain's row is finite, over [C] and [C, D] arrays."""
    ok = np.ones(arrays[0].shape[0], dtype=bool)
    for a in arrays:
        ok &= np.isfinite(a).reshape(a.shape[0], -1).all(axis=1)
    return ok


def class_probability(target: ClassifierTarget, z: np.ndarray, logit: np.ndarray) -> np.ndarray:
    """p(k | z) = exp(a_k − logsumexp(logits)), with a_k [C] the value the target gave at z: the class of
    each chain need not be known here (a report batch gives every chain its own)."""
    if not callable(getattr(target, "logits", None)):
        raise BadInput(
            f"target: the released samplers need one with logits(z) (a backend), got {type(target).__name__}"
        )
    logits = np.asarray(target.logits(z), dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] != z.shape[0]:
        raise ReproError(f"target.logits: expected [{z.shape[0]}, K] for z {z.shape}, got {logits.shape}")
    top = logits.max(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.exp(logit - top - np.log(np.sum(np.exp(logits - top[:, None]), axis=1)))


def select(mask: np.ndarray, new: State, old: State) -> State:
    """Per-chain choice between two states: never a joint accept over the batch."""
    memory = None if new.memory is None else np.where(mask[:, None], new.memory, old.memory)
    return State(
        np.where(mask[:, None], new.z, old.z),
        np.where(mask, new.logp, old.logp),
        np.where(mask[:, None], new.grad, old.grad),
        memory,
    )


def clip_state(target: Target, state: State, bounds: Bounds) -> tuple[State, int]:
    """Project onto the box and refresh the cache of the chains that moved, so it stays exact.

    The whole batch is evaluated, not only the moved rows: a target may tie row i to chain i (its class, a
    per-chain setting), so a subset would be scored against the wrong chains.
    """
    z = bounds.apply(state.z)
    moved = (z != state.z).any(axis=1)
    if not moved.any():
        return State(z, state.logp, state.grad, state.memory), 0
    logp, grad = evaluate(target, z)
    refreshed = State(
        z, np.where(moved, logp, state.logp), np.where(moved[:, None], grad, state.grad), state.memory
    )
    return refreshed, 1
