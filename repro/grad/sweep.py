"""The reverse sweep: pick the nodes between `wrt` and `of`, seed the gradient, apply each node's VJP rule.

The result is the forward model plus gradient nodes, so one ONNX Runtime run gives value and gradient. The
seed is a one-hot (or all-ones) tensor over the non-batch part of `of` for every batch item, which is what
Caffe's backward computes from a one-hot top diff, and it gives every chain its own gradient.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from repro.errors import BadInput
from repro.grad.emitter import Emitter
from repro.grad.pool_sizes import ceil_pools, restate_ceil_pools
from repro.grad.registry import RULES
from repro.grad.shapes import probe_shapes
from repro.onnx_versions import IR_VERSION, OPSET

ACCEPTED_OPSETS = range(13, OPSET + 1)  # ops the converter emits mean the same from 13 to 17
MAX_LISTED = 40
# Ops whose outputs are integers or booleans (shapes, indices, masks): no gradient flows through them, so a
# Reshape(x, Shape(x)) does not put Shape on the path.
NO_GRADIENT = {
    "Shape", "Size", "ArgMax", "ArgMin", "NonZero", "IsNaN", "IsInf",
    "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Not", "And", "Or", "Xor",
}  # fmt: skip


def value_and_grad_model(
    model: onnx.ModelProto, wrt: str, of: str, unit: int | None = None
) -> onnx.ModelProto:
    """`model` plus an output `grad_<wrt>` = ∂/∂wrt of Σ_b of[b].flat[unit] (of all of `of` if unit is None).

    `unit` indexes the flattened non-batch part of `of`; this is Caffe's backward from a one-hot top diff at
    `unit` in every batch item. `of` may be any value of the graph, `wrt` any float32 graph input.
    """
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset not in ACCEPTED_OPSETS:
        raise BadInput(
            f"graph {graph.name!r}: expected ONNX opset {ACCEPTED_OPSETS[0]}..{OPSET}, got {opset}"
        )
    initializers = {t.name for t in graph.initializer}
    inputs = {vi.name: vi for vi in graph.input if vi.name not in initializers}
    if wrt not in inputs:
        raise BadInput(f"graph {graph.name!r} has no input {wrt!r}; inputs: {_listing(inputs)}")
    if inputs[wrt].type.tensor_type.elem_type != TensorProto.FLOAT:
        raise BadInput(f"graph {graph.name!r}: input {wrt!r} must be float32 to be differentiated")
    values = list(inputs) + [name for node in graph.node for name in node.output if name]
    if of not in values:
        raise BadInput(f"graph {graph.name!r} has no value {of!r}; values: {_listing(values)}")
    grad_name = f"grad_{wrt}"
    if grad_name in values or grad_name in initializers:
        raise BadInput(f"graph {graph.name!r} already has a value named {grad_name!r}")

    indices, wanted = _path(graph, wrt, of)
    missing = [
        node
        for node in (graph.node[i] for i in indices)
        if node.domain not in ("", "ai.onnx") or node.op_type not in RULES
    ]
    if missing:
        node = missing[0]
        raise BadInput(
            f"no gradient rule for op {node.op_type} (node {node.name!r}) on the path from {wrt!r} to {of!r}"
        )

    out = onnx.ModelProto()
    out.CopyFrom(model)
    path = [out.graph.node[i] for i in indices]  # the copy's nodes: a rule may add an output to its node
    probed = {of, wrt} | {name for node in path for name in list(node.input) + list(node.output) if name}
    probed |= {name for node in ceil_pools(out.graph) for name in (node.input[0], node.output[0])}
    shapes = probe_shapes(out, probed)
    restate_ceil_pools(out.graph, shapes)
    emit = Emitter(out.graph, shapes, wanted)
    grads: dict[str, list[str]] = {of: [_seed(emit, of, unit)]}
    for node in reversed(path):
        grads_out = [_total(emit, grads.pop(name, [])) for name in node.output]
        if all(g is None for g in grads_out):
            continue
        emit.node = node
        for name, grad in zip(node.input, RULES[node.op_type](node, grads_out, emit), strict=False):
            if grad is not None and emit.wants(name):
                grads.setdefault(name, []).append(grad)
    emit.node = None
    total = _total(emit, grads.get(wrt, [])) or emit.zeros_like(wrt)
    emit.nodes.append(helper.make_node("Identity", [total], [grad_name], name=f"grad/{grad_name}"))

    out.graph.node.extend(emit.nodes)
    out.graph.initializer.extend(emit.initializers)
    grad_info = out.graph.output.add()
    grad_info.CopyFrom(inputs[wrt])
    grad_info.name = grad_name
    for entry in out.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = OPSET
    out.ir_version = min(helper.find_min_ir_version_for(list(out.opset_import)), IR_VERSION)
    return out


def _path(graph: onnx.GraphProto, wrt: str, of: str) -> tuple[list[int], set[str]]:
    """Positions of the nodes that depend on `wrt` and feed `of` (in graph order), and the values whose
    gradient is needed."""
    depends = {wrt}
    for node in graph.node:
        if node.op_type not in NO_GRADIENT and depends.intersection(node.input):
            depends.update(node.output)
    wanted = {of} & depends
    path = []
    for i in reversed(range(len(graph.node))):
        node = graph.node[i]
        if wanted.intersection(node.output):
            path.append(i)
            wanted.update(name for name in node.input if name in depends)
    return path[::-1], wanted


def _seed(emit: Emitter, of: str, unit: int | None) -> str:
    """d(Σ_b of[b].flat[unit])/d of: a one-hot row per batch item (all ones when unit is None)."""
    if unit is None:
        return emit.op(
            "ConstantOfShape", [emit.shape_of(of)], value=numpy_helper.from_array(np.ones(1, np.float32))
        )
    shape = emit.shape(of)
    if not shape:
        raise BadInput(f"value {of!r} is a scalar; it has no units to choose from (got unit {unit})")
    if any(d is None for d in shape[1:]):
        raise BadInput(f"value {of!r} has batch-dependent non-batch dimensions; cannot pick unit {unit}")
    size = int(np.prod(shape[1:], dtype=np.int64))
    if not 0 <= unit < size:
        raise BadInput(
            f"unit {unit} is out of range for {of!r}: it has {size} units per batch item (0..{size - 1})"
        )
    onehot = np.zeros((1, size), np.float32)
    onehot[0, unit] = 1.0
    rows = emit.op("Reshape", [emit.zeros_like(of), emit.const([0, -1], np.int64)])
    return emit.op("Reshape", [emit.op("Add", [rows, emit.const(onehot)]), emit.shape_of(of)])


def _total(emit: Emitter, parts: list[str]) -> str | None:
    """Gradients reaching one value from several consumers add up."""
    if len(parts) > 1:
        return emit.op("Sum", parts)
    return parts[0] if parts else None


def _listing(names) -> str:
    names = list(names)
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f", … ({len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else "")
