"""Writes the gradient nodes: fresh names, constants, static shapes, and constructions several rules share.

Rules see only this object, so naming, constant deduplication and shape bookkeeping live in one place and
every rule stays a short translation of its VJP formula.
"""

from __future__ import annotations

import numpy as np
from onnx import GraphProto, NodeProto, TensorProto, helper, numpy_helper

from repro.errors import BadInput
from repro.onnx_attrs import attributes

Shape = tuple[int | None, ...]  # None marks a dimension that follows the batch size


class Emitter:
    def __init__(self, graph: GraphProto, shapes: dict[str, Shape], wanted: set[str]) -> None:
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._shapes = shapes
        self._wanted = wanted
        self._initializers = {t.name: t for t in graph.initializer}
        self._constant_nodes = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
        self._taken = {t.name for t in graph.initializer} | {vi.name for vi in graph.input}
        self._taken |= {name for n in graph.node for name in n.output} | {n.name for n in graph.node}
        self._consts: dict[tuple, str] = {}
        self._shape_of: dict[str, str] = {}
        self._count = 0
        self.node: NodeProto | None = None  # the forward node whose rule is running, for names and errors

    # --- names and nodes -------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        owner = "seed" if self.node is None else self.node.name or self.node.op_type
        while True:
            self._count += 1
            name = f"grad/{owner}/{hint}_{self._count}"
            if name not in self._taken:
                self._taken.add(name)
                return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        """Append a single-output node; return its output's name."""
        output = self.fresh(op_type)
        self.nodes.append(
            helper.make_node(op_type, inputs, [output], name=self.fresh(op_type + "_node"), **attrs)
        )
        return output

    def const(self, value: np.ndarray | float | int | list, dtype: type | None = None) -> str:
        """An initializer holding `value` (float32 unless `dtype` says otherwise); small ones are shared."""
        array = np.asarray(value, dtype=dtype or np.float32)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 64 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh("const")
        self.initializers.append(numpy_helper.from_array(array, name))
        if key is not None:
            self._consts[key] = name
        return name

    # --- facts about the forward graph ---------------------------------------------------------------------
    def wants(self, name: str) -> bool:
        """Whether `name` lies on a path from the differentiated input to the differentiated value."""
        return name in self._wanted

    def shape(self, name: str) -> Shape:
        return self._shapes[name]

    def static(self, name: str, axes: list[int] | range) -> list[int]:
        """The sizes of `name` along `axes`, which the construction needs as constants (never the batch)."""
        shape = self.shape(name)
        dims = [shape[a] for a in axes]
        if any(d is None for d in dims):
            raise self.fail(
                f"needs a static size on axes {list(axes)} of {name!r}, which has shape {_show(shape)}"
            )
        return dims

    def value(self, name: str) -> np.ndarray | None:
        """The value of `name` when it is an initializer or a Constant node's output, else None."""
        if name in self._initializers:
            return numpy_helper.to_array(self._initializers[name])
        node = self._constant_nodes.get(name)
        if node is not None and node.attribute[0].name == "value":
            return numpy_helper.to_array(node.attribute[0].t)
        return None

    def attrs(self, node: NodeProto) -> dict:
        return attributes(node)

    def fail(self, why: str) -> BadInput:
        node = self.node
        return BadInput(f"cannot differentiate {node.op_type} node {node.name!r}: {why}")

    # --- shared constructions ----------------------------------------------------------------------------
    def shape_of(self, name: str) -> str:
        """A Shape node of `name` (one per value), so constructions follow the batch size at run time."""
        if name not in self._shape_of:
            self._shape_of[name] = self.op("Shape", [name])
        return self._shape_of[name]

    def zeros_like(self, name: str) -> str:
        return self.op(
            "ConstantOfShape", [self.shape_of(name)], value=numpy_helper.from_array(np.zeros(1, np.float32))
        )

    def unbroadcast(self, grad: str, like: str, full: Shape) -> str:
        """Sum `grad` (of shape `full`) over the axes along which `like` was broadcast to reach `full`."""
        target = self.shape(like)
        lead = len(full) - len(target)
        axes = list(range(lead)) + [lead + i for i, d in enumerate(target) if d == 1 and full[lead + i] != 1]
        if not axes:
            return grad
        summed = self.op("ReduceSum", [grad, self.const(axes, np.int64)], keepdims=1)
        return self.op("Reshape", [summed, self.shape_of(like)]) if lead else summed

    def positions(self, name: str) -> str:
        """An int64 tensor shaped like `name` holding each element's flat row-major index."""
        size = self.op("Size", [name])
        flat = self.op("Range", [self.const(0, np.int64), size, self.const(1, np.int64)])
        return self.op("Reshape", [flat, self.shape_of(name)])

    def scatter_add(self, like: str, index: str, grad: str) -> str:
        """Zeros shaped like `like`, plus `grad` added at the flat positions `index` (repeats accumulate)."""
        minus_one = self.const([-1], np.int64)
        zeros = self.op("Reshape", [self.zeros_like(like), minus_one])
        flat_index = self.op("Reshape", [index, minus_one])
        flat_grad = self.op("Reshape", [grad, minus_one])
        summed = self.op("ScatterElements", [zeros, flat_index, flat_grad], axis=0, reduction="add")
        return self.op("Reshape", [summed, self.shape_of(like)])


def _show(shape: Shape) -> str:
    return "[" + ", ".join("batch" if d is None else str(d) for d in shape) + "]"
