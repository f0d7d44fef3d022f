"""From finished cells to the report's numbers: each metric as mean ± standard error over its units.

A unit is one chain (class, chain) for per-image and per-chain metrics, or one class for metrics that only
exist per class (diversity, ESS, R-hat). Every row starts chain j of class k from the same code, so two rows
are compared by paired differences over shared units, which removes the start-to-start variation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from repro.report.metrics import METRICS


@dataclass(frozen=True)
class Stat:
    mean: float
    se: float
    n: int

    def as_dict(self) -> dict:
        return {"mean": finite_or_none(self.mean), "se": finite_or_none(self.se), "n": self.n}


def finite_or_none(x: float) -> float | None:
    """JSON has no NaN: a metric that does not apply (acceptance of MAP) is null."""
    return float(x) if x is not None and math.isfinite(x) else None


def stat(values) -> Stat:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], np.float64)
    if v.size == 0:
        return Stat(float("nan"), float("nan"), 0)
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")
    return Stat(float(v.mean()), se, int(v.size))


@dataclass
class RowValues:
    """Every unit's value of every metric for one row: metric → {unit: value}."""

    key: str
    values: dict[str, dict[tuple, float]]

    def summary(self) -> dict[str, Stat]:
        return {m: stat(self.values.get(m, {}).values()) for m in METRICS}


def collect(cells: list[dict]) -> dict[str, RowValues]:
    """Cell records (run.load_cell's meta) → per row, the values of each metric keyed by unit."""
    out: dict[str, RowValues] = {}
    for cell in cells:
        row = out.setdefault(cell["row"], RowValues(cell["row"], {m: {} for m in METRICS}))
        k = cell["class_index"]
        for name, per_chain in cell["per_chain"].items():
            for j, value in enumerate(per_chain):
                row.values.setdefault(name, {})[(k, j)] = value
        for name, value in cell["per_class"].items():
            row.values.setdefault(name, {})[(k,)] = value
    return out


def paired_difference(a: RowValues, b: RowValues, metric: str) -> Stat:
    """a − b over the units both rows share (same class, same chain start)."""
    va, vb = a.values.get(metric, {}), b.values.get(metric, {})
    return stat(va[u] - vb[u] for u in sorted(set(va) & set(vb)) if _finite(va[u]) and _finite(vb[u]))


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def format_stat(s: Stat | dict, digits: int = 3) -> str:
    mean, se = (s.mean, s.se) if isinstance(s, Stat) else (s["mean"], s["se"])
    if mean is None or not math.isfinite(mean):
        return "—"
    if abs(mean) >= 1e6:  # e.g. the R-hat of chains that never moved
        text = f"{mean:.1e}"
    elif abs(mean) >= 10**digits:
        text = f"{mean:.0f}"
    elif abs(mean) >= 1e-3 or mean == 0:
        text = f"{mean:.{digits}g}"
    else:
        text = f"{mean:.2e}"
    if se is not None and math.isfinite(se):
        text += f" ± {se:.2g}"
    return text
