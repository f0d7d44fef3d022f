"""metrics.json: every number the report shows, in one documented record (schema in README.md).

The HTML and Markdown pages are rendered from this record, so the three outputs cannot disagree.
"""

from __future__ import annotations

import math

from repro.report.claims import check_claims
from repro.report.metrics import METRICS
from repro.report.plan import Plan
from repro.report.stats import collect, finite_or_none, stat
from repro.samplers.methods import METHODS

SCHEMA = "repro.report/1"

# The paper's Table 2 (judge mean log p(real); CaffeNet on ImageNet, 6000 gradients per MCMC chain), by the
# paper's names; each method's `paper_key` (repro.samplers.methods) says which row reproduces which entry.
PAPER_TABLE2 = {"MAP+clip": -6.00, "MALA+clip": -5.53, "MALA": -9.79, "HMC": -7.96}


def table2_rows() -> list[tuple[str, str, float]]:
    """(the paper's name, the report row reproducing it, the paper's value), in the paper's order."""
    rows = {m.paper_key: m.name for m in METHODS.values() if m.paper_key}
    return [(name, rows[name], value) for name, value in PAPER_TABLE2.items()]


SAMPLER_VARIANT = (
    "MALA and HMC follow the paper's equations as written, implemented exactly: target log p(k | G(z)) + "
    "log N(z; 0, I); Metropolis-Hastings with the density of the proposal actually drawn (gradients at both "
    "ends, annealed noise included); HMC accepts with min(1, exp(H_old - H_new)); MALA+clip clips after the "
    "accept step. It is not the authors' released code, which differs (no prior, probabilities instead of "
    "log-probabilities in the MH ratio, acceptance at the wrong state, in-place state updates). MAP and "
    "MAP+clip are DGN-AM's loop on the raw logit with no prior (linear step decay, h/mean|h|, x0.99 decay)."
)


def _row_entry(row, values, class_names: list[str]) -> dict:
    by_class: dict[int, dict[str, list]] = {}
    for metric, units in values.values.items() if values else []:
        for unit, v in units.items():
            by_class.setdefault(unit[0], {}).setdefault(metric, []).append(v)
    summary = values.summary() if values else {m: stat([]) for m in METRICS}
    return {
        "key": row.key,
        "label": row.label,
        "method": row.method,
        "tuning": row.tuning,
        "paper_key": row.paper_key,
        "steps": row.steps,
        "step_size": row.step_size,
        "options": row.options,
        "clip": row.clip,
        "metrics": {m: s.as_dict() for m, s in summary.items()},
        "per_class": [
            {
                "class_index": k,
                "class_name": class_names[k],
                "metrics": {m: finite_or_none(stat(v).mean) for m, v in sorted(ms.items())},
            }
            for k, ms in sorted(by_class.items())
        ],
    }


def build_results(
    *,
    models: dict,
    plan: Plan,
    class_names: list[str],
    settings: dict,
    cell_metas: list[dict],
    counts: dict,
    wall_seconds: float,
    reference: dict | None,
    figures: dict[str, str],
    versions: dict,
) -> dict:
    rows_values = collect(cell_metas)
    labels = {r.key: r.label for r in plan.rows}
    steps = {r.key: r.steps for r in plan.rows}
    claims = check_claims(rows_values, labels, steps)
    rows = [_row_entry(r, rows_values.get(r.key), class_names) for r in plan.rows]
    by_key = {r["key"]: r for r in rows}
    table2 = [
        {
            "method": name,
            "row": key,
            "paper": paper,
            "ours": by_key[key]["metrics"]["judge_log_p_real"] if key in by_key else stat([]).as_dict(),
        }
        for name, key, paper in table2_rows()
    ]
    return {
        "schema": SCHEMA,
        "models": models,
        "settings": {
            **settings,
            "classes": plan.classes,
            "class_names": [class_names[k] for k in plan.classes],
        },
        "sampler_variant": SAMPLER_VARIANT,
        "metric_definitions": {
            key: {"label": m.label, "unit": m.unit, "higher_is_better": m.higher_is_better}
            for key, m in METRICS.items()
        },
        "rows": rows,
        "reference": reference,
        "table2": table2,
        "claims": [c.as_dict() for c in claims],
        "figures": figures,
        "cells": {"total": len(cell_metas), **counts},
        "wall_seconds": wall_seconds,
        "versions": versions,
    }


def _check(ok: bool, where: str, what: str) -> list[str]:
    return [] if ok else [f"{where}: {what}"]


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _stat_errors(s, where: str) -> list[str]:
    if not isinstance(s, dict) or set(s) != {"mean", "se", "n"}:
        return [f"{where}: expected {{mean, se, n}}, got {s!r}"]
    errs = []
    for k in ("mean", "se"):
        errs += _check(s[k] is None or _is_num(s[k]), where, f"{k} must be a finite number or null")
    return errs + _check(isinstance(s["n"], int) and s["n"] >= 0, where, "n must be a count")


def schema_errors(r: dict) -> list[str]:
    """What is wrong with a metrics.json record (empty when it follows the documented schema)."""
    top = {
        "schema": str,
        "models": dict,
        "settings": dict,
        "sampler_variant": str,
        "metric_definitions": dict,
        "rows": list,
        "table2": list,
        "claims": list,
        "figures": dict,
        "cells": dict,
        "wall_seconds": float,
        "versions": dict,
    }
    errs = [f"missing key {k}" for k in [*top, "reference"] if k not in r]
    if errs:
        return errs
    for k, t in top.items():
        errs += _check(isinstance(r[k], t), k, f"expected {t.__name__}, got {type(r[k]).__name__}")
    errs += _check(r["schema"] == SCHEMA, "schema", f"expected {SCHEMA}")
    for i, row in enumerate(r["rows"]):
        where = f"rows[{i}]"
        for k, t in (
            ("key", str),
            ("label", str),
            ("method", str),
            ("tuning", str),
            ("steps", int),
            ("metrics", dict),
            ("per_class", list),
        ):
            errs += _check(isinstance(row.get(k), t), f"{where}.{k}", f"expected {t.__name__}")
        errs += _check(
            set(row.get("metrics", {})) == set(METRICS), f"{where}.metrics", "expected every metric"
        )
        for m, s in row.get("metrics", {}).items():
            errs += _stat_errors(s, f"{where}.metrics.{m}")
    for i, t in enumerate(r["table2"]):
        errs += _check(
            isinstance(t.get("method"), str) and _is_num(t.get("paper")), f"table2[{i}]", "method, paper"
        )
        errs += _stat_errors(t.get("ours"), f"table2[{i}].ours")
    for i, c in enumerate(r["claims"]):
        errs += _check(
            c.get("verdict") in ("reproduced", "not reproduced", "not tested")
            and c.get("reproduced") in (True, False, None)
            and all(isinstance(c.get(k), str) for k in ("claim", "rule", "evidence")),
            f"claims[{i}]",
            "verdict, reproduced, claim, rule, evidence",
        )
    if r["reference"] is not None:
        for m, s in r["reference"].get("metrics", {}).items():
            errs += _stat_errors(s, f"reference.metrics.{m}")
    return errs
