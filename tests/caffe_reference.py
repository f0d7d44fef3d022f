"""Float64 numpy forward passes of Caffe's layers, written from Caffe's C++ (BVLC/caffe, src/caffe/layers).

This is the independent side of the converter's parity tests: it shares no code with `repro.convert`,
uses no ONNX or torch, and follows Caffe's own loops (im2col + GEMM per group for convolution, col2im for
deconvolution, window loops with Caffe's clipping for pooling, a channel window for LRN, ...).
`forward(net, feeds)` runs a whole `repro.caffe.Net` and returns every blob after the full forward, so
in-place rewrites end with the last writer's value exactly as `net.blobs` does in Caffe.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

FORWARD: dict[str, Callable] = {}


def layer(*types: str):
    def register(fn):
        for t in types:
            FORWARD[t] = fn
        return fn

    return register


def forward(net, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    blobs: dict[str, np.ndarray] = {}
    for lay in net.layers:
        if lay.type == "Input":
            for top in lay.tops:
                blobs[top] = np.asarray(feeds[top], dtype=np.float64)
            continue
        weights = [np.asarray(b, dtype=np.float64) for b in lay.blobs]
        outs = FORWARD[lay.type](lay.params, [blobs[b] for b in lay.bottoms], weights, len(lay.tops))
        for top, value in zip(lay.tops, outs, strict=True):
            blobs[top] = value
    return blobs


def _canonical(axis: int, ndim: int) -> int:
    assert -ndim <= axis < ndim
    return axis + ndim if axis < 0 else axis


# ------------------------------------------------------------------------------------------ convolution


def _conv_params(p, n_spatial: int):
    """base_conv_layer.cpp LayerSetUp: kernel/stride/pad from `_h/_w` or the repeated fields."""

    def spatial(h, w, values, default):
        if p.HasField(h) or p.HasField(w):
            return [getattr(p, h), getattr(p, w)]
        values = list(values)
        if not values:
            return [default] * n_spatial
        return [values[0 if len(values) == 1 else i] for i in range(n_spatial)]

    kernel = spatial("kernel_h", "kernel_w", p.kernel_size, None)
    stride = spatial("stride_h", "stride_w", p.stride, 1)
    pad = spatial("pad_h", "pad_w", p.pad, 0)
    dil = list(p.dilation)
    dilation = [dil[0 if len(dil) == 1 else i] for i in range(n_spatial)] if dil else [1] * n_spatial
    return kernel, stride, pad, dilation


def _out_size(size, k, s, p, d):
    return (size + 2 * p - (d * (k - 1) + 1)) // s + 1


def im2col(x: np.ndarray, kernel, stride, pad, dilation) -> tuple[np.ndarray, tuple[int, int]]:
    """im2col.cpp: x (C, H, W) → columns (C·kh·kw, Ho·Wo); row (c, ki, kj), column (oy, ox) reads
    x[c, oy·s − p + ki·d, ox·s − p + kj·d], zero outside the image."""
    c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, pad, dilation
    ho, wo = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
    padded = np.zeros((c, h + 2 * ph, w + 2 * pw))
    padded[:, ph : ph + h, pw : pw + w] = x
    cols = np.empty((c, kh, kw, ho, wo))
    for ki in range(kh):
        for kj in range(kw):
            cols[:, ki, kj] = padded[
                :, ki * dh : ki * dh + sh * (ho - 1) + 1 : sh, kj * dw : kj * dw + sw * (wo - 1) + 1 : sw
            ]
    return cols.reshape(c * kh * kw, ho * wo), (ho, wo)


def col2im(cols: np.ndarray, shape, kernel, stride, pad, dilation) -> np.ndarray:
    """col2im.cpp: the adjoint of im2col, accumulating every column entry into the pixel it was read from
    (entries that fall in the padding are dropped)."""
    c, h, w = shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, pad, dilation
    ho, wo = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
    cols = cols.reshape(c, kh, kw, ho, wo)
    padded = np.zeros((c, h + 2 * ph, w + 2 * pw))
    for ki in range(kh):
        for kj in range(kw):
            padded[
                :, ki * dh : ki * dh + sh * (ho - 1) + 1 : sh, kj * dw : kj * dw + sw * (wo - 1) + 1 : sw
            ] += cols[:, ki, kj]
    return padded[:, ph : ph + h, pw : pw + w]


@layer("Convolution")
def convolution(params, bottoms, weights, n_tops):
    """conv_layer.cpp Forward_cpu → forward_cpu_gemm: per group, W_g (M/g, C/g·k²) @ im2col(x)_g."""
    p = params.convolution_param
    (x,), group = bottoms, p.group
    geometry = _conv_params(p, 2)
    w = weights[0].reshape(p.num_output, -1)
    out = []
    for n in range(x.shape[0]):
        cols, (ho, wo) = im2col(x[n], *geometry)
        cols = cols.reshape(group, -1, ho * wo)
        y = np.concatenate(
            [
                w[g * (p.num_output // group) : (g + 1) * (p.num_output // group)] @ cols[g]
                for g in range(group)
            ]
        )
        if p.bias_term:
            y += weights[1].reshape(-1, 1)
        out.append(y.reshape(p.num_output, ho, wo))
    return [np.stack(out)]


@layer("Deconvolution")
def deconvolution(params, bottoms, weights, n_tops):
    """deconv_layer.cpp Forward_cpu → backward_cpu_gemm: columns W_gᵀ @ x_g, then col2im onto the output.

    The blob is (C_in, M/g, kh, kw) (reverse_dimensions), and the output size is s(H−1) + d(k−1) + 1 − 2p.
    """
    p = params.convolution_param
    (x,), group = bottoms, p.group
    kernel, stride, pad, dilation = _conv_params(p, 2)
    c_in, h, w_in = x.shape[1:]
    ho, wo = (
        stride[i] * ((h, w_in)[i] - 1) + dilation[i] * (kernel[i] - 1) + 1 - 2 * pad[i] for i in range(2)
    )
    weight = weights[0].reshape(group, c_in // group, -1)  # per group: (C_in/g, M/g·kh·kw)
    out = []
    for n in range(x.shape[0]):
        xg = x[n].reshape(group, c_in // group, h * w_in)
        cols = np.concatenate([weight[g].T @ xg[g] for g in range(group)])
        y = col2im(cols, (p.num_output, ho, wo), kernel, stride, pad, dilation)
        if p.bias_term:
            y += weights[1].reshape(-1, 1, 1)
        out.append(y)
    return [np.stack(out)]


@layer("InnerProduct")
def inner_product(params, bottoms, weights, n_tops):
    """inner_product_layer.cpp: M = count(0, axis), K = count(axis); y = x (M, K) @ Wᵀ (or W if transpose)."""
    p = params.inner_product_param
    (x,) = bottoms
    axis = _canonical(p.axis, x.ndim)
    m, k = math.prod(x.shape[:axis]), math.prod(x.shape[axis:])
    w = weights[0].reshape((k, p.num_output) if p.transpose else (p.num_output, k))
    y = x.reshape(m, k) @ (w if p.transpose else w.T)
    if p.bias_term:
        y = y + weights[1].reshape(1, -1)
    return [y.reshape(*x.shape[:axis], p.num_output)]


# -------------------------------------------------------------------------------------------- pooling


def _pool_params(p, h, w):
    if p.global_pooling:
        return (h, w), (1, 1), (0, 0)
    kernel = (p.kernel_size, p.kernel_size) if p.HasField("kernel_size") else (p.kernel_h, p.kernel_w)
    pad = (p.pad_h, p.pad_w) if p.HasField("pad_h") or p.HasField("pad_w") else (p.pad, p.pad)
    stride = (p.stride_h, p.stride_w) if p.HasField("stride_h") or p.HasField("stride_w") else (p.stride,) * 2
    return kernel, stride, pad


def pooled_extent(size, kernel, stride, pad, any_pad, ceil=True):
    """pooling_layer.cpp Reshape: ceil (or floor) rounding, then drop a window starting in the padding."""
    rounded = math.ceil if ceil else math.floor
    pooled = int(rounded((size + 2 * pad - kernel) / stride)) + 1
    if any_pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def pool2d(x: np.ndarray, method: str, kernel, stride, pad, ceil=True) -> np.ndarray:
    """pooling_layer.cpp Forward_cpu, window by window.

    MAX: window [hstart, min(hstart + k, H)) with hstart clipped at 0, so padding never wins.
    AVE: pool_size counts the window inside [−p, H + p) before clipping; the sum covers only real pixels.
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    any_pad = ph > 0 or pw > 0
    oh = pooled_extent(h, kh, sh, ph, any_pad, ceil)
    ow = pooled_extent(w, kw, sw, pw, any_pad, ceil)
    y = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            hstart, wstart = i * sh - ph, j * sw - pw
            if method == "MAX":
                hend, wend = min(hstart + kh, h), min(wstart + kw, w)
                hstart, wstart = max(hstart, 0), max(wstart, 0)
                y[:, :, i, j] = x[:, :, hstart:hend, wstart:wend].max(axis=(2, 3))
            else:
                hend, wend = min(hstart + kh, h + ph), min(wstart + kw, w + pw)
                pool_size = (hend - hstart) * (wend - wstart)
                hstart, wstart = max(hstart, 0), max(wstart, 0)
                hend, wend = min(hend, h), min(wend, w)
                y[:, :, i, j] = x[:, :, hstart:hend, wstart:wend].sum(axis=(2, 3)) / pool_size
    return y


