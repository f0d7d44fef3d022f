"""Real Caffe as the oracle: every blob after a forward pass, and input gradients from Caffe's own backward.

pycaffe aborts the whole process on a bad net (glog FATAL), loads nets only from files and is built against
one Python, so the Caffe side always runs in a child process (`python runner.py ...`, with the built pycaffe
on PYTHONPATH); the parent side is `run_oracle`, which writes the request files, runs the child and reads
its answer. The child needs only numpy and pycaffe.

The prototxt is changed only where a CPU build of the fork would otherwise refuse it or skip the backward:
`force_backward: true` (without it Caffe computes no input gradient), `engine: CUDNN` removed (a CPU build
has no cuDNN engine), and BVLC's `round_mode: CEIL|FLOOR` rewritten as the fork's `ceil_mode: true|false`
(same semantics, different field).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

# (blob, unit): a top diff one-hot at `unit` in every batch item; unit None: all ones
GradSpec = tuple[str, int | None]

_ENGINE_CUDNN = re.compile(r"\bengine\s*:\s*CUDNN\b")
_ROUND_MODE = re.compile(r"\bround_mode\s*:\s*(CEIL|FLOOR)\b")
_FORCE_BACKWARD = re.compile(r"^\s*force_backward\s*:\s*\w+\s*$", re.M)


def oracle_prototxt(text: str) -> str:
    """The prototxt the oracle actually runs (see the module docstring for why each change is needed)."""
    text = _ENGINE_CUDNN.sub("", text)
    text = _ROUND_MODE.sub(lambda m: "ceil_mode: " + ("true" if m.group(1) == "CEIL" else "false"), text)
    text = _FORCE_BACKWARD.sub("", text)
    return "force_backward: true\n" + text


def grad_key(blob: str, unit: int | None) -> str:
    return f"{blob}:{'all' if unit is None else unit}"


def parse_grad_key(key: str) -> GradSpec:
    blob, _, unit = key.rpartition(":")
    if not blob:
        raise ValueError(f"--grad wants BLOB:UNIT or BLOB:all, got {key!r}")
    return blob, None if unit == "all" else int(unit)


def result_from_npz(npz: Mapping[str, np.ndarray]) -> dict:
    """The .npz layout (blob/<name>, grad/<blob>:<unit>/<input>) as {"blobs": ..., "grads": {spec: ...}}."""
    result: dict = {"blobs": {}, "grads": {}}
    for key in npz:
        kind, _, rest = key.partition("/")
        if kind == "blob":
            result["blobs"][rest] = np.asarray(npz[key])
        elif kind == "grad":
            spec, _, name = rest.rpartition("/")
            result["grads"].setdefault(parse_grad_key(spec), {})[name] = np.asarray(npz[key])
    return result


def result_to_npz(result: dict) -> dict[str, np.ndarray]:
    out = {f"blob/{k}": np.asarray(v, np.float32) for k, v in result["blobs"].items()}
    for (blob, unit), per_input in result["grads"].items():
        for name, value in per_input.items():
            out[f"grad/{grad_key(blob, unit)}/{name}"] = np.asarray(value, np.float32)
    return out


# ----------------------------------------------------------------------------------------------- parent side


def find_pycaffe(caffe_dir: str | os.PathLike) -> Path:
    """The folder to put on PYTHONPATH: `caffe_dir` itself, its `python/`, or build.sh's `src/python/`."""
    caffe_dir = Path(caffe_dir)
    for candidate in (caffe_dir, caffe_dir / "python", caffe_dir / "src" / "python"):
        if (candidate / "caffe" / "_caffe.so").exists():
            return candidate
    from repro.errors import BadInput

    raise BadInput(
        f"{caffe_dir}: no built pycaffe (expected caffe/_caffe.so under it, python/ or src/python/); "
        "build it with tools/caffe_oracle/build.sh DIR"
    )


