"""The `repro` command line: thin wrappers that parse options and call the library.

Every ReproError becomes one line on stderr and its exit code (2 bad input, 1 failed check); no tracebacks.
"""

from __future__ import annotations

import sys

import click

from repro.dcgan.preprocess import PRESETS
from repro.errors import ReproError
from repro.images import FILE_FORMATS
from repro.report.executors import EXECUTORS
from repro.runtime import BACKENDS, DEVICES
from repro.samplers.methods import METHODS, PRIORS, TUNINGS


@click.group()
@click.version_option(package_name="repro")
def cli() -> None:
    """Class-conditional image synthesis by gradient-based inference on converted Caffe models."""


# The largest value each integer option takes, so that none reaches numpy as an overflow; what fits in memory
# is checked before any work (repro.resources).
MAX_CHAINS = 1_000_000  # chains, batches, classes
MAX_STEPS = 100_000_000  # iterations
MAX_SEED = 2**63 - 1
MAX_REPEATS = 1000  # timed calls, finite-difference directions
MAX_BUDGET = 1000.0  # × the paper's 6000 gradients per MCMC chain
MAX_TASK_SHARE = 1024.0  # CPUs or GPUs a Ray task asks for
MAX_GUIDANCE = 1000.0  # β: beyond it float32 log-likelihoods overflow long before anything is learned
BATCH, CLASS, SEED = click.IntRange(1, MAX_CHAINS), click.IntRange(0, MAX_CHAINS), click.IntRange(0, MAX_SEED)

MODELS_HELP = "model set: embedded, random, a folder with manifest.json, or dgn-…=DIR (see `repro models`)"


