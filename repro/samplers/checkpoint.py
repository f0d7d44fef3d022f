"""Checkpoint files: plain arrays in an .npz (no pickle), written atomically.

Everything a run needs to continue bit for bit is stored: positions with their cached value and gradient,
the step index, adaptation accumulators, each chain's exact RNG state, and the traces so far.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from repro.atomic import atomic_path
from repro.errors import BadInput

VERSION = 1
_MASK = (1 << 64) - 1


def cadence(steps: int) -> int:
    """Steps between checkpoints of a run of `steps`: about 20 a run, none closer than 25 steps, so a short
    run does not spend its time writing files."""
    return max(25, steps // 20)


def rng_states(rngs: list[np.random.Generator]) -> np.ndarray:
    """PCG64 states as uint64 [C, 6]: state hi/lo, increment hi/lo, has_uint32, uinteger."""
    rows = []
    for g in rngs:
        s = g.bit_generator.state
        st, inc = s["state"]["state"], s["state"]["inc"]
        rows.append([st >> 64, st & _MASK, inc >> 64, inc & _MASK, s["has_uint32"], s["uinteger"]])
    return np.array(rows, dtype=np.uint64)


def restore_rngs(states: np.ndarray) -> list[np.random.Generator]:
    rngs = []
    for row in states.tolist():
        bg = np.random.PCG64()
        bg.state = {
            "bit_generator": "PCG64",
            "state": {"state": (row[0] << 64) | row[1], "inc": (row[2] << 64) | row[3]},
            "has_uint32": row[4],
            "uinteger": row[5],
        }
        rngs.append(np.random.Generator(bg))
    return rngs


def save(path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    payload = {name: a for name, a in arrays.items() if a is not None}
    payload["meta"] = np.array(json.dumps({**meta, "version": VERSION}))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **payload)


def load(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise BadInput(f"checkpoint {path}: not a readable checkpoint ({e})") from None
    if "meta" not in arrays:
        raise BadInput(f"checkpoint {path}: not a sampler checkpoint (no meta record)")
    meta = json.loads(str(arrays.pop("meta")))
    if meta.get("version") != VERSION:
        raise BadInput(f"checkpoint {path}: expected format version {VERSION}, got {meta.get('version')}")
    return meta, arrays
