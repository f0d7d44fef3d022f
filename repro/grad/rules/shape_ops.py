"""Ops that only move or relabel elements: the gradient moves them back."""

from __future__ import annotations

import numpy as np
from onnx import NodeProto

from repro.grad.emitter import Emitter
from repro.grad.registry import vjp


@vjp("Identity")
def identity(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    return [grads[0]]


@vjp("Flatten", "Reshape", "Squeeze", "Unsqueeze")
def reshape(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    """Element order is unchanged, so the gradient is the incoming one in the input's shape."""
    return [emit.op("Reshape", [grads[0], emit.shape_of(node.input[0])])]


@vjp("Transpose")
def transpose(node: NodeProto, grads: list[str | None], emit: Emitter) -> list[str | None]:
    perm = emit.attrs(node).get("perm") or list(reversed(range(len(emit.shape(node.input[0])))))
    return [emit.op("Transpose", [grads[0]], perm=[int(i) for i in np.argsort(perm)])]
