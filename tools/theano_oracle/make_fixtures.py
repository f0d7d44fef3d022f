"""Write tests/fixtures/dcgan/judge_golden.npz and its README with the Theano oracle (build.sh DIR first).

Usage: python tools/theano_oracle/make_fixtures.py --theano DIR [--reference FOLDER] [--check] [--dry-run]

Runs in the main venv. It makes the inputs (three seeded smooth random images and one constant grey one, as
0-255 integers in float32: the `authors` style, what their script fed; and the same images as x/127.5 - 1:
the `standard` style, what dcgan_code trained on), builds the judge folder (../shared's 15 real files and
the two seeded stand-ins of standins.py) in a temporary folder, and runs oracle.py in the Theano venv by
subprocess. `--check` recomputes everything in plain numpy float64 (its own convolution, batchnorm, lrelu)
and prints the worst relative errors against Theano; `--dry-run` skips writing the fixture.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from repro.atomic import atomic_path, write_text  # noqa: E402
from tools.theano_oracle import standins  # noqa: E402

ORACLE = Path(__file__).resolve().with_name("oracle.py")
REFERENCE = ROOT.parent / "shared" / "reference" / "dcgan_imagenet"
FIXTURES = ROOT / "tests" / "fixtures" / "dcgan"
IMAGE_SEEDS = (0, 1, 2)
GREY = 128.0
STYLES = ("authors", "standard")
LAYERS = ("h1", "h2", "h3", "h4", "h5", "h6")


def smooth_image(seed: int, size: int = 32) -> np.ndarray:
    """(3, size, size) float64 in 0..255, integer valued: a few random low-frequency waves plus noise."""
    rng = np.random.RandomState(seed)
    yy, xx = np.meshgrid(np.arange(size) / size, np.arange(size) / size, indexing="ij")
    img = np.empty((3, size, size))
    for c in range(3):
        field = np.zeros((size, size))
        for _ in range(4):
            fy, fx = rng.uniform(0.3, 2.5, size=2)
            phase = rng.uniform(0, 2 * np.pi)
            field += rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)
        img[c] = 128 + 45 * field + rng.normal(0, 12, size=(size, size))
    return np.clip(np.round(img), 0, 255)


def make_inputs() -> dict[str, np.ndarray]:
    """The two input styles, float32 (4, 3, 32, 32): images 0-2 seeded smooth, image 3 constant grey."""
    images = [smooth_image(s) for s in IMAGE_SEEDS] + [np.full((3, 32, 32), GREY)]
    authors = np.stack(images)
    return {"authors": authors.astype(np.float32), "standard": (authors / 127.5 - 1).astype(np.float32)}


def run_theano(theano_dir: Path, judge: Path, inputs: dict[str, np.ndarray], timeout: float = 1800) -> dict:
    """oracle.py's answer for `inputs` (see its docstring), computed in the Theano venv of `theano_dir`."""
    python = theano_dir / "venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{theano_dir}: no Theano venv (build it with tools/theano_oracle/build.sh DIR)")
    env = dict(os.environ)
    env["THEANO_FLAGS"] = f"blas.ldflags=,floatX=float32,compiledir={theano_dir / 'compiledir'}"
    env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory(prefix="theano-oracle-") as tmp:
        np.savez(Path(tmp) / "inputs.npz", **inputs)
        cmd = [
            str(python),
            str(ORACLE),
            str(judge),
            str(Path(tmp) / "inputs.npz"),
            str(Path(tmp) / "out.npz"),
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-20:])
            raise SystemExit(f"oracle.py failed (exit {proc.returncode}):\n{tail}")
        with np.load(Path(tmp) / "out.npz", allow_pickle=False) as out:
            return {k: out[k] for k in out.files}


# ------------------------------------------------------------------------------ the float64 numpy re-check


def np_conv(x: np.ndarray, w: np.ndarray, stride: int, flip: bool = True) -> np.ndarray:
    """True convolution (kernels flipped), 3x3, zero padding 1, stride s:

    out[n, o, i, j] = Σ_{c,a,b} x[n, c, s·i + a - 1, s·j + b - 1] · w[o, c, 2 - a, 2 - b]

    (flip=False: a cross-correlation, w[o, c, a, b], the usual mistake of a port).
    """
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwab,ocab->nohw", windows, w[:, :, ::-1, ::-1] if flip else w, optimize=True)


