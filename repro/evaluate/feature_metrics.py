"""Realism as distance to real images in a feature space: KID, Fréchet distance, k-NN precision and recall.

One judge network's opinion can be fooled (it scores saturated super-stimuli above real images); these
compare the *set* of a class's generated images with real images of that class, in the independent
evaluator's feature space. The report has few images per class (one per chain), so each formula is the one
that stays meaningful with few samples:

- KID (Bińkowski et al. 2018): the unbiased MMD² estimate with the cubic polynomial kernel
  k(x, y) = (x·y / d + 1)³, unbiased for any two sample sizes, so its mean over classes is too.
- Fréchet distance (Heusel et al. 2017) between the two sample Gaussians. With n < d samples the
  covariances are singular; Tr((Σ₁Σ₂)^½) is computed exactly as the nuclear norm of A Bᵀ (A, B: centred
  samples over √(n − 1), so Σ = AᵀA), whose singular values are the square roots of Σ₁Σ₂'s eigenvalues,
  instead of a d × d matrix square root; QR factors keep that matrix at most min(n, d) on a side.
- Precision and recall (Kynkäänniemi et al. 2019): the share of generated images inside the real images'
  k-NN manifold (each real feature's ball out to its k-th nearest real neighbour), and the share of real
  images inside the generated images' manifold. k is capped at n − 1 of the smaller set.
"""

from __future__ import annotations

import numpy as np

KNN = 3  # Kynkäänniemi et al.'s k


def _f64(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"features: expected [n, d], got shape {x.shape}")
    return x


def kid(generated: np.ndarray, real: np.ndarray) -> float:
    """Unbiased MMD² with k(x, y) = (x·y/d + 1)³; nan with fewer than 2 samples on a side."""
    x, y = _f64(generated), _f64(real)
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        return float("nan")
    d = x.shape[1]

    def k(a, b):
        return (a @ b.T / d + 1.0) ** 3

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def frechet_distance(generated: np.ndarray, real: np.ndarray) -> float:
    """‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁Σ₂)^½ of the samples' means and (n − 1) covariances."""
    x, y = _f64(generated), _f64(real)
    if len(x) < 2 or len(y) < 2:
        return float("nan")
    a = (x - x.mean(0)) / np.sqrt(len(x) - 1)
    b = (y - y.mean(0)) / np.sqrt(len(y) - 1)
    # A Bᵀ = Q_A R_A R_Bᵀ Q_Bᵀ: the same singular values as R_A R_Bᵀ, at most min(n, d) on a side.
    cross = np.linalg.svd(np.linalg.qr(a, mode="r") @ np.linalg.qr(b, mode="r").T, compute_uv=False).sum()
    mean_term = np.sum((x.mean(0) - y.mean(0)) ** 2)
    return float(mean_term + np.sum(a * a) + np.sum(b * b) - 2.0 * cross)


def _radii(points: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest other point of the same set."""
    d = np.sqrt(np.maximum(_squared_distances(points, points), 0.0))
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T


def _inside(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Whether each point lies within some centre's ball."""
    d = np.sqrt(np.maximum(_squared_distances(points, centres), 0.0))
    return (d <= radii[None, :]).any(axis=1)


def precision_recall(generated: np.ndarray, real: np.ndarray, k: int = KNN) -> tuple[float, float]:
    """(precision, recall) of the k-NN manifolds; nan with fewer than 2 samples on a side."""
    x, y = _f64(generated), _f64(real)
    if len(x) < 2 or len(y) < 2:
        return float("nan"), float("nan")
    k = min(k, len(x) - 1, len(y) - 1)
    precision = _inside(x, y, _radii(y, k)).mean()
    recall = _inside(y, x, _radii(x, k)).mean()
    return float(precision), float(recall)
