"""Ceil-mode pools restated so that onnx's shape inference, which ORT runs when it loads a model, is right.

At opset ≤ 19 onnx sizes a ceil-mode pool as ceil((H + pads − k)/s) + 1, without the rule (Caffe's, torch's,
ORT's) that drops a last window starting inside the end padding. ORT then carries the wrong size forward and
refuses to load a gradient graph where such a value meets a correctly sized tensor ("Incompatible
dimensions"). Restated with ceil_mode=0, and with the ceil overhang as explicit end padding where needed, the
pools compute the same values and every inferred size is the measured one.
"""

from __future__ import annotations

import math

from onnx import GraphProto, NodeProto, helper

from repro.errors import BadInput
from repro.grad.emitter import Shape
from repro.onnx_attrs import attributes

POOLS = ("MaxPool", "AveragePool")


def ceil_pools(graph: GraphProto) -> list[NodeProto]:
    return [n for n in graph.node if n.op_type in POOLS and attributes(n).get("ceil_mode", 0) == 1]


def restate_ceil_pools(graph: GraphProto, shapes: dict[str, Shape]) -> None:
    """Rewrite, in place, each ceil-mode pool whose onnx-inferred size differs from the measured one."""
    for node in ceil_pools(graph):
        size, out = shapes[node.input[0]][2:], shapes[node.output[0]][2:]
        if any(d is None for d in (*size, *out)):
            continue
        n, attrs = len(size), attributes(node)
        kernel = attrs.get("kernel_shape", [])
        strides = attrs.get("strides", [1] * n)
        pads = list(attrs.get("pads", [0] * 2 * n))
        dilations = attrs.get("dilations", [1] * n)
        span = [dilations[i] * (kernel[i] - 1) + 1 for i in range(n)]
        extent = [size[i] + pads[i] + pads[i + n] - span[i] for i in range(n)]
        if all(math.ceil(extent[i] / strides[i]) + 1 == out[i] for i in range(n)):
            continue  # onnx infers these sizes correctly
        count_pad = node.op_type == "AveragePool" and attrs.get("count_include_pad", 0) == 1
        for i in range(n):
            floor = extent[i] // strides[i] + 1
            if floor == out[i]:
                continue
            if floor + 1 != out[i] or count_pad:  # count_include_pad=1 would count an added end pad
                raise BadInput(
                    f"{node.op_type} node {node.name!r}: no explicit-pad form of ceil_mode on spatial "
                    f"axis {i} (size {size[i]}, kernel {kernel[i]}, stride {strides[i]}, output {out[i]}; "
                    f"count_include_pad={int(count_pad)})"
                )
            pads[i + n] += (out[i] - 1) * strides[i] - extent[i]
        _set(node, "ceil_mode", 0)
        _set(node, "pads", pads)


def _set(node: NodeProto, name: str, value) -> None:
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(name, value)])
