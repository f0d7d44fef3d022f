"""The `repro` command line (DESIGN §8): thin wrappers that parse options and call the library.

Every ReproError becomes one line on stderr and its exit code (2 bad input, 1 failed check); no tracebacks.
"""

from __future__ import annotations

import sys

import click

from repro.errors import ReproError


@click.group()
@click.version_option(package_name="repro")
def cli() -> None:
    """Class-conditional image synthesis by gradient-based inference on converted Caffe models."""


MODELS_HELP = "model set: embedded, random, a folder with manifest.json, or dgn-…=DIR (see `repro models`)"


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
@click.option("--batch", default=2, show_default=True, help="chains in the checked batch")
@click.option("--class", "class_index", default=0, show_default=True, help="class of the objective")
@click.option("--directions", default=3, show_default=True, help="finite-difference directions")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the checks as JSON")
def parity(models_spec, batch, class_index, directions, seed, as_json) -> None:
    """Forward and gradient parity: ORT-VJP vs torch autograd vs float64 finite differences."""
    import json

    import numpy as np

    from repro.errors import CheckFailed
    from repro.modelsets import posterior_model, resolve
    from repro.parity import run_parity

    ms = resolve(models_spec)
    click.echo(f"model set {ms.name}: converting and building the posterior ...", err=True)
    model = posterior_model(ms)
    code_size = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    z = np.abs(np.random.default_rng(seed).standard_normal((batch, code_size))).astype(np.float32)
    checks = run_parity(model, class_index, z, n_directions=directions, seed=seed)
    if as_json:
        click.echo(
            json.dumps({"models": ms.name, "batch": batch, "checks": [c.as_dict() for c in checks]}, indent=2)
        )
    else:
        for c in checks:
            click.echo(f"{'PASS' if c.passed else 'FAIL'}  {c.error:.2e} <= {c.tolerance:.0e}  {c.name}")
    failed = [c for c in checks if not c.passed]
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(checks)} parity checks failed on model set {ms.name}")


@cli.command()
@click.option("--models", "models_spec", default="random", show_default=True, help=MODELS_HELP)
@click.option("--batch", "batches", default="1,8", show_default=True, help="comma-separated batch sizes")
@click.option(
    "--repeats", default=5, show_default=True, help="timed runs after one warm-up (median reported)"
)
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
def bench(models_spec, batches, repeats, as_json) -> None:
    """Value-and-grad seconds per chain, GFLOP/s and peak memory: ORT-VJP vs torch autograd on CPU."""
    import json

    from repro.bench import run_bench
    from repro.modelsets import posterior_model, resolve

    ms = resolve(models_spec)
    sizes = tuple(int(b) for b in batches.split(","))
    click.echo(f"model set {ms.name}: converting and building the posterior ...", err=True)

    def show(row):
        click.echo(
            f"{row['backend']:>5}  batch {row['batch']:>3}  {row['s_per_chain']:.4f} s/chain  "
            f"{row['gflops']:.1f} GFLOP/s  peak {row['peak_rss_mb']:.0f} MB",
            err=True,
        )

    result = run_bench(posterior_model(ms), sizes, repeats, progress=show)
    if as_json:
        click.echo(json.dumps({"models": ms.name, **result}, indent=2))
    else:
        click.echo(f"{result['gflop_per_chain']:.2f} GFLOP per chain per value-and-grad; median of {repeats}")
        for r in result["rows"]:
            extra = f"  ORT/torch speed-up {r['speedup_vs_torch']:.2f}x" if "speedup_vs_torch" in r else ""
            click.echo(
                f"{r['backend']:>5}  batch {r['batch']:>3}  {r['s_per_chain']:.4f} s/chain  "
                f"{r['gflops']:.1f} GFLOP/s  peak {r['peak_rss_mb']:.0f} MB{extra}"
            )


@cli.command()
@click.option("--models", "models_spec", default=None, help=MODELS_HELP)
@click.option("--class", "class_index", type=int, required=True, help="class index of the classifier")
@click.option("--method", required=True, type=click.Choice(["map", "map-clip", "mala", "mala-clip", "hmc"]))
@click.option("--chains", default=4, show_default=True, type=click.IntRange(min=1))
@click.option("--steps", default=None, type=click.IntRange(min=1), help="[default: 200 MAP, 600 MCMC]")
@click.option("--seed", default=0, show_default=True)
@click.option("--step-size", default=None, type=float, help="override the method's initial step size")
@click.option("--adapt", default=0, show_default=True, help="dual-averaging warm-up steps (MCMC)")
@click.option("--backend", default="ort", show_default=True, type=click.Choice(["ort", "torch"]))
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option(
    "--clip-bounds",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="per-unit upper bounds, DGN-AM act_range format [default: the set's]",
)
@click.option("--no-parity-check", is_flag=True, help="skip the ORT vs torch check on the first batch")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False))
def sample(
    models_spec,
    class_index,
    method,
    chains,
    steps,
    seed,
    step_size,
    adapt,
    backend,
    device,
    clip_bounds,
    no_parity_check,
    out_dir,
) -> None:
    """Sample (or optimise) codes for one class; write one PNG per chain, a grid, samples.npz and run.json."""
    from pathlib import Path

    from repro.modelsets import resolve
    from repro.synthesis import SampleJob, run_job

    job = SampleJob(
        models=resolve(models_spec),
        class_index=class_index,
        method=method,
        chains=chains,
        steps=steps,
        seed=seed,
        backend=backend,
        device=device,
        clip_bounds=Path(clip_bounds) if clip_bounds else None,
        step_size=step_size,
        adapt=adapt,
        parity_check=not no_parity_check,
    )
    record = run_job(job, Path(out_dir))
    rate = sum(record["accept_rate"]) / len(record["accept_rate"])
    click.echo(
        f"{method} on {record['models']} class {class_index} ({record['class_name']}): {chains} chains × "
        f"{record['steps']} steps, acceptance {rate:.2f}, {record['n_grad']} gradients/chain, "
        f"{record['timings']['sample_s']:.1f} s → {out_dir}/grid.png"
    )


def main(argv: list[str] | None = None) -> int:
    try:
        rc = cli.main(args=argv, prog_name="repro", standalone_mode=False)
    except ReproError as e:
        click.echo(f"error: {e}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return 2
    except OSError as e:  # files the user named: missing, unreadable, a folder where a file was expected
        click.echo(f"error: {e.strerror}: {e.filename}" if e.filename else f"error: {e}", err=True)
        return 2
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
