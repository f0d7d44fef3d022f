"""Sums and means over axes: the gradient is broadcast back over the reduced axes (scaled for the mean)."""

from __future__ import annotations

import numpy as np
from onnx import NodeProto, TensorProto

from repro.grad.emitter import Emitter
from repro.grad.registry import vjp


def _spread(node: NodeProto, grad: str, emit: Emitter) -> str:
    """Reinsert the reduced axes (when keepdims=0) and expand to the input's shape."""
    attrs = emit.attrs(node)
    x = node.input[0]
    if len(node.input) > 1 and node.input[1]:  # opset ≥ 13 ReduceSum, ≥ 18 others: axes as an input
        axes, axes_value = node.input[1], emit.value(node.input[1])
        reduce_all = axes_value is not None and axes_value.size == 0
    else:
        axes_value = np.asarray(attrs.get("axes", []), np.int64)
        axes, reduce_all = emit.const(axes_value, np.int64), axes_value.size == 0
    if reduce_all and attrs.get("noop_with_empty_axes", 0):
        return grad
    if attrs.get("keepdims", 1) == 0 and not reduce_all:
        grad = emit.op("Unsqueeze", [grad, axes])
    return emit.op("Expand", [grad, emit.shape_of(x)])


@vjp("ReduceSum")
def reduce_sum(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    return [_spread(node, grads[0], emit)]


@vjp("ReduceMean")
def reduce_mean(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """Divide by the number of elements averaged, |x| / |y|, measured at run time (the batch may be one)."""
    counts = [
        emit.op("Cast", [emit.op("Size", [name])], to=TensorProto.FLOAT)
        for name in (node.input[0], node.output[0])
    ]
    scaled = emit.op("Div", [grads[0], emit.op("Div", counts)])
    return [_spread(node, scaled, emit)]