@layer("Pooling")
def pooling(params, bottoms, weights, n_tops):
    p = params.pooling_param
    (x,) = bottoms
    method = {0: "MAX", 1: "AVE"}[p.pool]
    kernel, stride, pad = _pool_params(p, *x.shape[2:])
    return [pool2d(x, method, kernel, stride, pad, ceil=p.round_mode == 0)]


# ------------------------------------------------------------------------------------------ normalization


@layer("LRN")
def lrn(params, bottoms, weights, n_tops):
    """lrn_layer.cpp.

    ACROSS_CHANNELS: scale_c = k + α/n · Σ_{c' in window} x_{c'}² (zero outside [0, C)); y = x · scale^−β.
    WITHIN_CHANNEL: square → AVE pool n×n, pad (n−1)/2 → Power(shift 1, scale α, power −β) → times x.
    """
    p = params.lrn_param
    (x,) = bottoms
    n, half = p.local_size, (p.local_size - 1) // 2
    if p.norm_region == 0:
        padded = np.zeros((x.shape[0], x.shape[1] + n - 1, *x.shape[2:]))
        padded[:, half : half + x.shape[1]] = x * x
        scale = np.full(x.shape, float(p.k))
        for c in range(x.shape[1]):
            scale[:, c] += p.alpha / n * padded[:, c : c + n].sum(axis=1)
        return [x * scale ** (-p.beta)]
    pooled = pool2d(x * x, "AVE", (n, n), (1, 1), (half, half))
    return [x * (1.0 + p.alpha * pooled) ** (-p.beta)]


