"""Parity checks: ORT-VJP against torch autograd against float64 central finite differences.

Three independent computations of the same numbers: the ONNX gradient graph (repro.grad), torch autograd
over onnx2torch's module (no shared gradient code), and finite differences of a float64 torch forward (no
gradient code at all). Every threshold is part of the result, so a report shows what "passed" meant.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np
import torch

from repro.runtime import make_backend
from repro.runtime.torch import TorchBackend

# float32 end to end through ~25 layers: observed errors are ~1e-6; 1e-4 leaves room for summation order.
FORWARD_TOL = 1e-4  # |logp_ort − logp_torch| / max|logp_torch|
GRAD_TOL = 1e-4  # max|g_ort − g_torch| / max|g_torch|
# ORT's float32 gradient against a float64 central difference along a unit direction.
FD_TOL = 1e-3  # |g·v − fd| / max(|fd|, |g·v|)
FD_STEP = 1e-3


@dataclass
class Check:
    name: str
    error: float
    tolerance: float
    devices: str = ""  # where the compared numbers were computed, e.g. "CUDAExecutionProvider, cuda"

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.error) and self.error <= self.tolerance)

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def rel_max(a: np.ndarray, b: np.ndarray) -> float:
    """max|a − b| relative to the largest magnitude of the reference b."""
    scale = float(np.max(np.abs(b))) or 1.0
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) / scale


def cross_check(backend, reference, z: np.ndarray) -> list[Check]:
    """Value and gradient of `backend` against an independent `reference` backend, relative to the latter."""
    la, ga = backend.value_and_grad(z)
    lb, gb = reference.value_and_grad(z)
    return [
        Check(f"forward logp: {backend.label} vs {reference.label}", rel_max(la, lb), FORWARD_TOL),
        Check(f"gradient: {backend.label} vs {reference.label}", rel_max(ga, gb), GRAD_TOL),
    ]


def finite_differences(
    ort_backend, torch64_backend, z: np.ndarray, n_directions: int, seed: int
) -> list[Check]:
    """Directional derivatives g·v of the ORT gradient vs float64 central differences of the torch forward."""
    rng = np.random.default_rng(seed)
    _, grad = ort_backend.value_and_grad(z)
    z64 = np.asarray(z, np.float64)
    checks = []
    for i in range(n_directions):
        v = rng.standard_normal(z.shape)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        fd = (torch64_backend.logp(z64 + FD_STEP * v) - torch64_backend.logp(z64 - FD_STEP * v)) / (
            2 * FD_STEP
        )
        gv = np.sum(grad.astype(np.float64) * v, axis=1)
        err = np.abs(gv - fd) / np.maximum(np.maximum(np.abs(fd), np.abs(gv)), 1e-12)
        checks.append(
            Check(f"gradient: ORT-VJP vs float64 finite differences, direction {i}", float(err.max()), FD_TOL)
        )
    return checks


def run_parity(
    posterior, classes, z: np.ndarray, *, n_directions: int = 3, seed: int = 0, device: str = "cpu"
) -> list[Check]:
    """All checks on one batch of codes `z` for the given posterior graph: the ORT-VJP graph is the code
    under test, torch autograd and a float64 torch forward the independent references. On `device`
    "cuda" every backend runs there where it can (ORT and torch fall back to the CPU, and say so in
    `devices`)."""
    ort_b = make_backend("ort", posterior, classes, device)
    torch_b = make_backend("torch", posterior, classes, device)
    checks = cross_check(ort_b, torch_b, z)
    where = f"{ort_b.device}, {torch_b.device}"
    del torch_b
    if n_directions:
        torch64 = TorchBackend(posterior, classes, device=device, dtype=torch.float64)
        checks += finite_differences(ort_b, torch64, z, n_directions, seed)
        where += f", float64 {torch64.device}"
    return [dataclasses.replace(c, devices=where) for c in checks]
