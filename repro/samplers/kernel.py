"""The contract every kernel module keeps, checked when `METHODS` is built.

A kernel is a plain module (mala.py, hmc.py, ...), read by name from the loop (run.py), the option checks
(config.py), dual averaging (methods.py) and the report's pricing (report/plan.py, report/estimate.py). A
module missing one of these names, or holding the wrong kind of value, would fail only when that reader
runs, perhaps an hour into a report; checked here, it fails when repro is imported, naming the module and
what it lacks.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from repro.samplers.options import Option


def _callable(v: object) -> bool:
    return callable(v)


def _options(v: object) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(o, Option) for k, o in v.items())


def _accept_rate(v: object) -> bool:
    return v is None or (isinstance(v, float) and 0.0 < v < 1.0)


def _flag(v: object) -> bool:
    return isinstance(v, bool)


# name → (what it must be, its check, who reads it)
CONTRACT: dict[str, tuple[str, Callable[[object], bool], str]] = {
    "init": ("a function init(target, z0) -> State", _callable, "the loop, to start the chains"),
    "build": ("a function build(bounds, **options) -> step", _callable, "the loop, to make the step"),
    "gradients_per_step": (
        "a function gradients_per_step(**options) -> int",
        _callable,
        "the report, to price a row",
    ),
    "OPTIONS": ("a dict of option name → Option", _options, "the option checks"),
    "TARGET_ACCEPT": (
        "the acceptance rate dual averaging aims at, in (0, 1), or None (no accept step)",
        _accept_rate,
        "dual averaging, and whether the method is MCMC",
    ),
    "DRAWS": ("a bool: whether a step takes random draws", _flag, "the loop, to draw them"),
    "IMAGE_AT_LAST_START": (
        "a bool: whether the image is of the code the last step started from (DGN-AM's)",
        _flag,
        "the loop, to keep that code",
    ),
}


def check_kernel(module: ModuleType) -> ModuleType:
    """The module itself, or TypeError naming every name it lacks or holds wrongly."""
    faults = []
    for name, (what, ok, reader) in CONTRACT.items():
        if not hasattr(module, name):
            faults.append(f"no {name} ({what}; read by {reader})")
        elif not ok(getattr(module, name)):
            faults.append(f"{name} = {getattr(module, name)!r} is not {what}")
    if faults:
        raise TypeError(f"kernel module {module.__name__}: " + "; ".join(faults))
    return module
