"""Convolutions and matrix products: the input gradient is the transposed operator with the same weights."""

from __future__ import annotations

from onnx import NodeProto

from repro.grad.emitter import Emitter
from repro.grad.registry import vjp
from repro.onnx_attrs import conv_window


def _conv_geometry(node: NodeProto, emit: Emitter) -> dict:
    """Explicit strides, pads, dilations and group; auto_pad SAME_* and output_shape are not supported."""
    attrs = emit.attrs(node)
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise emit.fail(f"auto_pad {attrs['auto_pad']} is not supported; use explicit pads")
    if "output_shape" in attrs:
        raise emit.fail("output_shape is not supported; use pads and output_padding")
    kernel = emit.static(node.input[1], range(2, len(emit.shape(node.input[1]))))
    return {"kernel_shape": kernel, **conv_window(attrs, len(kernel))}


def _weights_fixed(node: NodeProto, emit: Emitter) -> None:
    if any(emit.wants(name) for name in node.input[1:]):
        raise emit.fail("its weights depend on the differentiated input; only input gradients are built")


@vjp("Conv")
def conv(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """ConvTranspose with the same W and geometry; output_padding restores the rows no window reached."""
    _weights_fixed(node, emit)
    geometry = _conv_geometry(node, emit)
    x, n = node.input[0], len(geometry["kernel_shape"])
    size = emit.static(x, range(2, 2 + n))
    k, s, p, d = geometry["kernel_shape"], geometry["strides"], geometry["pads"], geometry["dilations"]
    output_padding = [(size[i] + p[i] + p[i + n] - d[i] * (k[i] - 1) - 1) % s[i] for i in range(n)]
    return [emit.op("ConvTranspose", [grads[0], node.input[1]], output_padding=output_padding, **geometry)]


@vjp("ConvTranspose")
def conv_transpose(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """Conv with the same W and geometry; output_padding only added rows past the last window."""
    _weights_fixed(node, emit)
    return [emit.op("Conv", [grads[0], node.input[1]], **_conv_geometry(node, emit))]


@vjp("Gemm")
def gemm(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """Y = α·op(A)·op(B) + β·C; each operand's gradient is one more Gemm with the flags moved around."""
    attrs = emit.attrs(node)
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    trans_a, trans_b = attrs.get("transA", 0), attrs.get("transB", 0)
    a, b, g = node.input[0], node.input[1], grads[0]
    result: list[str | None] = [None] * len(node.input)
    if emit.wants(a):
        if trans_a:  # A = op(A)ᵀ, so dA = α·op(B)·gᵀ
            result[0] = emit.op("Gemm", [b, g], alpha=alpha, transA=trans_b, transB=1)
        else:  # dA = α·g·op(B)ᵀ
            result[0] = emit.op("Gemm", [g, b], alpha=alpha, transB=1 - trans_b)
    if emit.wants(b):
        if trans_b:  # dB = α·gᵀ·op(A)
            result[1] = emit.op("Gemm", [g, a], alpha=alpha, transA=1, transB=trans_a)
        else:  # dB = α·op(A)ᵀ·g
            result[1] = emit.op("Gemm", [a, g], alpha=alpha, transA=1 - trans_a)
    if len(node.input) > 2 and emit.wants(node.input[2]):
        result[2] = emit.unbroadcast(
            emit.op("Mul", [g, emit.const(beta)]), node.input[2], emit.shape(node.output[0])
        )
    return result


@vjp("MatMul")
def matmul(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """dA = g·Bᵀ, dB = Aᵀ·g over the last two axes, summed back over broadcast batch axes (ranks ≥ 2)."""
    a, b, g, y = node.input[0], node.input[1], grads[0], node.output[0]
    if min(len(emit.shape(a)), len(emit.shape(b))) < 2:
        raise emit.fail("1-D operands are not supported")

    def swapped(name: str) -> str:
        perm = list(range(len(emit.shape(name))))
        perm[-2:] = perm[-1], perm[-2]
        return emit.op("Transpose", [name], perm=perm)

    batch = emit.shape(y)[:-2]
    result: list[str | None] = [None, None]
    if emit.wants(a):
        result[0] = emit.unbroadcast(emit.op("MatMul", [g, swapped(b)]), a, batch + emit.shape(a)[-2:])
    if emit.wants(b):
        result[1] = emit.unbroadcast(emit.op("MatMul", [swapped(a), g]), b, batch + emit.shape(b)[-2:])
    return result
