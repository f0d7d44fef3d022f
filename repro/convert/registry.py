"""The table from Caffe layer type to the function that emits its ONNX nodes (one function per type).

New layer types are added by decorating a function, so `to_onnx` never changes when coverage grows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from repro.errors import BadInput

if TYPE_CHECKING:
    from repro.caffe.net import Layer
    from repro.convert.context import Context

Converter = Callable[["Layer", "Context"], None]

CONVERTERS: dict[str, Converter] = {}


def converter(*layer_types: str) -> Callable[[Converter], Converter]:
    """Register `fn` as the converter of each V2 layer type string given."""

    def register(fn: Converter) -> Converter:
        for layer_type in layer_types:
            if layer_type in CONVERTERS:
                raise ValueError(f"two converters for Caffe layer type {layer_type!r}")
            CONVERTERS[layer_type] = fn
        return fn

    return register


def lookup(layer: Layer, source: str) -> Converter:
    try:
        return CONVERTERS[layer.type]
    except KeyError:
        supported = ", ".join(sorted(CONVERTERS))
        raise BadInput(
            f"{source}: layer {layer.name!r} has type {layer.type!r}, which the converter does not support "
            f"(supported: {supported})"
        ) from None