def scorer_options(command):
    """--judge and --evaluator: the paper's judge and an independent classifier, for sets that lack them."""
    options = [
        click.option(
            "--judge",
            "judge_dir",
            type=click.Path(),
            default=None,
            help="the paper's DCGAN judge: the folder (or .jl index) of dcgan_code's *_discrim_params files",
        ),
        click.option(
            "--judge-preprocess",
            type=click.Choice(list(PRESETS)),
            default=None,
            help="how a saved image becomes the judge's input [default: authors, as the paper scored]",
        ),
        click.option(
            "--judge-file",
            type=click.Choice(FILE_FORMATS),
            default=None,
            help="format of the saved file the DCGAN judge scores [default: jpeg, as DGN-AM saved]",
        ),
        click.option(
            "--evaluator",
            nargs=2,
            type=click.Path(dir_okay=False),
            default=None,
            metavar="PROTOTXT CAFFEMODEL",
            help="an independent Caffe classifier (e.g. GoogLeNet when the target is CaffeNet)",
        ),
        click.option(
            "--evaluator-blobs",
            default=None,
            metavar="LOGITS,FEATURES",
            help="[default: the last InnerProduct's top and its input]",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def resolve_models(spec, judge_dir, judge_preprocess, judge_file, evaluator, evaluator_blobs):
    """The model set with the scorers named on the command line (the options of `scorer_options`)."""
    from repro.errors import BadInput
    from repro.modelsets import evaluator_files, resolve, with_scorers

    ms = resolve(spec)
    files = None
    if evaluator_blobs is not None and not evaluator:
        raise BadInput("--evaluator-blobs needs --evaluator PROTOTXT CAFFEMODEL")
    if evaluator:
        blobs = None
        if evaluator_blobs is not None:
            blobs = tuple(b.strip() for b in evaluator_blobs.split(","))
            if len(blobs) != 2 or not all(blobs):
                raise BadInput(f"--evaluator-blobs: expected LOGITS,FEATURES, got {evaluator_blobs!r}")
        files = evaluator_files(*evaluator, blobs)
    return with_scorers(ms, judge_dir, judge_preprocess, judge_file, files)


@cli.command()
@click.argument("prototxt", type=click.Path(dir_okay=False))
@click.argument("caffemodel", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="ONNX file")
@click.option("--outputs", default=None, help="comma-separated blobs to expose (default: the net's outputs)")
@click.option("--batch", type=BATCH, default=None, help="input batch (default: prototxt's)")
@click.option("--dynamic-batch", is_flag=True, help="declare the batch axis as the symbol 'batch'")
def convert(prototxt, caffemodel, out, outputs, batch, dynamic_batch) -> None:
    """Convert a Caffe net to ONNX (opset 17); ONNX value names are the Caffe blob names."""
    import time

    from repro.atomic import refuse_overwriting_inputs
    from repro.caffe import load_net
    from repro.convert import save_onnx, to_onnx

    refuse_overwriting_inputs(out, {"prototxt": prototxt, "caffemodel": caffemodel})
    start = time.perf_counter()
    net = load_net(prototxt, caffemodel, batch=batch)
    names = [name.strip() for name in outputs.split(",") if name.strip()] if outputs is not None else None
    model = to_onnx(net, names, dynamic_batch=dynamic_batch)
    save_onnx(model, out)
    for kind, values in (("input", model.graph.input), ("output", model.graph.output)):
        for value in values:
            dims = [d.dim_param or str(d.dim_value) for d in value.type.tensor_type.shape.dim]
            click.echo(f"{kind:<6}  {value.name}  [{', '.join(dims)}]")
    seconds = time.perf_counter() - start
    click.echo(f"wrote {out}: {len(net.layers)} layers, {len(model.graph.node)} ONNX nodes, {seconds:.2f} s")


@cli.command()
@click.argument("model_path", metavar="IN.onnx", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="ONNX file")
@click.option("--wrt", required=True, help="graph input to differentiate with respect to")
@click.option("--of", "of", required=True, help="value (any in the graph) whose sum is differentiated")
@click.option("--unit", type=SEED, default=None, help="differentiate only this unit of OF's non-batch part")
def grad(model_path, out, wrt, of, unit) -> None:
    """Add an output grad_WRT = d/dWRT of Σ_batch OF[b].flat[UNIT] (all units if none), in ONNX ops."""
    import onnx
    from google.protobuf.message import DecodeError

    from repro.atomic import refuse_overwriting_inputs
    from repro.convert import save_onnx
    from repro.errors import BadInput
    from repro.grad import value_and_grad_model

    refuse_overwriting_inputs(out, {"input model": model_path})
    with open(model_path, "rb") as f:  # binary protobuf whatever the name: onnx.load reads .json as JSON
        data = f.read()
    try:
        model = onnx.ModelProto.FromString(data)
    except (DecodeError, RuntimeWarning) as e:
        raise BadInput(f"{model_path}: not an ONNX model (a binary ModelProto was expected: {e})") from None
    if not model.graph.node or not model.opset_import:
        raise BadInput(f"{model_path}: not an ONNX model (no graph nodes or opset; a binary .onnx file?)")
    try:
        result = value_and_grad_model(model, wrt, of, unit)
    except BadInput as e:
        raise BadInput(f"{model_path}: {e}") from e
    save_onnx(result, out)
    click.echo(f"wrote {out}: outputs {', '.join(o.name for o in result.graph.output)}")


@cli.command()
def models() -> None:
    """List the model sets repro knows, whether each is ready, and the files each expects."""
    from repro.modelsets import status

    rows = status()
    width = max(len(r[0]) for r in rows)
    for name, state, what in rows:
        click.echo(f"{name:<{width}}  {state:<11}  {what}")


@cli.command()
@click.option("--models", "models_spec", default=None, help=MODELS_HELP)
@click.option("--batch", default=2, show_default=True, type=BATCH, help="chains in the checked batch")
@click.option(
    "--class", "class_index", default=0, show_default=True, type=CLASS, help="class of the objective"
)
@click.option(
    "--directions",
    default=3,
    show_default=True,
    type=click.IntRange(1, MAX_REPEATS),
    help="finite-difference directions (the independent check: at least one)",
)
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--device", default="cpu", show_default=True, type=click.Choice(DEVICES))
@click.option("--json", "as_json", is_flag=True, help="print the checks as JSON")
def parity(models_spec, batch, class_index, directions, seed, device, as_json) -> None:
    """Forward and gradient parity: ORT-VJP vs torch autograd vs float64 finite differences."""
    import json

    import numpy as np

    from repro.errors import CheckFailed
    from repro.modelsets import resolve
    from repro.parity import run_parity
    from repro.posterior import posterior_model

    ms = resolve(models_spec)
    if device == "cpu":  # the reference computes the batch in float64
        from repro.resources import call_bytes, net_sizes, refuse_unless_fits

        refuse_unless_fits(
            call_bytes(net_sizes(ms), batch, itemsize=8), f"--batch {batch}: parity", "--batch"
        )
    click.echo(f"model set {ms.name}: converting and building the posterior ...", err=True)
    model = posterior_model(ms)
    code_size = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    z = np.abs(np.random.default_rng(seed).standard_normal((batch, code_size))).astype(np.float32)
    checks = run_parity(model, class_index, z, n_directions=directions, seed=seed, device=device)
    if as_json:
        record = {
            "models": ms.name,
            "batch": batch,
            "device": device,
            "checks": [c.as_dict() for c in checks],
        }
        click.echo(json.dumps(record, indent=2))
    else:
        click.echo(f"computed on: {checks[0].devices}")
        for c in checks:
            click.echo(f"{'PASS' if c.passed else 'FAIL'}  {c.error:.2e} <= {c.tolerance:.0e}  {c.name}")
    failed = [c for c in checks if not c.passed]
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(checks)} parity checks failed on model set {ms.name}")


@cli.command()
@click.option("--models", "models_spec", default="random", show_default=True, help=MODELS_HELP)
@click.option("--batch", "batches", default="1,8", show_default=True, help="comma-separated batch sizes")
@click.option(
    "--repeats",
    default=5,
    show_default=True,
    type=click.IntRange(1, MAX_REPEATS),
    help="timed runs after one warm-up (median reported)",
)
@click.option("--device", default="cpu", show_default=True, type=click.Choice(DEVICES))
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
def bench(models_spec, batches, repeats, device, as_json) -> None:
    """Value-and-grad seconds per chain, GFLOP/s and peak memory: ORT-VJP vs torch autograd vs a hand-written
    torch eager port (where the set has the architectures it ports), on the CPU or a GPU."""
    import json

    from repro.bench import run_bench
    from repro.errors import BadInput
    from repro.modelsets import resolve
    from repro.posterior import posterior_model

    try:
        sizes = tuple(int(b) for b in batches.split(","))
    except ValueError:
        raise BadInput(f"--batch: expected comma-separated integers >= 1, got {batches!r}") from None
    if min(sizes) < 1 or max(sizes) > MAX_CHAINS:
        raise BadInput(f"--batch: expected batch sizes from 1 to {MAX_CHAINS}, got {batches!r}")
    ms = resolve(models_spec)
    if device == "cpu":  # every backend's process holds a call at the batch at once
        from repro.resources import call_bytes, net_sizes, refuse_unless_fits, size_text

        per_call = call_bytes(net_sizes(ms), max(sizes))
        refuse_unless_fits(
            len(BACKENDS) * per_call,
            f"--batch {max(sizes)}: the value-and-grad calls",
            "--batch",
            f"{len(BACKENDS)} backends side by side, {size_text(per_call)} each",
        )
    click.echo(f"model set {ms.name}: converting and building the posterior ...", err=True)

    def show(row):
        click.echo(
            f"{row['backend']:>5}  batch {row['batch']:>3}  {row['s_per_chain']:.4f} s/chain  "
            f"{row['gflops']:.1f} GFLOP/s  peak {row['peak_rss_mb']:.0f} MB",
            err=True,
        )

    result = run_bench(posterior_model(ms), sizes, repeats, progress=show, models=ms, device=device)
    if as_json:
        click.echo(json.dumps({"models": ms.name, **result}, indent=2))
    else:
        click.echo(f"{result['gflop_per_chain']:.2f} GFLOP per chain per value-and-grad; median of {repeats}")
        if not result["eager"]["available"]:
            click.echo(f"eager baseline not available: {result['eager']['note']}")
        for r in result["rows"]:
            extra = f"  ORT/torch speed-up {r['speedup_vs_torch']:.2f}x" if "speedup_vs_torch" in r else ""
            if "speedup_vs_eager" in r:
                extra += f"  ORT/eager speed-up {r['speedup_vs_eager']:.2f}x"
            click.echo(
                f"{r['backend']:>5} ({r['device']})  batch {r['batch']:>3}  {r['s_per_chain']:.4f} s/chain  "
                f"{r['gflops']:.1f} GFLOP/s  peak {r['peak_rss_mb']:.0f} MB{extra}"
            )


@cli.command()
@click.option("--models", "models_spec", default=None, help=MODELS_HELP)
@click.option("--class", "class_index", type=CLASS, default=None, help="class index of the classifier")
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="SPEC",
    help="in place of --class: class:K, BLOB:U (a unit of the blob, e.g. fc6:123), BLOB:C@Y,X (a channel "
    "at a position, e.g. conv5:45@6,6), BLOB:C@mean; a hidden blob is read before its in-place ReLU, as "
    "DGN-AM's act_max.py; =W weights a term, and repeated terms on one blob sum (class:643=1 --target "
    "class:624=0.5)",
)
@click.option("--method", required=True, type=click.Choice(list(METHODS)))
@click.option("--chains", default=4, show_default=True, type=BATCH)
@click.option(
    "--steps",
    default=None,
    type=click.IntRange(1, MAX_STEPS),
    help="[default: the published run's, "
    + ", ".join(f"{m.name} {m.published_steps}" for m in METHODS.values())
    + "]",
)
@click.option(
    "--gradients",
    default=None,
    type=click.IntRange(1, MAX_STEPS * 100),
    help="gradient evaluations per chain, warm-up included, in place of --steps: as many iterations as "
    "spend them at the method's cost per iteration (HMC: L), so methods compare at equal cost",
)
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--step-size", default=None, type=float, help="override the method's initial step size")
@click.option(
    "--adapt",
    default=0,
    show_default=True,
    type=click.IntRange(0, MAX_STEPS),
    help="dual-averaging warm-up steps (MCMC)",
)
@click.option("--backend", default="ort", show_default=True, type=click.Choice(list(BACKENDS)))
@click.option("--device", default="cpu", show_default=True, type=click.Choice(DEVICES))
@click.option(
    "--clip-bounds",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="per-unit upper bounds, DGN-AM act_range format [default: the set's]",
)
@click.option("--no-parity-check", is_flag=True, help="skip the ORT vs torch check on the first batch")
@click.option(
    "--tuning",
    default=None,
    type=click.Choice(TUNINGS),
    help="MCMC step sizes: the paper's decaying schedules, or a constant step tuned by dual averaging in the "
    "first quarter of the steps (the report's -da rows) [default: paper; dual-averaging for the samplers "
    "beyond the paper, "
    + ", ".join(m.name for m in METHODS.values() if "paper" not in m.tunings)
    + ", which have no published schedule]",
)
@click.option(
    "--prior",
    default="standard",
    show_default=True,
    type=click.Choice(PRIORS),
    help="the method's N(0, I), or the Gaussian fitted to real codes: the form whose own draws look most "
    "like real images (fitted: the report's -prior rows), or the diagonal or full-covariance form",
)
@click.option(
    "--guidance",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, MAX_GUIDANCE, min_open=True),
    help="β: the likelihood raised to β (1: the paper's posterior)",
)
@click.option(
    "--init-image",
    type=click.Path(dir_okay=False),
    default=None,
    help="start every chain at this image's code, read through the set's encoder (DGN-AM's --init_file; "
    "`repro encode`)",
)
@click.option(
    "--init-codes",
    type=click.Path(dir_okay=False),
    default=None,
    help="start the chains at these codes: a .npy of [D] or [1, D] (every chain) or [chains, D]",
)
@click.option(
    "--save-every",
    type=click.IntRange(1, MAX_STEPS),
    default=None,
    help="draw every N-th state of each chain onto a contact sheet, chain_<i>_states.png (PPGN's save_every)",
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="with --save-every: keep only the states whose target class probability exceeds P (PPGN's)",
)
@scorer_options
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option(
    "--replace",
    is_flag=True,
    help="replace -o as a unit when it holds another run, and discard another run's checkpoint beside it",
)
def sample(
    models_spec,
    class_index,
    targets,
    method,
    chains,
    steps,
    gradients,
    seed,
    step_size,
    adapt,
    backend,
    device,
    clip_bounds,
    no_parity_check,
    tuning,
    prior,
    guidance,
    init_image,
    init_codes,
    save_every,
    threshold,
    out_dir,
    replace,
    **scorers,
) -> None:
    """Sample (or optimise) codes for one class or a --target; write one PNG per chain, a grid, samples.npz
    and run.json (with the judge's and the evaluator's scores of the images, where the set has them or
    --judge and --evaluator name them). The sampler checkpoints beside -o; the same command again continues an
    interrupted run. The files replace -o together, as one unit."""
    from pathlib import Path

    from repro.sample_job import SampleJob, run_job

    job = SampleJob(
        models=resolve_models(models_spec, **scorers),
        class_index=class_index,
        target=targets,
        method=method,
        chains=chains,
        steps=steps,
        gradients=gradients,
        seed=seed,
        backend=backend,
        device=device,
        clip_bounds=Path(clip_bounds) if clip_bounds else None,
        step_size=step_size,
        adapt=adapt,
        parity_check=not no_parity_check,
        tuning=tuning,
        prior=prior,
        guidance=guidance,
        init_image=Path(init_image) if init_image else None,
        init_codes=Path(init_codes) if init_codes else None,
        save_every=save_every,
        threshold=threshold,
    )
    record = run_job(job, Path(out_dir), replace=replace)
    rate = sum(record["accept_rate"]) / len(record["accept_rate"])
    aim = f"class {class_index} ({record['class_name']})" if class_index is not None else record["target"]
    click.echo(
        f"{method} on {record['models']} {aim}: {chains} chains × "
        f"{record['steps']} steps, acceptance {rate:.2f}, {record['n_grad']} gradients/chain, "
        f"{record['timings']['sample_s']:.1f} s → {out_dir}/grid.png"
    )


