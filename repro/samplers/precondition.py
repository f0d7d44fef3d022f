"""Sampling through a fixed affine map z = shift + factor · u: a preconditioner, for any kernel.

A kernel with an identity mass (MALA's isotropic noise, HMC's unit momentum) moves every direction by the
same step, so a target much wider in some directions than in others forces a step small enough for the
narrowest: a fitted prior whose per-unit stds run from 0.35 to 10, with correlations, left the `-prior`
rows' chains where they started. Run on u instead, the kernel sees the target with the stretch taken out:
MALA and HMC on u are MALA and HMC on z with the mass matrix factor · factorᵀ. The map is affine, so its
Jacobian is a constant and cancels from every Metropolis–Hastings ratio: the chains sample exactly the same
distribution, and the log densities in the traces are the target's own.

The kernels never see the map: `Preconditioned` is a target on u, and `sample` maps the start codes in and
the codes it returns (final states, thinned samples, MAP's last start) back out. A checkpoint holds u, and
a resumed run maps the same start codes the same way. Clipping is refused: its box is in z's coordinates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np

from repro import samplers
from repro.errors import BadInput
from repro.posterior import GaussianPrior
from repro.samplers import run
from repro.samplers.state import Target


@dataclass(frozen=True, eq=False)
class Affine:
    shift: np.ndarray  # [D]
    factor: np.ndarray  # [D, D], invertible

    @cached_property
    def _inverse(self) -> np.ndarray:
        return np.linalg.inv(np.asarray(self.factor, np.float64))

    def to_z(self, u: np.ndarray) -> np.ndarray:
        return self.shift + np.asarray(u, np.float64) @ np.asarray(self.factor, np.float64).T

    def to_u(self, z: np.ndarray) -> np.ndarray:
        return (np.asarray(z, np.float64) - self.shift) @ self._inverse.T


@dataclass(frozen=True)
class Preconditioned:
    """The target in u: log π(shift + factor · u), whose gradient is factorᵀ ∇log π (rows: g · factor)."""

    target: Target
    affine: Affine

    def value_and_grad(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logp, grad = self.target.value_and_grad(self.affine.to_z(u))
        return logp, np.asarray(grad, np.float64) @ np.asarray(self.affine.factor, np.float64)

    def logits(self, u: np.ndarray) -> np.ndarray:
        return self.target.logits(self.affine.to_z(u))


def prior_affine(prior: GaussianPrior) -> Affine:
    """The preconditioner of a fitted Gaussian prior (repro.posterior.GaussianPrior): u is its standard
    normal noise, so under that prior the kernel sees N(0, I), the paper's own prior."""
    return Affine(np.asarray(prior.mean, np.float64), prior.factor)


def sample(target: Target, method: str, z0: np.ndarray, *args, affine: Affine, **options) -> run.Result:
    """repro.samplers.sample on u = affine⁻¹(z), with every code it returns in z's coordinates."""
    if options.get("clip") is not None:
        raise BadInput(
            f"method {method}: clipping is in the code's own coordinates; it cannot be preconditioned"
        )
    z0 = np.asarray(z0, np.float64)
    if affine.factor.shape != (z0.shape[1], z0.shape[1]) or affine.shift.shape != (z0.shape[1],):
        raise BadInput(
            f"preconditioner: expected a shift of {z0.shape[1]} and a {z0.shape[1]}×{z0.shape[1]} factor, "
            f"got {affine.shift.shape} and {affine.factor.shape}"
        )
    result = run.sample(Preconditioned(target, affine), method, affine.to_u(z0), *args, **options)
    back = affine.to_z
    return dataclasses.replace(
        result,
        z=back(result.z),
        samples=back(result.samples.reshape(-1, z0.shape[1])).reshape(result.samples.shape),
        z_last_start=None if result.z_last_start is None else back(result.z_last_start),
    )


def sampler_under(prior: object) -> Callable[..., run.Result]:
    """The sampler of a run under `prior`: `repro.samplers.sample` (looked up now, through the package), or,
    under a fitted Gaussian, `sample` here preconditioned by its covariance, so the kernel sees N(0, I). The
    one place the report, `repro sample` and tools/sampler_efficiency.py make that choice."""
    if isinstance(prior, GaussianPrior):
        return partial(sample, affine=prior_affine(prior))
    return samplers.sample
