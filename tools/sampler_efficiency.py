"""Effective samples per gradient of every MCMC sampler on a model set's posterior, at equal cost.

    python -m tools.sampler_efficiency [--models embedded] [--gradients 6000] [--seeds 5] [-o efficiency.json]

Every gradient of the paper's posterior is a forward and backward pass of two nets, so samplers are compared
by what a gradient buys. For each guidance level β and prior (N(0, I), or the Gaussian fitted to real codes,
under which the chains run preconditioned by its covariance as the report's `-prior` rows do), each method
runs with dual averaging from the same start codes (initial_codes of the seed) for the same gradient
evaluations per chain, warm-up included (samplers.methods.iterations_for, as `repro sample --gradients`).
After warm-up its draws are summarised by log π, ‖z‖², the target's log-likelihood log p(k | G(z)), three
random unit projections of z and the top three principal directions of a reference run at that setting
(REFERENCE, REFERENCE_LENGTH times the budget, from start codes no compared run uses, so the directions
are the posterior's and not those of the runs measured, whose transients would tilt them; the same
directions for every method); the worst bulk and tail ESS over these,
divided by chains × gradients (repro.evaluate.diagnostics.summarize), is a run's efficiency. Each seed pairs
every method with MALA with dual averaging on the same start codes: the table gives the ratio's median and
range over seeds, with acceptance, step, HMC's trajectory length ε·L̄ (in the coordinates the kernel runs
in), the largest split-R̂ and ESS per second (medians over seeds); under the table it names every seed on
which MALA had not converged (R̂ above STATIONARY_RHAT), where the ratios flatter whatever starts faster.
The default budget is the report's full one (6000 gradients a chain): there MALA's R̂ was 1.01–1.04 at
β = 1 under N(0, I), and at β = 10 under the fitted prior on seeds 0 and 2 (seed 1: 1.26), where 2000
left it at 1.16. Run it on a quiet machine: ESS per second is a timing.

β 0 (in the default --betas) is the prior alone, N(0, I) in closed form, no nets: the target the kernels'
theory is built for, and so the ceiling of each method's ratio on a target of the code's dimension. Measured
there at D = 512 (the defaults): median ESS per gradient MALA 0.036, mclmc 0.158 (4.33×, 4.00–4.62× over
the seeds), ghmc 0.077 (2.09×); a target above a method's ceiling cannot be met on any posterior of that size.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from repro.atomic import atomic_path, write_text
from repro.errors import BadInput, ReproError
from repro.evaluate.code_prior import fitted_prior
from repro.evaluate.diagnostics import summarize
from repro.evaluate.image_metrics import ImageMetrics
from repro.modelsets import ModelSet, code_size, resolve
from repro.posterior import GaussianPrior, log_prior, posterior_model
from repro.runtime import Backend, ClassTarget, make_backend
from repro.samplers import METHODS, precondition
from repro.samplers.initial import initial_codes
from repro.samplers.methods import iterations_for
from repro.samplers.run import Result

BASELINE = "mala"
DEFAULT_METHODS = ("mala", "hmc", "mala-mass", "hmc-jitter", "ghmc", "mclmc")
N_COMPONENTS = 3
# The reference run: an exact sampler (its reference checks in the report's exact rows) that mixes well on
# this posterior, for this many times the compared runs' gradients.
REFERENCE = "ghmc"
REFERENCE_LENGTH = 4
DEFAULT_GRADIENTS = 6000
# Above this the baseline is not stationary: on the embedded set at β = 10 under the fitted prior, MALA's R̂
# was 1.16 at 2000 gradients, where ghmc stood at 3.5–4.8× MALA, and 1.02–1.03 at 6000, where it stood at
# 1.4–1.5× (2 seeds).
STATIONARY_RHAT = 1.05


@dataclass(frozen=True)
class PriorAlone:
    """N(0, I) on the code, in closed form: the posterior at β = 0 under the standard prior, without the
    nets (their likelihood term β · log p(k | G(z)) is 0). It stands in for the backend the chains run on."""

    code_size: int

    def value_and_grad(self, z: np.ndarray, classes: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        z = np.asarray(z, np.float64)
        return -0.5 * np.sum(z * z, axis=1), -z


def setting(ms: ModelSet, beta: float, prior: float | GaussianPrior) -> Backend | PriorAlone:
    """The posterior's backend at one (β, prior) setting (MALA's posterior, which HMC's rows share)."""
    if beta == 0:  # `measure` runs β 0 under the standard prior only
        return PriorAlone(code_size(ms))
    return make_backend("ort", posterior_model(ms, METHODS[BASELINE].objective, prior, beta), "cpu")


