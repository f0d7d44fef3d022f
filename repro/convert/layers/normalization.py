"""LRN and BatchNorm.

LRN across channels is ONNX LRN with Caffe's k as `bias` (alpha is not rescaled: both divide by size).
WITHIN_CHANNEL has no ONNX op; Caffe itself builds it from sub-layers (`lrn_layer.cpp` LayerSetUp): square,
AVE-pool n×n with pad (n−1)/2, Power(shift 1, scale alpha, power −beta), product with x. Note the shift is
1, not k. The same chain is emitted here, with the AVE pool's divisor n² (count_include_pad=1).
"""

from __future__ import annotations

import numpy as np

from repro.caffe.net import Layer
from repro.convert.context import Context
from repro.convert.registry import converter

ACROSS_CHANNELS, WITHIN_CHANNEL = 0, 1


@converter("LRN")
def lrn(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts(1)
    p = layer.params.lrn_param
    n = p.local_size
    if n % 2 == 0:
        raise ctx.fail(f"local_size must be odd, got {n}")
    if len(ctx.bottom_shape()) != 4:
        raise ctx.fail(f"expected a 4-axis bottom (N, C, H, W), got shape {ctx.bottom_shape()}")
    x = ctx.bottom()
    if p.norm_region == ACROSS_CHANNELS:
        ctx.node("LRN", [x], ctx.top(), size=n, alpha=p.alpha, beta=p.beta, bias=p.k)
        return
    half = (n - 1) // 2
    squared = ctx.node("Mul", [x, x])
    mean = ctx.node(
        "AveragePool", [squared], kernel_shape=[n, n], strides=[1, 1], pads=[half] * 4, count_include_pad=1
    )
    scaled = ctx.node("Mul", [mean, ctx.const("alpha", p.alpha)])
    shifted = ctx.node("Add", [scaled, ctx.const("one", 1.0)])
    factor = ctx.node("Pow", [shifted, ctx.const("minus_beta", -p.beta)])
    ctx.node("Mul", [x, factor], ctx.top())


@converter("BatchNorm")
def batch_norm(layer: Layer, ctx: Context) -> None:
    """y = (x − mean/s) / sqrt(var/s + eps), s the stored moving-average factor (0 means 0, as in Caffe).

    Emitted as Add(−mean) then Mul(1/std) so the subtraction happens first, as in Caffe, and a large mean
    does not cancel catastrophically in float32.
    """
    ctx.expect_counts(1)
    p = layer.params.batch_norm_param
    if p.HasField("use_global_stats") and not p.use_global_stats:
        raise ctx.fail(
            "use_global_stats: false normalizes with batch statistics; only stored statistics convert"
        )
    shape = ctx.bottom_shape()
    channels = shape[1] if len(shape) > 1 else 1
    mean = ctx.blob(0, (channels,)).astype(np.float64)
    var = ctx.blob(1, (channels,)).astype(np.float64)
    s = float(ctx.blob(2, (1,))[0])
    factor = 0.0 if s == 0 else 1.0 / s
    broadcast = (channels,) + (1,) * max(len(shape) - 2, 0)
    inv_std = 1.0 / np.sqrt(var * factor + p.eps)
    centered = ctx.node("Add", [ctx.bottom(), ctx.const("minus_mean", (-mean * factor).reshape(broadcast))])
    ctx.node("Mul", [centered, ctx.const("inv_std", inv_std.reshape(broadcast))], ctx.top())
