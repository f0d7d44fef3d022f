"""Kernels that adapt more than a step in warm-up (repro.samplers.diagonal_mass, mala_mass, hmc_jitter):
they learn the target's scales, stay exact on analytic targets once warm-up ends, and HMC's jitter is what
it says."""

from __future__ import annotations

import numpy as np
import pytest

from repro.errors import BadInput
from repro.samplers import METHODS as METHODS_TABLE
from repro.samplers import diagonal_mass, hmc_jitter, sample
from repro.samplers.state import Draws
from repro.samplers.targets import Gaussian
from tests.test_samplers_mcmc import SKEWED, Z_MAX, badly_scaled_gaussian, gaussian_zscores, loggamma_zscores

CHAINS, WARMUP, KEPT = 300, 400, 300
STDS = np.logspace(np.log10(0.03), 1.0, 20)  # a condition number of 1e5, along the axes
AXIS_STIFF = Gaussian(np.linspace(-3.0, 3.0, 20), np.diag(STDS**2))
METHODS = [("mala-mass", {}), ("hmc-jitter", {"n_leapfrog": 5})]


def run(target, method, options, seed=0, step=1e-3):
    z0 = target.draw(np.random.default_rng(seed + 1), CHAINS)
    return sample(target, method, z0, WARMUP + KEPT, seed, step, adapt=WARMUP, **options)


@pytest.mark.parametrize(("method", "options"), METHODS)
def test_an_axis_aligned_stiff_gaussian_is_learnt_and_sampled_exactly(method, options):
    """Stds 0.03 to 10: the learnt mass makes it isotropic, so the tuned step is of order 1, where an
    identity mass must fit the narrowest direction (0.03): MALA's step scales as its variance, HMC's as its
    std, so the plain kernels' tuned steps are about 1000× and 30× smaller."""
    result = run(AXIS_STIFF, method, options)
    z = gaussian_zscores(AXIS_STIFF, result.samples[WARMUP:])
    acceptance = result.accepted[WARMUP:].mean()
    plain = sample(
        AXIS_STIFF,
        method.split("-")[0],
        AXIS_STIFF.draw(np.random.default_rng(1), 50),
        WARMUP,
        0,
        1e-3,
        adapt=WARMUP - 1,
        **options,
    )
    print(
        f"{method}: max |error|/MCSE {np.abs(z).max():.2f}, acceptance {acceptance:.3f}, "
        f"step {np.median(result.step_size):.3g} against the identity mass's {np.median(plain.step_size):.3g}"
    )
    assert np.abs(z).max() < Z_MAX
    assert abs(acceptance - METHODS_TABLE[method].kernel.TARGET_ACCEPT) < 0.1
    assert np.median(result.step_size) > 10 * np.median(plain.step_size)


@pytest.mark.parametrize(("method", "options"), METHODS)
def test_the_learnt_scales_are_the_targets_stds(method, options):
    """On a Gaussian with a diagonal covariance ∇log π = −(z − μ)/σ², so Var(z)/Var(∇) = σ⁴ wherever the
    chain has been: one window gives s = σ, stationary or not, as long as the chain moves (a small step)."""
    z0 = AXIS_STIFF.draw(np.random.default_rng(3), 8)
    state = diagonal_mass.init(AXIS_STIFF, z0)
    step = METHODS_TABLE[method].kernel.build(**options)
    eps = np.full(8, 1e-5 if method == "mala-mass" else 3e-3)
    for n in range(diagonal_mass.FIRST_WINDOW):
        state, _ = step(state, AXIS_STIFF, eps, _draws(np.random.default_rng(n), 8, 20), None)
    ratio = diagonal_mass.scale(state) / STDS
    print(f"{method}: learnt s / std from {ratio.min():.4f} to {ratio.max():.4f}")
    np.testing.assert_allclose(ratio, 1.0, rtol=1e-3)
    warm, frozen = state, state
    for n in range(50):  # across the next window's end (75): only warm-up (t None) learns
        draws = _draws(np.random.default_rng(100 + n), 8, 20)
        warm = step(warm, AXIS_STIFF, eps, draws, None)[0]
        frozen = step(frozen, AXIS_STIFF, eps, draws, n)[0]
    np.testing.assert_array_equal(diagonal_mass.scale(frozen), diagonal_mass.scale(state))
    assert not np.array_equal(diagonal_mass.scale(warm), diagonal_mass.scale(state))


def _draws(rng, chains, dim):
    return Draws(rng.standard_normal((chains, dim)), rng.random(chains))


@pytest.mark.parametrize(("method", "options"), METHODS)
@pytest.mark.parametrize("target", [badly_scaled_gaussian(50), SKEWED], ids=["correlated50", "loggamma2"])
def test_exact_on_targets_a_diagonal_cannot_whiten(method, options, target):
    """Correlations in a random basis and a skewed target: the learnt mass is only approximate, the chains
    after warm-up must still have the target's moments."""
    result = run(target, method, options, seed=5, step=0.1)
    kept = result.samples[WARMUP:]
    z = gaussian_zscores(target, kept) if isinstance(target, Gaussian) else loggamma_zscores(target, kept)
    acceptance = result.accepted[WARMUP:].mean()
    print(f"{method}: max |error|/MCSE {np.abs(z).max():.2f}, acceptance {acceptance:.3f}")
    assert np.abs(z).max() < Z_MAX
    assert (
        0.4 < acceptance < 0.85
    )  # the chains move: standing still at exact start draws would pass trivially


def test_jittered_leapfrog_counts_cover_the_range_with_the_priced_mean():
    counts = np.array([hmc_jitter.leapfrog_steps(n, 10) for n in range(6000)])
    assert counts.min() == 1 and counts.max() == 19
    assert abs(counts.mean() - 10) < 0.05  # what gradients_per_step prices
    assert np.ptp(np.bincount(counts)[1:]) <= 0.01 * counts.size  # near uniform over 1 … 19


def test_window_ends_double():
    ends = [n for n in range(1, 1600) if diagonal_mass.closing_window(n)]
    assert ends == [25, 75, 175, 375, 775, 1575]
    assert [diagonal_mass.closing_window(n) for n in ends] == [25, 50, 100, 200, 400, 800]


@pytest.mark.parametrize("method", ["mala-mass", "hmc-jitter"])
def test_clipping_is_refused(method):
    with pytest.raises(BadInput, match="cannot be clipped"):
        sample(AXIS_STIFF, method, np.zeros((2, 20)), 3, 0, 0.1, clip=(-1.0, 1.0))
