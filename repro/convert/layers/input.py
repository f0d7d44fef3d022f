"""Input: the net's inputs become graph inputs (declared by `to_onnx`), so nothing is computed here."""

from __future__ import annotations

from repro.caffe.net import Layer
from repro.convert.context import Context
from repro.convert.registry import converter


@converter("Input")
def input_layer(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts(0, tops=None)
