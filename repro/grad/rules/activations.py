"""Pointwise activations and the softmax family; each gradient reuses the forward input or output."""

from __future__ import annotations

import numpy as np
from onnx import NodeProto

from repro.grad.emitter import Emitter
from repro.grad.registry import vjp


@vjp("Relu")
def relu(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """Zero where x <= 0, as Caffe's ReLU backward (`bottom_data > 0`) and torch.

    The mask is read from the output (y > 0 exactly where x > 0), so that nothing but the ReLU reads the
    layer before it and ONNX Runtime can fuse the two (a Conv or Gemm with its activation)."""
    positive = emit.op("Greater", [node.output[0], emit.const(0.0)])
    return [emit.op("Where", [positive, grads[0], emit.const(0.0)])]


@vjp("LeakyRelu")
def leaky_relu(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """Slope `alpha` where x <= 0 (Caffe's negative_slope gradient at 0 as well). For alpha >= 0 the mask is
    read from the output, as for Relu (y > 0 exactly where x > 0); a negative slope flips y's sign below 0."""
    alpha = emit.attrs(node).get("alpha", 0.01)
    source = node.output[0] if alpha >= 0 else node.input[0]
    positive = emit.op("Greater", [source, emit.const(0.0)])
    return [emit.op("Where", [positive, grads[0], emit.op("Mul", [grads[0], emit.const(alpha)])])]


@vjp("Sigmoid")
def sigmoid(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    y = node.output[0]
    slope = emit.op("Mul", [y, emit.op("Sub", [emit.const(1.0), y])])
    return [emit.op("Mul", [grads[0], slope])]


@vjp("Tanh")
def tanh(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    y = node.output[0]
    slope = emit.op("Sub", [emit.const(1.0), emit.op("Mul", [y, y])])
    return [emit.op("Mul", [grads[0], slope])]


@vjp("Softmax")
def softmax(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """y ⊙ (g − Σ_axis g ⊙ y): the Jacobian diag(y) − y yᵀ applied along the (opset ≥ 13) single axis."""
    y, g = node.output[0], grads[0]
    axis = emit.const([emit.attrs(node).get("axis", -1)], np.int64)
    dot = emit.op("ReduceSum", [emit.op("Mul", [g, y]), axis], keepdims=1)
    return [emit.op("Mul", [y, emit.op("Sub", [g, dot])])]


@vjp("LogSoftmax")
def log_softmax(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """g − softmax ⊙ Σ_axis g, with softmax recovered as exp of the forward output."""
    y, g = node.output[0], grads[0]
    axis = emit.const([emit.attrs(node).get("axis", -1)], np.int64)
    total = emit.op("ReduceSum", [g, axis], keepdims=1)
    return [emit.op("Sub", [g, emit.op("Mul", [emit.op("Exp", [y]), total])])]
