"""Pooling: MAX routes each output's gradient to its argmax, AVE spreads it evenly over its window."""

from __future__ import annotations

import numpy as np
from onnx import NodeProto

from repro.grad.emitter import Emitter
from repro.grad.registry import vjp


def _pool_attrs(node: NodeProto, emit: Emitter) -> dict:
    attrs = emit.attrs(node)
    if attrs.get("auto_pad", "NOTSET") != "NOTSET":
        raise emit.fail(f"auto_pad {attrs['auto_pad']} is not supported; use explicit pads")
    n = len(attrs["kernel_shape"])
    attrs.setdefault("strides", [1] * n)
    attrs.setdefault("pads", [0] * 2 * n)
    return attrs


@vjp("MaxPool")
def max_pool(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """Add each output's gradient at its argmax: the pool's Indices output (flat over N·C·H·W, first index on
    ties, padding never chosen). Overlapping windows that pick the same element accumulate.

    The forward node gains the Indices output, so the pool runs once rather than twice.
    """
    attrs = _pool_attrs(node, emit)
    if attrs.get("storage_order", 0):
        raise emit.fail("storage_order=1 is not supported")
    if len(node.output) < 2 or not node.output[1]:
        del node.output[1:]
        node.output.append(emit.fresh("Indices"))
    return [emit.scatter_add(node.input[0], node.output[1], grads[0])]


def _divisors(
    size: int, out: int, kernel: int, stride: int, begin: int, end: int, include_pad: bool
) -> np.ndarray:
    """Per-output window divisor along one axis, as ORT (and Caffe for count_include_pad=1) computes it: the
    window clipped to the padded extent [−begin, size+end), or to the real extent [0, size) without pads."""
    start = np.arange(out) * stride - begin
    if include_pad:
        return np.minimum(start + kernel, size + end) - start
    return np.minimum(start + kernel, size) - np.maximum(start, 0)


@vjp("AveragePool")
def average_pool(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """Divide by each window's divisor, then sum back over windows: a depthwise ConvTranspose of ones with no
    padding covers the whole padded extent (ceil overhang included), and a Slice keeps the real rows."""
    attrs = _pool_attrs(node, emit)
    x, y = node.input[0], node.output[0]
    k, s, p = attrs["kernel_shape"], attrs["strides"], attrs["pads"]
    n = len(k)
    channels, *size = emit.static(x, range(1, 2 + n))
    out = emit.static(y, range(2, 2 + n))
    include_pad = bool(attrs.get("count_include_pad", 0))
    divisor = np.ones((), np.float32)
    for i in range(n):
        axis = _divisors(size[i], out[i], k[i], s[i], p[i], p[i + n], include_pad)
        if axis.min() <= 0:
            raise emit.fail(f"a window on spatial axis {i} covers no cells")
        divisor = np.multiply.outer(divisor, axis.astype(np.float32))
    reached = [s[i] * (out[i] - 1) + k[i] for i in range(n)]
    output_padding = [max(0, p[i] + size[i] - reached[i]) for i in range(n)]
    spread = emit.op(
        "ConvTranspose",
        [emit.op("Div", [grads[0], emit.const(divisor)]), emit.const(np.ones([channels, 1, *k], np.float32))],
        kernel_shape=k,
        strides=s,
        group=channels,
        output_padding=output_padding,
    )
    starts, ends = np.array(p[:n], np.int64), np.array(p[:n], np.int64) + size
    axes = np.arange(2, 2 + n, dtype=np.int64)
    return [
        emit.op(
            "Slice",
            [spread, emit.const(starts, np.int64), emit.const(ends, np.int64), emit.const(axes, np.int64)],
        )
    ]
