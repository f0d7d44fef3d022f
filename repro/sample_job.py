"""One sampling job on a model set, as `repro sample` runs it: parity gate, sampler, images, run record.

The settings of each method (objective, published schedule, start step) come from its entry in
repro.samplers.methods; the sampler API itself stays textbook-plain, so every departure from the textbook is
written down in that one table.

The output folder OUT is written as one unit, resumable from a checkpoint beside it (repro.output_folder:
what a kill leaves, what --replace replaces, and what is never replaced).

The settings are everything that decides the samples but the timings: the model set (its name and its
identity as repro.modelsets.identity computes it for a sample job: the posterior's nets and settings, not
the judge, the evaluator or real images, whose scores run.json records afresh on every run), class, method,
chains, steps, seed, start step, prior (a fitted one by its numbers), sampler options (the clip bounds by
content, for the methods that clip), backend and device; run.json records them under "settings".

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
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from repro import api, samplers, saved_states
from repro.atomic import atomic_path, exclusive, write_text
from repro.errors import BadInput, CheckFailed
from repro.evaluate.diagnostics import summarize
from repro.evaluate.encoder import encode_files
from repro.evaluate.finite import nonfinite_chains
from repro.evaluate.image_metrics import ImageMetrics, as_saved, softmax
from repro.images import grid, save_png, to_display
from repro.modelsets import SAMPLE_USES, ModelSet, code_size, models_id, stand_in
from repro.output_folder import Output
from repro.parity import sampling_gate
from repro.posterior import GaussianPrior, Prior, posterior_model
from repro.resources import call_bytes, net_sizes, refuse_unless_fits, sampling_bytes, size_text
from repro.runtime import make_backend
from repro.samplers import checkpoint as npz_record
from repro.samplers.bounds import dgn_am_box
from repro.samplers.methods import TUNINGS, Method, iterations_for, method
from repro.target import Target
from repro.versions import versions


@dataclass
class SampleJob:
    models: ModelSet
    class_index: int | None  # the class target (`--class K`); None: `target` names it
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
    tuning: str | None = None  # None: the method's first (Method.tunings)
    prior: str = "standard"
    guidance: float = 1.0
    # Gradient evaluations per chain in place of `steps`, warm-up included: as many iterations as spend them
    # at the method's cost per iteration (samplers.methods.iterations_for), so methods compare at equal cost.
    gradients: int | None = None
    # `--target` values (repro.target): hidden units, positions, weighted sums; () with class_index set.
    target: tuple[str, ...] = ()
    # Where every chain starts, in place of draws of the prior: a real image's code through the set's
    # encoder (DGN-AM's --init_file), or codes from a .npy file ([D], or one row per chain).
    init_image: Path | None = None
    init_codes: Path | None = None
    # Chains as they go (repro.saved_states): a contact sheet per chain of every N-th state, kept only where
    # the class probability exceeds `threshold` (PPGN's save_every and threshold).
    save_every: int | None = None
    threshold: float | None = None


def run_job(job: SampleJob, out_dir: Path, replace: bool = False) -> dict:
    """Run the job into out_dir (see the module docstring); `replace`: replace a folder holding another
    run's files, and discard an interrupted other run's checkpoint."""
    m = method(job.method)
    job = dataclasses.replace(job, tuning=_tuning(job, m))
    ms = job.models
    target = job_target(job, m)
    step_size = ms.start_step(m) if job.step_size is None else job.step_size
    steps = _iterations(job, m)
    api.check_prior(m, job.prior)
    options = dict(m.published) if job.tuning == "paper" else m.dual_averaging(steps)
    if m.clip:
        bounds_file = job.clip_bounds or ms.clip_bounds
        if bounds_file is None:
            raise BadInput(
                f"method {job.method} needs clip bounds: model set {ms.name} has none; pass --clip-bounds"
            )
        options["clip"] = dgn_am_box(Path(bounds_file))  # in the settings by content; read below
    if job.adapt:
        options["adapt"] = job.adapt
    options.update(job.options)
    saved_states.check(job.save_every, job.threshold, steps, target.class_index)
    if job.save_every is not None:
        options["thin"] = job.save_every  # the loop keeps exactly the states to be drawn
    _refuse_what_cannot_fit(job, steps, options.get("thin", 1))
    clip = options.get("clip")
    out = Output.locate(out_dir)  # before any model is converted
    selection = api.selection(ms, target)  # an unknown blob or a unit outside it stops the job here
    start = job_start(job)
    scorers = ImageMetrics(ms)  # the judge and evaluator: a bad file stops us before any sampling
    prior = api.prior_of(ms, m, job.prior, scorers)
    settings = job_settings(job, m, steps, step_size, options, prior, target, start)
    if isinstance(clip, tuple) and isinstance(clip[1], Path):  # read now: a bad file stops the job first
        options["clip"] = dgn_am_box(samplers.load_bounds(clip[1], code_size(ms)))
    with exclusive(out.lock, f"output folder {out.folder}"):
        out.prepare(settings, replace)
        record = _sample_into(
            out, job, m, settings, steps, step_size, options, scorers, prior, target, selection, start
        )
    bad = record["nonfinite"]
    if bad["count"]:  # the files stay, for the user to look at
        raise CheckFailed(
            f"{bad['describe']}; their images were not scored; the run is kept in "
            f"{out.folder} (run.json: nonfinite)"
        )
    return record


def job_target(job: SampleJob, m: Method) -> Target:
    """The job's target: `--class K`, or its `--target` terms, checked against the set and the method (a
    hidden blob's units are checked when the graph names its shape)."""
    if (job.class_index is None) == (not job.target):
        raise BadInput(
            "give --class K or --target (one or more), not both"
            if job.target
            else "give --class K or --target"
        )
    aim = api.target(job.target or job.class_index)
    api.check_aim(job.models, m, aim)
    return aim


