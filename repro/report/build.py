"""`repro report`: plan the grid, run (or reuse) its cells, measure, check the paper's claims, and write
index.html, report.md, metrics.json and the figures, every file atomically.

The output folder OUT holds the user's work too, so a report changes only what a report wrote. It writes
the files of REPORT_FILES, cells/ (a file per cell, and sampler checkpoints while a row runs) and RECORD,
`repro-report.sha256`: the top-level files it wrote with their sha256, in sha256sum's format (`sha256sum -c
repro-report.sha256` checks them); while it runs, also .report-lock and .report-staging/. A top-level file
is the report's when RECORD lists it with its present content, or, in a folder without RECORD whose
metrics.json is a report's (schema repro.report/1: a report from before RECORD existed), when it has a name
the report writes; an entry of cells/ is the report's when it is named as a cell or checkpoint. A folder
holding anything else is refused (exit 2, naming it) before any model is converted, unless --replace, which
writes the report beside those files and leaves them as they are. A file that is not the report's but has a
name the report writes (the user's own index.html, or a report.md edited since the report wrote it) is
refused even with --replace: no report deletes or rewrites a file it did not write. An earlier report's
folder is continued as it stands: its cells are reused, its top-level files replaced.

The top-level files are written into .report-staging/ and then moved in, RECORD accepting the old and the
new sha256 of each while they move, so a kill at any point leaves files the next run knows as its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from repro.atomic import exclusive, write_text
from repro.digests import sha256_of
from repro.errors import BadInput, ReproError
from repro.evaluate.image_metrics import REAL_POOL
from repro.evaluate.real_images import check_folder
from repro.modelsets import REPORT_USES, ModelSet, models_id, resolve
from repro.report import figures
from repro.report.document import build_document
from repro.report.estimate import refuse_what_cannot_fit
from repro.report.executors import ExecutorOptions, make_executor
from repro.report.html import render_html
from repro.report.markdown import render_markdown
from repro.report.metrics import METRICS
from repro.report.plan import DGN_STEPS, GUIDANCE_LEVELS, Plan, make_plan
from repro.report.reference import reference_metrics
from repro.report.results import SCHEMA, build_results, schema_errors, table2_rows
from repro.report.run import Worker, run_plan
from repro.report.stats import Stat, collect, stat
from repro.versions import versions

# `beyond`: the budget of the rows beyond the paper relative to the paper's rows (plan.py)
# `guidance`: the guidance study's β levels (one in a quick report: the trade-off's far end, to keep minutes);
# `exact_draws`: the exact rows' prior draws (None: plan.EXACT_DRAWS × budget; a quick report keeps enough
# for β = 10, about 1 minute on the embedded set)
QUICK = {"classes": 3, "chains": 3, "budget": 0.1, "beyond": 0.5, "guidance": (10.0,), "exact_draws": 4096}
FULL = {"chains": 4, "budget": 1.0, "beyond": 1.0, "guidance": GUIDANCE_LEVELS, "exact_draws": None}

# The files a report writes at the top of OUT (_figures names the figures), and the rest of what it keeps
# there: see the module docstring.
REPORT_FILES = frozenset(
    {
        "index.html",
        "report.md",
        "metrics.json",
        "figure2.png",
        "figure3.png",
        "traces.png",
        "metrics.png",
        "table2.png",
        "reference.png",
        "guidance.png",
    }
)
RECORD = "repro-report.sha256"
_LOCK = ".report-lock"
_STAGING = ".report-staging"
_TEMPORARY = re.compile(r"\..+\.tmp\Z")  # repro.atomic's temporaries, which a killed run may leave
_CELL_FILE = re.compile(r"[a-z0-9-]+-(c\d+-[0-9a-f]{16}|[0-9a-f]{16}\.checkpoint)\.npz\Z")


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
        ms,
        classes,
        chains,
        budget,
        opts.seed,
        opts.map_steps,
        opts.rows,
        beyond=preset["beyond"],
        guidance=preset["guidance"],
        exact_draws=preset["exact_draws"],
    )


def make_report(opts: ReportOptions, out_dir: Path, replace: bool = False) -> dict:
    """Build the whole report in out_dir; return the metrics.json record. `replace`: write it beside files
    the report did not write, leaving them as they are (see the module docstring)."""
    started = time.perf_counter()
    ms, plan = plan_report(opts)
    refuse_what_cannot_fit(ms, plan, opts.device)  # in memory, before any model is converted
    n_classes = len(ms.class_names)
    chains, budget = plan.chains, plan.budget
    check_output_folder(out_dir, replace)  # before any model is converted

    reference_n = max(chains, 4)  # real images per class in the reference row
    real = None
    if ms.real_images is not None:  # every input is read before any sampling
        real = check_folder(ms, plan.classes, max(REAL_POOL, reference_n))
        if real.notice:
            print(f"notice: {real.notice}", file=sys.stderr)
    worker = Worker(ms, plan, opts.backend, opts.device, opts.progress)
    worker.check_inputs()
    executor = make_executor(opts.executor, opts.executor_options, opts.device)
    with exclusive(out_dir / _LOCK, f"output folder {out_dir}"):  # one report per folder
        check_output_folder(out_dir, replace)  # again, now that no other report can change it
        staging = out_dir / _STAGING
        shutil.rmtree(staging, ignore_errors=True)  # a killed report's
        try:
            (out_dir / "cells").mkdir(exist_ok=True)
        except OSError as e:
            raise BadInput(f"output folder {out_dir}: cannot write there ({e.strerror})") from None
        cells, counts = run_plan(worker, out_dir, executor)
        staging.mkdir()
        reference = reference_metrics(
            ms, worker.metrics, plan.classes, reference_n, real.notice if real else None
        )
        figs = _figures(plan, ms.class_names, cells, reference, staging)
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
                "id": models_id(ms, REPORT_USES),
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
        write_text(staging / "metrics.json", json.dumps(results, indent=2, allow_nan=False) + "\n")
        blocks = build_document(results)
        write_text(staging / "report.md", render_markdown(blocks))
        write_text(staging / "index.html", render_html(blocks, staging))
        _publish(out_dir, staging)
    return results


def check_output_folder(out_dir: Path, replace: bool = False) -> dict[str, str]:
    """Refuse an output folder the report must not write (see the module docstring), before hours of
    sampling rather than after; return the report's files at its top, name → sha256. Creates nothing."""
    where = f"output folder {out_dir}"
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"{where}: exists and is not a folder")
    ours, foreign = _contents(out_dir)
    _refuse_overwriting(where, foreign)
    if foreign and not replace:
        raise BadInput(
            f"{where}: holds {foreign[0][0]}, which repro report did not write; choose another folder, or "
            "pass --replace to write the report beside it (files the report did not write are left as they "
            "are)"
        )
    above = next(p for p in (out_dir / "cells", out_dir, *out_dir.absolute().parents) if p.exists())
    if not above.is_dir():
        raise BadInput(f"{where}: {above} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".", suffix=".tmp", dir=above))
    except OSError as e:
        raise BadInput(f"{where}: cannot write there ({e.strerror})") from None
    return ours


def _contents(out_dir: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The report's top-level files (name → sha256), and every entry that is not the report's (its path in
    OUT, and why)."""
    if not out_dir.is_dir():
        return {}, []
    recorded = _read_record(out_dir / RECORD)
    earlier = not recorded and _is_report_metrics(out_dir / "metrics.json")
    ours, foreign = {}, []
    for p in _listing(out_dir):
        name = p.name
        if name in (_LOCK, _STAGING) or _TEMPORARY.match(name) or (name == RECORD and p.is_file()):
            continue
        if name == "cells" and p.is_dir():
            foreign += [
                (f"cells/{q.name}", "which repro report did not write")
                for q in _listing(p)
                if q.is_dir() or not (_CELL_FILE.match(q.name) or _TEMPORARY.match(q.name))
            ]
        elif name in REPORT_FILES and p.is_file() and (earlier or name in recorded):
            digest = sha256_of(p)
            if earlier or digest in recorded[name]:
                ours[name] = digest
            else:
                foreign.append((name, "changed since repro report wrote it"))
        else:
            foreign.append((name, "which repro report did not write"))
    return ours, foreign


def _refuse_overwriting(where: str, foreign: list[tuple[str, str]]) -> None:
    """Refuse the first entry that is not the report's but has a name the report writes, --replace or not."""
    for name, why in foreign:
        if name in REPORT_FILES or name in (RECORD, "cells"):
            raise BadInput(
                f"{where}: holds {name}, {why}, and a report would overwrite it; move it away or choose "
                "another folder (even --replace never overwrites a file the report did not write)"
            )


def _listing(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as e:
        raise BadInput(f"output folder {folder}: cannot read it ({e.strerror})") from None


def _read_record(path: Path) -> dict[str, set[str]]:
    """RECORD's sha256s by file name (a name may have two while files move in); {} when missing or
    unreadable, and a line that is not `<sha256>  <name>` is skipped."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    recorded: dict[str, set[str]] = {}
    for line in lines:
        digest, sep, name = line.partition("  ")
        if sep and re.fullmatch(r"[0-9a-f]{64}", digest):
            recorded.setdefault(name, set()).add(digest)
    return recorded


def _is_report_metrics(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("schema") == SCHEMA


def _publish(out_dir: Path, staging: Path) -> None:
    """Move the staged files into OUT (see the module docstring). A file that stands in the way now, put
    there while the report ran, stops it and stays; a rerun then reuses every cell."""
    ours, foreign = _contents(out_dir)
    _refuse_overwriting(f"output folder {out_dir}", foreign)
    new = {p.name: sha256_of(p) for p in _listing(staging)}
    moving = {name: {ours.get(name), new.get(name)} - {None} for name in {*ours, *new}}
    _write_record(out_dir, moving)
    for name in new:
        os.replace(staging / name, out_dir / name)
    _write_record(out_dir, {name: {digest} for name, digest in {**ours, **new}.items()})
    staging.rmdir()


def _write_record(out_dir: Path, files: dict[str, set[str]]) -> None:
    lines = [f"{digest}  {name}\n" for name in sorted(files) for digest in sorted(files[name])]
    write_text(out_dir / RECORD, "".join(lines))


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
    sampled = [(r.key, r.label, r.mcmc) for r in plan.rows if r.kind == "sampler"]  # exact rows: no trace
    if sampled:
        figures.traces(
            {k: c.logp for k, c in by_cell.items()},
            {k: c.accepted for k, c in by_cell.items()},
            sampled,
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
    guided = _guidance_series(plan, summaries)
    if guided is not None:
        figures.guidance_tradeoff(*guided, out_dir / "guidance.png")
        out["guidance"] = "guidance.png"
    if reference is not None:
        figures.method_by_class(
            {("real", k): ex[None] for k, ex in reference["examples"].items()},
            [("real", "real images")],
            [(k, name) for k, name in classes if k in reference["examples"]],
            out_dir / "reference.png",
        )
        out["reference"] = "reference.png"
    return out


def _guidance_series(plan, summaries: dict[str, dict[str, Stat]]):
    """The guidance study's figure arguments (repro.report.figures.guidance_tradeoff), or None where the
    plan has no guided rows: per prior, the β = 1 row and its guided rows by β; class fidelity read by the
    independent evaluator where there is one (else the target classifier's confidence), against diversity,
    realism and, with real images, KID."""
    guided = [r for r in plan.rows if r.guidance != 1.0]
    if not guided:
        return None
    series = {}
    for prior, label in (("method", "N(0, I) prior"), ("fitted", "fitted prior")):
        mine = sorted((r for r in guided if r.prior == prior), key=lambda r: r.guidance)
        if not mine:
            continue
        made_from = [
            r
            for r in plan.rows
            if r.guidance == 1.0 and (r.method, r.tuning, r.prior) == (mine[0].method, mine[0].tuning, prior)
        ]
        rows = made_from[:1] + mine
        series[label] = [(r.guidance, summaries[r.key]) for r in rows]

    def measured(metric: str) -> bool:
        return all(p[metric].n > 0 for points in series.values() for _, p in points)

    fidelity = "evaluator_accuracy" if measured("evaluator_accuracy") else "target_confidence"
    others = [m for m in ("diversity", "judge_log_p_real", "kid") if measured(m)]
    marker = ("MAP+clip (DGN-AM)", summaries["map-clip"]) if "map-clip" in summaries else None
    return series, marker, fidelity, others


def _stat_of(d: dict) -> Stat:
    nan = float("nan")
    return Stat(nan if d["mean"] is None else d["mean"], nan if d["se"] is None else d["se"], d["n"])
