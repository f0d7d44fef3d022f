"""The posterior's local curvature at its own draws: how far one mass matrix can whiten it.

    python -m tools.posterior_curvature [--beta 10] [--prior fitted] [--points 12] [-o curvature.json]

A mass matrix (diagonal, low-rank or dense) is one linear map for the whole posterior: it pays where the
Hessian is about the same everywhere, and the step a kernel can take is set by the stiffest curvature its
chains meet. This tool measures both. It runs hmc-jitter with dual averaging from initial_codes, as
tools.sampler_efficiency does, and takes `--points` of its states after warm-up, spread over chains and time.
At each it finds the extreme eigenvalues of −∇²log π in the coordinates the kernels run in (z under N(0, I),
u = the fitted prior's whitened code under it) by Lanczos (scipy's eigsh) on Hessian-vector products by
central differences of the gradient. It also finds the subspace the likelihood's gradients span (the top
`RANK` eigenvectors of their second moment over `SUBSPACE_DRAWS` kept draws; the prior is N(0, σ²I) in
these coordinates, so the likelihood's gradient is ∇log π + x/σ²) and how much of each point's stiffest
direction lies in it. Negative values are directions where log π curves up: the posterior is not
log-concave there.

A stiffest curvature that varies by orders of magnitude from point to point, in directions a few dozen
vectors hold, is what no fixed mass can take out: scaled for the stiffest points, the mass slows the chains
everywhere else; scaled for the typical point, the step must still fit the stiffest.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh
from tqdm import tqdm

from repro.errors import BadInput, ReproError
from repro.evaluate.code_prior import fitted_prior
from repro.evaluate.image_metrics import ImageMetrics
from repro.modelsets import ModelSet, code_size, resolve
from repro.posterior import GaussianPrior
from repro.runtime import ClassTarget
from repro.samplers import METHODS, precondition
from repro.samplers.state import Target
from tools.sampler_efficiency import BASELINE, check_out, publish, run_dual_averaging, setting

METHOD = "hmc-jitter"
RANK = 16  # the likelihood subspace's size: what a low-rank mass would hold
STEP = 1e-2  # central differences' step, in the kernel's coordinates (the posterior's scale there is ~1)
TOP = 3
SUBSPACE_DRAWS = 400  # kept draws, evenly spread, whose likelihood gradients span the subspace


def hessian_extremes(target: Target, x: np.ndarray, h: float = STEP) -> tuple[np.ndarray, float, np.ndarray]:
    """The TOP largest eigenvalues of −∇²log π at x [D] (descending), its smallest, and the eigenvector of
    the largest; Hessian-vector products by central differences of the gradient."""
    dim = x.size

    def product(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, np.float64).ravel()
        norm = np.linalg.norm(v)
        if norm == 0:
            return np.zeros(dim)
        _, grad = target.value_and_grad(np.stack([x + h * v / norm, x - h * v / norm]))
        return -(grad[0] - grad[1]) / (2 * h) * norm

    op = LinearOperator((dim, dim), matvec=product, dtype=np.float64)
    start = np.ones(dim) / np.sqrt(dim)  # a fixed start: the same point gives the same answer
    top, vectors = eigsh(op, k=min(TOP, dim - 1), which="LA", tol=1e-3, v0=start)
    order = np.argsort(top)[::-1]
    bottom = eigsh(op, k=1, which="SA", tol=1e-3, v0=start, return_eigenvectors=False)
    return top[order], float(bottom[0]), vectors[:, order[0]]


def likelihood_subspace(target: Target, points: np.ndarray, prior_sigma: float) -> np.ndarray:
    """[D, RANK]: the top eigenvectors of the likelihood gradients' second moment over the draws."""
    _, grad = target.value_and_grad(points)
    likelihood = np.asarray(grad, np.float64) + points / prior_sigma**2
    _, _, vt = np.linalg.svd(likelihood, full_matrices=False)
    return vt[: min(RANK, len(vt))].T


