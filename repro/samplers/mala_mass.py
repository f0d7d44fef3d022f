"""MALA with a diagonal mass matrix each chain adapts in warm-up (repro.samplers.diagonal_mass).

On u = z / s it is mala.py's kernel, so on z its proposal is z' = z + τ s²∇log π + √(2τ) s ξ with the MH test
of that proposal both ways. Beyond the paper: run with dual averaging, as the report's `mala-mass-da` row.
"""

from __future__ import annotations

from repro.samplers import diagonal_mass, mala
from repro.samplers.bounds import Bounds

__all__ = ["OPTIONS", "TARGET_ACCEPT", "build", "gradients_per_step", "init"]

OPTIONS = mala.OPTIONS
TARGET_ACCEPT = mala.TARGET_ACCEPT
DRAWS = True
IMAGE_AT_LAST_START = False
init = diagonal_mass.init
gradients_per_step = mala.gradients_per_step


def build(bounds: Bounds | None = None, **options):
    step = mala.build(None, **options)
    return diagonal_mass.wrap(lambda state: step, bounds)
