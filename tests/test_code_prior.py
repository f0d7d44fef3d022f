"""The fitted prior of the `-prior` rows: from real codes where the set has them, else from its bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from repro.evaluate.code_prior import REAL_PER_CLASS, STD_FLOOR, fitted_prior
from repro.modelsets import resolve
from repro.samplers import load_bounds
from tests.test_report import write_tiny_set

EMBEDDED = Path(__file__).resolve().parents[1] / "models" / "embedded"


def test_embedded_prior_is_fitted_to_the_codes_of_real_images():
    if not (EMBEDDED / "manifest.json").exists():
        pytest.skip("no embedded set")
    ms = resolve("embedded")
    prior = fitted_prior(ms, 512)
    assert f"fc6 codes of {10 * REAL_PER_CLASS} real images" in prior.source
    bounds = load_bounds(ms.clip_bounds, 512) / 3  # the set's bounds are 3 × the training images' std
    live = bounds > 0.5
    # held-out images, not the training images: the same scale, unit by unit, within sampling error
    ratio = np.median(prior.std[live] / bounds[live])
    assert 0.8 < ratio < 1.25, ratio
    assert np.all(prior.mean >= 0)  # codes after ReLU
    assert prior.std.min() > 0 and f"std floored at {prior.std.min():.3g}" in prior.source  # dead units


def test_without_real_codes_the_bounds_file_gives_the_prior(tmp_path):
    ms = resolve(str(write_tiny_set(tmp_path / "tiny")))
    bounds = load_bounds(ms.clip_bounds, 16)
    prior = fitted_prior(ms, 16)
    assert "bound / 3" in prior.source
    floor = STD_FLOOR * np.median(bounds[bounds > 0] / 3)
    np.testing.assert_allclose(prior.mean, bounds / 3)
    np.testing.assert_allclose(prior.std, np.maximum(bounds / 3, floor))