@layer("BatchNorm")
def batch_norm(params, bottoms, weights, n_tops):
    """batch_norm_layer.cpp with global stats: factor = 0 if s == 0 else 1/s; (x − μ·f) / sqrt(σ²·f + eps)."""
    p = params.batch_norm_param
    (x,) = bottoms
    s = weights[2].ravel()[0]
    factor = 0.0 if s == 0 else 1.0 / s
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = (weights[0] * factor).reshape(shape)
    var = (weights[1] * factor).reshape(shape)
    return [(x - mean) / np.sqrt(var + p.eps)]


# ---------------------------------------------------------------------------------------- element-wise


@layer("ReLU")
def relu(params, bottoms, weights, n_tops):
    (x,) = bottoms
    return [np.maximum(x, 0) + params.relu_param.negative_slope * np.minimum(x, 0)]


@layer("Sigmoid")
def sigmoid(params, bottoms, weights, n_tops):
    return [0.5 * np.tanh(0.5 * bottoms[0]) + 0.5]  # sigmoid_layer.cpp's own formula


@layer("TanH")
def tanh(params, bottoms, weights, n_tops):
    return [np.tanh(bottoms[0])]


@layer("Dropout")
def dropout(params, bottoms, weights, n_tops):
    return [bottoms[0].copy()]  # TEST phase: a plain copy (inverted dropout scales at train time)


@layer("Power")
def power(params, bottoms, weights, n_tops):
    p = params.power_param
    (x,) = bottoms
    if p.power * p.scale == 0:
        return [np.full(x.shape, 1.0 if p.power == 0 else float(p.shift) ** p.power)]
    return [(p.shift + p.scale * x) ** p.power]


@layer("Exp")
def exp(params, bottoms, weights, n_tops):
    """exp_layer.cpp: y = base^(shift + scale·x); base −1 means e."""
    p = params.exp_param
    base = math.e if p.base == -1 else p.base
    return [np.power(base, p.shift + p.scale * bottoms[0])]


@layer("Log")
def log(params, bottoms, weights, n_tops):
    """log_layer.cpp: y = log_base(shift + scale·x); base −1 means e."""
    p = params.log_param
    y = np.log(p.shift + p.scale * bottoms[0])
    return [y if p.base == -1 else y / math.log(p.base)]


@layer("AbsVal")
def absval(params, bottoms, weights, n_tops):
    return [np.abs(bottoms[0])]


@layer("Silence")
def silence(params, bottoms, weights, n_tops):
    return []


@layer("Eltwise")
def eltwise(params, bottoms, weights, n_tops):
    p = params.eltwise_param
    if p.operation == 0:
        return [np.prod(np.stack(bottoms), axis=0)]
    if p.operation == 2:
        return [np.max(np.stack(bottoms), axis=0)]
    coeff = list(p.coeff) or [1.0] * len(bottoms)
    return [sum(c * b for c, b in zip(coeff, bottoms, strict=True))]


