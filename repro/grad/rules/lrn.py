"""Local response normalisation across channels (Caffe's LRN; ONNX LRN with bias = Caffe's k)."""

from __future__ import annotations

import numpy as np
from onnx import NodeProto

from repro.grad.emitter import Emitter
from repro.grad.registry import vjp


@vjp("LRN")
def lrn(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """dx = g·scale^(−β) − (2αβ/n)·x·W(g·y/scale), with scale = bias + (α/n)·W(x²) (Caffe lrn_layer.cpp).

    W sums channels c−(n−1)/2 … c+(n−1)/2 (n is odd: ORT rejects even sizes), so it is its own transpose;
    it is a Conv over channels once the spatial axes are folded into one.
    """
    attrs = emit.attrs(node)
    size, alpha = attrs["size"], attrs.get("alpha", 1e-4)
    beta, bias = attrs.get("beta", 0.75), attrs.get("bias", 1.0)
    if size % 2 == 0:
        raise emit.fail(f"size {size} is even; ONNX Runtime supports odd sizes only")
    x, y, g = node.input[0], node.output[0], grads[0]
    (channels,) = emit.static(x, [1])
    half = (size - 1) // 2
    folded_shape = emit.const([0, 1, channels, -1], np.int64)
    ones = emit.const(np.ones((1, 1, size, 1), np.float32))

    def window_sum(t: str) -> str:
        folded = emit.op("Reshape", [t, folded_shape])
        summed = emit.op("Conv", [folded, ones], kernel_shape=[size, 1], pads=[half, 0, half, 0])
        return emit.op("Reshape", [summed, emit.shape_of(x)])

    scale = emit.op(
        "Add",
        [emit.op("Mul", [window_sum(emit.op("Mul", [x, x])), emit.const(alpha / size)]), emit.const(bias)],
    )
    direct = emit.op("Mul", [g, emit.op("Pow", [scale, emit.const(-beta)])])
    spread = window_sum(emit.op("Div", [emit.op("Mul", [g, y]), scale]))
    cross = emit.op("Mul", [emit.op("Mul", [x, spread]), emit.const(2.0 * alpha * beta / size)])
    return [emit.op("Sub", [direct, cross])]
