"""LRN and BatchNorm.

LRN across channels is ONNX LRN with Caffe's k as `bias` (alpha is not rescaled: both divide by size), where
ONNX Runtime accepts the settings. Its CPU and CUDA kernels refuse alpha ≤ 0 or beta ≤ 0, and cuDNN's
descriptor behind the CUDA kernel also needs size ≤ 16, beta ≥ 0.01 and k ≥ 1e-5; Caffe takes any of these.
So other settings are converted exactly in plain ops: beta 0 is the identity (scale^0 = 1), alpha 0 the
constant factor k^−beta, and otherwise Caffe's formula y = x · (k + alpha/n · Σ x²)^−beta, the window sum
over channels an AveragePool (count_include_pad=1, so it divides by n) of x² with the channels on a
spatial axis. Settings that make the scale reach 0 or go negative (alpha < 0, k < 0, or k = 0 with
beta > 0), where Caffe's outputs are inf or NaN, are refused.

WITHIN_CHANNEL has no ONNX op; Caffe itself builds it from sub-layers (`lrn_layer.cpp` LayerSetUp): square,
AVE-pool n×n with pad (n−1)/2, Power(shift 1, scale alpha, power −beta), product with x. Note the shift is
1, not k. The same chain is emitted here, with the AVE pool's divisor n² (count_include_pad=1).
"""

from __future__ import annotations

import math

import numpy as np

from repro.caffe.net import Layer
from repro.convert.context import Context
from repro.convert.registry import converter

ACROSS_CHANNELS, WITHIN_CHANNEL = 0, 1

# Where ONNX Runtime's LRN kernels (CPU: alpha, beta > 0; CUDA via cuDNN: also these) accept the settings.
ORT_LRN_MAX_SIZE, ORT_LRN_MIN_BETA, ORT_LRN_MIN_K = 16, 0.01, 1e-5


def _ort_lrn_accepts(size: int, alpha: float, beta: float, k: float) -> bool:
    return alpha > 0 and beta >= ORT_LRN_MIN_BETA and k >= ORT_LRN_MIN_K and size <= ORT_LRN_MAX_SIZE


def _refuse_unbounded(ctx: Context, alpha: float, beta: float, shift: float, within: bool) -> None:
    """Caffe's scale (shift + alpha · window mean of x²) must stay positive wherever scale^−beta is not 1."""
    if beta == 0:
        return
    scale = "1 + alpha·(n×n mean of x²)" if within else "k + alpha/n·Σx²"
    if alpha < 0:
        raise ctx.fail(
            f"lrn_param.alpha must be >= 0, got {alpha:g}: the scale {scale} then falls to 0 and below for "
            "large inputs, where Caffe's x·scale^−beta is inf or NaN"
        )
    if shift < 0 or (shift == 0 and beta > 0):
        raise ctx.fail(
            f"lrn_param.k must be > 0, got {shift:g} (with beta {beta:g}): the scale {scale} is k wherever "
            "the window is all zeros, and there Caffe's x·scale^−beta is inf or NaN"
        )


@converter("LRN")
def lrn(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts(1)
    p = layer.params.lrn_param
    n, alpha, beta, k = p.local_size, float(p.alpha), float(p.beta), float(p.k)
    if n % 2 == 0:
        raise ctx.fail(f"local_size must be odd, got {n}")
    shape = ctx.bottom_shape()
    if len(shape) != 4:
        raise ctx.fail(f"expected a 4-axis bottom (N, C, H, W), got shape {shape}")
    within = p.norm_region == WITHIN_CHANNEL
    shift = 1.0 if within else k
    _refuse_unbounded(ctx, alpha, beta, shift, within)
    x = ctx.bottom()
    if beta == 0:
        ctx.node("Identity", [x], ctx.top())
        return
    if alpha == 0:  # scale is the constant shift
        with np.errstate(over="ignore"):  # computed in float32, as Caffe's powx does
            factor = float(np.float32(shift) ** np.float32(-beta)) if shift > 0 else 0.0
        if not math.isfinite(factor):
            raise ctx.fail(
                f"with lrn_param.alpha 0 the layer is x·k^−beta = x·{shift:g}^{-beta:g}, "
                "which overflows float32"
            )
        if factor == 1.0:
            ctx.node("Identity", [x], ctx.top())
        else:
            ctx.node("Mul", [x, ctx.const("factor", factor)], ctx.top())
        return
    if not within and _ort_lrn_accepts(n, alpha, beta, k):
        ctx.node("LRN", [x], ctx.top(), size=n, alpha=alpha, beta=beta, bias=k)
        return
    half = (n - 1) // 2
    squared = ctx.node("Mul", [x, x])
    if within:
        mean = ctx.node(
            "AveragePool",
            [squared],
            kernel_shape=[n, n],
            strides=[1, 1],
            pads=[half] * 4,
            count_include_pad=1,
        )
    else:  # channels onto a spatial axis: (N, 1, C, H·W), pooled over windows of n channels
        channels, height, width = shape[1:]
        folded = ctx.node("Reshape", [squared, ctx.ints("folded", [0, 1, channels, -1])])
        pooled = ctx.node(
            "AveragePool",
            [folded],
            kernel_shape=[n, 1],
            strides=[1, 1],
            pads=[half, 0, half, 0],
            count_include_pad=1,
        )
        mean = ctx.node("Reshape", [pooled, ctx.ints("unfolded", [0, channels, height, width])])
    scaled = ctx.node("Mul", [mean, ctx.const("alpha", alpha)])
    shifted = ctx.node("Add", [scaled, ctx.const("shift", shift)])
    factor = ctx.node("Pow", [shifted, ctx.const("minus_beta", -beta)])
    ctx.node("Mul", [x, factor], ctx.top())


@converter("BatchNorm")
def batch_norm(layer: Layer, ctx: Context) -> None:
    """y = (x − mean/s) / sqrt(var/s + eps), s the stored moving-average factor (0 means 0, as in Caffe).

    Emitted as Add(−mean) then Mul(1/std) so the subtraction happens first, as in Caffe, and a large mean
    does not cancel catastrophically in float32. A channel whose var/s + eps is not positive (a negative eps
    or variance) has no finite 1/std, and is refused.
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
    denominator = var * factor + p.eps
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_std = 1.0 / np.sqrt(denominator)
        minus_mean = -mean * factor
    with np.errstate(over="ignore"):
        finite = np.isfinite(inv_std.astype(np.float32)) & np.isfinite(minus_mean.astype(np.float32))
    if not finite.all():
        c = int(np.flatnonzero(~finite)[0])
        raise ctx.fail(
            f"channel {c}: (x − mean·f) / sqrt(variance·f + eps) is not finite, with mean {mean[c]:g}, "
            f"variance {var[c]:g}, f = 1/scale factor = {factor:g} and batch_norm_param.eps {p.eps:g}; "
            "expected variance·f + eps > 0 and finite statistics"
        )
    centered = ctx.node("Add", [ctx.bottom(), ctx.const("minus_mean", minus_mean.reshape(broadcast))])
    ctx.node("Mul", [centered, ctx.const("inv_std", inv_std.reshape(broadcast))], ctx.top())