def job_start(job: SampleJob) -> np.ndarray | None:
    """[chains, D] float32 start codes from --init-image or --init-codes, or None (draws of the prior)."""
    if job.init_image is not None and job.init_codes is not None:
        raise BadInput("--init-image and --init-codes both set where the chains start: give one of them")
    dim = code_size(job.models)
    if job.init_image is not None:
        try:
            codes = encode_files(job.models, [Path(job.init_image)])
        except BadInput as e:
            raise BadInput(f"--init-image: {e}") from None
    elif job.init_codes is not None:
        codes = read_codes(Path(job.init_codes), dim, job.chains)
    else:
        return None
    return np.ascontiguousarray(np.broadcast_to(codes.astype(np.float32), (job.chains, dim)))


def read_codes(path: Path, dim: int, chains: int) -> np.ndarray:
    """A .npy of codes: [D] or [1, D] (every chain starts there) or [chains, D], finite."""
    try:
        codes = np.load(path, allow_pickle=False)
    except OSError as e:
        raise BadInput(f"--init-codes {path}: cannot read it ({e.strerror or e})") from None
    except ValueError:
        raise BadInput(
            f"--init-codes {path}: not a .npy file of numbers (`repro encode` writes one)"
        ) from None
    if codes.shape not in ((dim,), (1, dim), (chains, dim)) or codes.dtype.kind not in "fiu":
        raise BadInput(
            f"--init-codes {path}: expected numbers of shape [{dim}], [1, {dim}] or [{chains}, {dim}] "
            f"(--chains {chains}), got {codes.dtype} {list(codes.shape)}"
        )
    if not np.all(np.isfinite(codes)):
        raise BadInput(f"--init-codes {path}: holds NaN or inf")
    return codes.reshape(-1, dim).astype(np.float64)


def _tuning(job: SampleJob, m: Method) -> str:
    if job.tuning is None:
        return m.tunings[0]
    if job.tuning not in TUNINGS:
        raise BadInput(f"--tuning: expected one of {', '.join(TUNINGS)}, got {job.tuning!r}")
    if job.tuning not in m.tunings:
        raise BadInput(
            f"--tuning {job.tuning}: method {job.method} runs only with {' or '.join(m.tunings)} (it has no "
            f"published schedule)"
        )
    return job.tuning


def _iterations(job: SampleJob, m: Method) -> int:
    """--steps, or the iterations that spend --gradients (refused below one iteration's cost)."""
    if job.gradients is None:
        return job.steps or m.published_steps
    if job.steps is not None:
        raise BadInput("--steps and --gradients both set the run's length: give one of them")
    per_iteration = m.kernel.gradients_per_step(
        **{k: v for k, v in {**m.published, **job.options}.items() if k in m.kernel.OPTIONS}
    )
    if job.gradients < per_iteration:
        raise BadInput(
            f"--gradients {job.gradients}: one iteration of {job.method} costs {per_iteration} gradient "
            f"evaluations per chain"
        )
    return iterations_for(job.gradients, per_iteration)


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


