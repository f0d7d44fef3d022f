"""How sharp a generator draws: the measures issue-level targets for the embedded generator are stated in.

Detail is the mean squared 4-neighbour Laplacian of an image (interior pixels, all channels): it is large on
edges and texture and near zero on blur. A reconstruction's detail ratio is its detail over that of the real
image it reconstructs; the set's figure is the median over held-out images. High-frequency artefacts
(checkerboards) raise it too, so it is read beside the evaluator's accuracy and the pictures, never alone.
"""

from __future__ import annotations

import numpy as np


def laplacian_energy(images: np.ndarray) -> np.ndarray:
    """[N, C, H, W] → [N]: mean of (4·x − the four neighbours)² over the interior."""
    x = np.asarray(images, np.float64)
    lap = (
        4 * x[:, :, 1:-1, 1:-1]
        - x[:, :, :-2, 1:-1]
        - x[:, :, 2:, 1:-1]
        - x[:, :, 1:-1, :-2]
        - x[:, :, 1:-1, 2:]
    )
    return (lap**2).mean(axis=(1, 2, 3))


def detail_ratio(reconstructions: np.ndarray, real: np.ndarray) -> float:
    """Median over images of laplacian_energy(reconstruction) / laplacian_energy(real)."""
    return float(np.median(laplacian_energy(reconstructions) / np.maximum(laplacian_energy(real), 1e-12)))
