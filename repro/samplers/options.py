"""Typed sampler options: each kernel declares its own, so `sample` can check every option before a step.

A kernel lists its options as `Option` records; the loop's own options (schedule, clip, thinning, warm-up,
checkpoints) are checked in config.py with the same checkers, so every bad value gets one kind of message.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from repro.errors import BadInput


def integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise BadInput(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def real(name: str, value: object, *, low: float, low_open: bool, high: float = np.inf) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok:
        value = float(value)
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if np.isfinite(high) else "")
        raise BadInput(f"{name}: expected a finite number {bound}, got {value!r}")
    return value


def boolean(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise BadInput(f"{name}: expected True or False, got {value!r}")
    return bool(value)


@dataclass(frozen=True)
class Option:
    """One kernel option: its default, its checker, and whether it is part of a decay schedule.

    `schedule` options (noise annealing) describe how a published run decays over time; a row that tunes its
    step by dual averaging instead drops them and keeps the others (the trajectory length L)."""

    default: object
    check: Callable[[str, object], object]
    schedule: bool = False

    def value(self, name: str, options: dict) -> object:
        return self.check(f"option {name}", options.get(name, self.default))


def at_least(minimum: int) -> Callable[[str, object], int]:
    return lambda name, value: integer(name, value, minimum)


def in_range(low: float, *, low_open: bool, high: float = np.inf) -> Callable[[str, object], float]:
    return lambda name, value: real(name, value, low=low, low_open=low_open, high=high)
