"""Layers that move data without arithmetic: Reshape, Flatten, Concat, Slice, Crop.

Reshape targets never bake in the batch size: a copied or batch-sized leading dim becomes 0 (copy) and a
merged one −1, so a converted net runs at any batch (the DGN generator's prototxt hard-codes `dim: 1`).
"""

from __future__ import annotations

import math

from repro.caffe.net import Layer
from repro.convert.context import Context
from repro.convert.registry import converter


def _onnx_reshape(shape: tuple[int, ...], target: list[int]) -> tuple[int, ...]:
    """The shape ONNX Reshape (allowzero=0) gives, to check a target against Caffe's inferred shape."""
    dims = [shape[i] if d == 0 else d for i, d in enumerate(target)]
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        dims[dims.index(-1)] = math.prod(shape) // known if known else 0
    return tuple(dims)


def _reshape_to(ctx: Context, target: list[int]) -> None:
    got, expected = _onnx_reshape(ctx.bottom_shape(), target), ctx.top_shape()
    if got != tuple(expected):
        raise ctx.fail(f"ONNX target {target} gives {got} from {ctx.bottom_shape()}, Caffe infers {expected}")
    ctx.node("Reshape", [ctx.bottom(), ctx.ints("shape", target)], ctx.top())


@converter("Reshape")
def reshape(layer: Layer, ctx: Context) -> None:
    """Caffe's 0 (copy the bottom dim at the same index) and −1 (infer) mean the same in ONNX Reshape."""
    ctx.expect_counts(1)
    p = layer.params.reshape_param
    shape = ctx.bottom_shape()
    start = p.axis if p.axis >= 0 else len(shape) + p.axis + 1  # axes validated by shape inference
    end = len(shape) if p.num_axes == -1 else start + p.num_axes
    dims = [int(d) for d in p.shape.dim]
    kept = list(shape[end:])
    if start + len(dims) == end:
        kept = [0] * len(kept)  # the kept axes sit at the same index before and after: copy them
    target = [0] * start + dims + kept
    if target and target[0] > 0 and target[0] == shape[0]:
        target[0] = 0  # a literal batch size: copy it instead, so other batch sizes work
    _reshape_to(ctx, target)


@converter("Flatten")
def flatten(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts(1)
    p = layer.params.flatten_param
    shape = ctx.bottom_shape()
    start = ctx.axis(p.axis, len(shape))
    end = ctx.axis(p.end_axis, len(shape), "end_axis")
    if start == 1 and end == len(shape) - 1:
        ctx.node("Flatten", [ctx.bottom()], ctx.top(), axis=1)
        return
    _reshape_to(ctx, [0] * start + [-1] + list(shape[end + 1 :]))


@converter("Concat")
def concat(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts((1, None))
    p = layer.params.concat_param
    axis = p.concat_dim if p.HasField("concat_dim") else ctx.axis(p.axis, len(ctx.bottom_shape()))
    ctx.node("Concat", [ctx.bottom(i) for i in range(len(layer.bottoms))], ctx.top(), axis=axis)


@converter("Slice")
def slice_layer(layer: Layer, ctx: Context) -> None:
    """Caffe splits at `slice_point`s, or into equal parts when none are given (`slice_layer.cpp`)."""
    ctx.expect_counts(1, tops=None)
    p = layer.params.slice_param
    shape = ctx.bottom_shape()
    axis = p.slice_dim if p.HasField("slice_dim") else ctx.axis(p.axis, len(shape))
    parts = len(layer.tops)
    step = shape[axis] // parts
    bounds = [0, *p.slice_point, shape[axis]] if p.slice_point else [i * step for i in range(parts + 1)]
    # One Slice per top rather than a Split: onnx2torch returns a multi-output node's whole tuple for each
    # of its outputs that is also a graph output.
    x, axes = ctx.bottom(), ctx.ints("axis", [axis])
    for i in range(parts):
        ends = [ctx.ints("start", [bounds[i]]), ctx.ints("end", [bounds[i + 1]])]
        ctx.node("Slice", [x, *ends, axes], ctx.top(i))


@converter("Crop")
def crop(layer: Layer, ctx: Context) -> None:
    """Crop bottom 0 to bottom 1's shape from `axis` on, at `offset` (one for all axes, or one per axis)."""
    ctx.expect_counts(2)
    p = layer.params.crop_param
    shape, reference = ctx.bottom_shape(0), ctx.bottom_shape(1)  # ranks and fit checked by shape inference
    axis = ctx.axis(p.axis, len(shape))
    offsets = list(p.offset)
    starts, ends, axes = [], [], []
    for i in range(axis, len(shape)):
        offset = offsets[0] if len(offsets) == 1 else offsets[i - axis] if offsets else 0
        if (offset, reference[i]) != (0, shape[i]):
            starts.append(offset)
            ends.append(offset + reference[i])
            axes.append(i)
    if not axes:
        ctx.node("Identity", [ctx.bottom(0)], ctx.top())
        return
    inputs = [ctx.bottom(0), ctx.ints("starts", starts), ctx.ints("ends", ends), ctx.ints("axes", axes)]
    ctx.node("Slice", inputs, ctx.top())