def np_bn(x: np.ndarray, g: np.ndarray, b: np.ndarray, e: float = 1e-8, ddof: int = 0) -> np.ndarray:
    """Batch statistics over (0, 2, 3): (x - u) / sqrt(mean((x - u)^2) + e) * g + b (ddof=1: unbiased var)."""
    u = x.mean(axis=(0, 2, 3), keepdims=True)
    s = ((x - u) ** 2).sum(axis=(0, 2, 3), keepdims=True) / (x.size // x.shape[1] - ddof)
    return (x - u) / np.sqrt(s + e) * g[None, :, None, None] + b[None, :, None, None]


def np_lrelu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, 0.2 * x)


def np_judge(
    params: list[np.ndarray], x: np.ndarray, flip: bool = True, eps: float = 1e-8, ddof: int = 0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(logits (N,), [h1, ..., h6]) in float64, x as one batch; the keywords make the wrong variants."""
    p = [np.asarray(v, np.float64) for v in params]
    w, w2, g2, b2, w3, g3, b3, w4, g4, b4, w5, g5, b5, w6, g6, b6, wy = p
    h = [np_lrelu(np_conv(np.asarray(x, np.float64), w, 1, flip))]
    for wk, gk, bk, stride in (
        (w2, g2, b2, 2),
        (w3, g3, b3, 1),
        (w4, g4, b4, 2),
        (w5, g5, b5, 1),
        (w6, g6, b6, 2),
    ):
        h.append(np_lrelu(np_bn(np_conv(h[-1], wk, stride, flip), gk, bk, eps, ddof)))
    return (h[-1].reshape(len(x), -1) @ wy)[:, 0], h


def rel(a: np.ndarray, ref: np.ndarray) -> float:
    """max|a - ref| / max|ref|."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - ref)) / np.max(np.abs(ref)))


# Plausible port mistakes, and how far each moves the authors-style batch-of-one logits.
VARIANTS = {
    "unflipped kernels (cross-correlation)": {"flip": False},
    "unbiased batch variance": {"ddof": 1},
    "eps 1e-5 (the PyTorch/ONNX default)": {"eps": 1e-5},
}


def check(params: list[np.ndarray], inputs: dict[str, np.ndarray], theano: dict) -> dict:
    """Print numpy-float64 vs Theano errors. Returns {"worst": the worst max|Theano - numpy| / max|numpy|
    over the single and batch logits of each style and h1..h6 of image 0, "variants": {name: max|logit
    change|} for VARIANTS, "pair": max|batch-of-2 logit - batch-of-1 logit| (authors images 0, 1)}."""
    worst = 0.0
    summary: dict = {"variants": {}}
    for style, x in inputs.items():
        singles = [np_judge(params, x[i : i + 1]) for i in range(len(x))]
        single = np.array([s[0][0] for s in singles])
        batch = np_judge(params, x)[0]
        pair = np_judge(params, x[:2])[0]
        errs = {
            "single_logit": rel(theano[f"{style}/single_logit"], single),
            "batch_logit": rel(theano[f"{style}/batch_logit"], batch),
        }
        for k, name in enumerate(LAYERS):
            errs[name] = rel(theano[f"{style}/{name}"], singles[0][1][k][0])
        worst = max(worst, *errs.values())
        each = np.abs(
            np.concatenate([theano[f"{style}/single_logit"] - single, theano[f"{style}/batch_logit"] - batch])
        )
        own = np.max(each / np.abs(np.concatenate([single, batch])))
        print(f"[check] {style}: numpy float64 single logits {np.round(single, 6).tolist()}")
        print(f"[check] {style}: numpy float64 batch-of-4 logits {np.round(batch, 6).tolist()}")
        print(f"[check] {style}: numpy float64 batch-of-2 (images 0,1) {np.round(pair, 6).tolist()}")
        print(f"[check] {style}: |batch-of-2 - singles| = {np.round(np.abs(pair - single[:2]), 6).tolist()}")
        print(
            f"[check] {style}: worst relative error Theano vs numpy: "
            + ", ".join(f"{k} {v:.2e}" for k, v in errs.items())
        )
        print(
            f"[check] {style}: logits, worst absolute error {each.max():.2e}, worst error relative to "
            f"its own logit {own:.2e} (float32 noise on small logits)"
        )
        if style == "authors":
            summary["pair"] = float(np.max(np.abs(pair - single[:2])))
            for name, kw in VARIANTS.items():
                moved = np.array([np_judge(params, x[i : i + 1], **kw)[0][0] for i in range(len(x))])
                summary["variants"][name] = float(np.max(np.abs(moved - single)))
                print(f"[check] {name}: authors single logits move by up to {summary['variants'][name]:.2e}")
    print(f"[check] worst relative error overall: {worst:.2e}")
    summary["worst"] = worst
    return summary


# --------------------------------------------------------------------------------------------- the fixture


def fixture_arrays(inputs: dict[str, np.ndarray], out: dict) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for style in STYLES:
        arrays[f"{style}/x"] = inputs[style]
        for key in ("single_logit", "single_p_real", "batch_logit", "batch_p_real"):
            arrays[f"{style}/{key}"] = out[f"{style}/{key}"]
        for name in LAYERS:
            h = np.asarray(out[f"{style}/{name}"], np.float64)
            arrays[f"{style}/{name}_mean"] = h.mean(axis=(1, 2)).astype(np.float32)
            arrays[f"{style}/{name}_std"] = h.std(axis=(1, 2)).astype(np.float32)
        arrays[f"{style}/h6"] = out[f"{style}/h6"]
    arrays["authors/pair_logit"] = out["authors_pair/batch_logit"]
    arrays["authors/pair_p_real"] = out["authors_pair/batch_p_real"]
    for label, name in (("w5", "30_discrim_params.jl_11.npy"), ("w6", "30_discrim_params.jl_14.npy")):
        arrays[f"standin/{label}_head"] = standins.standin(name).reshape(-1)[:16]
    return {k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items()}


def fmt(values: np.ndarray) -> str:
    return ", ".join(f"{float(v):.6g}" for v in values)


def readme(arrays: dict[str, np.ndarray], out: dict, command: str, summary: dict | None) -> str:
    def row(style: str) -> str:
        a = arrays
        return "\n".join(
            f"| {style} | {i} | {a[f'{style}/single_logit'][i]:.6g} | {a[f'{style}/single_p_real'][i]:.6g} | "
            f"{a[f'{style}/batch_logit'][i]:.6g} | {a[f'{style}/batch_p_real'][i]:.6g} |"
            for i in range(len(a[f"{style}/single_logit"]))
        )

    if summary is None:
        checked = "`--check` was not run for this fixture."
    else:
        moved = "\n".join(f"| {name} | {value:.2g} |" for name, value in summary["variants"].items())
        checked = (
            "For this fixture the worst relative error (max|Theano − numpy| / max|numpy|, over the logits\n"
            f"and h1..h6 of image 0, both styles) was {summary['worst']:.1e}.\n\n"
            f"How far plausible port mistakes move the authors-style batch-of-one logits (max |change|):\n\n"
            f"| mistake | max \\|Δ logit\\| |\n|---|---|\n{moved}\n"
            f"| batch of two (images 0, 1) instead of two batches of one | {summary['pair']:.2g} |\n\n"
            "Theano's own float32 logits differ from float64 by at most about 2e-5, so compare logits to an\n"
            "absolute 1e-4: a looser bound (for example 1e-4 relative to max|logit| ≈ 7) would let eps 1e-5\n"
            "pass."
        )
    listing = "\n".join(f"| `{k}` | {v.shape} |" for k, v in arrays.items())
    return f"""# Golden answers of the paper's realism judge (DCGAN ImageNet discriminator), from real Theano

Made by `{command}` with Theano {out["theano_version"]} (numpy {out["numpy_version"]}, scipy
{out["scipy_version"]}, Python {out["python_version"]} in its venv; the inputs and the float64 check used
numpy {np.__version__}), on the CPU with `THEANO_FLAGS=blas.ldflags=,floatX=float32` (float32 throughout,
as the authors' GPU run).
The network is dcgan_code's `imagenet/load_pretrained.py` `discrim()` with `dnn_conv` replaced by its CPU
equivalent `theano.tensor.nnet.conv2d(..., border_mode=(1, 1), filter_flip=True)`; see
`tools/theano_oracle/README.md`.

**The judge is partly a stand-in.** Its parameters are the 15 real files of
`../shared/reference/dcgan_imagenet/` plus seeded stand-ins for the two missing ones, `_11.npy` (w5,
512×256×3×3) and `_14.npy` (w6, 512×512×3×3): `tools.theano_oracle.standins.standin(name)`, float32
N(0, 0.02²) from `np.random.RandomState(1011)` and `(1014)`. Build the same folder with
`standins.judge_folder(tmp, reference)`. `standin/w5_head` and `standin/w6_head` are the first 16 values of
each stand-in, so a test can tell a changed stand-in ("regenerate") from a wrong port. The p_real values are
therefore not the real judge's scores; they test that a port computes what Theano computes.

## Inputs

Four images, (4, 3, 32, 32) float32, channels first, already preprocessed (the values the net sees):
images 0–2 are seeded smooth random images (`smooth_image(seed)` for seeds {IMAGE_SEEDS}: four random
low-frequency waves per channel plus N(0, 12²) noise around 128, rounded and clipped to 0..255), image 3 is a
constant grey {GREY:g}.

* `authors/x`: 0–255 integer values as float32, what the authors' script fed (uint8, no rescaling).
* `standard/x`: the same images as `x / 127.5 - 1` (float32), what dcgan_code trained on.

## Arrays (all float32; `np.load(path)` needs no pickles)

For STYLE in `authors`, `standard`:

* `STYLE/single_logit`, `STYLE/single_p_real` (4,): each image alone, a batch of one (the authors' way). The
  logit is `T.dot(flatten(h6, 2), wy)` (no bias), p_real = `T.nnet.sigmoid(logit)`.
* `STYLE/batch_logit`, `STYLE/batch_p_real` (4,): all four images as one batch. Batchnorm uses the current
  batch's statistics, so these differ from the batch-of-one values.
* `STYLE/hK_mean`, `STYLE/hK_std` (C,), K = 1..6: per-channel mean and (population) std over (H, W) of
  activation hK (after lrelu) of image 0 in a batch of one. h1 (128, 32×32), h2 (128, 16×16), h3 (256,
  16×16), h4 (256, 8×8), h5 (512, 8×8), h6 (512, 4×4).
* `STYLE/h6` (512, 4, 4): h6 of image 0 in a batch of one, whole.
* `authors/pair_logit`, `authors/pair_p_real` (2,): images 0 and 1 of `authors/x` as one batch of two.
* `standin/w5_head`, `standin/w6_head` (16,): see above.

| array | shape |
|---|---|
{listing}

## Values

| style | image | single logit | single p_real | batch-of-4 logit | batch-of-4 p_real |
|---|---|---|---|---|---|
{row("authors")}
{row("standard")}

Batch of two (authors images 0, 1): logits {fmt(arrays["authors/pair_logit"])}.

## Independent check and tolerance

`make_fixtures.py --check` recomputes every logit and h1..h6 in plain numpy float64 (its own flipped-kernel
convolution, batch-statistic batchnorm with eps 1e-8, lrelu 0.2) and compares them with Theano's.
{checked}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--theano", required=True, type=Path, help="the folder build.sh made")
    parser.add_argument(
        "--reference", type=Path, default=REFERENCE, help="folder with the 15 real judge files"
    )
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--check", action="store_true", help="also recompute in numpy float64 and compare")
    parser.add_argument("--dry-run", action="store_true", help="do not write the fixture")
    args = parser.parse_args(argv)

    inputs = make_inputs()
    request = dict(inputs, authors_pair=inputs["authors"][:2])
    with tempfile.TemporaryDirectory(prefix="dcgan-judge-") as tmp:
        judge = standins.judge_folder(Path(tmp), args.reference)
        out = run_theano(args.theano.resolve(), judge, request)
        params = standins.load_params(judge)
    print(
        f"Theano {out['theano_version']}, numpy {out['numpy_version']}, scipy {out['scipy_version']}, "
        f"Python {out['python_version']}"
    )
    for style in STYLES:
        for key in ("single_logit", "single_p_real", "batch_logit", "batch_p_real"):
            print(f"{style}/{key}: {fmt(out[f'{style}/{key}'])}")
    print(f"authors/pair_logit: {fmt(out['authors_pair/batch_logit'])}")
    summary = check(params, inputs, out) if args.check else None
    if args.dry_run:
        return 0
    arrays = fixture_arrays(inputs, out)
    command = "python tools/theano_oracle/make_fixtures.py --theano DIR" + (" --check" if args.check else "")
    with atomic_path(args.out / "judge_golden.npz") as tmp_path:
        with open(tmp_path, "wb") as f:
            np.savez(f, **arrays)
    write_text(args.out / "README.md", readme(arrays, out, command, summary))
    size = (args.out / "judge_golden.npz").stat().st_size
    print(f"wrote {args.out / 'judge_golden.npz'} ({size} bytes, {len(arrays)} arrays) and README.md")
    if summary is not None and summary["worst"] > 1e-5:
        worst = summary["worst"]
        print(f"warning: numpy float64 and Theano differ by {worst:.2e} relative (> 1e-5)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
