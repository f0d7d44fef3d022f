"""Reading the judge's .jl index and .npy files, admitting nothing from the pickle but its index records.

The index is a Python 2 pickle (protocol 2) of `sklearn.externals.joblib.numpy_pickle.NDArrayWrapper`
records, each naming a .npy file beside it. A plain `pickle.load` would run whatever a file names; the
unpickler here resolves exactly two names, the record class and the `numpy.ndarray` its records mention as
their array type, to inert stand-ins of its own, and refuses every other global. The arrays themselves come
from `numpy.load(allow_pickle=False)`.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from repro.dcgan.params import CONV_NAMES, PAPER_WIDTHS, PARAMS, JudgeParams, param_shapes
from repro.errors import BadInput

WRAPPER = ("sklearn.externals.joblib.numpy_pickle", "NDArrayWrapper")
NDARRAY = ("numpy", "ndarray")


class _Record:
    """What an NDArrayWrapper record holds: its state dict (filename, subclass, allow_mmap)."""

    def __setstate__(self, state: object) -> None:
        self.state = state


class _NdarrayName:
    """Stands for `numpy.ndarray` where a record names its array type; never called."""


class _IndexUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, source: Path):
        super().__init__(io.BytesIO(data), encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> type:
        if (module, name) == WRAPPER:
            return _Record
        if (module, name) == NDARRAY:
            return _NdarrayName
        raise BadInput(
            f"{self.source}: the index names {module}.{name}; a DCGAN parameter index may name only "
            f"{'.'.join(WRAPPER)} records (refused without running it)"
        )

    def persistent_load(self, pid: object) -> object:
        raise BadInput(f"{self.source}: persistent references are not part of a DCGAN parameter index")


def find_index(path: str | os.PathLike) -> Path:
    """The .jl index of a judge given as the file itself or as the folder holding exactly one."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*_discrim_params.jl")) or sorted(path.glob("*.jl"))
        if len(found) != 1:
            what = (
                "no .jl index"
                if not found
                else f"{len(found)} .jl indexes ({', '.join(p.name for p in found)})"
            )
            raise BadInput(f"judge folder {path}: expected one *_discrim_params.jl index, found {what}")
        return found[0]
    if not path.exists():
        raise BadInput(f"judge {path}: no such file or folder")
    return path


def _filenames(index: Path) -> list[str]:
    try:
        data = index.read_bytes()
    except OSError as e:
        raise BadInput(f"{index}: cannot read the judge index ({e.strerror})") from None
    try:
        records = _IndexUnpickler(data, index).load()
    except BadInput:
        raise
    except Exception as e:  # a truncated or foreign file: any unpickling error is bad input here
        raise BadInput(f"{index}: not a DCGAN parameter index ({type(e).__name__}: {e})") from None
    if not isinstance(records, list) or not all(isinstance(r, _Record) for r in records):
        raise BadInput(f"{index}: expected a list of NDArrayWrapper records, got {type(records).__name__}")
    names = []
    for i, r in enumerate(records):
        state = r.state if isinstance(getattr(r, "state", None), dict) else {}
        name = state.get("filename")
        if not isinstance(name, str) or Path(name).name != name or not name.endswith(".npy"):
            raise BadInput(f"{index}: record {i} does not name a .npy file beside it (got {name!r})")
        names.append(name)
    return names


def judge_files(path: str | os.PathLike) -> list[Path]:
    """The index and the .npy files it names, in its order: every file a judge's numbers depend on."""
    index = find_index(path)
    return [index, *(index.parent / name for name in _filenames(index))]


def load_judge(path: str | os.PathLike) -> JudgeParams:
    """The judge's 17 parameters as float32, each checked against the shape the network's design gives it.

    The widths are read from the first kernel and the batchnorm scales (one number per channel, so a
    transposed kernel is reported as such), so the paper's net and a narrower one of its design both load."""
    index = find_index(path)
    names = _filenames(index)
    if len(names) != len(PARAMS):
        raise BadInput(f"{index}: expected {len(PARAMS)} parameter files, the index names {len(names)}")
    by_name = {
        param: _load_array(index, i, param, name)
        for i, ((param, _), name) in enumerate(zip(PARAMS, names, strict=True))
    }
    sized = [by_name["w"], *(by_name[f"g{k}"] for k in range(2, len(CONV_NAMES) + 1))]
    widths = tuple(a.shape[0] if a.ndim in (1, 4) else -1 for a in sized)
    for i, ((param, shape), name) in enumerate(zip(param_shapes(widths), names, strict=True)):
        if by_name[param].shape != shape:
            raise BadInput(
                f"{index.parent / name}: parameter {i + 1} ({param}) has shape {by_name[param].shape}, the "
                f"discriminator expects {shape} (convolution widths {'/'.join(map(str, widths))} read from "
                f"w, g2…g6; the paper's are {'/'.join(map(str, PAPER_WIDTHS))})"
            )
    return JudgeParams(by_name, index)


def _load_array(index: Path, i: int, param: str, name: str) -> np.ndarray:
    file = index.parent / name
    if not file.exists():
        raise BadInput(f"{index}: parameter {i + 1} ({param}) is in {file}, which is missing")
    try:
        a = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise BadInput(f"{file}: not a readable .npy file ({e})") from None
    if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
        raise BadInput(f"{file}: parameter {i + 1} ({param}) must hold finite floats, got {a.dtype}")
    return a.astype(np.float32)
