"""Seeded stand-ins for the two parameter files of the DCGAN ImageNet judge that ../shared does not hold.

`../shared/reference/dcgan_imagenet/` has 15 of the 17 `30_discrim_params.jl_NN.npy` files of dcgan_code's
`imagenet_gan_pretrain_128f_relu_lrelu_7l_3x3_256z` discriminator; `_11` (w5) and `_14` (w6) are missing
(large files). Everything that runs the judge here (the Theano oracle, its golden fixtures, the tests of the
project's own port) uses the same stand-ins: N(0, 0.02²) float32 values, dcgan_code's weight init, drawn by
`np.random.RandomState(seed)` with a fixed seed per file (the legacy generator gives the same stream under
numpy 1.x and 2.x, so the Theano venv's numpy 1.23 and the main venv's numpy 2 agree bit for bit).

numpy only and no repro imports: this module is imported from the main venv (tests, make_fixtures.py) and
from the Theano venv (oracle.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

INDEX = "30_discrim_params.jl"

# The discriminator's arguments, in order: discrim(X, w, w2, g2, b2, ..., wy) of imagenet/load_pretrained.py.
PARAM_NAMES = (
    "w",
    "w2",
    "g2",
    "b2",
    "w3",
    "g3",
    "b3",
    "w4",
    "g4",
    "b4",
    "w5",
    "g5",
    "b5",
    "w6",
    "g6",
    "b6",
    "wy",
)
PARAM_SHAPES = (
    (128, 3, 3, 3),
    (128, 128, 3, 3),
    (128,),
    (128,),
    (256, 128, 3, 3),
    (256,),
    (256,),
    (256, 256, 3, 3),
    (256,),
    (256,),
    (512, 256, 3, 3),
    (512,),
    (512,),
    (512, 512, 3, 3),
    (512,),
    (512,),
    (8192, 1),
)
PARAM_FILES = tuple(f"{INDEX}_{i:02d}.npy" for i in range(1, len(PARAM_NAMES) + 1))

MISSING = {"30_discrim_params.jl_11.npy": (512, 256, 3, 3), "30_discrim_params.jl_14.npy": (512, 512, 3, 3)}

SCALE = 0.02  # dcgan_code's inits.Normal(scale=0.02) for conv weights
SEEDS = {"30_discrim_params.jl_11.npy": 1011, "30_discrim_params.jl_14.npy": 1014}  # 1000 + NN


def standin(name: str) -> np.ndarray:
    """The stand-in for missing file `name` (a key of MISSING): float32 N(0, 0.02²), seed SEEDS[name]."""
    if name not in MISSING:
        raise KeyError(f"{name!r} is not a missing judge file (those are {sorted(MISSING)})")
    rng = np.random.RandomState(SEEDS[name])
    return (rng.standard_normal(MISSING[name]) * SCALE).astype(np.float32)


def _link_or_copy(src: Path, dst: Path) -> None:
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    try:
        os.symlink(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def judge_folder(dst: Path, reference: Path) -> Path:
    """Fill folder `dst` (created if needed) with the full judge and return it.

    The `.jl` index and the 15 parameter files of `reference` are symlinked (copied where symlinks fail);
    the two files of MISSING are written with np.save as float32 stand-ins, always, even if `reference`
    holds the real ones, so that every result made from this folder matches the golden fixtures.
    Raises FileNotFoundError if `reference` lacks one of the 15 files or the index.
    """
    dst = Path(dst)
    reference = Path(reference).resolve()
    present = [n for n in (INDEX, *PARAM_FILES) if n not in MISSING]
    lacking = [n for n in present if not (reference / n).is_file()]
    if lacking:
        raise FileNotFoundError(f"{reference}: judge files missing: {', '.join(lacking)}")
    dst.mkdir(parents=True, exist_ok=True)
    for name in present:
        _link_or_copy(reference / name, dst / name)
    for name in MISSING:
        target = dst / name
        if target.is_symlink() or target.exists():
            target.unlink()
        np.save(target, standin(name))
    return dst


def load_params(folder: Path) -> list[np.ndarray]:
    """The 17 parameters of a judge folder as float32 arrays, in argument order, shapes checked."""
    params = []
    for name, file, shape in zip(PARAM_NAMES, PARAM_FILES, PARAM_SHAPES, strict=True):
        value = np.load(Path(folder) / file, allow_pickle=False)
        if value.shape != shape:
            raise ValueError(f"{folder}/{file} ({name}): shape {value.shape}, expected {shape}")
        params.append(np.asarray(value, np.float32))
    return params
