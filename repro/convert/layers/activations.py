"""Element-wise activations (ReLU … Exp, Log, AbsVal), Power, Softmax, and the test-time no-ops (Dropout,
Split, Silence).

Dropout in Caffe is inverted dropout, so at test time it is a plain copy (`dropout_layer.cpp`).
"""

from __future__ import annotations

import math

from repro.caffe.net import Layer
from repro.convert.context import Context
from repro.convert.registry import converter


@converter("ReLU")
def relu(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts(1)
    slope = layer.params.relu_param.negative_slope
    if slope == 0:
        ctx.node("Relu", [ctx.bottom()], ctx.top())
    else:
        ctx.node("LeakyRelu", [ctx.bottom()], ctx.top(), alpha=slope)


@converter("Sigmoid")
def sigmoid(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts(1)
    ctx.node("Sigmoid", [ctx.bottom()], ctx.top())


@converter("TanH")
def tanh(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts(1)
    ctx.node("Tanh", [ctx.bottom()], ctx.top())


@converter("Dropout")
def dropout(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts(1)
    ctx.node("Identity", [ctx.bottom()], ctx.top())


@converter("Split")
def split(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts(1, tops=None)
    for i in range(len(layer.tops)):
        ctx.node("Identity", [ctx.bottom()], ctx.top(i))


@converter("Softmax")
def softmax(layer: Layer, ctx: Context) -> None:
    ctx.expect_counts(1)
    axis = ctx.axis(layer.params.softmax_param.axis, len(ctx.bottom_shape()))
    ctx.node("Softmax", [ctx.bottom()], ctx.top(), axis=axis)


@converter("Power")
def power(layer: Layer, ctx: Context) -> None:
    """(shift + scale·x)^power, skipping the steps Caffe skips (`power_layer.cpp` Forward_cpu).

    When power·scale is 0 Caffe ignores x and fills the constant 1 (power 0) or shift^power.
    """
    ctx.expect_counts(1)
    p = layer.params.power_param
    x = ctx.bottom()
    if p.power * p.scale == 0:
        fill = 1.0 if p.power == 0 else float(p.shift) ** p.power
        zeros = ctx.node("Mul", [x, ctx.const("zero", 0.0)])
        ctx.node("Add", [zeros, ctx.const("fill", fill)], ctx.top())
        return
    steps = []
    if p.scale != 1:
        steps.append(("Mul", "scale", p.scale))
    if p.shift != 0:
        steps.append(("Add", "shift", p.shift))
    if p.power != 1:
        steps.append(("Pow", "power", p.power))
    if not steps:
        ctx.node("Identity", [x], ctx.top())
    for i, (op, name, value) in enumerate(steps):
        x = ctx.node(op, [x, ctx.const(name, value)], ctx.top() if i == len(steps) - 1 else None)


@converter("Exp")
def exp(layer: Layer, ctx: Context) -> None:
    """base^(shift + scale·x) = outer · exp(inner · x), as exp_layer.cpp folds it (base −1 means e)."""
    ctx.expect_counts(1)
    p = layer.params.exp_param
    if p.base != -1 and p.base <= 0:
        raise ctx.fail(f"base must be positive or -1 (e), got {p.base}")
    log_base = 1.0 if p.base == -1 else math.log(p.base)
    inner, outer = log_base * p.scale, math.exp(log_base * p.shift)
    x = ctx.bottom()
    if inner != 1:
        x = ctx.node("Mul", [x, ctx.const("inner_scale", inner)])
    if outer == 1:
        ctx.node("Exp", [x], ctx.top())
    else:
        ctx.node("Mul", [ctx.node("Exp", [x]), ctx.const("outer_scale", outer)], ctx.top())


@converter("Log")
def log(layer: Layer, ctx: Context) -> None:
    """log_base(shift + scale·x) (log_layer.cpp; base −1 means e)."""
    ctx.expect_counts(1)
    p = layer.params.log_param
    if p.base != -1 and (p.base <= 0 or p.base == 1):
        raise ctx.fail(f"base must be positive and not 1, or -1 (e), got {p.base}")
    x = ctx.bottom()
    if p.scale != 1:
        x = ctx.node("Mul", [x, ctx.const("scale", p.scale)])
    if p.shift != 0:
        x = ctx.node("Add", [x, ctx.const("shift", p.shift)])
    if p.base == -1:
        ctx.node("Log", [x], ctx.top())
    else:
        ctx.node("Mul", [ctx.node("Log", [x]), ctx.const("base_scale", 1.0 / math.log(p.base))], ctx.top())


@converter("AbsVal")
def absval(layer: Layer, ctx: Context) -> None:
    """|x| as Max(x, −x): Abs is not among the ops the gradient path differentiates."""
    ctx.expect_counts(1)
    x = ctx.bottom()
    ctx.node("Max", [x, ctx.node("Neg", [x])], ctx.top())


@converter("Silence")
def silence(layer: Layer, ctx: Context) -> None:
    """Consumes blobs so Caffe does not report them as outputs; computes nothing."""
    ctx.expect_counts((1, None), tops=0)
