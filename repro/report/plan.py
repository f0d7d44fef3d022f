"""What the report runs: its rows (a method with one way of choosing step sizes) and its cells (a row on one
class), each cell keyed by every setting that can change its numbers so a re-run reuses finished work.

The rows are the methods of repro.samplers.methods, in its order, each in the variants of `VARIANTS` that
apply to it. The paper's budget is 6000 gradient evaluations per MCMC chain against DGN-AM's 200 MAP
iterations; an iteration costs its kernel's `gradients_per_step` (HMC: L, the trajectory's start gradient
being cached). `budget` scales every MCMC row and the long MAP run together, so a quick report keeps the
paper's proportions between MCMC methods. The authors' released samplers (`Method.released`) get one row
each, at their scripts' iteration count × budget: their linear schedules span the run as the scripts ran it.
The rows beyond the paper (dual averaging, fitted prior) may be scaled further by `beyond`, so that a quick
report stays quick as such rows are added; the paper's own rows keep the paper's proportions. A budget that
leaves an MCMC row fewer than `MIN_MCMC_STEPS` iterations still runs, but the plan records those rows and the
smallest budget that lifts them (`Plan.short_rows`, `Plan.floor_budget`), and the report says its verdicts
rest on too few iterations.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from repro.errors import BadInput
from repro.evaluate.encoder import code_blob
from repro.modelsets import REPORT_USES, ModelSet, models_id
from repro.samplers.methods import METHODS, Method, iterations_for

PAPER_BUDGET = 6000  # gradient evaluations per MCMC chain in the paper
DGN_STEPS = METHODS["map-clip"].published_steps  # DGN-AM's MAP iterations for CaffeNet
# The fewest iterations per chain an MCMC row needs before the claims' verdicts may rest on it. Dual
# averaging adapts during the first quarter of a row (methods.WARMUP_FRACTION) and Stan's constants damp its
# first t0 = 10 updates, so 100 iterations leave it 25 updates to find the step, where 2 or 6 leave it
# nothing; the paper's decaying schedules are squeezed the same way; and the claims compare means over the
# chains' final states, which must have moved away from their shared starting codes for the comparison to
# say anything about the samplers. At the paper's budget every MCMC row runs at least 400 (the released
# scripts; HMC 600).
MIN_MCMC_STEPS = 100


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
    prior: str = "method"  # "method": the method's own (N(0, I) or none); "fitted": evaluate.code_prior
    guidance: float = 1.0  # β: the likelihood raised to β (repro.posterior); 1 is the paper
    # "sampler": `method` run for `steps` iterations; "exact": the exact posterior `method` samples, by
    # importance sampling from `steps` prior draws (repro.evaluate.posterior_reference), no sampler at all
    kind: str = "sampler"

    @property
    def mcmc(self) -> bool:
        return self.kind == "sampler" and METHODS[self.method].mcmc

    @property
    def batches_classes(self) -> bool:
        """Whether all classes share one sampler call. Not for clipped MCMC: a step in which any chain of
        the call is clipped costs the whole call one more evaluation, and gradients are counted per call,
        so batched classes would charge each other's clipping; run alone, a class's count is its own. An
        exact row's prior draws serve all its classes."""
        return not (self.clip and self.mcmc)

    def settings(self) -> dict:
        settings = {
            "method": self.method,
            "steps": self.steps,
            "step_size": self.step_size,
            "options": self.options,
            "clip": self.clip,
            "prior": self.prior,
        }
        if self.guidance != 1.0:  # so the paper's rows keep the keys of cells made before guidance existed
            settings["guidance"] = self.guidance
        if self.kind != "sampler":
            settings["kind"] = self.kind
        return settings


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
    short_rows: dict[str, int] = field(default_factory=dict)  # MCMC row → iterations, where < MIN_MCMC_STEPS
    floor_budget: float | None = None  # the smallest --budget lifting every MCMC row to MIN_MCMC_STEPS


def mcmc_steps(budget: float, gradients_per_step: int = 1) -> int:
    """Iterations that spend `budget` × 6000 gradients at the kernel's gradients per iteration."""
    return max(2, iterations_for(PAPER_BUDGET * budget, gradients_per_step))


