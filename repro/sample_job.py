"""One sampling job on a model set, as `repro sample` runs it: parity gate, sampler, images, run record.

The settings of each method (objective, published schedule, start step) come from its entry in
repro.samplers.methods; the sampler API itself stays textbook-plain, so every departure from the textbook is
written down in that one table.

Output folder OUT, as one unit. Beside OUT (in its parent, so every rename stays on one file system) a job
keeps `.OUT.sample-work/`: `job.json` (the job's settings, below, and the software versions) and
`checkpoint.npz`, the sampler's checkpoint (`repro.samplers.checkpoint.cadence`). The same command again
continues from it bit for bit; a checkpoint whose job.json differs (another run, or other versions) is
refused, naming the first differing key, unless --replace discards it. The finished files are written into a
fresh `.OUT.sample-new-<hex>/` and renamed onto OUT: an absent or empty OUT in one rename, a full one by
renaming it aside to `.OUT.sample-old-<hex>/` first, then removing that; the work folder goes last. A kill
at any point leaves OUT whole (the old run or the new one) or absent, never a mixture, and the checkpoint
survives until the new OUT is in place. A rerun removes the `.OUT.sample-new-<hex>` / `.OUT.sample-old-<hex>`
leftovers of killed runs. A file that is not an output of ours, put into OUT while the job ran, stops the
swap (exit 2): that file stays, and so does the finished checkpoint.
While it runs, a job holds `.OUT.sample-lock` beside OUT (an flock, gone with the process), and a second
job into the same OUT is refused (exit 2) rather than sharing its checkpoint and staging folders.

The settings are everything that decides the output files but the timings: the model set (its name and a
hash of its fields and of the content of every file it names, the judge and the evaluator included, whose
scores of the images run.json records, but for the clip bounds), class, method, chains, steps, seed, start
step, sampler options (the clip bounds by content, for the methods that clip), backend and device; run.json
records them under "settings".

The clip bounds are read first, then OUT is checked, both before any model is converted, and the judge and
evaluator are loaded before the posterior is built: a bad input stops the job before any sampling. OUT must
not be a file, its parent must be writable, and a folder holding another run (a run.json whose settings
differ, or none) is refused unless --replace. A folder holding a file `repro sample` does not write is never
replaced, even with --replace. A rerun with the same settings is the same run: it samples again (resuming
from a checkpoint when a killed attempt left one) and replaces OUT with the identical result.

Before that, a run whose traces, samples, images and value-and-grad call cannot fit in the available memory
is refused (exit 2, repro.resources). A run in which a chain's log density or images became NaN or inf
(repro.evaluate.finite) is written as usual, with run.json's `nonfinite` naming those chains and the judge and
evaluator scores of their images null, and then ends with exit 1 (CheckFailed), naming the chains and the
first step.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from repro import samplers
from repro.atomic import atomic_path, exclusive, write_text
from repro.dcgan import DcganFiles, judge_files
from repro.errors import BadInput, CheckFailed
from repro.evaluate.code_prior import fitted_prior
from repro.evaluate.diagnostics import summarize
from repro.evaluate.finite import nonfinite_chains
from repro.evaluate.image_metrics import ImageMetrics, as_saved, softmax
from repro.images import grid, save_png, to_display
from repro.modelsets import ModelSet, code_size, sha256_of
from repro.parity import sampling_gate
from repro.posterior import GaussianPrior, Prior, posterior_model
from repro.resources import call_bytes, net_sizes, refuse_unless_fits, sampling_bytes, size_text
from repro.runtime import ClassTarget, make_backend
from repro.samplers import checkpoint as npz_record
from repro.samplers.initial import initial_codes
from repro.samplers.methods import PRIORS, TUNINGS, method
from repro.versions import versions


@dataclass
class SampleJob:
    models: ModelSet
    class_index: int
    method: str
    chains: int = 4
    steps: int | None = None
    seed: int = 0
    backend: str = "ort"
    device: str = "cpu"
    clip_bounds: Path | None = None
    step_size: float | None = None
    adapt: int = 0
    parity_check: bool = True
    progress: bool = True
    options: dict = field(default_factory=dict)
    # What the report's rows vary, so one row can be run alone: "paper" (the published schedules) or
    # "dual-averaging" (the `-da` rows); "standard" (the method's N(0, σ²I)) or "fitted" (the `-prior` rows'
    # Gaussian, repro.evaluate.code_prior); and guidance β, the likelihood raised to β.
    tuning: str = "paper"
    prior: str = "standard"
    guidance: float = 1.0


def run_job(job: SampleJob, out_dir: Path, replace: bool = False) -> dict:
    """Run the job into out_dir (see the module docstring); `replace`: replace a folder holding another
    run's files, and discard an interrupted other run's checkpoint."""
    m = method(job.method)
    ms = job.models
    ms.check_classes([job.class_index])
    step_size = ms.start_step(m) if job.step_size is None else job.step_size
    steps = job.steps or m.published_steps
    if job.tuning not in TUNINGS:
        raise BadInput(f"--tuning: expected one of {', '.join(TUNINGS)}, got {job.tuning!r}")
    if job.prior not in PRIORS:
        raise BadInput(f"--prior: expected one of {', '.join(PRIORS)}, got {job.prior!r}")
    if job.prior != "standard" and m.prior_sigma is None:
        raise BadInput(f"--prior {job.prior}: method {job.method} has no prior term to replace")
    options = dict(m.published) if job.tuning == "paper" else m.dual_averaging(steps)
    if m.clip:
        bounds_file = job.clip_bounds or ms.clip_bounds
        if bounds_file is None:
            raise BadInput(
                f"method {job.method} needs clip bounds: model set {ms.name} has none; pass --clip-bounds"
            )
        options["clip"] = (0.0, Path(bounds_file))  # in the settings by content; read below
    if job.adapt:
        options["adapt"] = job.adapt
    options.update(job.options)
    _refuse_what_cannot_fit(job, steps, options.get("thin", 1))
    clip = options.get("clip")
    out = Output.locate(out_dir)  # before any model is converted
    scorers = ImageMetrics(ms)  # the judge and evaluator: a bad file stops us before any sampling
    prior = job_prior(job, scorers)
    settings = job_settings(job, steps, step_size, options, prior)
    if isinstance(clip, tuple) and isinstance(clip[1], Path):  # read now: a bad file stops the job first
        options["clip"] = (clip[0], samplers.load_bounds(clip[1], code_size(ms)))
    with exclusive(out.lock, f"output folder {out.folder}"):
        out.prepare(settings, replace)
        record = _sample_into(out, job, settings, steps, step_size, options, scorers, prior)
    bad = record["nonfinite"]
    if bad["count"]:  # the files stay, for the user to look at
        raise CheckFailed(
            f"{bad['describe']}; their images were not scored; the run is kept in "
            f"{out.folder} (run.json: nonfinite)"
        )
    return record


def _refuse_what_cannot_fit(job: SampleJob, steps: int, thin: object) -> None:
    """Refuse a run whose traces, samples, images and value-and-grad call cannot fit in memory
    (repro.resources), before anything is converted or sampled."""
    sizes = net_sizes(job.models)
    held = sampling_bytes(sizes, job.chains, steps, thin if isinstance(thin, int) and thin >= 1 else 1)
    call = call_bytes(sizes, job.chains, job.device)
    refuse_unless_fits(
        held + call,
        f"--chains {job.chains} × --steps {steps}: the run",
        "--chains" if call > held else "--chains or --steps",
        f"traces, samples and images {size_text(held)}, a value-and-grad call over every chain "
        f"{size_text(call)}",
    )


def job_prior(job: SampleJob, scorers: ImageMetrics) -> Prior:
    """The prior term the job samples with: the method's σ, or a fitted Gaussian (repro.evaluate.code_prior;
    "fitted" measures its candidates with the set's scorers)."""
    if job.prior == "standard":
        return method(job.method).prior_sigma
    form = job.prior.removeprefix("fitted").removeprefix("-") or "fitted"
    return fitted_prior(job.models, code_size(job.models), form, scorers)


