"""Choose a model set's MALA and HMC start step sizes by dual averaging and write them into its manifest.

    python -m tools.tune_steps models/embedded

The paper's decaying schedules a·(1 + t)^−0.55 need a start value a, and the right one depends on the scale of
the code space (CaffeNet fc6 codes and the embedded set's codes differ). This runs each method at a constant
step with dual-averaging warm-up (target acceptance 0.574 for MALA, 0.65 for HMC) on the posterior the
samplers use (log p(k | x) + log N(z; 0, I)), for a few classes and chains, and stores the median adapted
step as `mala_step` / `hmc_step`, with the command and the measurements under `step_tuning`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from repro import samplers
from repro.atomic import write_text
from repro.modelsets import from_manifest
from repro.posterior import posterior_model
from repro.runtime import ClassTarget, make_backend
from repro.samplers import METHODS
from repro.samplers.initial import initial_codes


def tune(root: Path, classes: int, chains: int, steps: int, seed: int) -> dict:
    ms = from_manifest(root)
    mala = METHODS["mala"]  # MALA and HMC sample the same posterior
    model = posterior_model(ms, mala.objective, mala.prior_sigma)
    labels = np.repeat(np.arange(min(classes, len(ms.class_names))), chains)
    backend = make_backend("ort", model, "cpu")
    target = ClassTarget(backend, labels)
    z0 = initial_codes(seed, len(labels), backend.code_size)
    found = {}
    for method, start, options in (("mala", 1e-2, {}), ("hmc", 5e-2, {"n_leapfrog": 10})):
        n = steps if method == "mala" else max(20, steps // 10)
        warmup = (3 * n) // 4
        result = samplers.sample(target, method, z0, n, seed, start, adapt=warmup, progress=True, **options)
        found[method] = {
            "median_step": float(np.median(result.step_size)),
            "step_range": [float(result.step_size.min()), float(result.step_size.max())],
            "accept_rate_after_warmup": float(result.accept_rate.mean()),
            "iterations": n,
            "warmup": warmup,
        }
        print(
            f"{method}: median step {found[method]['median_step']:.4g}, acceptance after warm-up "
            f"{found[method]['accept_rate_after_warmup']:.3f}"
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="model set folder holding manifest.json")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--chains", type=int, default=2, help="chains per class")
    parser.add_argument("--steps", type=int, default=400, help="MALA iterations (HMC: a tenth)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    found = tune(args.root, args.classes, args.chains, args.steps, args.seed)
    path = args.root / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["mala_step"] = round(found["mala"]["median_step"], 4)
    manifest["hmc_step"] = round(found["hmc"]["median_step"], 4)
    manifest["step_tuning"] = {
        "command": "python -m tools.tune_steps " + shlex.join(sys.argv[1:] if argv is None else argv),
        "rule": "median dual-averaging step at constant step size (target acceptance "
        f"{METHODS['mala'].kernel.TARGET_ACCEPT} MALA, {METHODS['hmc'].kernel.TARGET_ACCEPT} HMC)",
        **found,
    }
    write_text(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote mala_step={manifest['mala_step']} hmc_step={manifest['hmc_step']} to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
