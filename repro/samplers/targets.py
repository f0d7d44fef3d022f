"""Analytic targets with exact samplers and known moments, for checking samplers against the truth.

Starting chains from exact draws makes any drift away from the target's moments the kernel's fault, not a
burn-in artefact; that is what makes the statistical checks sharp.
"""

from __future__ import annotations

import numpy as np


class Gaussian:
    """N(mean, cov) in D dimensions, via the precision matrix."""

    def __init__(self, mean: np.ndarray, cov: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.cov = np.asarray(cov, dtype=np.float64)
        self.precision = np.linalg.inv(self.cov)
        self._chol = np.linalg.cholesky(self.cov)

    def value_and_grad(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = z - self.mean
        pd = d @ self.precision
        return -0.5 * np.sum(d * pd, axis=1), -pd

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.mean + rng.standard_normal((n, self.mean.size)) @ self._chol.T


class LogGamma:
    """Independent coordinates y_j = log x_j with x_j ~ Gamma(shape k_j, 1): density ∝ exp(k·y − e^y).

    Smooth on all of R and skewed to the left; E y = ψ(k), Var y = ψ'(k), third central moment ψ''(k).
    The gradient k − e^y grows exponentially to the right, which punishes a large step. Row-wise and
    element-wise, so a chain's values never depend on the other rows of the batch.
    """

    def __init__(self, shape: np.ndarray):
        self.shape = np.asarray(shape, dtype=np.float64)

    def value_and_grad(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ez = np.exp(z)
        return np.sum(self.shape * z - ez, axis=1), self.shape - ez

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.log(rng.gamma(self.shape, size=(n, self.shape.size)))