def _sample_into(
    out: Output,
    job: SampleJob,
    settings: dict,
    steps: int,
    step_size: float,
    options: dict,
    scorers: ImageMetrics,
    prior: Prior,
) -> dict:
    m = method(job.method)
    ms = job.models
    model = posterior_model(ms, m.objective, prior, job.guidance)
    backend = make_backend(job.backend, model, job.device)
    z0 = initial_codes(
        job.seed, job.chains, backend.code_size, prior if isinstance(prior, GaussianPrior) else None
    )

    timings: dict[str, float] = {}
    parity = []
    if job.parity_check:
        t0 = time.perf_counter()
        checks = sampling_gate(backend, model, job.class_index, z0, job.device)
        parity = [c.as_dict() for c in checks]
        timings["parity_s"] = time.perf_counter() - t0
        failed = [c for c in checks if c.gates and not c.passed]
        if failed:
            others = [c for c in checks if not c.gates]
            raise CheckFailed(
                "parity check failed before sampling: "
                + "; ".join(f"{c.name} error {c.error:.2e} > {c.tolerance:.0e}" for c in failed)
                + " (beside it: "
                + "; ".join(f"{c.name} error {c.error:.2e}" for c in others)
                + "; use --no-parity-check to sample anyway)"
            )
        for c in checks:
            if c.gates and c.flips:
                print(f"notice: parity gate passed with the kink allowance: {c.name}", file=sys.stderr)

    out.start(settings)
    t0 = time.perf_counter()
    result = samplers.sample(
        ClassTarget(backend, job.class_index),
        job.method,
        z0,
        steps,
        job.seed,
        step_size,
        progress=job.progress,
        checkpoint=out.checkpoint,
        checkpoint_every=npz_record.cadence(steps),
        resume=True,
        **options,
    )
    timings["sample_s"] = time.perf_counter() - t0

    final = result.z_image
    images = backend.images(final)
    bad = nonfinite_chains(result.logp, images)
    finite = bad.finite_mask()
    staging = out.staging()
    tiles = [to_display(img) for img in images]
    for i, tile in enumerate(tiles):
        save_png(staging / f"chain_{i:03d}.png", tile)
    save_png(
        staging / "grid.png", grid(tiles, columns=min(8, len(tiles))), scale=max(1, 256 // tiles[0].shape[0])
    )
    with atomic_path(staging / "samples.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                z=result.z,
                z_image=final,
                samples=result.samples,
                logp=result.logp,
                accepted=result.accepted,
                images=images,
            )

    shown = ("models", "class_index", "method", "objective", "prior_sigma", "tuning", "prior", "guidance")
    shown += ("chains", "steps", "seed")
    record = {
        **{key: settings[key] for key in shown},
        "class_name": ms.class_names[job.class_index],
        "step_size": step_size,
        "options": {k: (v if not isinstance(v, tuple) else "per-unit bounds") for k, v in options.items()},
        "backend": job.backend,
        "device": str(getattr(backend, "device", job.device)),
        "settings": settings,
        "parity": parity,
        "accept_rate": result.accept_rate.tolist(),
        "n_grad": int(result.n_grad),
        "final_logp": [v if np.isfinite(v) else None for v in result.logp[-1].tolist()],
        "nonfinite": {**bad.as_dict(), "describe": bad.describe() if bad.count else None},
        "diagnostics": summarize(result),
        "judge": None
        if scorers.judge is None
        else {
            **scorers.judge.describe(),
            "log_p_real": _per_chain(
                scorers.judge.log_p_real(images[finite]).tolist() if finite.any() else [], finite
            ),
            "excluded_nonfinite": bad.count,
        },
        "evaluator": _evaluator_scores(scorers, images, job.class_index, finite),
        "timings": {**timings, "seconds": result.seconds},
        "versions": versions(),
    }
    write_text(staging / "run.json", json.dumps(record, indent=2, default=float))
    out.commit(staging)
    return record


def _evaluator_scores(
    scorers: ImageMetrics, images: np.ndarray, class_index: int, finite: np.ndarray
) -> dict | None:
    """The independent evaluator on the images as saved, as the report scores them: its top-1 class per
    chain, the fraction that is the sampled class, and its softmax probability of that class per chain;
    the non-finite chains are not scored (null, and out of the fraction)."""
    if not scorers.has["evaluator"]:
        return None
    logits = scorers.evaluator_outputs(as_saved(images[finite]))[0] if finite.any() else np.zeros((0, 1))
    predicted = np.argmax(logits, axis=1)
    return {
        **scorers.describe()["evaluator"],
        "prediction": _per_chain(predicted.tolist(), finite),
        "accuracy": float(np.mean(predicted == class_index)) if finite.any() else None,
        "p_class": _per_chain(softmax(logits)[:, class_index].tolist() if finite.any() else [], finite),
        "excluded_nonfinite": int((~finite).sum()),
    }


def _per_chain(values: list, finite: np.ndarray) -> list:
    """Scores of the finite chains spread back over every chain, null for the others."""
    out: list = [None] * len(finite)
    for i, value in zip(np.flatnonzero(finite), values, strict=True):
        out[i] = value
    return out


# ---- the job's identity ----------------------------------------------------------------------------------

# Not part of a model set's identity: where it came from (root, manifest: their content is in the other
# fields), what `repro sample` never uses (real images), and its clip bounds, which count (by content) in
# the options of the clipped methods that use them.
_NOT_IDENTITY = ("root", "manifest", "clip_bounds", "real_images")


def job_settings(job: SampleJob, steps: int, step_size: float, options: dict, prior: Prior) -> dict:
    """Everything that decides the job's output files but the timings, as plain JSON (see the docstring).
    A fitted prior counts by content: it depends on files the model set's identity leaves out (real
    images) and, for "fitted", on the scorers that chose it."""
    m = method(job.method)
    settings = {
        "models": job.models.name,
        "models_id": models_id(job.models),
        "class_index": job.class_index,
        "method": job.method,
        "objective": m.objective,
        "prior_sigma": m.prior_sigma,
        "tuning": job.tuning,
        "prior": job.prior,
        "prior_fit": _prior_identity(prior),
        "guidance": job.guidance,
        "chains": job.chains,
        "steps": steps,
        "seed": job.seed,
        "step_size": step_size,
        "options": _identity(options),
        "backend": job.backend,
        "device": job.device,
    }
    return json.loads(json.dumps(settings))


def _prior_identity(prior: Prior) -> object:
    """A fitted prior by its numbers (not by the measurements that chose it, which may differ in the last
    bits from one machine to another while choosing the same prior)."""
    if not isinstance(prior, GaussianPrior):
        return None
    return _identity({"mean": prior.mean, "std": prior.std, "corr_factor": prior.corr_factor})


def models_id(ms: ModelSet) -> str:
    """Hash of the model set's fields, every file it names by content (see _NOT_IDENTITY for what is not)."""
    h = hashlib.sha256()
    for f in dataclasses.fields(ms):
        if f.name not in _NOT_IDENTITY:
            h.update(json.dumps([f.name, _identity(getattr(ms, f.name))], sort_keys=True).encode())
    return h.hexdigest()[:16]


def _identity(value: object) -> object:
    """A JSON-able stand-in for a setting: files by content, arrays by their bytes."""
    if isinstance(value, DcganFiles):
        return {
            "dcgan": [sha256_of(p) for p in judge_files(value.index)],
            "preprocess": value.preprocess,
            "file_format": value.file_format,
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _identity(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return {"file_sha256": sha256_of(value)}
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        return {
            "array_sha256": hashlib.sha256(a.tobytes()).hexdigest(),
            "dtype": str(a.dtype),
            "shape": list(a.shape),
        }
    if isinstance(value, dict):
        return {str(k): _identity(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_identity(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _difference(saved: dict, now: dict, prefix: str = "") -> tuple[str, object, object] | None:
    """The first key (dotted into nested objects) whose value differs, with both values; None: they agree."""
    for key in [*now, *(k for k in saved if k not in now)]:
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _difference(a, b, f"{prefix}{key}.")
            if inner is not None:
                return inner
        elif a != b:
            return f"{prefix}{key}", a, b
    return None


def _show(key: str, saved: object, now: object) -> str:
    """'seed=0, this run seed=1'."""
    return f"{key}={_short(saved)}, this run {key}={_short(now)}"


def _short(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---- the output folder as one unit -----------------------------------------------------------------------

# What `repro sample` writes into OUT (and atomic_path's temporaries, which older versions could leave).
_OUTPUT_NAME = re.compile(r"(run\.json|samples\.npz|grid\.png|chain_\d{3,}\.png|\..+\.tmp)\Z")


@dataclass(frozen=True)
class Output:
    """OUT and the temporaries beside it, all named `.OUT.sample-…` (see the module docstring)."""

    folder: Path

    @property
    def parent(self) -> Path:
        return self.folder.parent

    @property
    def work(self) -> Path:
        return self.parent / f".{self.folder.name}.sample-work"

    @property
    def checkpoint(self) -> Path:
        return self.work / "checkpoint.npz"

    @property
    def job_record(self) -> Path:
        return self.work / "job.json"

    def _temporary(self, kind: str) -> Path:
        return self.parent / f".{self.folder.name}.sample-{kind}-{uuid.uuid4().hex[:12]}"

    def leftovers(self) -> list[Path]:
        """The staging and set-aside folders of killed runs into this OUT."""
        pattern = re.compile(rf"\.{re.escape(self.folder.name)}\.sample-(new|old)-[0-9a-f]{{12}}\Z")
        if not self.parent.is_dir():
            return []
        return sorted(p for p in self.parent.iterdir() if pattern.match(p.name))

    @property
    def lock(self) -> Path:
        """Held for the whole job, so a second run into OUT is refused instead of taking our files."""
        return self.parent / f".{self.folder.name}.sample-lock"

    @classmethod
    def locate(cls, out_dir: Path) -> Output:
        """OUT as an absolute path, refused when it can never be written; changes nothing but creating
        missing parent folders."""
        folder = Path(os.path.abspath(out_dir))
        if folder.is_symlink():
            folder = folder.resolve()  # replace what the link points to, keep the link
        if not folder.name:
            raise BadInput(f"output folder {folder}: a file-system root cannot be replaced; name a folder")
        out = cls(folder)
        where = f"output folder {folder}"
        if folder.exists() and not folder.is_dir():
            raise BadInput(f"{where}: exists and is not a folder")
        above = next((p for p in folder.parents if p.exists()), None)
        if above is not None and not above.is_dir():
            raise BadInput(f"{where}: {above} is a file, not a folder")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            probe = out._temporary("new")
            probe.mkdir()
            probe.rmdir()
        except OSError as e:
            raise BadInput(f"{where}: cannot write in {out.parent} ({e.strerror})") from None
        return out

    def prepare(self, settings: dict, replace: bool) -> None:
        """Refuse an OUT this job must not write; else remove the leftovers of killed runs. Called with the
        lock held: a running job's staging folder looks like a leftover."""
        folder = self.folder
        where = f"output folder {folder}"
        if folder.is_dir():
            try:
                entries = sorted(folder.iterdir())
            except OSError as e:
                raise BadInput(f"{where}: cannot read it ({e.strerror})") from None
            foreign = _foreign(entries)
            if foreign is not None:
                raise BadInput(
                    f"{where}: holds {foreign}, which repro sample does not write; choose another folder "
                    "(one with other files is never replaced, even with --replace)"
                )
            why = _other_run(folder, settings) if entries and not replace else None
            if why is not None:
                raise BadInput(f"{where}: holds another run ({why}); pass --replace to replace it")
        stale_work = self.work.exists()
        if self.checkpoint.exists():
            why = _other_checkpoint(self.job_record, settings)
            if why is not None and not replace:
                raise BadInput(
                    f"{where}: {self.checkpoint} is the checkpoint of an interrupted run ({why}); run that "
                    "command again to finish it, or pass --replace to discard it"
                )
            stale_work = why is not None
        for path in self.leftovers():
            _remove(path)
        if stale_work:
            _remove(self.work)

    def start(self, settings: dict) -> None:
        """Record whose checkpoint the work folder will hold, before the sampler writes one."""
        self.work.mkdir(exist_ok=True)
        write_text(self.job_record, json.dumps({"settings": settings, "versions": versions()}, indent=2))

    def staging(self) -> Path:
        """A fresh, empty folder beside OUT for the finished files (mkdir: the umask's usual permissions)."""
        path = self._temporary("new")
        path.mkdir()
        return path

    def commit(self, staging: Path) -> None:
        """Put the finished staging folder in OUT's place, then drop the work folder (its checkpoint)."""
        try:
            os.rename(staging, self.folder)  # one atomic step onto an absent or empty OUT
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            self._swap(staging)
        _remove(self.work)

    def _swap(self, staging: Path) -> None:
        """Replace a full OUT: rename it aside, rename staging in, remove the old one."""
        foreign = _foreign(list(self.folder.iterdir()))
        if foreign is not None:  # put there while we sampled: keep it, and the finished checkpoint
            raise BadInput(
                f"output folder {self.folder}: {foreign} appeared in it during the run, so it is not "
                "replaced; move that away and run the command again (it continues from its checkpoint)"
            )
        old = self._temporary("old")
        os.rename(self.folder, old)  # a kill from here to the next rename leaves no OUT, never a mix
        os.rename(staging, self.folder)
        _remove(old)


def _foreign(entries: list[Path]) -> str | None:
    """The name of the first entry `repro sample` does not write, or None."""
    return next((p.name for p in entries if p.is_dir() or not _OUTPUT_NAME.match(p.name)), None)


def _other_run(folder: Path, settings: dict) -> str | None:
    """Why the files in folder are not this run's; None when they are."""
    run_json = folder / "run.json"
    if not run_json.exists():
        return "without a run.json"
    saved = _read_settings(run_json, "settings")
    if not saved:
        return "its run.json records no settings"
    diff = _difference(saved, settings)
    return None if diff is None else f"its run.json has {_show(*diff)}"


def _other_checkpoint(job_record: Path, settings: dict) -> str | None:
    """Why a checkpoint is not this run's (other settings or other versions); None when it is."""
    saved = _read_settings(job_record, None)
    if not isinstance(saved.get("settings"), dict):
        return f"{job_record} is missing or unreadable"
    diff = _difference(saved["settings"], settings) or _difference(
        saved.get("versions") or {}, versions(), "versions."
    )
    return None if diff is None else f"written with {_show(*diff)}"


def _read_settings(path: Path, key: str | None) -> dict:
    """The JSON object at path (its `key` entry when given); {} when missing, unreadable or not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if key is not None:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def _remove(path: Path) -> None:
    """Best effort: a leftover that cannot be removed costs disk space, never a wrong result."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)
