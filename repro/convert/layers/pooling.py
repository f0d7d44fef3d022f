"""Pooling → MaxPool / AveragePool with Caffe's output size.

Caffe rounds the output size up and then drops a last window that would start inside the right padding
(`pooling_layer.cpp` Reshape). ONNX Runtime and torch apply the same drop rule under `ceil_mode=1`, but
onnx's own shape inference (opset ≤ 19) does not. `ceil_mode=1` is therefore used only where Caffe's size
differs from floor rounding; then no window is dropped (a dropped window always brings Caffe back to the
floor size), so ONNX Runtime, torch and onnx's shape inference all agree with Caffe. Only if H and W need
different rounding does onnx's shape inference differ (`ceil_mode` is shared); then a Slice to Caffe's size
follows the pool, so that every inferred shape is right and ORT loads the graph. A size the runtimes would
compute differently from Caffe's is refused rather than silently converted. Caffe's AVE divisor counts the
padding cells inside [−pad, H + pad) but not a ceil overhang beyond them, which is what AveragePool with
`count_include_pad=1` divides by; ONNX's default `count_include_pad=0` is wrong whenever pad > 0.
"""

from __future__ import annotations

from repro.caffe.net import Layer
from repro.caffe.shapes import pool_geometry
from repro.convert.context import Context
from repro.convert.registry import converter

MAX, AVE = 0, 1


def onnx_pooled_size(length: int, kernel: int, stride: int, pad: int, ceil_mode: bool) -> int:
    """What ONNX Runtime and torch produce for symmetric pads.

    Their ceil mode drops a last window starting in the right padding even when there is no padding;
    Caffe does so only when some pad is non-zero, hence the comparison with the inferred shape below.
    """
    if not ceil_mode:
        return (length + 2 * pad - kernel) // stride + 1
    pooled = -(-(length + 2 * pad - kernel) // stride) + 1
    if (pooled - 1) * stride >= length + pad:
        pooled -= 1
    return pooled


@converter("Pooling")
def pooling(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts(1)
    p = layer.params.pooling_param
    if p.pool not in (MAX, AVE):
        raise ctx.fail("only MAX and AVE pooling are supported (STOCHASTIC has no deterministic forward)")
    shape = ctx.bottom_shape()
    caffe = pool_geometry(layer, shape)
    kernel, stride, pad = caffe.kernel, caffe.stride, caffe.pad
    geometry = list(zip(shape[2:], kernel, stride, pad, strict=True))
    expected = tuple(caffe.out)
    ceil_mode = any(
        e != onnx_pooled_size(*g, ceil_mode=False) for e, g in zip(expected, geometry, strict=True)
    )
    onnx_sizes = tuple(onnx_pooled_size(*g, ceil_mode=ceil_mode) for g in geometry)
    if onnx_sizes != expected:
        raise ctx.fail(
            f"ONNX pooling (ceil_mode={int(ceil_mode)}) gives {onnx_sizes} where Caffe gives {expected} for "
            f"input {shape[2:]}, kernel {kernel}, stride {stride}, pad {pad}"
        )
    attrs = {"kernel_shape": kernel, "strides": stride, "pads": pad * 2, "ceil_mode": int(ceil_mode)}
    # Under ceil_mode onnx's shape inference skips the drop rule: where that leaves it one larger on an
    # axis (the other axis needed ceil rounding), a Slice to Caffe's size, a no-op when run, keeps the
    # inferred shapes right, so ORT does not refuse the graph where the value meets a weight.
    inferred = tuple(-(-(n + 2 * q - k) // s) + 1 for n, k, s, q in geometry) if ceil_mode else expected
    oversized = [i for i, (a, b) in enumerate(zip(inferred, expected, strict=True)) if a != b]
    out = ctx.fresh("pooled") if oversized else ctx.top()
    if p.pool == AVE:
        ctx.node("AveragePool", [ctx.bottom()], out, count_include_pad=1, **attrs)
    else:
        ctx.node("MaxPool", [ctx.bottom()], out, **attrs)
    if oversized:
        starts = ctx.ints("starts", [0] * len(oversized))
        ends = ctx.ints("ends", [expected[i] for i in oversized])
        ctx.node("Slice", [out, starts, ends, ctx.ints("axes", [2 + i for i in oversized])], ctx.top())
