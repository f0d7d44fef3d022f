"""Box constraints on the code: DGN-AM's per-unit clipping and its `act_range` bounds files.

DGN-AM keeps each fc6 unit within [0, ub_j] ("due to ReLU" below, k standard deviations above); the paper's
MAP+clip and MALA+clip reuse those bounds, so they are read here in DGN-AM's own file format.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repro.errors import BadInput


@dataclass(frozen=True)
class Bounds:
    """Per-unit lower and upper limits, both float64 [D]."""

    lower: np.ndarray
    upper: np.ndarray

    def apply(self, z: np.ndarray) -> np.ndarray:
        # min(max(z, lower), upper), DGN-AM's order, so an empty box cannot arise silently.
        return np.minimum(np.maximum(z, self.lower), self.upper)

    def digest(self) -> str:
        return hashlib.sha256(self.lower.tobytes() + self.upper.tobytes()).hexdigest()


def dgn_am_box(upper: object) -> tuple[float, object]:
    """The `clip` option of DGN-AM's box [0, upper] (0: the codes are fc6 after ReLU): the one place the
    lower bound is written. `upper`: per-unit bounds, or a bounds file to be read later."""
    return (0.0, upper)


def load_bounds(path: str | os.PathLike, dim: int) -> np.ndarray:
    """Read an `act_range` file: one line of `dim` space-separated numbers (upper bounds); float64 [dim]."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"bounds file {path}: cannot read it ({e})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise BadInput(f"bounds file {path}: expected one line of {dim} numbers, got {len(lines)} lines")
    tokens = lines[0].split()
    if len(tokens) != dim:
        raise BadInput(f"bounds file {path}: expected {dim} numbers (one per unit), got {len(tokens)}")
    try:
        values = np.array([float(tok) for tok in tokens], dtype=np.float64)
    except ValueError as e:
        raise BadInput(f"bounds file {path}: not a number ({e})") from None
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if bad.size:
        raise BadInput(
            f"bounds file {path}: expected finite upper bounds >= 0 (the lower bound is 0), "
            f"got {values[bad[0]]} at unit {bad[0]}"
        )
    return values


def per_item(value: object, n: int, what: str) -> np.ndarray:
    """A scalar or an [n] array as a float64 [n] array: options that may differ per chain or per unit."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInput(f"{what}: expected a number or numbers, got {value!r}") from None
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise BadInput(f"{what}: expected a scalar or shape ({n},), got {arr.shape}")
    return arr.copy()


def check_clip(clip: object, dim: int) -> Bounds:
    """Turn the `clip` option (lower, upper), each a scalar or a [D] array, into validated [D] arrays."""
    if not isinstance(clip, (tuple, list)) or len(clip) != 2:
        raise BadInput(f"option clip: expected (lower, upper), got {type(clip).__name__}")
    limits = []
    for name, value in zip(("lower", "upper"), clip, strict=True):
        arr = per_item(value, dim, f"option clip: {name} bound")
        if np.isnan(arr).any():
            raise BadInput(f"option clip: {name} bound contains NaN")
        limits.append(arr.copy())
    lower, upper = limits
    crossed = np.flatnonzero(lower > upper)
    if crossed.size:
        j = crossed[0]
        raise BadInput(f"option clip: lower > upper at unit {j} ({lower[j]} > {upper[j]})")
    lower.flags.writeable = False
    upper.flags.writeable = False
    return Bounds(lower, upper)