def measure(
    ms: ModelSet,
    class_index: int,
    methods: tuple[str, ...],
    betas: tuple[float, ...],
    priors: tuple[str, ...],
    seeds: int,
    chains: int,
    gradients: int,
    progress: bool = True,
) -> dict:
    ms.check_classes([class_index])
    for name in methods:
        if name not in METHODS or not METHODS[name].mcmc or METHODS[name].released:
            raise BadInput(f"--methods: {name!r} is not an MCMC method that dual averaging tunes")
    methods = (BASELINE, *[m for m in methods if m != BASELINE])
    # β 0 is the prior alone: under the fitted prior, preconditioned, the chains would see N(0, I) again
    settings = [(beta, prior) for beta in betas for prior in priors if beta > 0 or prior == "standard"]
    fitted = None
    if any(prior == "fitted" for _, prior in settings):  # once: choosing its form draws through the generator
        fitted = fitted_prior(ms, code_size(ms), "fitted", ImageMetrics(ms))
    terms = {"standard": METHODS[BASELINE].prior_sigma, "fitted": fitted}
    out = {
        "models": ms.name,
        "class": class_index,
        "chains": chains,
        "gradients": gradients,
        "reference": {"method": REFERENCE, "gradients": REFERENCE_LENGTH * gradients, "seed": seeds},
        "rows": [],
    }
    runs_each = len(methods) * seeds + REFERENCE_LENGTH  # a reference run costs REFERENCE_LENGTH runs
    bar = tqdm(total=len(settings) * runs_each, desc="runs", disable=not progress, file=sys.stderr)
    for beta, prior_kind in settings:
        prior = terms[prior_kind]
        backend = setting(ms, beta, prior)
        reference = run_dual_averaging(
            ms, backend, class_index, REFERENCE, chains, REFERENCE_LENGTH * gradients, seeds, prior
        )
        directions = principal_directions(reference.samples[reference.warmup :])
        bar.update(REFERENCE_LENGTH)
        runs = {}
        for method in methods:
            for seed in range(seeds):
                runs[method, seed] = run_dual_averaging(
                    ms, backend, class_index, method, chains, gradients, seed, prior
                )
                bar.update(1)
        for (method, seed), result in runs.items():
            out["rows"].append(
                {
                    "beta": beta,
                    "prior": prior_kind,
                    "method": method,
                    "seed": seed,
                    **_efficiency(result, prior, beta, directions),
                }
            )
    bar.close()
    out["table"] = table(out["rows"])
    return out


def run_dual_averaging(
    ms: ModelSet,
    backend: Backend,
    class_index: int,
    method: str,
    chains: int,
    gradients: int,
    seed: int,
    prior: float | GaussianPrior,
) -> Result:
    """One method with dual averaging from the seed's start codes, for `gradients` per chain, warm-up
    included; under a fitted prior, preconditioned by it as the report's `-prior` rows run."""
    m = METHODS[method]
    steps = iterations_for(gradients, m.kernel.gradients_per_step(**m.dual_averaging(1)))
    options = m.dual_averaging(steps)
    target = ClassTarget(backend, np.full(chains, class_index))
    fitted = isinstance(prior, GaussianPrior)
    z0 = initial_codes(seed, chains, backend.code_size, prior if fitted else None)
    return precondition.sampler_under(prior)(target, method, z0, steps, seed, ms.start_step(m), **options)


def principal_directions(kept: np.ndarray) -> np.ndarray:
    """[D, N_COMPONENTS]: the top principal directions of draws [steps, chains, D], chains pooled."""
    pooled = kept.reshape(-1, kept.shape[-1])
    centred = pooled - pooled.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[:N_COMPONENTS].T


def _efficiency(result, prior, beta: float, directions: np.ndarray) -> dict:
    def extra(kept: np.ndarray) -> dict[str, np.ndarray]:
        # log π = β log p(k | G(z)) + log p(z) + const: the likelihood from the trace (thin 1, so the kept
        # states are the states after warm-up), no extra pass
        logp = result.logp[result.warmup :]
        named = {"sq_norm": np.sum(kept**2, axis=-1)}
        if beta > 0:  # at β 0 there is no likelihood to summarise
            named["log_likelihood"] = (logp - log_prior(kept, prior)) / beta
        projected = kept @ directions
        named.update({f"principal_{j}": projected[:, :, j] for j in range(directions.shape[1])})
        return named

    d = summarize(result, extra=extra)
    worst = min(d["summaries"], key=lambda k: d["summaries"][k]["ess_per_grad"] or 0.0)
    m = METHODS[result.method]
    length = None
    if "n_leapfrog" in m.kernel.OPTIONS:
        leapfrogs = m.kernel.OPTIONS["n_leapfrog"].value("n_leapfrog", m.dual_averaging(1))
        length = d["step_size_median"] * leapfrogs
    return {
        "acceptance": d["accept_rate_mean"],
        "step": d["step_size_median"],
        "trajectory": length,
        "ess_bulk_per_grad": d["ess_per_grad_min"],
        "ess_tail_per_grad": d["ess_tail_per_grad_min"],
        "worst_summary": worst,
        "rhat_max": d["rhat_max"],
        "ess_per_second": min(s["ess_per_second"] or 0.0 for s in d["summaries"].values()),
        "seconds": d["seconds"],
        "n_grad": d["n_grad"],
    }


