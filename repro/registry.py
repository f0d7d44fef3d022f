"""Decorator-filled tables (Caffe layer converters, VJP rules): coverage grows without touching callers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def registrar(table: dict[str, F], what: str) -> Callable[..., Callable[[F], F]]:
    """A decorator factory: `@reg("A", "B")` files the function under each key; a second filing is a bug."""

    def decorator(*keys: str) -> Callable[[F], F]:
        def register(fn: F) -> F:
            for key in keys:
                if key in table:
                    raise ValueError(f"two {what} for {key!r}")
                table[key] = fn
            return fn

        return register

    return decorator