def _operand_axes(x, operand_shape, axis):
    """scale_layer.cpp / bias_layer.cpp Reshape: outer_dim × operand × inner_dim around `axis`."""
    start = 0 if len(operand_shape) == 0 else _canonical(axis, x.ndim)
    assert x.shape[start : start + len(operand_shape)] == tuple(operand_shape)
    outer = math.prod(x.shape[:start])
    inner = math.prod(x.shape[start + len(operand_shape) :])
    return outer, math.prod(operand_shape), inner


def _apply(x, operand, operand_shape, axis, fn):
    outer, dim, inner = _operand_axes(x, operand_shape, axis)
    return fn(x.reshape(outer, dim, inner), operand.reshape(1, dim, 1)).reshape(x.shape)


def _learned_shape(x, axis, num_axes):
    if num_axes == 0:
        return ()
    start = _canonical(axis, x.ndim)
    return x.shape[start:] if num_axes == -1 else x.shape[start : start + num_axes]


@layer("Scale")
def scale(params, bottoms, weights, n_tops):
    p = params.scale_param
    x = bottoms[0]
    if len(bottoms) == 2:
        factor, shape, bias = bottoms[1], bottoms[1].shape, (weights[0] if p.bias_term else None)
    else:
        shape = _learned_shape(x, p.axis, p.num_axes)
        factor, bias = weights[0], (weights[1] if p.bias_term else None)
    y = _apply(x, factor, shape, p.axis, np.multiply)
    if bias is not None:
        y = _apply(y, bias, shape, p.axis, np.add)
    return [y]


@layer("Bias")
def bias(params, bottoms, weights, n_tops):
    p = params.bias_param
    x = bottoms[0]
    if len(bottoms) == 2:
        return [_apply(x, bottoms[1], bottoms[1].shape, p.axis, np.add)]
    return [_apply(x, weights[0], _learned_shape(x, p.axis, p.num_axes), p.axis, np.add)]


@layer("Softmax")
def softmax(params, bottoms, weights, n_tops):
    (x,) = bottoms
    axis = _canonical(params.softmax_param.axis, x.ndim)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return [e / e.sum(axis=axis, keepdims=True)]


# ---------------------------------------------------------------------------------------- data movement


@layer("Split")
def split(params, bottoms, weights, n_tops):
    return [bottoms[0].copy() for _ in range(n_tops)]


@layer("Concat")
def concat(params, bottoms, weights, n_tops):
    p = params.concat_param
    axis = p.concat_dim if p.HasField("concat_dim") else _canonical(p.axis, bottoms[0].ndim)
    return [np.concatenate(bottoms, axis=axis)]


@layer("Slice")
def slice_(params, bottoms, weights, n_tops):
    p = params.slice_param
    (x,) = bottoms
    axis = p.slice_dim if p.HasField("slice_dim") else _canonical(p.axis, x.ndim)
    points = list(p.slice_point)
    if not points:
        step = x.shape[axis] // n_tops
        points = [step * i for i in range(1, n_tops)]
    return np.split(x, points, axis=axis)


@layer("Crop")
def crop(params, bottoms, weights, n_tops):
    p = params.crop_param
    x, ref = bottoms
    start = _canonical(p.axis, x.ndim)
    offsets = list(p.offset)
    index = []
    for i in range(x.ndim):
        if i < start:
            index.append(slice(None))
            continue
        off = 0 if not offsets else offsets[0] if len(offsets) == 1 else offsets[i - start]
        index.append(slice(off, off + ref.shape[i]))
    return [x[tuple(index)].copy()]


@layer("Reshape")
def reshape(params, bottoms, weights, n_tops):
    """reshape_layer.cpp: 0 copies the bottom axis at the same position, −1 takes the remaining count."""
    p = params.reshape_param
    (x,) = bottoms
    dims = list(p.shape.dim)
    start = p.axis if p.axis >= 0 else x.ndim + p.axis + 1
    end = x.ndim if p.num_axes == -1 else start + p.num_axes
    top = list(x.shape[:start]) + dims + list(x.shape[end:])
    for i, d in enumerate(dims):
        if d == 0:
            top[start + i] = x.shape[start + i]
    if -1 in dims:
        known = math.prod(d for d in top if d != -1)
        top[start + dims.index(-1)] = x.size // known
    return [x.reshape(top)]


@layer("Flatten")
def flatten(params, bottoms, weights, n_tops):
    p = params.flatten_param
    (x,) = bottoms
    start, end = _canonical(p.axis, x.ndim), _canonical(p.end_axis, x.ndim)
    return [x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])]