# β of the guidance study (beyond the paper): the paper's exact posterior holds no class-specific images;
# raising the likelihood to β trades diversity and realism for class fidelity, and these levels span that.
GUIDANCE_LEVELS = (3.0, 10.0, 30.0)


@dataclass(frozen=True)
class RowContext:
    """What a row variant needs to size and set up its row."""

    ms: ModelSet
    budget: float
    map_steps: int
    beyond: float = 1.0  # the budget of the rows beyond the paper, as a fraction of `budget`
    guidance: tuple[float, ...] = GUIDANCE_LEVELS  # the guidance study's β levels
    exact_draws: int | None = None  # prior draws of the exact rows (None: EXACT_DRAWS × budget, ≥ EXACT_MIN)


def _published(m: Method, c: RowContext) -> Row | None:
    """The method as published: DGN-AM's MAP for `map_steps` iterations, the paper's MCMC at the budget, the
    released samplers at their scripts' iterations (× budget). The samplers beyond the paper have no
    published run: their rows are their dual-averaging ones."""
    if "paper" not in m.tunings or (m.encoder and code_blob(c.ms) is None):
        return None  # PPGN's row needs the set's encoder: dgn-googlenet and the random set have none
    if m.released:
        steps, label = max(2, round(m.published_steps * c.budget)), m.label
    elif m.mcmc:
        steps = mcmc_steps(c.budget, m.kernel.gradients_per_step(**m.published))
        label = m.label
    else:
        steps, label = c.map_steps, f"{m.label} ({c.map_steps})"
    return Row(
        m.name, m.name, label, steps, c.ms.start_step(m), dict(m.published), m.clip, "paper", m.paper_key
    )


def _long_map(m: Method, c: RowContext) -> Row | None:
    """Unclipped MAP run as long as the MCMC budget: does optimising longer alone change the images?"""
    if m.mcmc or m.clip or m.released:
        return None
    steps = max(c.map_steps, round(PAPER_BUDGET * c.budget))
    return Row(f"{m.name}-long", m.name, f"{m.label} ({steps})", steps, c.ms.start_step(m), dict(m.published))


def _dual_averaging(m: Method, c: RowContext) -> Row | None:
    """Beyond the paper: the published run tuned by dual averaging (`Method.dual_averaging`)."""
    if not m.mcmc or m.released:
        return None
    steps = mcmc_steps(c.budget * c.beyond, m.kernel.gradients_per_step(**m.dual_averaging(1)))
    options = m.dual_averaging(steps)
    return Row(
        f"{m.name}-da",
        m.name,
        f"{m.label}, dual avg.",
        steps,
        c.ms.start_step(m),
        options,
        m.clip,
        "dual averaging",
    )


def _fitted_prior(m: Method, c: RowContext) -> Row | None:
    """Beyond the paper: the dual-averaging row again with a prior fitted to real codes in place of N(0, I)
    (repro.evaluate.code_prior): are grey MCMC images the prior's doing?"""
    if not m.mcmc or m.clip or m.released or m.prior_sigma is None:
        return None
    row = _dual_averaging(m, c)
    return dataclasses.replace(
        row, key=f"{row.key}-prior", label=f"{row.label}, fitted prior", prior="fitted"
    )


def _guided(m: Method, c: RowContext) -> list[Row]:
    """Beyond the paper: MALA with dual averaging at each guidance level, under N(0, I) and under the fitted
    prior: the trade-off between class fidelity and diversity or realism that a user of the method chooses.
    One method is enough to show the posterior's side of it (the samplers are compared at β = 1)."""
    if m.name != "mala":
        return []
    made = []
    for prior in (_dual_averaging(m, c), _fitted_prior(m, c)):
        for beta in c.guidance:
            key, label = f"{prior.key}-g{beta:g}", f"{prior.label}, guidance β = {beta:g}"
            made.append(dataclasses.replace(prior, key=key, label=label, guidance=beta))
    return made


# Prior draws of an exact row at the paper's budget; fewer with a smaller budget, never under EXACT_MIN.
# On the embedded set p(k) ≈ 0.07-0.26 at β = 1, so 1024 draws keep N · p(k) (the draws rejection sampling
# would accept) above posterior_reference.ESS_FLOOR at β = 1; at β = 10 E[p(k | G(z))^10] is about 100
# times smaller, so a class keeps its estimates only with thousands of draws (the quick report's 4096 keep
# some, 1024 none).
EXACT_DRAWS = 8192
EXACT_MIN = 1024


