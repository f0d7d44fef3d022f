"""Caffe's shape inference: every blob's shape and every layer's expected weight shapes.

Shapes are computed here from Caffe's C++ (`*_layer.cpp` Reshape/LayerSetUp), never taken from ONNX shape
inference, which disagrees with Caffe on pooling: Caffe rounds the output size up (by default) and drops a
last window that would start in the right padding, and onnx's shape inference (opset ≤ 19) skips that drop
under `ceil_mode=1` (H=5, k=2, s=2, pad=1: Caffe 3, onnx 4). One rule per layer type, registered in `RULES`
(a second rule for a type is an error); each maps the layer and its bottom shapes to its top shapes and
weight shapes.

The walker also refuses any blob that would need absurd memory: a top, a weight blob or Caffe's own
im2col column buffer above `MAX_BLOB_BYTES` as float32. Caffe itself refuses blobs over INT_MAX values
(`Blob::Reshape`); this limit is tighter, so that a typo (a stride of 10^6 in a deconvolution) is one
clear line at load time instead of an allocation failure in ONNX Runtime.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from repro.caffe.net import Layer, Net
from repro.errors import BadInput
from repro.registry import registrar

Shape = tuple[int, ...]

FLOAT_BYTES = 4
MAX_BLOB_BYTES = 4 * 2**30  # one blob as float32: far above any real net's, far below a typo's


@dataclass(frozen=True)
class LayerShapes:
    tops: list[Shape]
    weights: list[Shape] = field(default_factory=list)
    bottoms: list[Shape] = field(default_factory=list)  # filled in by the walker, not by the rules
    buffers: list[tuple[str, Shape]] = field(default_factory=list)  # Caffe's internal blobs (im2col)


@dataclass(frozen=True)
class ConvGeometry:
    """Caffe's resolved convolution settings, one value per spatial axis (`_h/_w`, 1-value forms expanded)."""

    axis: int  # the channel axis
    kernel: list[int]
    stride: list[int]
    pad: list[int]
    dilation: list[int]


class ShapeError(ValueError):
    """A layer's settings do not fit its inputs; the walker adds file, layer and type to the message."""


Rule = Callable[[Layer, list[Shape]], LayerShapes]
RULES: dict[str, Rule] = {}


rule = registrar(RULES, "shape rules for Caffe layer type")  # @rule("ReLU", ...)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ShapeError(message)


def _count(shape: Shape, start: int = 0, end: int | None = None) -> int:
    return math.prod(shape[start:end])


def _axis(axis: int, ndim: int) -> int:
    """Blob::CanonicalAxisIndex: negative axes count from the end."""
    _check(-ndim <= axis < ndim, f"axis {axis} is out of range for a {ndim}-D blob")
    return axis % ndim


def _bottoms(bottoms: list[Shape], *counts: int) -> None:
    _check(len(bottoms) in counts, f"expects {' or '.join(map(str, counts))} bottom(s), got {len(bottoms)}")


@rule("ReLU", "Sigmoid", "TanH", "Dropout", "LRN", "Power", "Log", "Exp", "AbsVal")
def _elementwise(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 1)
    return LayerShapes([bottoms[0]])


@rule("Softmax")
def _softmax(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 1)
    _axis(layer.params.softmax_param.axis, len(bottoms[0]))
    return LayerShapes([bottoms[0]])


@rule("Split")
def _split(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 1)
    return LayerShapes([bottoms[0]] * len(layer.tops))


