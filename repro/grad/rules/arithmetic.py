"""Elementwise arithmetic with numpy broadcasting: each input's gradient is summed back to its own shape."""

from __future__ import annotations

import numpy as np
from onnx import NodeProto

from repro.grad.emitter import Emitter
from repro.grad.registry import vjp


def _to_inputs(node: NodeProto, emit: Emitter, per_input: dict[int, str]) -> list[str | None]:
    """Unbroadcast each full-shape gradient to the input it belongs to."""
    full = emit.shape(node.output[0])
    return [
        emit.unbroadcast(per_input[i], name, full) if i in per_input and emit.wants(name) else None
        for i, name in enumerate(node.input)
    ]


@vjp("Add")
def add(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    return _to_inputs(node, emit, {0: grads[0], 1: grads[0]})


@vjp("Sub")
def sub(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    negated = emit.op("Neg", [grads[0]]) if emit.wants(node.input[1]) else None
    return _to_inputs(node, emit, {0: grads[0], 1: negated})


@vjp("Mul")
def mul(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    a, b = node.input
    per_input = {}
    if emit.wants(a):
        per_input[0] = emit.op("Mul", [grads[0], b])
    if emit.wants(b):
        per_input[1] = emit.op("Mul", [grads[0], a])
    return _to_inputs(node, emit, per_input)


@vjp("Div")
def div(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """d(a/b) = da/b − y·db/b."""
    (a, b), y, g = node.input, node.output[0], grads[0]
    per_input = {}
    if emit.wants(a):
        per_input[0] = emit.op("Div", [g, b])
    if emit.wants(b):
        per_input[1] = emit.op("Neg", [emit.op("Div", [emit.op("Mul", [g, y]), b])])
    return _to_inputs(node, emit, per_input)


@vjp("Pow")
def pow_(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """d(a^b) = b·a^(b−1)·da + y·ln(a)·db; a constant exponent is folded into constants of its own type."""
    (a, b), y, g = node.input, node.output[0], grads[0]
    per_input = {}
    if emit.wants(a):
        exponent = emit.value(b)
        if exponent is not None:
            power = emit.op("Pow", [a, emit.const(exponent - 1, exponent.dtype)])
            slope = emit.op("Mul", [power, emit.const(exponent.astype(np.float32))])
        else:  # a computed exponent is float (ONNX Pow's exponent on our float graphs)
            power = emit.op("Pow", [a, emit.op("Sub", [b, emit.const(1.0)])])
            slope = emit.op("Mul", [power, b])
        per_input[0] = emit.op("Mul", [g, slope])
    if emit.wants(b):
        per_input[1] = emit.op("Mul", [g, emit.op("Mul", [y, emit.op("Log", [a])])])
    return _to_inputs(node, emit, per_input)


@vjp("Sqrt")
def sqrt(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    return [emit.op("Div", [emit.op("Mul", [grads[0], emit.const(0.5)]), node.output[0]])]


@vjp("Exp")
def exp(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    return [emit.op("Mul", [grads[0], node.output[0]])]


@vjp("Log")
def log(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    return [emit.op("Div", [grads[0], node.input[0]])]


@vjp("Neg")
def neg(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    return [emit.op("Neg", [grads[0]])]


@vjp("Max")
def max_(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """The whole gradient goes to one input that attains the maximum, chosen as Caffe's Eltwise MAX does.

    Caffe (eltwise_layer.cpp) keeps bottom 0 only if it is strictly greater than bottom 1, then lets each
    later bottom take over only if strictly greater: so among tied maxima the winner is the first in the order
    1, 0, 2, 3, …
    """
    y, g = node.output[0], grads[0]
    order = [1, 0, *range(2, len(node.input))] if len(node.input) > 1 else [0]
    per_input, taken = {}, None
    for position, i in enumerate(order):
        hit = emit.op("Equal", [node.input[i], y])
        if taken is not None:
            hit = emit.op("And", [hit, emit.op("Not", [taken])])
        if emit.wants(node.input[i]):
            per_input[i] = emit.op("Where", [hit, g, emit.const(0.0)])
        if position < len(order) - 1:
            taken = hit if taken is None else emit.op("Or", [taken, hit])
    return _to_inputs(node, emit, per_input)
