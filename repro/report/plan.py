"""What the report runs: its rows (a method with one way of choosing step sizes) and its cells (a row on one
class), each cell keyed by every setting that can change its numbers so a re-run reuses finished work.

The paper's budget is 6000 gradient evaluations per MCMC chain against DGN-AM's 200 MAP iterations; HMC
counts iterations × L + iterations. `budget` scales every MCMC row and the long MAP run together, so a quick
report keeps the paper's proportions between MCMC methods.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from repro.errors import BadInput
from repro.modelsets import ModelSet

PAPER_BUDGET = 6000  # gradient evaluations per MCMC chain in the paper
DGN_STEPS = 200  # DGN-AM's MAP iterations for CaffeNet
WARMUP_FRACTION = 0.25  # share of an adapted row's iterations spent in dual-averaging warm-up


@dataclass(frozen=True)
class Row:
    """One line of the tables: a sampler method, its iterations, step size and options."""

    key: str
    method: str
    label: str
    steps: int
    step_size: float
    options: dict = field(default_factory=dict)
    clip: bool = False
    tuning: str = "paper"  # "paper": the published schedule; "dual averaging": adapted in warm-up
    paper_key: str | None = None  # the Table 2 entry this row reproduces

    @property
    def is_map(self) -> bool:
        return self.method.startswith("map")

    @property
    def batches_classes(self) -> bool:
        """Whether all classes share one sampler call. Not for clipped MCMC: after clipping, the sampler
        re-evaluates only the chains that moved, a subset a per-chain class list cannot follow."""
        return not (self.clip and not self.is_map)

    def settings(self) -> dict:
        return {
            "method": self.method,
            "steps": self.steps,
            "step_size": self.step_size,
            "options": self.options,
            "clip": self.clip,
        }


@dataclass(frozen=True)
class Cell:
    """A row on one class: `chains` chains started from the report's seed, drawing the sampler's random
    streams from `stream_offset` on (its position in the row's batch)."""

    row: Row
    class_index: int
    chains: int
    seed: int
    models_id: str
    stream_offset: int

    @property
    def key(self) -> str:
        blob = json.dumps(
            {
                "row": self.row.key,
                **self.row.settings(),
                "class": self.class_index,
                "chains": self.chains,
                "seed": self.seed,
                "streams": self.stream_offset,
                "models": self.models_id,
            },
            sort_keys=True,
        )
        return f"{self.row.key}-c{self.class_index}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class Plan:
    rows: list[Row]
    classes: list[int]
    chains: int
    seed: int
    budget: float
    cells: list[Cell]


def mcmc_steps(budget: float, n_leapfrog: int | None = None) -> int:
    """Iterations that spend `budget` × 6000 gradients: MALA one per step, HMC L + 1 per iteration."""
    grads = PAPER_BUDGET * budget
    return max(2, round(grads / (n_leapfrog + 1 if n_leapfrog else 1)))


def rows(ms: ModelSet, budget: float, map_steps: int = DGN_STEPS) -> list[Row]:
    """The report's rows: the paper's four Table 2 methods, MAP without clipping short and long, and each
    MCMC method again with dual-averaging step sizes (beyond the paper)."""
    from repro.synthesis import presets

    if not budget > 0:
        raise BadInput(f"--budget must be positive, got {budget}")
    if map_steps < 2:
        raise BadInput(f"MAP needs at least 2 steps, got {map_steps}")
    p = presets(ms)
    long_map = max(map_steps, round(PAPER_BUDGET * budget))
    out = [
        Row(
            "map-clip",
            "map-clip",
            f"MAP+clip ({map_steps})",
            map_steps,
            *p["map-clip"],
            True,
            "paper",
            "MAP+clip",
        ),
        Row("map", "map", f"MAP ({map_steps})", map_steps, *p["map"]),
        Row("map-long", "map", f"MAP ({long_map})", long_map, *p["map"]),
    ]
    for method, label, paper_key in (
        ("mala-clip", "MALA+clip", "MALA+clip"),
        ("mala", "MALA", "MALA"),
        ("hmc", "HMC", "HMC"),
    ):
        step, opts = p[method]
        leap = opts.get("n_leapfrog")
        steps = mcmc_steps(budget, leap)
        clip = method.endswith("clip")
        out.append(Row(method, method, label, steps, step, dict(opts), clip, "paper", paper_key))
        adapted = {"schedule": "constant", "adapt": max(1, round(steps * WARMUP_FRACTION))}
        if leap:
            adapted["n_leapfrog"] = leap
        out.append(
            Row(f"{method}-da", method, f"{label}, dual avg.", steps, step, adapted, clip, "dual averaging")
        )
    return out


# Manifest entries that describe a set without changing any number a cell computes (each row's step sizes
# and options are in the cell key already), so editing them keeps finished cells.
DESCRIPTIVE_KEYS = (
    "description",
    "previews",
    "previews_note",
    "sha256",
    "file_bytes",
    "training",
    "train_info",
    "metrics",
    "step_tuning",
)


def models_id(ms: ModelSet) -> str:
    """Identity of a model set for cell keys: its name, manifest, and the content of every file it uses."""
    from repro.modelsets import file_digest

    manifest = {k: v for k, v in (ms.manifest or {}).items() if k not in DESCRIPTIVE_KEYS}
    h = hashlib.sha256(json.dumps({"name": ms.name, "manifest": manifest}, sort_keys=True).encode())
    for files in (ms.generator, ms.classifier, ms.judge, ms.evaluator):
        if files is not None and files.prototxt is not None:
            h.update(file_digest(files.prototxt, files.caffemodel).encode())
        elif files is not None:
            h.update(f"{files.arch}:{files.seed}:{files.last_scale}".encode())
    if ms.clip_bounds is not None:
        h.update(file_digest(ms.clip_bounds).encode())
    return h.hexdigest()[:16]


def make_plan(
    ms: ModelSet,
    classes: list[int],
    chains: int,
    budget: float,
    seed: int = 0,
    map_steps: int = DGN_STEPS,
    only: list[str] | None = None,
) -> Plan:
    n = len(ms.class_names)
    bad = [k for k in classes if not 0 <= k < n]
    if bad:
        raise BadInput(f"class {bad[0]} is outside model set {ms.name}'s {n} classes (0..{n - 1})")
    if not classes:
        raise BadInput("--classes is empty")
    if chains < 2:
        raise BadInput(f"--chains must be at least 2 (diversity and R-hat compare chains), got {chains}")
    all_rows = rows(ms, budget, map_steps)
    if only:
        unknown = sorted(set(only) - {r.key for r in all_rows})
        if unknown:
            raise BadInput(
                f"unknown row {unknown[0]!r}: expected some of {', '.join(r.key for r in all_rows)}"
            )
        all_rows = [r for r in all_rows if r.key in only]
    needs_bounds = [r.key for r in all_rows if r.clip]
    if needs_bounds and ms.clip_bounds is None:
        raise BadInput(f"model set {ms.name} has no clip bounds, which rows {', '.join(needs_bounds)} need")
    mid = models_id(ms)
    cells = [
        Cell(r, k, chains, seed, mid, i * chains if r.batches_classes else 0)
        for r in all_rows
        for i, k in enumerate(classes)
    ]
    return Plan(all_rows, list(classes), chains, seed, budget, cells)