def run_oracle(
    prototxt: str | os.PathLike,
    caffemodel: str | os.PathLike | None,
    inputs: Mapping[str, np.ndarray],
    grad_of: GradSpec | Sequence[GradSpec] | None = None,
    *,
    caffe_dir: str | os.PathLike,
    python: str | None = None,
    timeout: float = 1800,
) -> dict:
    """Run real Caffe on `prototxt` (+ `caffemodel`) with `inputs` (blob name -> array, any batch size).

    Returns {"blobs": {blob: array after the full forward}, "grads": {(blob, unit): {input: d/d input}}},
    where each gradient is Caffe's backward from a top diff that is one-hot at `unit` of `blob` in every batch
    item (all ones when unit is None), i.e. d Σ_b blob[b].flat[unit] / d input.
    """
    from repro.errors import CheckFailed

    if grad_of is None:
        specs: list[GradSpec] = []
    elif isinstance(grad_of, tuple) and len(grad_of) == 2 and isinstance(grad_of[0], str):
        specs = [grad_of]
    else:
        specs = list(grad_of)
    pypath = find_pycaffe(caffe_dir)
    with tempfile.TemporaryDirectory(prefix="caffe-oracle-") as tmp:
        tmp = Path(tmp)
        (tmp / "net.prototxt").write_text(oracle_prototxt(Path(prototxt).read_text()))
        np.savez(tmp / "inputs.npz", **{k: np.asarray(v, np.float32) for k, v in inputs.items()})
        cmd = [python or sys.executable, str(Path(__file__).resolve()), str(tmp / "net.prototxt")]
        cmd += [str(caffemodel) if caffemodel else "-", str(tmp / "inputs.npz"), str(tmp / "out.npz")]
        for blob, unit in specs:
            cmd += ["--grad", grad_key(blob, unit)]
        env = dict(os.environ, PYTHONPATH=str(pypath), GLOG_minloglevel="2", OMP_NUM_THREADS="1")
        env["OPENBLAS_NUM_THREADS"] = env.get("OPENBLAS_NUM_THREADS", "1")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise CheckFailed(f"{prototxt}: Caffe failed (exit {proc.returncode}):\n{tail}")
        with np.load(tmp / "out.npz") as out:
            return result_from_npz(out)


# ------------------------------------------------------------------------------------------------ child side


def _last_writer(net, blob: str) -> int:
    """Index of the last layer whose tops include `blob`: backward starts there (in-place chains included)."""
    index = -1
    for i, name in enumerate(net._layer_names):
        if blob in net.top_names[name]:
            index = i
    return index


def _child(args: argparse.Namespace) -> int:
    import caffe

    caffe.set_mode_cpu()
    weights = None if args.caffemodel == "-" else args.caffemodel
    net = caffe.Net(args.prototxt, caffe.TEST, weights=weights)
    with np.load(args.inputs) as f:
        inputs = {k: f[k] for k in f.files}
    if set(inputs) != set(net.inputs):
        print(f"inputs given {sorted(inputs)}, net inputs {list(net.inputs)}", file=sys.stderr)
        return 2
    for name, arr in inputs.items():
        net.blobs[name].reshape(*arr.shape)
    net.reshape()
    for name, arr in inputs.items():
        net.blobs[name].data[...] = arr
    net.forward()
    out = {f"blob/{name}": blob.data.copy() for name, blob in net.blobs.items()}
    for key in args.grad:
        blob, unit = parse_grad_key(key)
        start = _last_writer(net, blob)
        if start < 0:
            print(f"--grad {key}: no layer writes blob {blob!r}", file=sys.stderr)
            return 2
        for b in net.blobs.values():
            b.diff[...] = 0
        top = net.blobs[blob].diff
        diff = top.reshape(top.shape[0], -1)
        if unit is None:
            diff[...] = 1
        elif not 0 <= unit < diff.shape[1]:
            print(f"--grad {key}: unit out of range [0, {diff.shape[1]})", file=sys.stderr)
            return 2
        else:
            diff[:, unit] = 1
        net._backward(start, 0)
        for name in net.inputs:
            out[f"grad/{key}/{name}"] = net.blobs[name].diff.copy()
    np.savez(args.out, **out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="pycaffe forward and backward; every blob to an .npz")
    parser.add_argument("prototxt", help="prototxt as Caffe should run it (see oracle_prototxt)")
    parser.add_argument("caffemodel", help="weights file, or - for none")
    parser.add_argument("inputs", help=".npz with one array per net input blob")
    parser.add_argument("out", help=".npz to write: blob/<name> and grad/<blob>:<unit>/<input>")
    parser.add_argument("--grad", action="append", default=[], metavar="BLOB:UNIT", help="UNIT may be 'all'")
    return _child(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