def table(rows: list[dict]) -> list[dict]:
    """Per (β, prior, method): medians over seeds, and the ratio to MALA (dual averaging) paired by seed."""
    out = []
    keys = sorted({(r["beta"], r["prior"]) for r in rows}, key=lambda k: (k[0], k[1] != "standard"))
    for beta, prior in keys:
        here = [r for r in rows if (r["beta"], r["prior"]) == (beta, prior)]
        base = {r["seed"]: r["ess_bulk_per_grad"] for r in here if r["method"] == BASELINE}
        for method in dict.fromkeys(r["method"] for r in here):
            mine = [r for r in here if r["method"] == method]
            ratios = [r["ess_bulk_per_grad"] / base[r["seed"]] for r in mine if base.get(r["seed"])]
            med = {
                k: _median([r[k] for r in mine])
                for k in (
                    "acceptance",
                    "step",
                    "trajectory",
                    "ess_bulk_per_grad",
                    "ess_tail_per_grad",
                    "rhat_max",
                    "ess_per_second",
                )
            }
            worst = max(set(r["worst_summary"] for r in mine), key=[r["worst_summary"] for r in mine].count)
            # a median R̂ hides one seed that had not converged; these are named under the table
            late = [[r["seed"], r["rhat_max"]] for r in mine if (r["rhat_max"] or 0.0) > STATIONARY_RHAT]
            out.append(
                {
                    "beta": beta,
                    "prior": prior,
                    "method": method,
                    **med,
                    "worst_summary": worst,
                    "ratio_median": _median(ratios),
                    "ratio_min": min(ratios) if ratios else None,
                    "ratio_max": max(ratios) if ratios else None,
                    "seeds": len(mine),
                    "unconverged": late,
                }
            )
    return out


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def markdown(result: dict) -> str:
    head = (
        "| β | prior | method (dual averaging) | acceptance | step | ε·L̄ | bulk ESS/grad | tail ESS/grad | "
        "× MALA (median, range over seeds) | worst summary | max R̂ | ESS/s |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in result["table"]:

        def f(x, fmt=".3g"):
            return "–" if x is None else format(x, fmt)

        ratio = f"{f(r['ratio_median'], '.2f')} ({f(r['ratio_min'], '.2f')}–{f(r['ratio_max'], '.2f')})"
        cells = [
            f"{r['beta']:g}",
            r["prior"],
            r["method"],
            f(r["acceptance"], ".2f"),
            f(r["step"]),
            f(r["trajectory"]),
            f(r["ess_bulk_per_grad"], ".4f"),
            f(r["ess_tail_per_grad"], ".4f"),
            ratio,
            r["worst_summary"],
            f(r["rhat_max"], ".3f"),
            f(r["ess_per_second"], ".2f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if any(r["beta"] == 0 for r in result["table"]):
        lines.append(
            "\nβ 0: N(0, I) alone, the posterior without the classifier (in closed form), the target these "
            "kernels' theory is built for; a method's ESS per gradient and ratio there are the most it "
            "reached on a target of this dimension, a ceiling for its rows at β > 0"
        )
    for r in result["table"]:
        if r["method"] == BASELINE and r["unconverged"]:
            seeds = ", ".join(f"{seed} ({rhat:.3f})" for seed, rhat in r["unconverged"])
            word = "seed" if len(r["unconverged"]) == 1 else "seeds"
            lines.append(
                f"\nβ {r['beta']:g}, {r['prior']} prior: {BASELINE}'s max R̂ was above {STATIONARY_RHAT} on "
                f"{word} {seeds}, so its chains had not converged within the budget there and those seeds' "
                "ratios count faster convergence from the start codes as faster mixing; rerun with more "
                "--gradients"
            )
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Each method's ESS per gradient over MALA's, per (β, prior): the median over seeds, bars spanning their
    range, on a log scale with the issue's target (5×) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    settings = list(dict.fromkeys((r["beta"], r["prior"]) for r in result["table"]))
    methods = list(dict.fromkeys(r["method"] for r in result["table"]))
    fig, ax = plt.subplots(figsize=(1.6 + 1.8 * len(settings), 3.4))
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        xs, med, low, high = [], [], [], []
        for i, setting in enumerate(settings):
            r = next(r for r in result["table"] if (r["beta"], r["prior"], r["method"]) == (*setting, method))
            if r["ratio_median"] is None:
                continue
            xs.append(i + (j - (len(methods) - 1) / 2) * width)
            med.append(r["ratio_median"])
            low.append(r["ratio_median"] - r["ratio_min"])
            high.append(r["ratio_max"] - r["ratio_median"])
        ax.bar(xs, med, width, yerr=[low, high], capsize=2, label=method)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.axhline(5.0, color="grey", lw=0.8, ls="--", label="5× (the target)")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator([0.1, 0.2, 0.5, 1, 2, 5, 10, 20]))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g×"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    names = [f"β = {b:g}\n{p} prior" if b else "β = 0\nN(0, I) alone" for b, p in settings]
    ax.set_xticks(range(len(settings)), names)
    ax.set_ylabel("worst bulk ESS per gradient\n÷ MALA's (same seed)")
    ax.set_title(f"{result['models']}, class {result['class']}, {result['gradients']} gradients per chain")
    ax.legend(fontsize=7, ncol=2)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)


def _numbers(text: str, kind, name: str) -> tuple:
    try:
        values = tuple(kind(v) for v in text.split(","))
    except ValueError:
        raise BadInput(f"{name}: expected comma-separated {kind.__name__} values, got {text!r}") from None
    if not values:
        raise BadInput(f"{name}: expected at least one value")
    return values


def check_out(out: Path | None, ms: ModelSet) -> None:
    """Refuse an -o path before the long work starts: a missing folder, not .json, or inside the model set."""
    if out is None:
        return
    if not out.parent.is_dir():
        raise BadInput(f"-o {out}: its folder does not exist")
    if out.suffix != ".json":
        raise BadInput(f"-o {out}: expected a .json file (a chart may go beside it, .png)")
    if ms.root is not None and out.resolve().is_relative_to(ms.root.resolve()):
        raise BadInput(f"-o {out}: inside model set {ms.name}'s folder {ms.root}; it writes nothing there")


def publish(
    result: dict, module: str, argv: list[str] | None, started: float, text: str, out: Path | None
) -> None:
    """Stamp a tool's result with the command that made it and its wall time, print its table, and write it
    as JSON to -o (atomically)."""
    result["command"] = shlex.join(["python", "-m", module, *(argv or sys.argv[1:])])
    result["seconds"] = time.perf_counter() - started
    print(text)
    if out is not None:
        write_text(out, json.dumps(result, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="embedded")
    parser.add_argument("--class", dest="class_index", type=int, default=0)
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument(
        "--betas",
        default="0,1,10",
        help="guidance levels β; 0: N(0, I) alone, each kernel's ceiling [default: 0,1,10]",
    )
    parser.add_argument("--priors", default="standard,fitted")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument(
        "--gradients", type=int, default=DEFAULT_GRADIENTS, help="per chain, warm-up included [default: 6000]"
    )
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        help="also write the rows and the table as JSON here, and a chart beside it (.png)",
    )
    args = parser.parse_args(argv)
    try:
        methods = _numbers(args.methods, str, "--methods")
        betas = _numbers(args.betas, float, "--betas")
        priors = _numbers(args.priors, str, "--priors")
        if any(p not in ("standard", "fitted") for p in priors):
            raise BadInput(f"--priors: expected standard and/or fitted, got {args.priors!r}")
        if any(not (np.isfinite(b) and b >= 0) for b in betas):
            raise BadInput(f"--betas: expected finite values ≥ 0, got {args.betas!r}")
        if priors == ("fitted",) and set(betas) == {0.0}:
            raise BadInput("--betas 0 runs under the standard prior only; add it to --priors")
        if args.seeds < 2 or args.chains < 2 or args.gradients < 100:
            raise BadInput("--seeds and --chains: at least 2; --gradients: at least 100")
        started = time.perf_counter()
        ms = resolve(args.models)
        check_out(args.out, ms)
        result = measure(
            ms, args.class_index, methods, betas, priors, args.seeds, args.chains, args.gradients
        )
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    publish(result, "tools.sampler_efficiency", argv, started, markdown(result), args.out)
    if args.out is not None:
        plot(result, args.out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
