"""The table from Caffe layer type to the function that emits its ONNX nodes (one function per type).

New layer types are added by decorating a function, so `to_onnx` never changes when coverage grows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from repro.errors import BadInput
from repro.registry import registrar

if TYPE_CHECKING:
    from repro.caffe.net import Layer
    from repro.convert.context import Context

Converter = Callable[["Layer", "Context"], None]

CONVERTERS: dict[str, Converter] = {}


converter = registrar(CONVERTERS, "converters for Caffe layer type")  # @converter("Convolution", ...)


def lookup(layer: Layer, source: str) -> Converter:
    try:
        return CONVERTERS[layer.type]
    except KeyError:
        supported = ", ".join(sorted(CONVERTERS))
        raise BadInput(
            f"{source}: layer {layer.name!r} has type {layer.type!r}, which the converter does not support "
            f"(supported: {supported})"
        ) from None
