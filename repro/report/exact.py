"""Samplers against the exact posterior: each exact row's importance-sampling estimates, and how far each
MCMC row's chains sit from the exact row of the posterior it samples.

A sampler that reached its posterior has final codes whose classifier confidence and ‖z‖²/D agree with the
exact posterior's means within their standard errors; one that did not shows it in these two numbers even
when its images look alike. Together with the claims decided on the exact rows (claims.SETTINGS "exact"),
this tells a failed claim that belongs to the model (the exact posterior fails it too) from one that
belongs to the sampler.
"""

from __future__ import annotations

import math

import numpy as np

from repro.report.claims import Z
from repro.report.plan import Plan, Row
from repro.report.stats import RowValues, finite_or_none
from repro.samplers.methods import METHODS

# What tells whether a sampler reached its posterior: where its codes sit, and what the classifier says of
# its images (the quantities the importance weights are about).
COMPARED = ("target_confidence", "code_sq_norm")


def reference_of(row: Row, plan: Plan) -> Row | None:
    """The exact row of the posterior an MCMC row samples: the same objective, prior and guidance; none for
    the clipped rows (a box-truncated posterior) and for rows without a prior (an improper posterior)."""
    if not row.mcmc or row.clip:
        return None
    m = METHODS[row.method]
    for other in plan.rows:
        if other.kind != "exact" or (other.prior, other.guidance) != (row.prior, row.guidance):
            continue
        e = METHODS[other.method]
        if (e.objective, e.prior_sigma) == (m.objective, m.prior_sigma):
            return other
    return None


def exact_entry(metas: list[dict]) -> dict:
    """metrics.json's `rows[].exact` of an exact row, from its cells: per class the estimates, their
    standard errors, p(k), the ESS and the draws rejection sampling would accept; over classes, each metric's
    mean of the classes' estimates with the standard error of that mean (independent classes)."""
    per_class = [{"class_index": m["class_index"], **m["exact"]} for m in sorted(metas, key=_class)]
    shown = [c for c in per_class if c["estimates"] is not None]
    metrics = sorted({k for c in shown for k in c["estimates"]})
    pooled = {}
    for metric in metrics:
        values = [(c["estimates"][metric], c["se"][metric]) for c in shown]
        values = [(v, s) for v, s in values if _finite(v) and _finite(s)]
        if values:
            n = len(values)
            mean = sum(v for v, _ in values) / n
            pooled[metric] = {"mean": mean, "se": math.sqrt(sum(s * s for _, s in values)) / n, "n": n}
    return {
        "draws": per_class[0]["draws"] if per_class else 0,
        "estimates": pooled,
        "withheld": [c["class_index"] for c in per_class if c["estimates"] is None],
        "per_class": [_json(c) for c in per_class],
    }


def versus_exact(row: Row, values: RowValues | None, reference: Row, exact_metas: list[dict]) -> dict:
    """metrics.json's `rows[].vs_exact`: per compared quantity, the row's chains' mean minus the exact
    estimate, averaged over classes, its standard error (chains' and importance sampling's, independent),
    and their ratio z; `reached` when every |z| ≤ Z (null when no class could be compared)."""
    estimates = {m["class_index"]: m["exact"] for m in exact_metas}
    differences = {}
    for metric in COMPARED:
        units = values.values.get(metric, {}) if values else {}
        parts = []
        for k, ref in sorted(estimates.items()):
            chains = np.array([v for (c, *_), v in units.items() if c == k and _finite(v)], np.float64)
            if ref["estimates"] is None or len(chains) < 2 or not _finite(ref["estimates"].get(metric)):
                continue
            se = chains.std(ddof=1) / math.sqrt(len(chains))
            parts.append((chains.mean() - ref["estimates"][metric], se**2 + ref["se"][metric] ** 2))
        if parts:
            d = sum(p for p, _ in parts) / len(parts)
            se = math.sqrt(sum(v for _, v in parts)) / len(parts)
            z = d / se if se > 0 else (0.0 if d == 0 else math.copysign(math.inf, d))
            differences[metric] = {
                "difference": d,
                "se": se,
                "z": finite_or_none(z),
                "classes": len(parts),
            }
    reached = None
    if set(differences) == set(COMPARED):
        reached = all(e["z"] is not None and abs(e["z"]) <= Z for e in differences.values())
    return {"reference": reference.key, "differences": differences, "reached": reached}


def _class(meta: dict) -> int:
    return meta["class_index"]


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def _json(entry: dict) -> dict:
    """NaN-free (JSON has none): a non-finite estimate is null."""
    out = {k: finite_or_none(v) if isinstance(v, float) else v for k, v in entry.items()}
    for key in ("estimates", "se"):
        if entry.get(key) is not None:
            out[key] = {m: finite_or_none(v) for m, v in entry[key].items()}
    return out
