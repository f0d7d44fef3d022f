"""Ops that select or join parts of tensors: the gradient goes back to the positions that were taken."""

from __future__ import annotations

import numpy as np
from onnx import NodeProto

from repro.grad.emitter import Emitter
from repro.grad.registry import vjp


@vjp("Concat")
def concat(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """Slice the gradient back into the inputs' extents along the axis, measured at run time (any batch)."""
    axis = emit.attrs(node)["axis"]
    axes = emit.const([axis], np.int64)
    start, result = emit.const([0], np.int64), []
    for i, name in enumerate(node.input):
        size = emit.op("Gather", [emit.shape_of(name), emit.const([axis % len(emit.shape(name))], np.int64)])
        end = emit.op("Add", [start, size])
        result.append(emit.op("Slice", [grads[0], start, end, axes]) if emit.wants(name) else None)
        if i < len(node.input) - 1:
            start = end
    return result


@vjp("Split")
def split(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """Concatenate the outputs' gradients, with zeros for outputs no gradient reached."""
    parts = [g if g is not None else emit.zeros_like(out) for g, out in zip(grads, node.output, strict=True)]
    return [emit.op("Concat", parts, axis=emit.attrs(node).get("axis", 0))]


@vjp("Slice")
def slice_(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """Slice the element positions the same way, then scatter the gradient to them: exact for any starts,
    ends, axes and steps (negative and clamped ones too), and batch-agnostic."""
    x = node.input[0]
    taken = emit.op("Slice", [emit.positions(x), *node.input[1:]])
    return [emit.scatter_add(x, taken, grads[0])]


@vjp("Gather")
def gather(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """Gather the element positions with the same indices; repeated indices accumulate."""
    x = node.input[0]
    if emit.wants(node.input[1]):
        raise emit.fail("its indices depend on the differentiated input")
    taken = emit.op("Gather", [emit.positions(x), node.input[1]], axis=emit.attrs(node).get("axis", 0))
    return [emit.scatter_add(x, taken, grads[0])]
