"""The feature-space realism metrics against independent references: torchmetrics' KID, SciPy's matrix square
root, the closed-form Fréchet distance of two Gaussians, and k-NN manifolds small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from repro.evaluate.feature_metrics import frechet_distance, kid, precision_recall


def test_kid_is_torchmetrics_poly_mmd_for_equal_sizes():
    torch = pytest.importorskip("torch")
    kid_reference = pytest.importorskip("torchmetrics.image.kid")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 40)), rng.normal(0.3, 1.2, size=(12, 40))
    expected = kid_reference.poly_mmd(torch.from_numpy(y), torch.from_numpy(x)).item()
    assert kid(x, y) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_kid_is_unbiased_for_unequal_sizes():
    """Same distribution: the mean over many draws is 0 within its standard error (a biased V-statistic
    would sit well above it); different distributions: clearly positive."""
    rng = np.random.default_rng(1)
    same = [kid(rng.normal(size=(4, 16)), rng.normal(size=(64, 16))) for _ in range(2000)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))
    apart = [kid(rng.normal(1.0, 1.0, size=(4, 16)), rng.normal(size=(64, 16))) for _ in range(200)]
    assert np.mean(apart) > 10 * np.std(apart) / np.sqrt(len(apart))


def test_frechet_distance_of_two_gaussians_is_the_closed_form():
    rng = np.random.default_rng(2)
    d, n = 6, 200_000
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = rng.uniform(0.5, 2.0, d), rng.uniform(0.5, 2.0, d)
    x, y = mu1 + s1 * rng.standard_normal((n, d)), mu2 + s2 * rng.standard_normal((n, d))
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)  # diagonal covariances
    assert frechet_distance(x, y) == pytest.approx(closed, rel=0.01)


@pytest.mark.parametrize(("n1", "n2", "d"), [(4, 64, 100), (50, 80, 10)])
def test_frechet_distance_is_the_matrix_square_root_formula(n1, n2, d):
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(n1, d)), rng.normal(0.5, 2.0, size=(n2, d))
    c1, c2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = linalg.sqrtm(c1 @ c2).real
    expected = np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(c1 + c2 - 2 * root)
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)


def test_precision_and_recall_on_a_line():
    """Real points 0..9; with k = 3 a real point's ball reaches 3 (ends) or 2 (inside)."""
    real = np.arange(10.0)[:, None]
    # generated 0..3 (k = 3): balls of radius 3, 2, 2, 3 reach 0..6 of the real points
    assert precision_recall(np.arange(4.0)[:, None], real) == (1.0, pytest.approx(0.7))
    # only 2.0 lies in the real manifold; its own ball (radius 30, to 32) covers every real point
    assert precision_recall(np.array([[2.0], [30.0], [31.0], [32.0]]), real) == (0.25, 1.0)
    assert precision_recall(real + 100.0, real) == (0.0, 0.0)


def test_too_few_samples_give_nan():
    one = np.zeros((1, 3))
    assert np.isnan(kid(one, np.ones((5, 3)))) and np.isnan(frechet_distance(np.ones((5, 3)), one))
    assert all(np.isnan(v) for v in precision_recall(one, np.ones((5, 3))))
