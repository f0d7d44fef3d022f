"""Parity checks: ORT-VJP and torch autograd against an exact reference, torch autograd in float64, and
against float64 central finite differences.

The ONNX gradient graph (repro.grad), torch autograd over onnx2torch's module in float32 (no shared gradient
code) and the same module in float64 compute the same numbers; the float64 one is the reference for both
float32 sides, so a failure says which side is off (comparing the two float32 sides with each other measured
the weaker one: on the full-size logit objective ORT-VJP is within 9.4e-7 of float64 where torch float32 is
9.8e-4 off). A chain whose float32 gradient is off only because its float32 forward took the other branch
of a ReLU or max-pool within rounding of its kink is told apart from a bug by `kink_allowance`, the rule the
Caffe golden comparison uses too (repro.kinks), and the check's name says when it was used. Finite
differences of the float64 forward share no gradient code at all. Every threshold is part of the result,
so a report shows what "passed" meant.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np
import torch

from repro.kinks import MAX_FLIPS, Kinks
from repro.posterior import target_rows
from repro.runtime import make_backend
from repro.runtime.torch import TorchBackend

# float32 end to end through ~25 layers: observed errors are ~1e-6; 1e-4 leaves room for summation order.
FORWARD_TOL = 1e-4  # |logp_float32 − logp_float64| / max|logp_float64|
GRAD_TOL = 1e-4  # per chain: max|g_float32 − g_float64| / max|g_float64| (after at most MAX_FLIPS kink flips)
# ORT's float32 gradient against a float64 central difference along a unit direction.
FD_TOL = 1e-3  # |g·v − fd| / max(|fd|, |g·v|)
# The step of the float64 difference. The posterior is piecewise smooth (ReLU, max-pool), so a difference
# across a kink measures neither piece: at 1e-3 a unit direction crossed one often enough that `repro parity
# --batch 4` on the embedded set failed at 6 of 8 seeds (errors 1.2e-3 to 7.3e-3, float64 autograd alike);
# at 1e-6 the worst of those is 4.7e-6, and float64 rounding (~1e-16 · |logp| / 1e-6) stays below 1e-8.
FD_STEP = 1e-6


@dataclass
class Check:
    name: str
    error: float
    tolerance: float
    devices: str = ""  # where the compared numbers were computed, e.g. "CUDAExecutionProvider, cuda"
    gates: bool = True  # whether a failure stops the command (False: reported beside the checks that do)
    flips: list[str] = dataclasses.field(default_factory=list)  # kinks the error is measured after flipping

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.error) and self.error <= self.tolerance)

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def rel_max(a: np.ndarray, b: np.ndarray) -> float:
    """max|a − b| relative to the largest magnitude of the reference b."""
    scale = float(np.max(np.abs(b))) or 1.0
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) / scale


def kink_allowance(
    got: np.ndarray, ref: np.ndarray, tolerance: float, kinks: Kinks, grad: tuple, exact_ref: bool = False
) -> tuple[float, str, list[str]]:
    """(error, what it rests on, the flips it is measured after) of gradient `got` against `ref` when the
    plain element-wise error exceeds `tolerance`: the error left after removing the effect of at most
    MAX_FLIPS kinks within float32 rounding (repro.kinks), naming the flips, or the plain error and why no
    flip explains it. `grad`: (blob, unit, wrt) of the gradient in `kinks`' graph; `exact_ref`: `ref` is
    that graph's own float64 gradient, so only `got`'s side may have taken another branch."""
    error = rel_max(got, ref)
    found = kinks.explain(*grad, got, ref, enough=tolerance, exact_theirs=exact_ref)
    among = f"{found['kinks']} kinks within rounding"
    if found["searched"] < found["kinks"]:
        among += f" ({found['searched']} nearest measured)"
    if not found["flips"]:
        return error, f"no flip of {among} explains it", []
    if found["error"] > tolerance:
        note = f"the best of flipping up to {MAX_FLIPS} of {among} leaves this"
        return found["error"], f"element-wise {error:.1e}; {note}", []
    note = f"left after flipping {', '.join(found['flips'])}, of {among}"
    return found["error"], f"element-wise {error:.1e}; {note}", found["flips"]


def exact_reference(posterior, device: str = "cpu") -> TorchBackend:
    """torch autograd over the posterior graph in float64: the reference every float32 side is judged by."""
    return TorchBackend(posterior, device=device, dtype=torch.float64)


def against_exact(
    side, exact: TorchBackend, z: np.ndarray, classes, gates: bool = True, reference=None
) -> list[Check]:
    """Forward and gradient of `side` against the float64 `exact` backend (its value and gradient at z may
    be passed as `reference`, to compute them once for several sides). A gating side's chain whose gradient
    is off by more than GRAD_TOL is measured again with `kink_allowance`, on that chain alone (chains are
    independent); a side that does not gate is reported as it is (the search costs a float64 gradient per
    kink)."""
    la, ga = side.value_and_grad(z, classes)
    lb, gb = exact.value_and_grad(z, classes) if reference is None else reference
    vs = f"{side.label} vs {exact.label}"
    errors, notes, flips = [], [], []
    selected = target_rows(classes, len(z), exact.target_size)
    for i in range(len(z)):
        error = rel_max(ga[i], gb[i])
        if gates and np.isfinite(error) and error > GRAD_TOL:
            chain = {"z": z[i : i + 1], "target_weights": selected[i : i + 1]}
            kinks = Kinks.of_module(exact.module, exact.takes, exact.outputs, chain)
            error, note, used = kink_allowance(
                ga[i : i + 1], gb[i : i + 1], GRAD_TOL, kinks, ("logp", None, "z"), exact_ref=True
            )
            notes.append(f"chain {i}: {note}")
            flips += [f"chain {i}: {flip}" for flip in used]
        errors.append(error)
    gradient = f"gradient: {vs}" + (f" ({'; '.join(notes)})" if notes else "")
    return [
        Check(f"forward logp: {vs}", rel_max(la, lb), FORWARD_TOL, gates=gates),
        Check(gradient, max(errors), GRAD_TOL, gates=gates, flips=flips),
    ]


def finite_differences(
    ort_backend, torch64_backend, z: np.ndarray, classes, n_directions: int, seed: int
) -> list[Check]:
    """Directional derivatives g·v of the ORT gradient vs float64 central differences of the torch forward."""
    rng = np.random.default_rng(seed)
    _, grad = ort_backend.value_and_grad(z, classes)
    z64 = np.asarray(z, np.float64)
    checks = []
    for i in range(n_directions):
        v = rng.standard_normal(z.shape)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        fd = (
            torch64_backend.logp(z64 + FD_STEP * v, classes)
            - torch64_backend.logp(z64 - FD_STEP * v, classes)
        ) / (2 * FD_STEP)
        gv = np.sum(grad.astype(np.float64) * v, axis=1)
        err = np.abs(gv - fd) / np.maximum(np.maximum(np.abs(fd), np.abs(gv)), 1e-12)
        checks.append(
            Check(f"gradient: ORT-VJP vs float64 finite differences, direction {i}", float(err.max()), FD_TOL)
        )
    return checks


def run_parity(
    posterior, classes, z: np.ndarray, *, n_directions: int = 3, seed: int = 0, device: str = "cpu"
) -> list[Check]:
    """All checks on one batch of codes `z` for the given posterior graph: ORT-VJP (the code under test)
    and torch autograd, each against torch autograd in float64, and ORT-VJP against float64 finite
    differences. On `device` "cuda" every backend runs there where it can (ORT and torch fall back to the
    CPU, and say so in `devices`)."""
    exact = exact_reference(posterior, device)
    ort_b = make_backend("ort", posterior, device)
    torch_b = make_backend("torch", posterior, device)
    checks = _both_sides(ort_b, torch_b, exact, z, classes, other_gates=True)
    where = f"{ort_b.device}, {torch_b.device}, float64 {exact.device}"
    del torch_b
    if n_directions:
        checks += finite_differences(ort_b, exact, z, classes, n_directions, seed)
    return [dataclasses.replace(c, devices=where) for c in checks]


def sampling_gate(backend, posterior, classes, z: np.ndarray, device: str = "cpu") -> list[Check]:
    """The gate before sampling: the sampling `backend` and the backend its BACKENDS entry is checked
    against, each against the float64 reference at the start codes. Only the sampling backend's checks
    gate; the other's say, when the sampling side fails, whether the graph itself is off."""
    from repro.runtime import BACKENDS

    other = make_backend(BACKENDS[backend.name].checked_against, posterior, device)
    return _both_sides(backend, other, exact_reference(posterior, device), z, classes, other_gates=False)


def _both_sides(first, other, exact: TorchBackend, z: np.ndarray, classes, other_gates: bool) -> list[Check]:
    """`first` (always gating) and `other` against one float64 value and gradient at z."""
    reference = exact.value_and_grad(z, classes)
    checks = against_exact(first, exact, z, classes, reference=reference)
    return checks + against_exact(other, exact, z, classes, gates=other_gates, reference=reference)
