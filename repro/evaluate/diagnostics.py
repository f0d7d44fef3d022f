"""MCMC diagnostics for a sampler Result: acceptance, rank-normalised split-R̂, bulk ESS, ESS per gradient.

Computed on log π and on a few random unit projections of z, because a 4096-d code has no single
coordinate worth watching, while projections and the log density summarise the whole state. R̂ and ESS come
from ArviZ (Vehtari et al. 2021), not from code of our own.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

from repro.samplers.methods import METHODS

MIN_DRAWS = 4  # fewer draws per chain than this and ArviZ defines neither R̂ nor ESS


def rhat_ess(draws: np.ndarray, method: str = "bulk") -> tuple[float | None, float | None]:
    """Rank-normalised split-R̂ and the bulk (or "tail") ESS of draws shaped (chain, draw); None where
    undefined."""
    chains, n = draws.shape
    if n < MIN_DRAWS:  # ArviZ's own minimum: it would log a warning and return NaN
        return None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz

        if chains < 2:  # split R̂ compares chains; ArviZ would log and return NaN
            return None, _finite(float(arviz.ess(draws, method=method)))

        rhat = float(arviz.rhat(draws))
        ess = float(arviz.ess(draws, method=method))
    return _finite(rhat), _finite(ess)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def summarize(result, *, n_projections: int = 3, seed: int = 0, extra: Callable | None = None) -> dict:
    """A plain, JSON-ready dict. Draws from warm-up steps are left out of R̂ and ESS; ESS per gradient
    divides by every gradient the run spent (warm-up included), since that is what the samples cost.
    `extra(kept)`, given the kept states [K, C, D], names more summaries, each [K, C] (a sampler comparison
    watches ‖z‖², the likelihood and principal directions too: tools/sampler_efficiency.py)."""
    chains, dim = result.z.shape
    steps = result.logp.shape[0]
    out = {
        "method": result.method,
        "chains": chains,
        "steps": steps,
        "warmup": result.warmup,
        "n_grad": int(result.n_grad),
        "seconds": float(result.seconds),
        "accept_rate_mean": float(np.mean(result.accept_rate)),
        "accept_rate_min": float(np.min(result.accept_rate)),
        "accept_rate_max": float(np.max(result.accept_rate)),
        "n_nonfinite": int(np.sum(result.n_nonfinite)),
        "divergent": None if result.divergent is None else int(np.sum(result.divergent[result.warmup :])),
        "step_size_median": float(np.median(result.step_size)),
    }
    if not METHODS[result.method].mcmc:
        # An optimiser's trajectory is not a sample: convergence diagnostics would be meaningless.
        return {
            **out,
            "summaries": {},
            "rhat_max": None,
            "ess_bulk_min": None,
            "ess_per_grad_min": None,
            "ess_tail_per_grad_min": None,
        }

    quantities = {"logp": result.logp[result.warmup :].T}
    # samples[k] is the state after step (k + 1)·thin − 1; keep those after warm-up.
    first = -(-(result.warmup + 1) // result.thin) - 1
    kept = result.samples[first:]
    if kept.shape[0]:
        units = np.random.default_rng(seed).standard_normal((dim, n_projections))
        units /= np.linalg.norm(units, axis=0)
        projected = kept @ units  # [K, C, n]
        for j in range(n_projections):
            quantities[f"projection_{j}"] = projected[:, :, j].T
        if extra is not None:
            quantities.update({name: values.T for name, values in extra(kept).items()})

    total_grad = result.n_grad * chains
    summaries = {}
    for name, draws in quantities.items():
        rhat, ess = rhat_ess(draws)
        tail = rhat_ess(draws, "tail")[1]
        summaries[name] = {
            "rhat": rhat,
            "ess_bulk": ess,
            "ess_tail": tail,
            "ess_per_grad": None if ess is None else ess / total_grad,
            "ess_tail_per_grad": None if tail is None else tail / total_grad,
            "ess_per_second": None if ess is None or result.seconds <= 0 else ess / result.seconds,
        }
    out["summaries"] = summaries
    rhats = [s["rhat"] for s in summaries.values() if s["rhat"] is not None]
    esses = [s["ess_bulk"] for s in summaries.values() if s["ess_bulk"] is not None]
    out["rhat_max"] = max(rhats) if rhats else None
    out["ess_bulk_min"] = min(esses) if esses else None
    out["ess_per_grad_min"] = None if not esses else min(esses) / total_grad
    tails = [s["ess_tail"] for s in summaries.values() if s["ess_tail"] is not None]
    out["ess_tail_per_grad_min"] = None if not tails else min(tails) / total_grad
    return out
