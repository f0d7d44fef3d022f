"""Writing a judge in dcgan_code's format, so that the embedded set and the tests can hold judges of their own
that the real reader loads (and joblib, with scikit-learn of 2016, would load too).

The index is written opcode by opcode as protocol 2, exactly the records a joblib dump of a list of arrays
made: there is no importable NDArrayWrapper class to hand to `pickle.dump`, and none is wanted.
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np

from repro.atomic import atomic_path, write_bytes
from repro.dcgan.params import PAPER_WIDTHS, PARAMS, JudgeParams, param_shapes
from repro.dcgan.read import NDARRAY, WRAPPER


def _short_string(text: str) -> bytes:
    raw = text.encode("ascii")
    return pickle.SHORT_BINSTRING + struct.pack("<B", len(raw)) + raw


def _global(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii")


def index_bytes(filenames: list[str]) -> bytes:
    out = [pickle.PROTO + b"\x02", pickle.EMPTY_LIST, pickle.MARK]
    for name in filenames:
        out += [_global(*WRAPPER), pickle.EMPTY_TUPLE, pickle.NEWOBJ, pickle.EMPTY_DICT, pickle.MARK]
        out += [_short_string("allow_mmap"), pickle.NEWTRUE]
        out += [_short_string("subclass"), _global(*NDARRAY)]
        out += [_short_string("filename"), _short_string(name)]
        out += [pickle.SETITEMS, pickle.BUILD]
    out += [pickle.APPENDS, pickle.STOP]
    return b"".join(out)


def write_judge(folder: str | os.PathLike, params: JudgeParams, stem: str = "30_discrim_params") -> Path:
    """Write `stem`.jl and `stem`.jl_NN.npy into folder; return the index path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{stem}.jl_{i + 1:02d}.npy" for i in range(len(PARAMS))]
    for (param, _), name in zip(PARAMS, names, strict=True):
        with atomic_path(folder / name) as tmp, open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(params.arrays[param], dtype=np.float32))
    index = folder / f"{stem}.jl"
    write_bytes(index, index_bytes(names))
    return index


def random_judge(seed: int, scale: float = 0.02, widths: tuple[int, ...] = PAPER_WIDTHS) -> JudgeParams:
    """Seeded parameters of the right shapes (DCGAN's N(0, 0.02²) init; batchnorm scales near 1)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, shape in param_shapes(widths):
        centre = 1.0 if name.startswith("g") else 0.0
        arrays[name] = (centre + scale * rng.standard_normal(shape)).astype(np.float32)
    return JudgeParams(arrays)
