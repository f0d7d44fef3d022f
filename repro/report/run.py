"""Executing the plan: rows run their classes and chains in batched sampler calls, then every cell
(row × class) is measured and saved atomically under cells/, keyed by its settings, so a re-run with the
same arguments only loads.

Every class's chain j starts from the same code in every row (the same noise, mapped through the fitted
prior in the `-prior` rows: repro.samplers.initial). In a row that batches its classes, chain j of
the i-th class uses the sampler's random stream i·chains + j (the sampler gives chain n of a call stream n),
so such a row always runs whole: running only its missing classes would hand them other streams than their
keys promise. Rows that run one class per call (Row.batches_classes says which) use streams j. Long calls
also checkpoint the sampler, so an interrupted report resumes mid-row. What is measured on each cell is the
table of repro.report.metrics.

A cell carries the sha256 of its content (its meta record and arrays, as read back); a cell that does not
match it (edited by hand, or damaged yet still readable), that cannot be read, or that has none (written
before cells had one) is discarded with a one-line notice and run again: never reused, never fatal. A cell
of another CELL_VERSION is run again quietly, as a stale format rather than a damaged file.

The work is cut into units (`Unit`: one sampler call, a row's batch of classes), which a `Worker` runs; the
executors of repro.report.executors decide where units run (this process, or Ray tasks). A unit's numbers
depend only on the unit, never on where it ran or what ran before it.

A chain whose log density or images became NaN or inf (repro.evaluate.finite) is left out of every metric of
its cell (NaN per chain, and out of the class's metrics and diagnostics) and named in the cell's
`nonfinite_chains`; a cell written before that record, holding such a chain, is run again with a notice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from repro import samplers
from repro.errors import BadInput
from repro.evaluate.code_prior import fitted_prior
from repro.evaluate.diagnostics import summarize
from repro.evaluate.encoder import Encoder
from repro.evaluate.finite import nonfinite_chains
from repro.evaluate.image_metrics import ImageMetrics
from repro.evaluate.posterior_reference import draw_prior, log_likelihoods, reference, resample
from repro.modelsets import ModelSet, code_size
from repro.posterior import GaussianPrior, log_prior, posterior_model
from repro.report.metrics import METRICS, Run, Subject, measure
from repro.report.plan import Cell, Plan, Row
from repro.runtime import Backend, ClassTarget, make_backend
from repro.samplers import checkpoint as npz_record
from repro.samplers import precondition
from repro.samplers.bounds import dgn_am_box
from repro.samplers.initial import initial_codes
from repro.samplers.methods import METHODS

if TYPE_CHECKING:
    from repro.report.executors import Executor

# 2: the feature-space metrics (kid, fd, precision, recall); 3: ‖z‖²/D; 4: the fitted prior chosen by the
# realism of its draws, and `-prior` chains started at its draws; 5: `-prior` chains preconditioned by it;
# 6: no mass window closes in warm-up's last 50 iterations (the adapted kernels' short runs froze a step of 1)
CELL_VERSION = 6


@dataclass
class CellData:
    meta: dict  # JSON-able: settings, per-chain and per-class metrics, timing, diagnostics
    z: np.ndarray  # [C, D] the codes of the images
    images: np.ndarray  # [C, 3, H, W] final images (MAP: at the start of the last step, as DGN-AM)
    logp: np.ndarray  # [steps, C]
    accepted: np.ndarray  # [steps, C]


def cell_path(out_dir: Path, cell: Cell) -> Path:
    return out_dir / "cells" / f"{cell.key}.npz"


def load_cell(path: Path) -> CellData | None:
    """A finished cell, or None when it must be run (again): missing, of another CELL_VERSION, or not what
    was written (see the module docstring)."""
    if not path.exists():
        return None
    try:
        meta, a = npz_record.load(path)
    except BadInput:
        return _discarded(f"the unreadable cell {path}")
    if meta.get("cell_version") != CELL_VERSION:
        return None
    recorded = meta.pop("sha256", None)
    if recorded is None:
        return _discarded(f"the cell {path}: it has no sha256 (an older repro wrote it)")
    if recorded != _content_sha256(meta, a):
        return _discarded(f"the cell {path}: its content does not match its sha256")
    if "nonfinite_chains" not in meta:  # written before non-finite chains were left out of the metrics
        bad = nonfinite_chains(a["logp"], a["images"])
        if bad.count:
            return _discarded(f"the cell {path}: it measured {bad.count} non-finite chains as valid")
        meta["nonfinite_chains"] = bad.as_dict()
    return CellData(meta, a["z"], a["images"], a["logp"], a["accepted"])


def _discarded(what: str) -> None:
    print(f"notice: discarded {what}; running it again", file=sys.stderr)


def save_cell(path: Path, data: CellData) -> None:
    meta = {**data.meta, "cell_version": CELL_VERSION, "version": npz_record.VERSION}
    arrays = {"z": data.z, "images": data.images, "logp": data.logp, "accepted": data.accepted}
    npz_record.save(path, {**meta, "sha256": _content_sha256(meta, arrays)}, arrays)


def _content_sha256(meta: dict, arrays: dict[str, np.ndarray]) -> str:
    """sha256 of a cell's meta record and arrays as a reader sees them, not of the file's bytes: the digest
    travels inside the file it describes."""
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name} {a.dtype.str} {a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Unit:
    """One sampler call: a row and the cells it runs together (all its classes, or one class)."""

    row: Row
    cells: tuple[Cell, ...]

    @property
    def label(self) -> str:
        return self.row.key if len(self.cells) > 1 else f"{self.row.key} class {self.cells[0].class_index}"


def pending_units(plan: Plan, found: dict[str, CellData | None]) -> list[Unit]:
    """The units that make the missing cells: a row that batches its classes runs whole (its streams follow
    batch positions), other rows one unit per missing class."""
    units = []
    for row in plan.rows:
        cells = [c for c in plan.cells if c.row.key == row.key]
        missing = [c for c in cells if found[c.key] is None]
        if not missing:
            continue
        if row.batches_classes:
            units.append(Unit(row, tuple(cells)))
        else:
            units.extend(Unit(row, (c,)) for c in missing)
    return units


def posterior_key(row: Row) -> tuple[str, float | None, str, float]:
    """The posterior a row samples (objective, the method's prior σ, the row's prior kind, guidance β): rows
    that share it share a backend, and in a dry run a timing."""
    m = METHODS[row.method]
    return m.objective, m.prior_sigma, row.prior, row.guidance


def _cell_record(cell: Cell, values: dict) -> dict:
    """What every cell's meta record holds, whatever made its codes: its identity and its measured values."""
    return {
        "key": cell.key,
        "row": cell.row.key,
        "class_index": cell.class_index,
        "chains": cell.chains,
        "seed": cell.seed,
        "settings": cell.row.settings(),
        "per_chain": {key: v for key, v in values.items() if METRICS[key].unit == "chain"},
        "per_class": {key: v for key, v in values.items() if METRICS[key].unit == "class"},
    }


