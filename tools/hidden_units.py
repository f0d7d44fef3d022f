"""A sheet of hidden-unit visualisations: each target's images under each method, one row per target.

    python -m tools.hidden_units [--models embedded] [--target conv3:11@3,3 --target fc6:40 ...] \
        [--methods map-clip,mala] [--chains 3] -o units.png

DGN-AM's "preferred inputs" of hidden neurons, beside what sampling the same unit's posterior draws: MAP+clip
at DGN-AM's published settings; an MCMC method with dual averaging at its published step count (the hidden
activation, not a class's log-probability, is its objective, and the paper's schedules were set for that).
Every image is scored by the unit's own activation, printed beside the sheet and written to X.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

import repro.api as rp
from repro.atomic import write_text
from repro.errors import BadInput, ReproError
from repro.images import grid, save_png

DEFAULT_TARGETS = ("conv3:11@3,3", "conv3:40@3,3", "conv3:77@mean", "fc6:40", "fc6:123", "fc6:300")


def draw(models: str, targets: list[str], methods: list[str], chains: int, seed: int) -> tuple[list, dict]:
    """Tiles (row by row) and the unit's activation at the start codes and at the images' codes, per chain:
    {target: {method: {"start": [...], "end": [...], "tuning": ...}}}."""
    ms = rp.models(models)
    tiles, scores = [], {}
    for spec in targets:
        unit = rp.posterior(ms, spec, method="map").aimed  # no prior term: the activation itself
        scores[spec] = {}
        for name in methods:
            post = rp.posterior(ms, spec, method=name)
            tuning = "dual-averaging" if post.method.mcmc else "paper"
            result = rp.run(post, chains=chains, seed=seed, tuning=tuning)
            start = unit.value_and_grad(rp.start_codes(post, chains, seed))[0]
            end = unit.value_and_grad(result.z_image.astype(np.float32))[0]
            scores[spec][name] = {"start": start.tolist(), "end": end.tolist(), "tuning": tuning}
            tiles += list(rp.images(post, result.z_image))
            print(
                f"{spec:>14} {name:>9}: activation {np.mean(start):8.2f} -> {np.mean(end):8.2f}",
                file=sys.stderr,
            )
    return tiles, scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="embedded")
    parser.add_argument("--target", action="append", help=f"repeat [default: {' '.join(DEFAULT_TARGETS)}]")
    parser.add_argument("--methods", default="map-clip,mala")
    parser.add_argument("--chains", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "-o", "--out", required=True, help="the sheet, a .png (and its scores beside it, .json)"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        if out.suffix != ".png":
            raise BadInput(f"-o {out}: the sheet is a .png")
        targets = args.target or list(DEFAULT_TARGETS)
        methods = [m for m in args.methods.split(",") if m]
        tiles, scores = draw(args.models, targets, methods, args.chains, args.seed)
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    columns = len(methods) * args.chains
    labels = [f"{m} {i + 1}" for m in methods for i in range(args.chains)]
    save_png(out, grid(tiles, columns, row_labels=targets, col_labels=labels), scale=2)
    record = {
        "command": shlex.join(["python", "-m", "tools.hidden_units", *(argv or sys.argv[1:])]),
        "scores": scores,
    }
    write_text(out.with_suffix(".json"), json.dumps(record, indent=2))
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