def measure(
    ms: ModelSet,
    class_index: int,
    beta: float,
    prior_kind: str,
    chains: int,
    gradients: int,
    n_points: int,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    ms.check_classes([class_index])
    prior = METHODS[BASELINE].prior_sigma
    if prior_kind == "fitted":
        prior = fitted_prior(ms, code_size(ms), "fitted", ImageMetrics(ms))
    backend = setting(ms, beta, prior)
    result = run_dual_averaging(ms, backend, class_index, METHOD, chains, gradients, seed, prior)
    kept = result.samples[result.warmup :].reshape(-1, backend.code_size)
    picked, spread = (
        kept[np.linspace(0, len(kept) - 1, n).round().astype(int)].astype(np.float64)
        for n in (n_points, min(len(kept), SUBSPACE_DRAWS))
    )
    affine = precondition.prior_affine(prior) if isinstance(prior, GaussianPrior) else None
    sigma = 1.0 if affine is not None else prior  # a fitted prior is N(0, I) in its whitened code

    def in_kernel_coordinates(rows: int) -> Target:
        target = ClassTarget(backend, np.full(rows, class_index))
        return target if affine is None else precondition.Preconditioned(target, affine)

    if affine is not None:
        picked, spread = affine.to_u(picked), affine.to_u(spread)
    subspace = likelihood_subspace(in_kernel_coordinates(len(spread)), spread, sigma)
    target = in_kernel_coordinates(2)
    points = []
    for x in tqdm(picked, desc="points", disable=not progress, file=sys.stderr):
        top, bottom, vector = hessian_extremes(target, x)
        points.append(
            {
                "top": top.tolist(),
                "bottom": bottom,
                "in_likelihood_subspace": float(np.sum((subspace.T @ vector) ** 2)),
            }
        )
    stiffest = np.array([p["top"][0] for p in points])
    return {
        "models": ms.name,
        "class": class_index,
        "beta": beta,
        "prior": prior_kind,
        "method": METHOD,
        "chains": chains,
        "gradients": gradients,
        "step": float(np.median(result.step_size)),
        "acceptance": float(result.accepted[result.warmup :].mean()),
        "rank": subspace.shape[1],
        "points": points,
        "stiffest_median": float(np.median(stiffest)),
        "stiffest_max": float(stiffest.max()),
        "stiffest_min": float(stiffest.min()),
    }


def markdown(result: dict) -> str:
    lines = [
        f"{result['models']}, class {result['class']}, β {result['beta']:g}, {result['prior']} prior: "
        f"{len(result['points'])} points of {result['method']} (step {result['step']:.3g}, acceptance "
        f"{result['acceptance']:.2f}); curvature −∇²log π in the kernel's coordinates",
        "",
        f"| point | largest {TOP} | smallest | stiffest direction in the likelihood's top {result['rank']} |",
        "|---|---|---|---|",
    ]
    for i, p in enumerate(result["points"]):
        top = ", ".join(f"{v:.3g}" for v in p["top"])
        lines.append(f"| {i} | {top} | {p['bottom']:.3g} | {p['in_likelihood_subspace']:.3f} |")
    low, high = result["stiffest_min"], result["stiffest_max"]
    spread = f" ({high / low:.3g}×)" if low > 0 else ""  # a ratio means nothing across a sign change
    lines += [
        "",
        f"Stiffest curvature: median {result['stiffest_median']:.3g}, from {low:.3g} to {high:.3g}{spread}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="embedded")
    parser.add_argument("--class", dest="class_index", type=int, default=0)
    parser.add_argument("--beta", type=float, default=10.0, help="guidance level β [default: 10]")
    parser.add_argument("--prior", choices=("standard", "fitted"), default="fitted")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--gradients", type=int, default=2000, help="per chain, warm-up included")
    parser.add_argument("--points", type=int, default=12)
    parser.add_argument("-o", "--out", type=Path, help="also write the points as JSON here")
    args = parser.parse_args(argv)
    try:
        if not (np.isfinite(args.beta) and args.beta > 0):
            raise BadInput(f"--beta: expected a finite value > 0, got {args.beta!r}")
        if args.chains < 1 or args.points < 2 or args.gradients < 100:
            raise BadInput("--chains: at least 1; --points: at least 2; --gradients: at least 100")
        started = time.perf_counter()
        ms = resolve(args.models)
        check_out(args.out, ms)
        result = measure(
            ms, args.class_index, args.beta, args.prior, args.chains, args.gradients, args.points
        )
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    publish(result, "tools.posterior_curvature", argv, started, markdown(result), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
