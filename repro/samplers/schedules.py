"""Step-size and noise schedules: the pre-set (non-adaptive) decays the paper and DGN-AM use.

A schedule fixed in advance keeps every MCMC transition exact for the target as long as the MH test uses the
step actually taken; only the *adaptive* part (dual averaging) must stop after warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCHEDULES = ("constant", "linear", "poly")


@dataclass(frozen=True)
class Schedule:
    """constant: base. linear (DGN-AM): base + (lr_end − base)·t/T. poly (Teh et al.): base·(b + t)^−γ."""

    kind: str = "constant"
    lr_end: float = 1e-10
    poly_b: float = 1.0
    poly_gamma: float = 0.55

    @property
    def depends_on_length(self) -> bool:
        return self.kind == "linear"

    def __call__(self, base: np.ndarray, t: int, n: int) -> np.ndarray:
        """Step size at iteration t (0-based) of n scheduled iterations, per chain ([C] from base [C])."""
        if self.kind == "constant":
            return base
        if self.kind == "linear":
            # act_max.py's expression and evaluation order: start + (end - start) * i / n_iters.
            return base + (self.lr_end - base) * t / n
        return base * (self.poly_b + t) ** (-self.poly_gamma)


def noise_scale(gamma: float, t: int) -> float:
    """Annealed noise multiplier σ_t = (1 + t)^−γ (Neelakantan et al.); γ = 0 is plain Langevin noise."""
    return (1.0 + t) ** (-gamma)