def _exact(m: Method, c: RowContext) -> list[Row]:
    """Beyond the paper: the exact posterior of each prior and guidance level the MCMC rows sample, by
    importance sampling from the prior (bounded weights: p(k | G(z))^β ≤ 1), as the reference that tells a
    sampler's failure from the model's. Made with MALA's posterior (log p(k | x), N(0, I) or fitted), which
    HMC's rows share; the clipped rows' box-truncated posterior and the released samplers' (logits, no
    prior) have none."""
    if m.name != "mala":
        return []
    draws = c.exact_draws or max(EXACT_MIN, round(EXACT_DRAWS * c.budget))
    made = []
    for prior, suffix, label in (("method", "", ""), ("fitted", "-prior", ", fitted prior")):
        for beta in (1.0, *c.guidance):
            key = f"exact{suffix}" + ("" if beta == 1.0 else f"-g{beta:g}")
            shown = "exact posterior (importance sampling" + label
            shown += ")" if beta == 1.0 else f", guidance β = {beta:g})"
            made.append(Row(key, m.name, shown, draws, 0.0, {}, False, "exact", None, prior, beta, "exact"))
    return made


# Each method's rows, in this order; a variant returns a row, several, or None (or none) where it does not
# apply to the method.
VARIANTS: list[Callable[[Method, RowContext], Row | list[Row] | None]] = [
    _published,
    _long_map,
    _dual_averaging,
    _fitted_prior,
    _guided,
    _exact,
]


def rows(
    ms: ModelSet,
    budget: float,
    map_steps: int = DGN_STEPS,
    beyond: float = 1.0,
    guidance: tuple[float, ...] = GUIDANCE_LEVELS,
    exact_draws: int | None = None,
) -> list[Row]:
    if not (budget > 0 and math.isfinite(budget)):
        raise BadInput(f"--budget: expected a finite number > 0, got {budget}")
    if map_steps < 2:
        raise BadInput(f"MAP needs at least 2 steps, got {map_steps}")
    context = RowContext(ms, budget, map_steps, beyond, guidance, exact_draws)
    made = (variant(m, context) for m in METHODS.values() for variant in VARIANTS)
    return [row for rows in made for row in (rows if isinstance(rows, list) else [rows]) if row is not None]


def floor_budget(ms: ModelSet, keys: set[str], map_steps: int = DGN_STEPS, beyond: float = 1.0) -> float:
    """The smallest budget, to 0.001, at which every MCMC row among `keys` runs MIN_MCMC_STEPS iterations."""

    def enough(thousandths: int) -> bool:
        made = rows(ms, thousandths / 1000, map_steps, beyond)
        return all(r.steps >= MIN_MCMC_STEPS for r in made if r.mcmc and r.key in keys)

    low, high = 0, 1000  # iterations grow with the budget: bisect between a failing and a sufficing one
    while not enough(high):
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high / 1000


def make_plan(
    ms: ModelSet,
    classes: list[int],
    chains: int,
    budget: float,
    seed: int = 0,
    map_steps: int = DGN_STEPS,
    only: list[str] | None = None,
    beyond: float = 1.0,
    guidance: tuple[float, ...] = GUIDANCE_LEVELS,
    exact_draws: int | None = None,
) -> Plan:
    ms.check_classes(classes)
    if not classes:
        raise BadInput("--classes is empty")
    if chains < 2:
        raise BadInput(f"--chains must be at least 2 (diversity and R-hat compare chains), got {chains}")
    all_rows = rows(ms, budget, map_steps, beyond, guidance, exact_draws)
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
    mid = models_id(ms, REPORT_USES)
    cells = [
        Cell(r, k, chains, seed, mid, i * chains if r.batches_classes else 0)
        for r in all_rows
        for i, k in enumerate(classes)
    ]
    short = {r.key: r.steps for r in all_rows if r.mcmc and r.steps < MIN_MCMC_STEPS}
    needed = floor_budget(ms, set(short), map_steps, beyond) if short else None
    return Plan(all_rows, list(classes), chains, seed, budget, cells, short, needed)