def _backend_key(row: Row) -> tuple:
    """The posterior whose backend a row uses: an exact row's images and logits are those of β = 1."""
    return posterior_key(dataclasses.replace(row, guidance=1.0) if row.kind == "exact" else row)


class Worker:
    """Runs units; holds what they share: the posterior backends (one per objective) and the image metrics."""

    def __init__(
        self,
        ms: ModelSet,
        plan: Plan,
        backend: str = "ort",
        device: str = "cpu",
        progress: bool = True,
        threads: int = 0,
    ):
        self.ms = ms
        self.plan = plan
        self.backend_name = backend
        self.device = device
        self.progress = progress
        self.threads = threads
        self._backends: dict[tuple, Backend] = {}
        self._prior: GaussianPrior | None = None
        self._metrics: ImageMetrics | None = None
        self._upper: np.ndarray | None = None
        self._exact: dict[str, ExactDraws] = {}

    @property
    def metrics(self) -> ImageMetrics:
        if self._metrics is None:
            self._metrics = ImageMetrics(self.ms)
        return self._metrics

    def backend(self, row: Row) -> Backend:
        """The posterior backend for the row's objective and prior; a sampler call aims it at its classes
        (ClassTarget)."""
        key = _backend_key(row)
        if key not in self._backends:
            objective, sigma, kind, guidance = key
            prior = self.fitted_prior() if kind == "fitted" else sigma
            model = posterior_model(self.ms, objective, prior, guidance)
            self._backends[key] = make_backend(self.backend_name, model, self.device, self.threads)
        return self._backends[key]

    def check_inputs(self) -> None:
        """Read now what the units read lazily, so a bad file stops the report before any sampling: the judge
        and evaluator (ImageMetrics), the clip bounds (every cell measures the code against them) and, where
        the plan has `-prior` rows, the real images or bounds their prior is fitted to."""
        self.metrics  # noqa: B018
        if self.ms.clip_bounds is not None:
            self.upper_bounds(code_size(self.ms))
        if any(r.prior == "fitted" for r in self.plan.rows):
            self.fitted_prior()

    def fitted_prior(self) -> GaussianPrior:
        """The `-prior` rows' Gaussian, fitted once (repro.evaluate.code_prior)."""
        if self._prior is None:
            self._prior = fitted_prior(self.ms, code_size(self.ms), metrics=self.metrics)
        return self._prior

    def upper_bounds(self, code_size: int) -> np.ndarray | None:
        if self._upper is None and self.ms.clip_bounds is not None:
            self._upper = samplers.load_bounds(self.ms.clip_bounds, code_size)
        return self._upper

    def exact_draws(self, row: Row) -> ExactDraws:
        """The prior draws of an exact row's prior, scored once for every exact row, class and β of it."""
        if row.prior not in self._exact:
            plan = self.plan
            backend = self._exact_backend(row)
            prior = self.fitted_prior() if row.prior == "fitted" else METHODS[row.method].prior_sigma
            stream = np.random.SeedSequence([plan.seed, EXACT_STREAM, ("method", "fitted").index(row.prior)])
            z = draw_prior(prior, row.steps, backend.code_size, np.random.default_rng(stream))
            log_lik = log_likelihoods(backend, z.astype(np.float32), progress=self.progress)
            self._exact[row.prior] = ExactDraws(z, log_lik, self._score_draws(backend, z))
        return self._exact[row.prior]

    def _exact_backend(self, row: Row) -> Backend:
        """The backend of the row's prior at β = 1, for images and logits (which neither β nor the class
        changes)."""
        return self.backend(row)

    def _score_draws(self, backend: Backend, z: np.ndarray) -> dict[str, np.ndarray]:
        """Every per-image metric of METRICS at every draw: [N] where the value does not depend on the class
        (`Metric.reads_class`), else [N, len(plan.classes)]. Images are made batch by batch and dropped."""
        classes = self.plan.classes
        upper = self.upper_bounds(z.shape[1])
        columns: dict[str, list] = {}
        quiet = not self.progress
        with tqdm(total=len(z), desc="exact: scoring", unit="code", file=sys.stderr, disable=quiet) as bar:
            for start in range(0, len(z), EXACT_BATCH):
                codes = z[start : start + EXACT_BATCH]
                images = np.asarray(backend.images(codes.astype(np.float32)), np.float32)
                subject = Subject(classes[0], images, self.metrics, codes, upper)
                for key, m in METRICS.items():
                    if m.unit != "chain" or not m.applies(subject):
                        continue
                    if m.reads_class:
                        value = np.stack([m.compute(subject.as_class(k)) for k in classes], axis=1)
                    else:
                        value = np.asarray(m.compute(subject), np.float64)
                    columns.setdefault(key, []).append(value)
                bar.update(len(codes))
        return {key: np.concatenate(parts) for key, parts in columns.items()}

    def _run_exact(self, unit: Unit, out_dir: Path) -> list[CellData]:
        """An exact row's cells: per class, SNIS estimates (and their standard errors) of every per-image
        metric under p(z | k) ∝ p(k | G(z))^β p(z), and `chains` codes resampled in proportion to the
        weights, measured like any row's final codes (so the tables, figures, claims and the set metrics
        read them as they read a sampler's)."""
        plan, row = self.plan, unit.row
        started = time.perf_counter()
        draws = self.exact_draws(row)
        at = {k: i for i, k in enumerate(plan.classes)}
        log_lik = draws.log_lik[:, plan.classes]
        refs = reference(log_lik, draws.values, beta=row.guidance)
        backend = self._exact_backend(row)
        prior = self.fitted_prior() if row.prior == "fitted" else METHODS[row.method].prior_sigma
        out = []
        for cell in unit.cells:
            ref = refs[at[cell.class_index]]
            # the row, class and seed, not the cell key: a new identity rule must not move the numbers
            seed = int(
                hashlib.sha256(f"{plan.seed}:{row.key}:{cell.class_index}".encode()).hexdigest()[:16], 16
            )
            picked = resample(ref.weights, cell.chains, seed)
            z = draws.z[picked]
            images = np.asarray(backend.images(z.astype(np.float32)), np.float32)
            logp = (row.guidance * draws.log_lik[picked, cell.class_index] + log_prior(z, prior))[None, :]
            subject = Subject(cell.class_index, images, self.metrics, z, self.upper_bounds(z.shape[1]))
            values = measure(subject)
            evaluated = self.metrics.has["evaluator"]
            meta = {
                **_cell_record(cell, values),
                "diagnostics": {},
                "evaluator_prediction": np.argmax(subject.evaluator[0], 1).tolist() if evaluated else None,
                "n_nonfinite": [0] * cell.chains,
                "nonfinite_chains": nonfinite_chains(logp, images).as_dict(),
                "final_step_size": [0.0] * cell.chains,
                "cell_seconds": (time.perf_counter() - started) / len(unit.cells),
                "exact": ref.summary(),
            }
            data = CellData(meta, z, images, logp, np.ones_like(logp))
            save_cell(cell_path(out_dir, cell), data)
            out.append(data)
        return out

    def run_unit(self, unit: Unit, out_dir: Path) -> list[CellData]:
        """Sample the unit's chains in one call (an exact row: importance sampling instead); measure and
        save each of its cells; then let go of the backends no later row samples."""
        try:
            return self._run_exact(unit, out_dir) if unit.row.kind == "exact" else self._sample(unit, out_dir)
        finally:
            self._release_after(unit.row)

    def _release_after(self, row: Row) -> None:
        """Units run in the plan's row order, and a backend of the full-size nets holds about 1.5 GB: the
        guidance study alone would keep six more alive to the end (measured: a peak of 11.8 GB for the
        dgn-caffenet report, where dropping them leaves the rows' own)."""
        needed = {_backend_key(r) for r in self.plan.rows[self.plan.rows.index(row) :]}
        for key in set(self._backends) - needed:
            del self._backends[key]

    def _sample(self, unit: Unit, out_dir: Path) -> list[CellData]:
        plan = self.plan
        row, cells = unit.row, unit.cells
        backend = self.backend(row)
        encoder = Encoder(self.ms) if METHODS[row.method].encoder else None  # PPGN's E(G(h))
        target = ClassTarget(backend, np.repeat([c.class_index for c in cells], plan.chains), encoder)
        code_size = backend.code_size
        # under a fitted prior, chains start at its draws and run preconditioned by its covariance
        start = self.fitted_prior() if row.prior == "fitted" else None
        z0 = np.concatenate([initial_codes(plan.seed, plan.chains, code_size, start) for _ in cells])
        options = dict(row.options)
        if row.clip:
            options["clip"] = dgn_am_box(self.upper_bounds(code_size))
        batch_key = hashlib.sha256("".join(c.key for c in cells).encode()).hexdigest()[:16]
        ckpt = out_dir / "cells" / f"{row.key}-{batch_key}.checkpoint.npz"
        result = precondition.sampler_under(start)(
            target,
            row.method,
            z0,
            row.steps,
            plan.seed,
            row.step_size,
            thin=max(1, row.steps // 100),
            checkpoint=ckpt,
            checkpoint_every=npz_record.cadence(row.steps),
            resume=True,
            progress=self.progress,
            **options,
        )
        final = result.z_image
        with np.errstate(over="ignore"):  # beyond float32: inf, reported as non-finite by _measure
            images = np.asarray(backend.images(final.astype(np.float32)), np.float32)
        out = []
        for i, cell in enumerate(cells):
            chains = slice(i * plan.chains, (i + 1) * plan.chains)
            data = self._measure(cell, result, final[chains], images[chains], chains)
            save_cell(cell_path(out_dir, cell), data)
            out.append(data)
        ckpt.unlink(missing_ok=True)
        return out

    def _measure(self, cell: Cell, result: samplers.Result, z, images, chains: slice) -> CellData:
        """Every metric on the cell's chains but those that became non-finite (repro.evaluate.finite): their
        per-chain values are NaN (null in metrics.json), and the class's metrics and diagnostics are of the
        others."""
        k, n = cell.class_index, cell.chains
        mcmc = cell.row.mcmc
        logp = result.logp[:, chains]
        accepted = result.accepted[:, chains]
        bad = nonfinite_chains(logp, images)
        ok = bad.finite_mask()
        kept = np.arange(result.logp.shape[1])[chains][ok]  # the finite chains' places in the batch
        diag = summarize(_chains_of(result, kept)) if mcmc and ok.any() else {}
        batch_chains = result.logp.shape[1]
        run = Run(
            mcmc, logp[:, ok], result.accept_rate[kept], result.n_grad, result.seconds / batch_chains, diag
        )
        subject = Subject(k, images[ok], self.metrics, z[ok], self.upper_bounds(z.shape[1]), run)
        if ok.any():
            values = {
                key: _spread(v, ok) if METRICS[key].unit == "chain" else v
                for key, v in measure(subject).items()
            }
        else:
            values = {key: [NAN] * n if m.unit == "chain" else NAN for key, m in METRICS.items()}
        evaluated = self.metrics.has["evaluator"] and ok.any()
        meta = {
            **_cell_record(cell, values),
            "diagnostics": diag,
            "evaluator_prediction": (
                _spread(np.argmax(subject.evaluator[0], axis=1).tolist(), ok, None) if evaluated else None
            ),
            "n_nonfinite": result.n_nonfinite[chains].tolist(),
            "nonfinite_chains": bad.as_dict(),
            "final_step_size": result.step_size[chains].tolist(),
            "cell_seconds": result.seconds * n / batch_chains,
        }
        return CellData(meta, z, images, logp, accepted)


NAN = float("nan")
EXACT_STREAM = 2016  # the exact rows' prior draws come from SeedSequence([seed, EXACT_STREAM, prior])
EXACT_BATCH = 64  # prior draws made into images and scored at a time


@dataclass(frozen=True)
class ExactDraws:
    """Prior draws and what every exact row of that prior reads from them."""

    z: np.ndarray  # [N, D] float64
    log_lik: np.ndarray  # [N, K] log p(k | G(z)), every class of the classifier
    values: dict[str, np.ndarray]  # per-image metric → [N] or [N, len(plan.classes)]


def _spread(values: list, ok: np.ndarray, missing: object = NAN) -> list:
    """Per-chain values of the finite chains (ok) spread back over all of the cell's chains."""
    out = [missing] * len(ok)
    for i, value in zip(np.flatnonzero(ok), values, strict=True):
        out[i] = value
    return out


def _chains_of(result, chains: slice | np.ndarray):
    """The sampler result restricted to some chains (one class, or its finite chains), for per-class
    diagnostics."""
    import dataclasses

    def part(a, axis):
        return None if a is None else np.take(a, np.arange(a.shape[axis])[chains], axis=axis)

    return dataclasses.replace(
        result,
        z=result.z[chains],
        samples=part(result.samples, 1),
        logp=result.logp[:, chains],
        accepted=result.accepted[:, chains],
        accept_rate=result.accept_rate[chains],
        energy_error=part(result.energy_error, 1),
        divergent=part(result.divergent, 1),
        n_nonfinite=result.n_nonfinite[chains],
        step_size=result.step_size[chains],
        z_last_start=part(result.z_last_start, 0),
    )


def run_plan(worker: Worker, out_dir: Path, executor: Executor) -> tuple[list[CellData], dict]:
    """All cells of the plan, loading finished ones and running the rest on `executor`; returns them and
    counts of cells run and reused."""
    plan = worker.plan
    found = {c.key: load_cell(cell_path(out_dir, c)) for c in plan.cells}
    units = pending_units(plan, found)
    ran = 0
    for data in executor.run(worker, units, out_dir):
        found[data.meta["key"]] = data
        ran += 1
    cells = [found[c.key] for c in plan.cells]
    return cells, {"run": ran, "reused": len(cells) - ran}
