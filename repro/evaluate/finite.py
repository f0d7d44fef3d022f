"""Which chains of a run became non-finite, and when: a chain whose log density became NaN or ±inf at any
step (its state, not a rejected proposal), or whose images hold NaN or ±inf.

Such a chain's images are not scored as if valid: `repro sample` nulls its judge scores in run.json and
exits 1 (keeping its files), and the report leaves it out of every metric of its cell (null per chain,
and out of the class's metrics), marking the row in metrics.json and on the page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHOWN = 10  # chains listed in a message; the rest are counted


@dataclass(frozen=True)
class NonFinite:
    """The non-finite chains of a batch of `total`: their indices, and for each the first step (1-based:
    the state after that step) whose log density was not finite, or None when only its images were."""

    total: int
    chains: list[int]
    first_step: list[int | None]

    @property
    def count(self) -> int:
        return len(self.chains)

    def finite_mask(self) -> np.ndarray:
        """[total] True for the chains that stayed finite."""
        ok = np.ones(self.total, dtype=bool)
        ok[self.chains] = False
        return ok

    def as_dict(self) -> dict:
        return {"count": self.count, "chains": list(self.chains), "first_step": list(self.first_step)}

    def describe(self) -> str:
        """'chains 0, 1, 2 of 3 became non-finite: the log density first NaN or inf at step 1 (chain 0)'."""
        listed = ", ".join(str(c) for c in self.chains[:SHOWN])
        if self.count > SHOWN:
            listed += f", … ({self.count - SHOWN} more)"
        text = f"chain{'s' if self.count > 1 else ''} {listed} of {self.total} became non-finite"
        steps = [(s, c) for c, s in zip(self.chains, self.first_step, strict=True) if s is not None]
        if steps:
            step, chain = min(steps)
            text += f": the log density first NaN or inf at step {step} (chain {chain})"
            if len(steps) < self.count:
                text += f", the images of {self.count - len(steps)} more NaN or inf"
        else:
            text += ": their images hold NaN or inf"
        return text


def nonfinite_chains(logp: np.ndarray, images: np.ndarray | None = None) -> NonFinite:
    """From a run's log-density trace logp [steps, C] (the state after each step) and the chains' images
    [C, ...] (None: not looked at)."""
    logp = np.asarray(logp)
    total = logp.shape[1]
    bad_logp = ~np.isfinite(logp)
    bad = bad_logp.any(axis=0)
    if images is not None:
        bad |= ~np.isfinite(np.asarray(images)).reshape(total, -1).all(axis=1)
    chains = np.flatnonzero(bad).tolist()
    first = [int(np.argmax(bad_logp[:, c])) + 1 if bad_logp[:, c].any() else None for c in chains]
    return NonFinite(total, chains, first)