def _sample_into(
    out: Output,
    job: SampleJob,
    m: Method,
    settings: dict,
    steps: int,
    step_size: float,
    options: dict,
    scorers: ImageMetrics,
    prior: Prior,
    target: Target,
    selection: np.ndarray | int,
    start: np.ndarray | None,
) -> dict:
    ms = job.models
    model = posterior_model(ms, m.objective, prior, job.guidance, target.blob if target.hidden else None)
    backend = make_backend(job.backend, model, job.device)
    post = api.Posterior(ms, target, m, prior, job.guidance, model, backend, selection)
    z0 = api.start_codes(post, job.chains, job.seed) if start is None else start

    timings: dict[str, float] = {}
    parity = []
    if job.parity_check:
        t0 = time.perf_counter()
        checks = sampling_gate(backend, model, post.selection, z0, job.device)
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
    result = api.run(
        post,
        job.chains,
        steps,
        job.seed,
        z0,
        step_size,
        job.tuning,
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

    shown = ("models", "class_index", "target", "method", "objective", "prior_sigma", "tuning", "prior")
    shown += ("guidance", "init")
    shown += ("chains", "steps", "seed")
    record = {
        **{key: settings[key] for key in shown},
        "class_name": None if target.class_index is None else ms.class_names[target.class_index],
        "step_size": step_size,
        "gradients": job.gradients,
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
        "evaluator": _evaluator_scores(scorers, images, target, finite),
        "timings": {**timings, "seconds": result.seconds},
        "versions": versions(),
    }
    if job.save_every is not None:
        record["saved"] = saved_states.save(
            staging, backend, result.samples, job.save_every, result.warmup, job.threshold, target.class_index
        )
    write_text(staging / "run.json", json.dumps(record, indent=2, default=float))
    out.commit(staging)
    return record


def _evaluator_scores(
    scorers: ImageMetrics, images: np.ndarray, target: Target, finite: np.ndarray
) -> dict | None:
    """The independent evaluator on the images as saved, as the report scores them: its top-1 class per
    chain, the fraction that is the sampled class, and its softmax probability of that class per chain;
    the non-finite chains are not scored (null, and out of the fraction). A target that is not one class
    has no fraction nor probability to give (null, and `no_class` says why)."""
    if not scorers.has["evaluator"]:
        return None
    logits = scorers.evaluator_outputs(as_saved(images[finite]))[0] if finite.any() else np.zeros((0, 1))
    predicted = np.argmax(logits, axis=1)
    class_index = target.class_index
    if class_index is None:
        return {
            **scorers.describe()["evaluator"],
            "prediction": _per_chain(predicted.tolist(), finite),
            "accuracy": None,
            "p_class": None,
            "no_class": f"the target {target.text()} is not one class",
            "excluded_nonfinite": int((~finite).sum()),
        }
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


def job_settings(
    job: SampleJob,
    m: Method,
    steps: int,
    step_size: float,
    options: dict,
    prior: Prior,
    target: Target,
    start: np.ndarray | None,
) -> dict:
    """Everything that decides the job's output files but the timings, as plain JSON (see the docstring).
    A fitted prior counts by content: it depends on files the model set's identity leaves out (real
    images) and, for "fitted", on the scorers that chose it."""
    settings = {
        "models": job.models.name,
        "models_id": models_id(job.models, SAMPLE_USES),
        "class_index": target.class_index,
        "target": target.text(),
        "method": job.method,
        "objective": "activation" if target.hidden else m.objective,
        "prior_sigma": m.prior_sigma,
        "tuning": job.tuning,
        "prior": job.prior,
        "prior_fit": _prior_identity(prior),
        "preconditioner": "the fitted prior's covariance" if isinstance(prior, GaussianPrior) else None,
        "guidance": job.guidance,
        "init": None
        if start is None
        else {
            "from": f"--init-image {Path(job.init_image).name}"
            if job.init_image is not None
            else f"--init-codes {Path(job.init_codes).name}",
            "codes": stand_in(start),
        },
        "save": None if job.save_every is None else {"every": job.save_every, "threshold": job.threshold},
        "chains": job.chains,
        "steps": steps,
        "seed": job.seed,
        "step_size": step_size,
        "options": stand_in(options),
        "backend": job.backend,
        "device": job.device,
    }
    return json.loads(json.dumps(settings))


def _prior_identity(prior: Prior) -> object:
    """A fitted prior by its numbers (not by the measurements that chose it, which may differ in the last
    bits from one machine to another while choosing the same prior)."""
    if not isinstance(prior, GaussianPrior):
        return None
    return stand_in({"mean": prior.mean, "std": prior.std, "corr_factor": prior.corr_factor})
