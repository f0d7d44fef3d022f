"""Eltwise, Scale and Bias: element-wise arithmetic between blobs, or between a blob and a learned operand.

Scale and Bias apply an operand covering axes [axis, axis + k) of x (`scale_layer.cpp`, `bias_layer.cpp`):
the operand is given trailing singleton axes so ONNX's right-aligned broadcasting reproduces Caffe's.
"""

from __future__ import annotations

from repro.caffe.net import Layer
from repro.convert.context import Context
from repro.convert.registry import converter

PROD, SUM, MAX = 0, 1, 2


@converter("Eltwise")
def eltwise(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts((2, None))
    p = layer.params.eltwise_param
    coeff = list(p.coeff)
    if coeff and (p.operation != SUM or len(coeff) != len(layer.bottoms)):
        raise ctx.fail(f"coeff needs operation SUM and one value per bottom, got {len(coeff)} value(s)")
    op = {PROD: "Mul", SUM: "Add", MAX: "Max"}[p.operation]
    terms = [ctx.bottom(i) for i in range(len(layer.bottoms))]
    if coeff:
        terms = [
            t if c == 1 else ctx.node("Mul", [t, ctx.const("coeff", c)])
            for t, c in zip(terms, coeff, strict=True)
        ]
    acc = terms[0]
    for i, term in enumerate(terms[1:], start=2):
        acc = ctx.node(op, [acc, term], ctx.top() if i == len(terms) else None)


def _covered_axes(ctx: Context, param) -> tuple[int, int]:
    """[axis, end) of x that the scale/bias operand covers.

    With two bottoms the operand is bottom 1 and its own rank fixes the span (a scalar covers nothing);
    otherwise the operand is a learned blob spanning `num_axes` axes (−1: to the end, 0: a scalar).
    Shape inference has already checked that the span fits x.
    """
    ndim = len(ctx.bottom_shape(0))
    rank = len(ctx.bottom_shape(1)) if len(ctx.layer.bottoms) == 2 else param.num_axes
    axis = ctx.axis(param.axis, ndim) if rank != 0 else 0
    return axis, ndim if rank == -1 else axis + rank


def _learned(ctx: Context, name: str, blob_index: int, axis: int, end: int) -> str:
    """A learned operand as an initializer with trailing singleton axes for right-aligned broadcasting."""
    x_shape = ctx.bottom_shape(0)
    array = ctx.blob(blob_index, tuple(x_shape[axis:end]))
    return ctx.const(name, array.reshape(array.shape + (1,) * (len(x_shape) - end)))


def _operand(ctx: Context, param, name: str) -> str:
    """The scale or bias operand: bottom 1 given trailing singleton axes, or learned blob 0."""
    axis, end = _covered_axes(ctx, param)
    if len(ctx.layer.bottoms) == 1:
        return _learned(ctx, name, 0, axis, end)
    trailing = len(ctx.bottom_shape(0)) - end
    if not trailing:
        return ctx.bottom(1)
    rank = end - axis
    return ctx.node("Unsqueeze", [ctx.bottom(1), ctx.ints("axes", list(range(rank, rank + trailing)))])


@converter("Scale")
def scale(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts((1, 2))
    p = layer.params.scale_param
    factor = _operand(ctx, p, "scale")
    if not p.bias_term:
        ctx.node("Mul", [ctx.bottom(0), factor], ctx.top())
        return
    # Caffe appends the bias after the layer's own blobs: blob 1, or blob 0 when the scale is bottom 1.
    axis, end = _covered_axes(ctx, p)
    bias = _learned(ctx, "bias", 1 if len(layer.bottoms) == 1 else 0, axis, end)
    ctx.node("Add", [ctx.node("Mul", [ctx.bottom(0), factor]), bias], ctx.top())


@converter("Bias")
def bias(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts((1, 2))
    ctx.node("Add", [ctx.bottom(0), _operand(ctx, layer.params.bias_param, "bias")], ctx.top())
