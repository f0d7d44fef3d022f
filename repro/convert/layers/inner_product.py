"""InnerProduct → Flatten(axis) + Gemm (+ Reshape back when axis > 1).

Caffe flattens everything from `axis` into K and keeps the leading axes (`inner_product_layer.cpp`); the
weight is (N, K), or (K, N) with `transpose: true`, which is Gemm's transB = 1 or 0 on the same array.
"""

from __future__ import annotations

import math

from repro.caffe.net import Layer
from repro.convert.context import Context
from repro.convert.registry import converter


@converter("InnerProduct")
def inner_product(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts(1)
    p = layer.params.inner_product_param
    shape = ctx.bottom_shape()
    axis = ctx.axis(p.axis, len(shape))
    k, n = math.prod(shape[axis:]), p.num_output
    weight = ctx.blob(0, (k, n) if p.transpose else (n, k))
    x = ctx.bottom()
    if not (axis == 1 and len(shape) == 2):
        x = ctx.node("Flatten", [x], axis=axis)
    inputs = [x, ctx.const("weight", weight)]
    if p.bias_term:
        inputs.append(ctx.const("bias", ctx.blob(1, (n,))))
    if axis == 1:
        ctx.node("Gemm", inputs, ctx.top(), transB=0 if p.transpose else 1)
        return
    # Gemm is 2-D; restore Caffe's leading axes, letting -1 stand for the batch so no size is baked in.
    y = ctx.node("Gemm", inputs, transB=0 if p.transpose else 1)
    target = [-1, *shape[1:axis], n] if axis > 0 else [n]
    ctx.node("Reshape", [y, ctx.ints("shape", target)], ctx.top())
