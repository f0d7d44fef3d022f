"""Write the Caffe golden files in tests/fixtures/caffe/ with a built oracle (tools/caffe_oracle/build.sh).

Usage: python tools/caffe_oracle/make_fixtures.py --caffe DIR [--only NAME ...] [--compare]

For each case: parse the prototxt with repro, fill seeded weights (`repro.caffe.random_weights`), write
them with `repro.caffe.write_net`, and run real Caffe on the case's ORIGINAL prototxt text with that
caffemodel (so a reader bug cannot hide by being written back out and read by Caffe too). Caffe's answers go
to <case>.npz; the manifest cases.json records how to rebuild the net, weights and input. No weights are
stored. `--compare` also prints repro's errors against the fresh answers.

Small cases store every blob. Full-size nets store only what the test compares: the final outputs, the
logits and the input gradient, in float32 (the fc6 generator's 3x256x256 image is stored whole, 786 KB:
a projection would hide where in the image a mismatch sits, and the total stays well under 6 MB).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from repro import caffe  # noqa: E402
from repro.atomic import atomic_path, write_text  # noqa: E402
from tools.caffe_oracle import golden  # noqa: E402
from tools.caffe_oracle.runner import result_to_npz, run_oracle  # noqa: E402


@dataclass
class Spec:
    """A case before its answers exist; `blobs=None` stores every blob Caffe has (small nets only)."""

    name: str
    source: dict
    grads: list
    seed: int
    batch: int = 2
    input_scale: float = 1.0
    blobs: list | None = None
    last_scale: float | None = None
    set_blobs: dict | None = None
    slow: bool = False

    def case(self) -> golden.Case:
        """The manifest entry, digests and stored blob names still to be filled in."""
        return golden.Case(
            name=self.name,
            source=dict(self.source),
            text_sha="",
            weights_sha="",
            seed=self.seed,
            batch=self.batch,
            input_scale=self.input_scale,
            grads=[list(g) for g in self.grads],
            blobs=list(self.blobs or []),
            last_scale=self.last_scale,
            set_blobs=self.set_blobs,
            slow=self.slow,
        )


def _small(name: str, grads: list, seed: int, **kw) -> Spec:
    return Spec(name, {"file": f"{name}.prototxt"}, grads, seed, **kw)


ALEXNET_V1 = "caffe__models__bvlc_alexnet__deploy.v1_a6610018.prototxt"
PLACES205_V0 = "synthesizing__nets__placesCNN__places205CNN_deploy_updated.prototxt"
ALL = None  # gradient of the sum of every element of the blob
SPECS = [
    _small("conv", [("conv_nobias", ALL), ("conv_hw", 37), ("conv_rep", ALL)], 101),
    _small("deconv", [("deconv_s1", ALL), ("deconv_s1", 123), ("deconv_hw", 10)], 102),
    _small("inner_product", [("ip_flat", 2), ("ip_transpose", ALL), ("ip_axis2", 10)], 103),
    _small("activations", [("leaky", ALL), ("relu", ALL), ("sigmoid", 5), ("tanh", ALL)], 104),
    _small(
        "lrn",
        [("lrn_across", ALL), ("lrn_across", 50), ("lrn_within", ALL), ("lrn_within", 50)]
        + [("lrn_default", ALL)],
        105,
        input_scale=3.0,  # large enough that the normaliser is far from 1 (k=2, alpha=0.5)
    ),
    _small(
        "pooling",
        [
            ("max_ceil", ALL),
            ("max_pad", 7),
            ("ave_pad", ALL),
            ("ave_ceil", ALL),
            ("max_hw", ALL),
            ("global_ave", ALL),
            ("global_max", ALL),
        ],
        106,
    ),
    _small("pool_drop_rule", [("max_drop", ALL), ("ave_drop", ALL), ("ave_drop_k3s3", ALL)], 107),
    _small("pool_round_mode", [("max_floor", ALL), ("ave_floor", ALL), ("max_ceil", ALL)], 108),
    _small("softmax_dropout", [("softmax1", 7), ("softmax2", 3), ("softmax_last", 20), ("drop", ALL)], 109),
    _small(
        "concat_reshape",
        [("reshape", 5), ("flatten", ALL), ("reshape_part", 17), ("flatten_mid", 30), ("concat_h", ALL)],
        110,
    ),
    _small("crop", [("crop_hw", ALL), ("crop_chw", 4), ("crop_default", ALL)], 111),
    _small("eltwise", [("sum_coeff", ALL), ("sum", ALL), ("prod", ALL), ("prod", 9), ("max", ALL)], 112),
    _small(
        "power",
        [("square", ALL), ("affine", ALL), ("cube", ALL), ("sqrt", ALL), ("inverse", 5), ("identity", ALL)],
        113,
    ),
    _small(
        "scale", [("scale_bias", ALL), ("scale_2axes", 13), ("scale_two", ALL), ("scale_two_bias", 7)], 114
    ),
    # Caffe divides the stored mean and variance by blob 2; random_weights always writes 1 there.
    _small("batch_norm", [("bn", ALL), ("bn", 30), ("bn_default", ALL)], 115, set_blobs={"bn": {"2": 4.0}}),
    _small("split_slice", [("sl_b", ALL), ("sl_c", 5), ("h2", ALL), ("s1", 3), ("mix", ALL)], 116),
    _small("in_place", [("tail", ALL), ("conv1", 13), ("pool1", ALL), ("fc", 2)], 117),
    _small("v1_format", [("prob", 3), ("concat", ALL)], 118),
    # Full-size nets at batch 1. Inputs are mean-subtracted pixels (scale 30); last_scale keeps the top
    # softmax probability well below 1 so that its gradient is not vanishingly small.
    *[
        Spec(name, source, [("prob", unit)], seed, 1, 30.0, ["prob", logits], last_scale=0.1, slow=True)
        for name, source, seed, logits, unit in [
            ("caffenet", {"architecture": "caffenet"}, 1, "fc8", 281),
            ("alexnet", {"architecture": "alexnet"}, 2, "fc8", 281),
            (
                "alexnet_v1_reference",
                {"reference": ALEXNET_V1, "fallback": "alexnet"},
                2,  # alexnet's seed: the built-in net may stand in for the reference only if Caffe agrees
                "fc8",
                281,
            ),
            ("googlenet", {"architecture": "googlenet"}, 3, "loss3/classifier", 281),
            # V0 format ("layers { layer { type: "conv" } }"); no built-in stands in, so without the
            # reference folder the test skips this case.
            ("places205_v0_reference", {"reference": PLACES205_V0}, 5, "fc8", 100),
        ]
    ],
    # The generator's gradient is taken at one pixel near the image centre (green channel).
    Spec(
        "fc6_generator",
        {"architecture": "fc6_generator"},
        [("deconv0", 1 * 256 * 256 + 128 * 256 + 128)],
        seed=4,
        batch=1,
        blobs=["deconv0"],
        slow=True,
    ),
]


def _run_caffe(text: str, net, inputs: dict, grads: list, caffe_dir: Path) -> dict:
    """Caffe on the original prototxt text, with the weights repro wrote."""
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        tmp = Path(tmp)
        (tmp / "case.prototxt").write_text(text)
        caffe.write_net(net, tmp / "written.prototxt", tmp / "weights.caffemodel")
        weights = tmp / "weights.caffemodel"
        return run_oracle(tmp / "case.prototxt", weights, inputs, grads, caffe_dir=caffe_dir)


def _same_answers(a: dict, b: dict) -> bool:
    return all(np.array_equal(a["blobs"][k], v) for k, v in b["blobs"].items()) and all(
        np.array_equal(a["grads"][g][n], v) for g, per in b["grads"].items() for n, v in per.items()
    )


def make_case(spec: Spec, caffe_dir: Path, folder: Path, reference: Path) -> tuple[golden.Case, dict] | None:
    case = spec.case()
    if "reference" in case.source:
        if not (reference / case.source["reference"]).exists():
            print(f"{spec.name}: reference prototxt absent, skipped", file=sys.stderr)
            return None
        fallback = case.source.pop("fallback", None)
    text, source, _ = golden.case_text(case, folder, reference)
    net = golden.build_net(text, source, case)
    case.text_sha, case.weights_sha = golden.text_digest(text), golden.weights_digest(net)
    inputs = golden.seeded_inputs(net, case.seed, case.input_scale)
    answer = _run_caffe(text, net, inputs, spec.grads, caffe_dir)
    moved = _run_caffe(text, net, golden.perturbed(inputs, case.seed), spec.grads, caffe_dir)
    case.grad_noise = golden.gradient_noise(moved, answer)
    everything = [b for b in answer["blobs"] if b not in net.inputs and not golden.is_auto_split(b)]
    case.blobs = case.blobs or everything
    answer["blobs"] = {b: answer["blobs"][b] for b in case.blobs}
    if "reference" in case.source and fallback is not None:
        # The built-in net may stand in for the reference file only if Caffe cannot tell them apart.
        fb_text = getattr(golden.architectures, fallback)()
        fb_net = golden.build_net(fb_text, f"<architecture {fallback}>", case)
        fb_answer = _run_caffe(fb_text, fb_net, inputs, spec.grads, caffe_dir)
        if golden.weights_digest(fb_net) == case.weights_sha and _same_answers(fb_answer, answer):
            case.source.update(fallback=fallback, fallback_sha=golden.text_digest(fb_text))
        else:
            print(f"{spec.name}: Caffe differs on the built-in {fallback}; the case needs the reference file")
    with atomic_path(folder / f"{spec.name}.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **result_to_npz(answer))
    return case, answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--caffe", required=True, type=Path, help="oracle folder made by build.sh")
    parser.add_argument("--only", nargs="*", help="regenerate only these cases (the others stay as they are)")
    parser.add_argument("--compare", action="store_true", help="also print repro's errors for each case")
    parser.add_argument("--folder", type=Path, default=golden.FIXTURES)
    parser.add_argument("--reference", type=Path, default=golden.REFERENCE)
    args = parser.parse_args(argv)

    manifest = args.folder / golden.MANIFEST
    cases = {c.name: c for c in golden.load_manifest(args.folder)} if manifest.exists() else {}
    specs = [s for s in SPECS if not args.only or s.name in args.only]
    checks = []
    for spec in tqdm(specs, desc="golden cases", file=sys.stderr):
        made = make_case(spec, args.caffe, args.folder, args.reference)
        if made is None:
            continue
        case, answer = made
        cases[spec.name] = case
        if args.compare:
            text, source, _ = golden.case_text(case, args.folder, args.reference)
            net = golden.build_net(text, source, case)
            inputs = golden.seeded_inputs(net, case.seed, case.input_scale)
            ours = golden.repro_side(net, inputs, case.blobs, case.grad_specs)
            checks += golden.compare(
                spec.name, ours, answer, case.grad_noise, golden.Kinks.of_net(net, inputs)
            )
    order = [s.name for s in SPECS]
    ordered = sorted(cases.values(), key=lambda c: order.index(c.name) if c.name in order else len(order))
    write_text(manifest, json.dumps({"format": 1, "cases": [asdict(c) for c in ordered]}, indent=1) + "\n")
    if checks:
        print(golden.format_table(checks))
        return 0 if all(c.passed for c in checks) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
