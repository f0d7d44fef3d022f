"""`repro report`: plan the grid, run (or reuse) its cells, measure, check the paper's claims, and write
index.html, report.md, metrics.json and the figures, every file atomically.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from repro.atomic import exclusive, write_text
from repro.errors import BadInput, ReproError
from repro.modelsets import ModelSet, resolve
from repro.report import figures
from repro.report.document import build_document
from repro.report.executors import ExecutorOptions, make_executor
from repro.report.html import render_html
from repro.report.markdown import render_markdown
from repro.report.metrics import METRICS
from repro.report.plan import DGN_STEPS, Plan, make_plan, models_id
from repro.report.reference import reference_metrics
from repro.report.results import build_results, schema_errors, table2_rows
from repro.report.run import Worker, run_plan
from repro.report.stats import Stat, collect, stat
from repro.versions import versions

# `beyond`: the budget of the rows beyond the paper relative to the paper's rows (plan.py)
QUICK = {"classes": 3, "chains": 3, "budget": 0.1, "beyond": 0.5}
FULL = {"chains": 4, "budget": 1.0, "beyond": 1.0}


@dataclass
class ReportOptions:
    models: str | ModelSet | None = None  # a set spec for repro.modelsets.resolve, or the set itself
    classes: list[int] | None = None  # default: every class (quick: the first three)
    chains: int | None = None
    budget: float | None = None
    quick: bool = False
    seed: int = 0
    map_steps: int = DGN_STEPS
    rows: list[str] | None = None
    backend: str = "ort"
    device: str = "cpu"
    progress: bool = True
    executor: str = "local"  # a key of repro.report.executors.EXECUTORS
    executor_options: ExecutorOptions = ExecutorOptions()


def plan_report(opts: ReportOptions) -> tuple[ModelSet, Plan]:
    """The model set and the plan the options ask for (what --dry-run prices and make_report runs)."""
    ms = opts.models if isinstance(opts.models, ModelSet) else resolve(opts.models)
    n_classes = len(ms.class_names)
    classes = opts.classes or list(range(min(QUICK["classes"], n_classes) if opts.quick else n_classes))
    if len(set(classes)) != len(classes):
        raise BadInput(f"--classes lists a class twice: {classes}")
    preset = QUICK if opts.quick else FULL
    chains = opts.chains or preset["chains"]
    budget = opts.budget or preset["budget"]
    return ms, make_plan(
        ms, classes, chains, budget, opts.seed, opts.map_steps, opts.rows, beyond=preset["beyond"]
    )


def make_report(opts: ReportOptions, out_dir: Path) -> dict:
    """Build the whole report in out_dir; return the metrics.json record."""
    started = time.perf_counter()
    ms, plan = plan_report(opts)
    n_classes = len(ms.class_names)
    chains, budget = plan.chains, plan.budget

    worker = Worker(ms, plan, opts.backend, opts.device, opts.progress)
    worker.metrics  # noqa: B018  load the judge and evaluator now: a bad file must stop us before sampling
    executor = make_executor(opts.executor, opts.executor_options, opts.device)
    check_output_folder(out_dir)
    with exclusive(out_dir / ".report-lock", f"output folder {out_dir}"):  # one report per folder
        cells, counts = run_plan(worker, out_dir, executor)
        reference = reference_metrics(ms, worker.metrics, plan.classes, max(chains, 4))
        figs = _figures(plan, ms.class_names, cells, reference, out_dir)
        if reference is not None:
            reference = {k: v for k, v in reference.items() if k != "examples"}

        settings = {
            "chains": chains,
            "budget": budget,
            "seed": opts.seed,
            "map_steps": opts.map_steps,
            "backend": opts.backend,
            "device": opts.device,
            "quick": opts.quick,
        }
        results = build_results(
            models={
                "name": ms.name,
                "id": models_id(ms),
                "n_classes": n_classes,
                **worker.metrics.describe(),
            },
            plan=plan,
            class_names=ms.class_names,
            settings=settings,
            cell_metas=[c.meta for c in cells],
            counts=counts,
            wall_seconds=time.perf_counter() - started,
            reference=reference,
            figures=figs,
            versions=versions(),
            fitted_prior=worker.fitted_prior().describe()
            if any(r.prior == "fitted" for r in plan.rows)
            else None,
        )
        errors = schema_errors(results)
        if errors:
            raise ReproError("metrics.json would not follow its schema: " + "; ".join(errors[:5]))
        write_text(out_dir / "metrics.json", json.dumps(results, indent=2, allow_nan=False) + "\n")
        blocks = build_document(results)
        write_text(out_dir / "report.md", render_markdown(blocks))
        write_text(out_dir / "index.html", render_html(blocks, out_dir))
    return results


def check_output_folder(out_dir: Path) -> None:
    """The report must be able to write into out_dir; find out before hours of sampling, not after."""
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"output folder {out_dir}: exists and is not a folder")
    try:
        (out_dir / "cells").mkdir(parents=True, exist_ok=True)
        write_text(out_dir / "cells" / ".write-check", "")
        (out_dir / "cells" / ".write-check").unlink()
    except OSError as e:
        raise BadInput(f"output folder {out_dir}: cannot write there ({e.strerror})") from None


def _figures(plan, class_names, cells, reference, out_dir: Path) -> dict[str, str]:
    rows = [(r.key, r.label) for r in plan.rows]
    classes = [(k, class_names[k]) for k in plan.classes]
    by_cell = {(c.meta["row"], c.meta["class_index"]): c for c in cells}
    images = {k: c.images for k, c in by_cell.items()}
    out = {}
    figures.method_by_class(images, rows, classes, out_dir / "figure2.png")
    out["figure2"] = "figure2.png"
    figures.chains_of_one_class(images, rows, plan.classes[0], out_dir / "figure3.png")
    out["figure3"] = "figure3.png"
    figures.traces(
        {k: c.logp for k, c in by_cell.items()},
        {k: c.accepted for k, c in by_cell.items()},
        [(r.key, r.label, r.mcmc) for r in plan.rows],
        classes,
        out_dir / "traces.png",
    )
    out["traces"] = "traces.png"
    values = collect([c.meta for c in cells])
    summaries = {k: v.summary() for k, v in values.items()}
    bar_rows = list(rows)
    if reference is not None:
        summaries["real"] = {m: _stat_of(s) for m, s in reference["metrics"].items()}
        bar_rows.append(("real", "real images"))
    figures.metric_bars(
        summaries,
        bar_rows,
        [key for key, m in METRICS.items() if m.plotted],
        out_dir / "metrics.png",
    )
    out["metrics"] = "metrics.png"
    figures.table2_bars(
        [
            (name, paper, summaries[key]["judge_log_p_real"] if key in summaries else stat([]))
            for name, key, paper in table2_rows()
        ],
        out_dir / "table2.png",
    )
    out["table2"] = "table2.png"
    if reference is not None:
        figures.method_by_class(
            {("real", k): ex[None] for k, ex in zip(plan.classes, reference["examples"], strict=True)},
            [("real", "real images")],
            classes,
            out_dir / "reference.png",
        )
        out["reference"] = "reference.png"
    return out


def _stat_of(d: dict) -> Stat:
    nan = float("nan")
    return Stat(nan if d["mean"] is None else d["mean"], nan if d["se"] is None else d["se"], d["n"])