@cli.command()
@click.option("--models", "models_spec", default=None, help=MODELS_HELP)
@click.option("--classes", default=None, help="comma-separated class indices [default: all; --quick: 0,1,2]")
@click.option(
    "--chains",
    default=None,
    type=click.IntRange(2, MAX_CHAINS),
    help="chains per class [default: 4; --quick: 3]",
)
@click.option(
    "--budget",
    default=None,
    type=click.FloatRange(0, MAX_BUDGET, min_open=True),
    help="fraction of the paper's 6000 gradients per MCMC chain [default: 1; --quick: 0.1]; under 100 "
    "iterations in an MCMC row (about 0.25), the report says its verdicts rest on too few",
)
@click.option(
    "--quick",
    is_flag=True,
    help="a small run (3 classes, 3 chains, 10% budget, rows beyond the paper at half that): minutes",
)
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option(
    "--map-steps",
    default=200,
    show_default=True,
    type=click.IntRange(2, MAX_STEPS),
    help="DGN-AM MAP iterations",
)
@click.option("--rows", default=None, help="comma-separated row keys [default: all], e.g. map-clip,mala")
@click.option("--backend", default="ort", show_default=True, type=click.Choice(list(BACKENDS)))
@click.option("--device", default="cpu", show_default=True, type=click.Choice(DEVICES))
@click.option(
    "--executor",
    default="local",
    show_default=True,
    type=click.Choice(list(EXECUTORS)),
    help="where the sampler calls run: this process, or Ray tasks (pip install -e '.[ray]')",
)
@click.option(
    "--address", default=None, help="with --executor ray: join this Ray cluster [default: a local Ray]"
)
@click.option(
    "--cpus-per-task", default=1.0, show_default=True, type=click.FloatRange(0, MAX_TASK_SHARE, min_open=True)
)
@click.option(
    "--gpus-per-task",
    default=None,
    type=click.FloatRange(0, MAX_TASK_SHARE),
    help="GPUs a Ray task asks for, fractions allowed [default: 1 with --device cuda, else 0]",
)
@click.option(
    "--real-images",
    default=None,
    type=click.Path(file_okay=False, exists=True),
    help="DIR/<class index>/ image files: real images for KID, FD, precision and recall "
    "[default: the embedded set draws its own]",
)
@click.option(
    "--dry-run", is_flag=True, help="print the cells, gradient counts and an estimated time; run nothing"
)
@scorer_options
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option(
    "--replace",
    is_flag=True,
    help="write into -o though it holds files repro report did not write: beside them, leaving them as they "
    "are (one it would overwrite, such as your own index.html, is refused even so)",
)
def report(
    models_spec,
    classes,
    chains,
    budget,
    quick,
    seed,
    map_steps,
    rows,
    backend,
    device,
    executor,
    address,
    cpus_per_task,
    gpus_per_task,
    real_images,
    dry_run,
    out_dir,
    replace,
    **scorers,
) -> None:
    """Reproduce the paper's comparison: every method on every class, metrics, claims, figures, HTML.
    An earlier report's -o is continued (its cells reused); a folder holding other files is refused."""
    import dataclasses
    from pathlib import Path

    from repro.errors import BadInput
    from repro.report.build import ReportOptions, make_report, plan_report
    from repro.report.executors import ExecutorOptions

    try:
        class_list = [int(k) for k in classes.split(",")] if classes else None
    except ValueError:
        raise BadInput(f"--classes: expected comma-separated integers, got {classes!r}") from None
    ms = resolve_models(models_spec, **scorers)
    if real_images is not None:
        ms = dataclasses.replace(ms, real_images=Path(real_images))
    opts = ReportOptions(
        models=ms,
        classes=class_list,
        chains=chains,
        budget=budget,
        quick=quick,
        seed=seed,
        map_steps=map_steps,
        rows=rows.split(",") if rows else None,
        backend=backend,
        device=device,
        executor=executor,
        executor_options=ExecutorOptions(address, cpus_per_task, gpus_per_task),
    )
    if dry_run:
        from repro.report.estimate import describe, estimate

        ms, plan = plan_report(opts)
        click.echo(describe(estimate(ms, plan, backend, device), backend, device))
        return
    results = make_report(opts, Path(out_dir), replace)
    verdicts = ", ".join(f"{c['number']}: {c['verdict']}" for c in results["claims"])
    click.echo(f"claims {verdicts}")
    from repro.report.document import nonfinite_notice

    for notice in (results["settings"]["iteration_floor"]["notice"], nonfinite_notice(results)):
        if notice:
            click.echo(f"notice: {notice}", err=True)
    click.echo(f"report written in {results['wall_seconds']:.0f} s → {Path(out_dir) / 'index.html'}")


