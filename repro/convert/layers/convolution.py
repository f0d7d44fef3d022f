"""Convolution → Conv and Deconvolution → ConvTranspose.

Caffe's deconvolution blob is (C_in, C_out/group, k...) because it reuses the convolution's backward pass;
that is exactly ONNX ConvTranspose's weight layout, so weights are copied as they are. The output size of
both agrees with ONNX when `output_padding` is 0 (`deconv_layer.cpp` compute_output_shape).

Caffe accepts dilation 0, which ONNX refuses: every tap along that axis then reads (im2col) or writes
(col2im) the same pixel, so the layer equals one with kernel 1 on that axis and the weights summed over it,
which is what is emitted.
"""

from __future__ import annotations

import numpy as np

from repro.caffe.net import Layer
from repro.caffe.shapes import conv_geometry
from repro.convert.context import Context
from repro.convert.registry import converter


def _emit(layer: Layer, ctx: Context, op: str) -> None:
    ctx.expect_counts(1)
    p = layer.params.convolution_param
    shape = ctx.bottom_shape()
    g = conv_geometry(layer, shape)
    if g.axis != 1:
        raise ctx.fail(f"only channel axis 1 is supported, got axis {p.axis}")
    if len(shape) < 3:
        raise ctx.fail(
            f"expected a bottom with spatial axes after the channels (N, C, H, ...), got shape {shape}"
        )
    channels, group, outputs = shape[1], p.group, p.num_output
    if op == "Conv":
        weight_shape = (outputs, channels // group, *g.kernel)
    else:
        weight_shape = (channels, outputs // group, *g.kernel)
    weight = ctx.blob(0, weight_shape)
    kernel, dilation = list(g.kernel), list(g.dilation)
    collapsed = [i for i, d in enumerate(dilation) if d == 0]
    if collapsed:
        weight = weight.astype(np.float64).sum(axis=tuple(2 + i for i in collapsed), keepdims=True)
        weight = weight.astype(np.float32)
        for i in collapsed:
            kernel[i], dilation[i] = 1, 1
    inputs = [ctx.bottom(), ctx.const("weight", weight)]
    if p.bias_term:
        inputs.append(ctx.const("bias", ctx.blob(1, (outputs,))))
    ctx.node(
        op,
        inputs,
        ctx.top(),
        kernel_shape=kernel,
        strides=g.stride,
        pads=g.pad * 2,
        dilations=dilation,
        group=group,
    )


@converter("Convolution")
def convolution(layer: Layer, ctx: Context) -> None:
    _emit(layer, ctx, "Conv")


@converter("Deconvolution")
def deconvolution(layer: Layer, ctx: Context) -> None:
    _emit(layer, ctx, "ConvTranspose")
