"""A fixed affine preconditioner (repro.samplers.precondition): the chains still sample the target exactly,
whatever the factor, and with a factor near the target's own shape a step far beyond the unpreconditioned
kernel's stays efficient."""

from __future__ import annotations

import numpy as np
import pytest

from repro.errors import BadInput
from repro.samplers import precondition, sample
from repro.samplers.targets import Gaussian
from tests.test_samplers_mcmc import Z_MAX, badly_scaled_gaussian, gaussian_zscores

CHAINS, STEPS = 300, 300


def stiff_gaussian(dim: int = 20) -> Gaussian:
    """Stds from 0.03 to 10 in a random basis: a condition number of 1e5, like a fitted prior's."""
    rng = np.random.default_rng(11)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return Gaussian(rng.standard_normal(dim) * 3, (q * np.logspace(-3, 2, dim)) @ q.T)


@pytest.mark.parametrize(("method", "step", "options"), [("mala", 0.4, {}), ("hmc", 0.5, {"n_leapfrog": 5})])
def test_preconditioned_by_the_targets_shape_a_stiff_gaussian_is_sampled_exactly_at_a_large_step(
    method, step, options
):
    target = stiff_gaussian()
    affine = precondition.Affine(target.mean, np.linalg.cholesky(target.cov))
    z0 = target.draw(np.random.default_rng(2), CHAINS)
    result = precondition.sample(target, method, z0, STEPS, 0, step, affine=affine, **options)
    z = gaussian_zscores(target, result.samples)
    acceptance = result.accept_rate.mean()
    print(f"{method}: max |error|/MCSE {np.abs(z).max():.2f}, acceptance {acceptance:.3f}")
    assert np.abs(z).max() < Z_MAX
    assert 0.3 <= acceptance <= 0.95
    # the same step on z itself: the narrowest direction (std 0.03) rejects nearly every proposal
    plain = sample(target, method, z0, 30, 0, step, **options)
    assert plain.accept_rate.mean() < 0.05


def test_any_invertible_factor_keeps_the_target_exact():
    """A poor preconditioner costs efficiency, never exactness: a diagonal factor, 30 % too wide and off
    centre, on a correlated target, at a step the chains move at (acceptance 0.45: chains that stood still
    at their exact start draws would pass the moments trivially)."""
    target = badly_scaled_gaussian(50)
    affine = precondition.Affine(np.ones(50), np.diag(1.3 * np.sqrt(np.diag(target.cov))))
    z0 = target.draw(np.random.default_rng(4), CHAINS)
    result = precondition.sample(target, "mala", z0, STEPS, 1, 0.1, affine=affine)
    assert np.abs(gaussian_zscores(target, result.samples)).max() < Z_MAX
    assert 0.3 < result.accept_rate.mean() < 0.65


def test_codes_come_back_in_the_targets_coordinates():
    target = stiff_gaussian(4)
    affine = precondition.Affine(target.mean, np.linalg.cholesky(target.cov))
    z0 = target.draw(np.random.default_rng(5), 3)
    result = precondition.sample(target, "mala", z0, 4, 0, 0.5, affine=affine)
    np.testing.assert_allclose(result.logp[-1], target.value_and_grad(result.z)[0], rtol=1e-9)
    np.testing.assert_allclose(result.samples[-1], result.z)
    np.testing.assert_allclose(affine.to_z(affine.to_u(z0)), z0, atol=1e-9)
    mapped = precondition.sample(target, "map", z0, 3, 0, 0.1, affine=affine)
    assert mapped.z_last_start is not None
    np.testing.assert_allclose(mapped.z_image, mapped.z_last_start)


def test_clipping_cannot_be_preconditioned():
    target = stiff_gaussian(4)
    affine = precondition.Affine(np.zeros(4), np.eye(4))
    with pytest.raises(BadInput, match="clipping is in the code's own coordinates"):
        precondition.sample(target, "map-clip", np.zeros((2, 4)), 3, 0, 0.1, affine=affine, clip=(0.0, 1.0))