@cli.command()
@click.option(
    "--judge", "judge_dir", required=True, type=click.Path(), help="folder (or .jl index) of the DCGAN judge"
)
@click.option("--preprocess", default="authors", show_default=True, type=click.Choice(list(PRESETS)))
@click.option("--json", "as_json", is_flag=True, help="print a JSON list of {image, p_real, log_p_real}")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
def judge(judge_dir, preprocess, as_json, images) -> None:
    """Score image files with the paper's realism judge: p(real) and log p(real), one line per image."""
    import json
    from pathlib import Path

    import numpy as np

    from repro.dcgan import DcganFiles, read_rgb
    from repro.evaluate.judges import DcganJudge, log_sigmoid

    scorer = DcganJudge(DcganFiles(Path(judge_dir), preprocess))
    pictures = [read_rgb(path) for path in images]  # every file is checked before any is scored
    log_p = log_sigmoid(scorer.score_rgb(pictures))
    rows = [
        {"image": path, "p_real": float(np.exp(lp)), "log_p_real": float(lp)}
        for path, lp in zip(images, log_p, strict=True)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for r in rows:
            click.echo(f"{r['p_real']:.6f}  {r['log_p_real']:.6f}  {r['image']}")


@cli.command()
@click.option("--models", "models_spec", default=None, help=MODELS_HELP)
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="the codes, a .npy [N, D]")
def encode(models_spec, images, out) -> None:
    """The codes of image files through the model set's encoder (the blob its generator inverts), one row per
    image in the order given: start points for `repro sample --init-codes`."""
    from pathlib import Path

    import numpy as np

    from repro.atomic import atomic_path, refuse_overwriting_inputs
    from repro.errors import BadInput
    from repro.evaluate.encoder import encode_files
    from repro.modelsets import resolve

    if not out.endswith(".npy"):
        raise BadInput(f"-o {out}: the codes are written as a .npy file; name one ending in .npy")
    refuse_overwriting_inputs(out, {f"image {i + 1}": path for i, path in enumerate(images)})
    codes = encode_files(resolve(models_spec), [Path(p) for p in images])
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.save(f, codes.astype(np.float32))
    click.echo(f"wrote {out}: {codes.shape[0]} codes of {codes.shape[1]} units")


def main(argv: list[str] | None = None) -> int:
    try:
        rc = cli.main(args=argv, prog_name="repro", standalone_mode=False)
    except ReproError as e:
        click.echo(f"error: {e}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as e:  # a bad option: one line, like every other bad input
        ctx = getattr(e, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        click.echo(f"error: {where}{e.format_message()}", err=True)
        return 2
    except OSError as e:  # files the user named: missing, unreadable, a folder where a file was expected
        click.echo(f"error: {e.strerror}: {e.filename}" if e.filename else f"error: {e}", err=True)
        return 2
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