@rule("Silence")
def _silence(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    return LayerShapes([])


@rule("Input")
def _input(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 0)
    shapes = [tuple(int(d) for d in s.dim) for s in layer.params.input_param.shape]
    _check(len(shapes) > 0, "declares no input shape")
    _check(len(shapes) in (1, len(layer.tops)), f"has {len(layer.tops)} tops but {len(shapes)} shapes")
    _check(all(d > 0 for s in shapes for d in s), f"input shapes must be positive, got {shapes}")
    return LayerShapes(shapes * len(layer.tops) if len(shapes) == 1 else shapes)


def _spatial(p, name: str, prefix: str | None, n: int, default: int) -> list[int]:
    """A repeated conv setting (1 value for all axes or one per axis) or its 2-D `prefix_h/prefix_w` form.

    As in Caffe, the `_h/_w` form takes both fields as stored, so a missing one reads as 0 (then refused
    for kernel and stride by the positivity checks).
    """
    values = list(getattr(p, name))
    if prefix is not None and (p.HasField(f"{prefix}_h") or p.HasField(f"{prefix}_w")):
        _check(n == 2, f"{prefix}_h/{prefix}_w can only be used for 2-D convolution")
        _check(not values, f"give either {name} or {prefix}_h/{prefix}_w, not both")
        return [getattr(p, f"{prefix}_h"), getattr(p, f"{prefix}_w")]
    _check(len(values) in (0, 1, n), f"{name} needs 1 or {n} values, got {len(values)}")
    if not values:
        return [default] * n
    return [int(values[0 if len(values) == 1 else i]) for i in range(n)]


def conv_geometry(layer: Layer, shape: Shape) -> ConvGeometry:
    """Convolution/Deconvolution settings as BaseConvolutionLayer::LayerSetUp resolves them."""
    p = layer.params.convolution_param
    axis = _axis(p.axis, len(shape))
    n = len(shape) - axis - 1
    kernel = _spatial(p, "kernel_size", "kernel", n, 0)
    stride = _spatial(p, "stride", "stride", n, 1)
    pad = _spatial(p, "pad", "pad", n, 0)
    dilation = _spatial(p, "dilation", None, n, 1)
    _check(all(k > 0 for k in kernel), f"kernel size must be positive, got {kernel}")
    _check(all(s > 0 for s in stride), f"stride must be positive, got {stride}")
    channels, group = shape[axis], p.group
    _check(p.num_output > 0, "num_output must be positive")
    _check(
        group > 0 and channels % group == 0, f"{channels} input channels are not divisible by group {group}"
    )
    _check(p.num_output % group == 0, f"num_output {p.num_output} is not divisible by group {group}")
    return ConvGeometry(axis, kernel, stride, pad, dilation)


def _col_buffer(g: ConvGeometry, channels: int, spatial: list[int]) -> list[tuple[str, Shape]]:
    """BaseConvolutionLayer::Reshape's col_buffer_ for one image: (conv_in_channels · kernel, spatial), with
    spatial the output (Convolution) or the input (Deconvolution); a 1x1 convolution needs none."""
    if all(k == 1 and s == 1 and q == 0 for k, s, q in zip(g.kernel, g.stride, g.pad, strict=True)):
        return []
    return [("im2col buffer", (channels * math.prod(g.kernel), *spatial))]


@rule("Convolution")
def _convolution(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 1)
    shape = bottoms[0]
    g = conv_geometry(layer, shape)
    p, axis = layer.params.convolution_param, g.axis
    out = []
    for size, k, s, q, d in zip(shape[axis + 1 :], g.kernel, g.stride, g.pad, g.dilation, strict=True):
        extent = d * (k - 1) + 1
        _check(size + 2 * q >= extent, f"kernel extent {extent} exceeds the padded input {size}+2*{q}")
        out.append((size + 2 * q - extent) // s + 1)
    weights = [(p.num_output, shape[axis] // p.group, *g.kernel)] + ([(p.num_output,)] if p.bias_term else [])
    return LayerShapes(
        [(*shape[:axis], p.num_output, *out)], weights, buffers=_col_buffer(g, shape[axis], out)
    )


@rule("Deconvolution")
def _deconvolution(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 1)
    shape = bottoms[0]
    g = conv_geometry(layer, shape)
    p, axis = layer.params.convolution_param, g.axis
    spatial = zip(shape[axis + 1 :], g.kernel, g.stride, g.pad, g.dilation, strict=True)
    out = [s * (size - 1) + d * (k - 1) + 1 - 2 * q for size, k, s, q, d in spatial]
    _check(all(o > 0 for o in out), f"output size {out} is not positive")
    # reverse_dimensions(): the blob is (C_in, C_out / group, k...), ONNX ConvTranspose's layout.
    weights = [(shape[axis], p.num_output // p.group, *g.kernel)] + ([(p.num_output,)] if p.bias_term else [])
    buffers = _col_buffer(g, p.num_output, list(shape[axis + 1 :]))
    return LayerShapes([(*shape[:axis], p.num_output, *out)], weights, buffers=buffers)


def pooled_size(size: int, kernel: int, stride: int, pad: int, *, ceil: bool, any_pad: bool) -> int:
    """Caffe's pooled extent: ceil (or floor) rounding, then drop a last window that starts in the padding."""
    span = size + 2 * pad - kernel
    pooled = (-(-span // stride) if ceil else span // stride) + 1
    if any_pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


@dataclass(frozen=True)
class PoolGeometry:
    """Caffe's resolved pooling settings for (H, W): global pooling and the `_h/_w` forms expanded."""

    kernel: list[int]
    stride: list[int]
    pad: list[int]
    ceil: bool  # round_mode CEIL (Caffe's default), else FLOOR
    out: list[int]  # pooled (H, W) after the drop-last-window rule


def pool_geometry(layer: Layer, shape: Shape) -> PoolGeometry:
    """Pooling settings and output size as PoolingLayer::LayerSetUp/Reshape resolve them."""
    p = layer.params.pooling_param
    has = p.HasField
    _check(len(shape) == 4, f"pooling needs a 4-D input, got {shape}")
    if p.global_pooling:
        _check(
            not (has("kernel_size") or has("kernel_h") or has("kernel_w")), "global pooling takes no kernel"
        )
        kernel = list(shape[2:])
    else:
        _check(
            has("kernel_size") != (has("kernel_h") and has("kernel_w")),
            "give kernel_size or both kernel_h and kernel_w",
        )
        kernel = [p.kernel_size] * 2 if has("kernel_size") else [p.kernel_h, p.kernel_w]
    for name in ("pad", "stride"):
        h, w = has(f"{name}_h"), has(f"{name}_w")
        _check((h and w and not has(name)) or not (h or w), f"give {name} or both {name}_h and {name}_w")
    pad = [p.pad_h, p.pad_w] if has("pad_h") else [p.pad] * 2
    stride = [p.stride_h, p.stride_w] if has("stride_h") else [p.stride] * 2
    _check(all(k > 0 for k in kernel) and all(s > 0 for s in stride), "kernel and stride must be positive")
    if p.global_pooling:
        _check(pad == [0, 0] and stride == [1, 1], "global pooling needs pad 0 and stride 1")
    _check(
        all(q < k for q, k in zip(pad, kernel, strict=True)),
        f"pad {pad} must be smaller than kernel {kernel}",
    )
    ceil = p.round_mode == p.CEIL
    out = [
        pooled_size(n, k, s, q, ceil=ceil, any_pad=any(pad))
        for n, k, s, q in zip(shape[2:], kernel, stride, pad, strict=True)
    ]
    _check(all(o > 0 for o in out), f"kernel {kernel} exceeds the padded input {shape[2:]}")
    return PoolGeometry(kernel, stride, pad, ceil, out)


@rule("Pooling")
def _pooling(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 1)
    out = pool_geometry(layer, bottoms[0]).out
    return LayerShapes([(*bottoms[0][:2], *out)] * len(layer.tops))  # a second top is MAX's argmax mask


@rule("InnerProduct")
def _inner_product(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 1)
    shape = bottoms[0]
    p = layer.params.inner_product_param
    axis = _axis(p.axis, len(shape))
    n, k = p.num_output, _count(shape, axis)
    _check(n > 0, "num_output must be positive")
    weights = [(k, n) if p.transpose else (n, k)] + ([(n,)] if p.bias_term else [])
    return LayerShapes([(*shape[:axis], n)], weights)


@rule("Concat")
def _concat(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _check(len(bottoms) >= 1, "expects at least 1 bottom")
    p = layer.params.concat_param
    ndim = len(bottoms[0])
    axis = p.concat_dim if p.HasField("concat_dim") else _axis(p.axis, ndim)
    _check(axis < ndim, f"concat_dim {axis} is out of range for a {ndim}-D blob")
    for shape in bottoms[1:]:
        same = len(shape) == ndim and all(
            a == b for i, (a, b) in enumerate(zip(shape, bottoms[0], strict=True)) if i != axis
        )
        _check(same, f"bottoms must match except on axis {axis}: expected like {bottoms[0]}, got {shape}")
    total = sum(shape[axis] for shape in bottoms)
    return LayerShapes([(*bottoms[0][:axis], total, *bottoms[0][axis + 1 :])])


@rule("Slice")
def _slice(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 1)
    shape = bottoms[0]
    p = layer.params.slice_param
    axis = p.slice_dim if p.HasField("slice_dim") else _axis(p.axis, len(shape))
    _check(axis < len(shape), f"slice_dim {axis} is out of range for a {len(shape)}-D blob")
    size, tops = shape[axis], len(layer.tops)
    if p.slice_point:
        _check(
            len(p.slice_point) == tops - 1,
            f"{tops} tops need {tops - 1} slice points, got {len(p.slice_point)}",
        )
        edges = [0, *p.slice_point, size]
        sizes = [b - a for a, b in itertools.pairwise(edges)]
        _check(
            all(s > 0 for s in sizes), f"slice points {list(p.slice_point)} do not split {size} increasingly"
        )
    else:
        _check(size % tops == 0, f"axis {axis} of size {size} does not split evenly into {tops} tops")
        sizes = [size // tops] * tops
    return LayerShapes([(*shape[:axis], s, *shape[axis + 1 :]) for s in sizes])


@rule("Eltwise")
def _eltwise(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _check(len(bottoms) >= 2, f"expects at least 2 bottoms, got {len(bottoms)}")
    p = layer.params.eltwise_param
    _check(all(s == bottoms[0] for s in bottoms), f"bottoms must have equal shapes, got {bottoms}")
    _check(len(p.coeff) in (0, len(bottoms)), f"{len(bottoms)} bottoms need 0 or {len(bottoms)} coeffs")
    _check(not p.coeff or p.operation == p.SUM, "coeff is only for the SUM operation")
    return LayerShapes([bottoms[0]])


@rule("Reshape")
def _reshape(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 1)
    shape = bottoms[0]
    p = layer.params.reshape_param
    dims = [int(d) for d in p.shape.dim]
    start = p.axis if p.axis >= 0 else len(shape) + p.axis + 1
    _check(0 <= start <= len(shape), f"axis {p.axis} is out of range for a {len(shape)}-D blob")
    _check(p.num_axes >= -1, f"num_axes must be >= -1, got {p.num_axes}")
    end = len(shape) if p.num_axes == -1 else start + p.num_axes
    _check(end <= len(shape), f"axis {p.axis} + num_axes {p.num_axes} exceed a {len(shape)}-D blob")
    _check(dims.count(-1) <= 1, f"at most one dim may be -1, got {dims}")
    _check(all(d >= -1 for d in dims), f"dims must be >= -1, got {dims}")
    new = list(dims)
    for i, d in enumerate(dims):
        if d == 0:
            _check(start + i < len(shape), f"dim {i} copies an axis the {len(shape)}-D input lacks")
            new[i] = shape[start + i]
    top = [*shape[:start], *new, *shape[end:]]
    if -1 in new:
        known = _count(tuple(d for d in top if d != -1))
        _check(known > 0 and _count(shape) % known == 0, f"cannot infer -1 reshaping {shape} to {dims}")
        top[top.index(-1)] = _count(shape) // known
    _check(
        _count(tuple(top)) == _count(shape),
        f"cannot reshape {shape} ({_count(shape)} values) to {tuple(top)} ({_count(tuple(top))} values)",
    )
    return LayerShapes([tuple(top)])


@rule("Flatten")
def _flatten(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 1)
    shape = bottoms[0]
    p = layer.params.flatten_param
    start, end = _axis(p.axis, len(shape)), _axis(p.end_axis, len(shape))
    return LayerShapes([(*shape[:start], _count(shape, start, end + 1), *shape[end + 1 :])])


@rule("Crop")
def _crop(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 2)
    shape, reference = bottoms
    p = layer.params.crop_param
    _check(len(shape) == len(reference), f"bottoms must have equal rank, got {shape} and {reference}")
    start = _axis(p.axis, len(shape))
    offsets = list(p.offset)
    _check(
        len(offsets) <= 1 or start + len(offsets) == len(shape),
        f"{len(shape) - start} cropped axes need 1 or {len(shape) - start} offsets, got {len(offsets)}",
    )
    top = list(shape)
    for i in range(start, len(shape)):
        offset = 0 if not offsets else offsets[0 if len(offsets) == 1 else i - start]
        _check(
            shape[i] - offset >= reference[i],
            f"axis {i}: offset {offset} + size {reference[i]} exceeds {shape[i]}",
        )
        top[i] = reference[i]
    return LayerShapes([tuple(top)])


def _covered(bottoms: list[Shape], axis: int, num_axes: int) -> Shape:
    """Scale/Bias: the axes of bottom 0 that the multiplier covers, i.e. the second bottom's shape (checked)
    or, with one bottom, the learned blob's shape `bottom[axis : axis + num_axes]`."""
    shape = bottoms[0]
    if len(bottoms) == 2:
        other = bottoms[1]
        start = 0 if len(other) == 0 else _axis(axis, len(shape))
        fits = len(shape) >= start + len(other) and tuple(shape[start : start + len(other)]) == other
        _check(fits, f"second bottom {other} must match {shape} from axis {start}")
        return other
    _check(num_axes >= -1, f"num_axes must be >= -1, got {num_axes}")
    start = _axis(axis, len(shape))
    end = len(shape) if num_axes == -1 else start + num_axes
    _check(end <= len(shape), f"axis {axis} + num_axes {num_axes} exceed {shape}")
    return tuple(shape[start:end])


@rule("Scale")
def _scale(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 1, 2)
    p = layer.params.scale_param
    covered = _covered(bottoms, p.axis, p.num_axes)
    learned = [covered] if len(bottoms) == 1 else []
    return LayerShapes([bottoms[0]], learned + ([covered] if p.bias_term else []))


@rule("Bias")
def _bias(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 1, 2)
    p = layer.params.bias_param
    covered = _covered(bottoms, p.axis, p.num_axes)
    return LayerShapes([bottoms[0]], [covered] if len(bottoms) == 1 else [])


@rule("BatchNorm")
def _batch_norm(layer: Layer, bottoms: list[Shape]) -> LayerShapes:
    _bottoms(bottoms, 1)
    channels = 1 if len(bottoms[0]) == 1 else bottoms[0][1]
    return LayerShapes([bottoms[0]], [(channels,), (channels,), (1,)])  # mean, variance, scale factor


def _size(n_bytes: int) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{n_bytes} bytes"


def _check_memory(where: str, result: LayerShapes, layer: Layer, limit: int | None) -> None:
    """Refuse a top, weight blob or internal buffer above `limit` bytes of float32."""
    if limit is None:
        return
    named = [(f"top '{t}'", s) for t, s in zip(layer.tops, result.tops, strict=True)]
    named += [(f"weight blob {i}", s) for i, s in enumerate(result.weights)]
    named += list(result.buffers)
    for what, shape in named:
        n_bytes = math.prod(shape) * FLOAT_BYTES
        if n_bytes > limit:
            raise BadInput(
                f"{where}: {what} would have shape {tuple(shape)}, {math.prod(shape):.3g} values "
                f"({_size(n_bytes)} as float32), over the {_size(limit)} limit for one blob; "
                "check the layer's sizes, strides and pads (and the input batch)"
            )


# Layers whose top shares the bottom's data (`ShareData`), so that Caffe computes them in place correctly
# even when the shape changes; any other layer would compute on its own input reshaped under it.
SHARES_DATA = {"Reshape", "Flatten"}


def _check_in_place(where: str, layer: Layer, result: LayerShapes, bottoms: list[Shape]) -> None:
    for i, (top, shape) in enumerate(zip(layer.tops, result.tops, strict=True)):
        in_place = i < len(layer.bottoms) and layer.bottoms[i] == top
        if in_place and tuple(shape) != tuple(bottoms[i]) and layer.type not in SHARES_DATA:
            raise BadInput(
                f"{where}: rewrites blob '{top}' in place but changes its shape from {tuple(bottoms[i])} to "
                f"{tuple(shape)}; Caffe would then compute on its own input reshaped under it. Give top {i} "
                "a new name"
            )


def _walk(net: Net, limit: int | None = MAX_BLOB_BYTES) -> tuple[dict[str, Shape], list[LayerShapes]]:
    """Run Caffe's shape pass layer by layer; name the file, layer and type in any error."""
    blobs: dict[str, Shape] = {}
    per_layer: list[LayerShapes] = []
    for layer in net.layers:
        where = f"{net.source}: layer '{layer.name}' ({layer.type})"
        fn = RULES.get(layer.type)
        if fn is None:
            raise BadInput(
                f"{where}: no shape inference for layer type '{layer.type}'; "
                f"supported types: {', '.join(sorted(RULES))}"
            )
        missing = [b for b in layer.bottoms if b not in blobs]
        if missing:
            raise BadInput(f"{where}: bottom '{missing[0]}' is not produced by any earlier layer")
        try:
            result = fn(layer, [blobs[b] for b in layer.bottoms])
            _check(
                len(result.tops) == len(layer.tops),
                f"expects {len(result.tops)} top(s), got {len(layer.tops)}",
            )
        except ShapeError as e:
            shapes = ", ".join(str(blobs[b]) for b in layer.bottoms)
            raise BadInput(f"{where}: {e} (bottom shapes: {shapes or 'none'})") from None
        _check_memory(where, result, layer, limit)
        _check_in_place(where, layer, result, [blobs[b] for b in layer.bottoms])
        per_layer.append(replace(result, bottoms=[blobs[b] for b in layer.bottoms]))
        blobs.update(zip(layer.tops, result.tops, strict=True))
    return blobs, per_layer


def infer_shapes(net: Net, *, limit: int | None = MAX_BLOB_BYTES) -> dict[str, Shape]:
    """Every blob's shape after a full forward (an in-place blob keeps its last writer's shape).

    `limit` bounds every blob's float32 size (None: no bound, for shapes that are only compared).
    """
    return _walk(net, limit)[0]


def layer_shapes(net: Net, *, limit: int | None = MAX_BLOB_BYTES) -> list[LayerShapes]:
    """Top and weight shapes of every layer, in `net.layers` order (one pass for all layers)."""
    return _walk(net, limit)[1]


def weight_shapes(net: Net, layer: Layer) -> list[Shape]:
    """The weight blob shapes Caffe expects for `layer` given the net's input shapes."""
    for candidate, result in zip(net.layers, layer_shapes(net), strict=True):
        if candidate is layer:
            return result.weights
    raise KeyError(layer.name)
