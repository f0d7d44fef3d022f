"""Live check of repro against real Caffe on any prototxt + caffemodel.

Usage: python tools/caffe_oracle/compare.py PROTOTXT CAFFEMODEL --caffe DIR [--blob B] [--unit K]
                                            [--batch N] [--seed S] [--input-scale X]

Feeds the same seeded input to Caffe (the built oracle, in a subprocess) and to repro (reader, converter,
ORT forward, ORT-VJP gradient), then prints one row per blob (max error relative to Caffe's largest
magnitude, tolerance 1e-4) and per input gradient of Σ_b B[b].flat[K] (tolerance 1e-3).
Exit status: 0 all within tolerance, 1 a mismatch, 2 bad input.

A gradient mismatch is not always repro's: Caffe's backward is not the derivative of its own forward for a
Power layer run in place (it overwrites the top diff before reading it), nor for a ReLU or Sigmoid followed
by further in-place layers on the same blob (its backward reads the blob's final data).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from repro import caffe  # noqa: E402
from repro.errors import ReproError  # noqa: E402
from tools.caffe_oracle import golden  # noqa: E402
from tools.caffe_oracle.runner import run_oracle  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("prototxt", type=Path)
    parser.add_argument("caffemodel", type=Path)
    parser.add_argument("--caffe", required=True, type=Path, help="oracle folder made by build.sh")
    parser.add_argument("--blob", help="blob whose unit's input gradient is compared (default: last output)")
    parser.add_argument("--unit", default="0", help="flat index within one batch item, or 'all' (default 0)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input-scale", type=float, default=1.0, help="inputs are seeded N(0, scale²)")
    args = parser.parse_args(argv)
    try:
        net = caffe.load_net(args.prototxt, args.caffemodel, batch=args.batch)
        blob = args.blob or net.outputs[-1]
        if blob not in net.shapes:
            parser.error(f"--blob {blob}: not a blob of {args.prototxt}")
        unit = None if args.unit == "all" else int(args.unit)
        size = math.prod(net.shapes[blob][1:])
        if unit is not None and not 0 <= unit < size:
            parser.error(f"--unit {unit}: {blob} has {size} units per batch item")
        inputs = golden.seeded_inputs(net, args.seed, args.input_scale)
        answer = run_oracle(args.prototxt, args.caffemodel, inputs, [(blob, unit)], caffe_dir=args.caffe)
        moved = run_oracle(
            args.prototxt,
            args.caffemodel,
            golden.perturbed(inputs, args.seed),
            [(blob, unit)],
            caffe_dir=args.caffe,
        )
        blobs = [b for b in answer["blobs"] if b in net.shapes and b not in net.inputs]
        answer["blobs"] = {b: answer["blobs"][b] for b in blobs}
        ours = golden.repro_side(net, inputs, blobs, [(blob, unit)])
    except ReproError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    noise = golden.gradient_noise(moved, answer)
    print(
        f"Caffe's own gradient under a {golden.NOISE:g} relative input change: max {noise['max']:.2e}, "
        f"rel. L2 {noise['l2']:.2e}"
    )
    checks = golden.compare("", ours, answer, noise, golden.Kinks.of_net(net, inputs))
    print(golden.format_table(checks))
    failed = sum(not c.passed for c in checks)
    print(f"{len(checks) - failed}/{len(checks)} within tolerance")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
