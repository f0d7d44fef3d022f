"""Convolution → Conv and Deconvolution → ConvTranspose.

Caffe's deconvolution blob is (C_in, C_out/group, k...) because it reuses the convolution's backward pass;
that is exactly ONNX ConvTranspose's weight layout, so weights are copied as they are. The output size of
both agrees with ONNX when `output_padding` is 0 (`deconv_layer.cpp` compute_output_shape).
"""

from __future__ import annotations

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
    channels, group, outputs = shape[1], p.group, p.num_output
    if op == "Conv":
        weight_shape = (outputs, channels // group, *g.kernel)
    else:
        weight_shape = (channels, outputs // group, *g.kernel)
    inputs = [ctx.bottom(), ctx.const("weight", ctx.blob(0, weight_shape))]
    if p.bias_term:
        inputs.append(ctx.const("bias", ctx.blob(1, (outputs,))))
    ctx.node(
        op,
        inputs,
        ctx.top(),
        kernel_shape=g.kernel,
        strides=g.stride,
        pads=g.pad * 2,
        dilations=g.dilation,
        group=group,
    )


@converter("Convolution")
def convolution(layer: Layer, ctx: Context) -> None:
    _emit(layer, ctx, "Conv")


@converter("Deconvolution")
def deconvolution(layer: Layer, ctx: Context) -> None:
    _emit(layer, ctx, "ConvTranspose")
