"""ConvTranspose rewritten as Conv, an interleave of its phases and a crop: the same sums on kernels ORT runs
faster.

ORT's CPU ConvTranspose runs outside its NCHWc convolution kernels (and, without prepacking, re-arranges
its weights on every call); it was the largest op of the fc6 generator + CaffeNet value-and-grad graph (the
generator's deconvolutions forward, the transposed products of the classifier's convolutions backward;
docs/architecture.md, "Sub-pixel convolutions").

A transposed convolution with stride s writes output pixel s·m + a from the kernel taps a, a + s, a + 2s, …
applied to inputs m, m − 1, m − 2, …: each output phase a (one per axis) is an ordinary convolution of the
input with a K′ = ⌈k / s⌉-tap kernel, the taps reversed. So one Conv with s² phases × C_out filters computes
every phase, a Split and Concats interleave them, and a Slice drops the rows the pads and output_padding
leave out. The convolution's padding absorbs whole blocks of that crop, so a stride-1
ConvTranspose becomes one Conv with flipped kernels and nothing else. The arithmetic is the same products
summed in another order: float32 rounding differs, nothing else (tests/test_subpixel.py compares with torch
in float64).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from repro.onnx_attrs import attributes, conv_window

Weights = Callable[[str], "np.ndarray | None"]  # a constant's value by name, None if it is not one


@dataclass(frozen=True)
class Phases:
    """The Conv that computes every phase, and the crop of its interleaved output (per spatial axis)."""

    weight: np.ndarray  # (group · s² · C_out/group, C_in/group, K′…)
    kernel: list[int]
    pads: list[int]  # Conv pads: begins, then ends
    crop_begin: list[int]
    crop_end: list[int]


def phases(weight: np.ndarray, stride: int, pads: list[int], output_padding: list[int], group: int) -> Phases:
    """The sub-pixel form of a ConvTranspose with weight (C_in, C_out/group, k…) and equal strides."""
    c_in, c_out_g, *k = weight.shape
    n = len(k)
    s = stride
    # Enough taps for the output_padding rows past the last full window.
    taps = [-(-(k[i] + max(0, output_padding[i] - pads[i + n])) // s) for i in range(n)]
    padded = np.zeros((c_in, c_out_g, *(t * s for t in taps)), weight.dtype)
    padded[(slice(None), slice(None), *(slice(0, ki) for ki in k))] = weight
    # (g, C_in/g, C_out/g, K′₀, s, K′₁, s, …): tap t of phase a along an axis is kernel index t·s + a.
    split = padded.reshape(group, c_in // group, c_out_g, *(d for t in taps for d in (t, s)))
    flipped = np.flip(split, axis=tuple(3 + 2 * i for i in range(n)))  # a Conv reads its taps forwards
    # Output channels (group, phase, C_out/group): each group's filters stay together, as Conv's groups
    # require, and one phase of one group is a run of channels that a Split cuts out without reordering.
    order = [0, *(4 + 2 * i for i in range(n)), 2, 1, *(3 + 2 * i for i in range(n))]
    conv_weight = flipped.transpose(order).reshape(group * s**n * c_out_g, c_in // group, *taps)
    conv_pads, crop_begin, crop_end = [0] * 2 * n, [], []
    for i in range(n):
        # The full (unpadded) output of phase a at input m is conv output m with K′ − 1 rows of padding at
        # both ends; whole blocks of the crop come off that padding instead.
        excess = s * taps[i] - k[i] - output_padding[i] + pads[i + n]
        begin_blocks = min(taps[i] - 1, pads[i] // s)
        end_blocks = min(taps[i] - 1, excess // s)
        conv_pads[i], conv_pads[i + n] = taps[i] - 1 - begin_blocks, taps[i] - 1 - end_blocks
        crop_begin.append(pads[i] - begin_blocks * s)
        crop_end.append(excess - end_blocks * s)
    return Phases(np.ascontiguousarray(conv_weight), taps, conv_pads, crop_begin, crop_end)


def conv_transposes_as_convs(model: onnx.ModelProto, weights: Weights) -> int:
    """Rewrite, in place, every ConvTranspose with constant weights, no dilation and one stride (2-D, or any
    rank at stride 1), in the graph and its subgraphs; each new constant goes into the graph of the node
    that reads it (ORT's NCHWc convolutions take their weights only from there, `repro.runtime.ort`).
    Returns how many were rewritten."""
    return _rewrite(model.graph, weights)


def _rewrite(graph: onnx.GraphProto, weights: Weights) -> int:
    count = 0
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                count += _rewrite(attr.g, weights)
        replaced = _as_conv(node, graph, weights) if node.op_type == "ConvTranspose" else None
        if replaced is None:
            nodes.append(node)
        else:
            nodes += replaced
            count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return count


def _as_conv(node: onnx.NodeProto, graph: onnx.GraphProto, weights: Weights) -> list[onnx.NodeProto] | None:
    """The replacing nodes, or None where the rewrite does not apply (the node then stays as it is)."""
    attrs = attributes(node)
    weight = weights(node.input[1])
    if weight is None or weight.ndim < 3 or "output_shape" in attrs:
        return None
    n = weight.ndim - 2
    window = conv_window(attrs, n)
    strides = window["strides"]
    # The interleave is written for two axes and one stride; a stride-1 layer needs no interleaving.
    if len(set(strides)) != 1 or (strides[0] > 1 and n != 2):
        return None
    if any(d != 1 for d in window["dilations"]):
        return None
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return None
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias = weights(node.input[2])
        if bias is None:
            return None
    s, group = strides[0], window["group"]
    p = phases(weight, s, window["pads"], list(attrs.get("output_padding", [0] * n)), group)
    base = f"{node.output[0]}/as_conv"

    def const(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, f"{base}/{name}"))
        return f"{base}/{name}"

    inputs = [node.input[0], const("weight", p.weight.astype(np.float32))]
    if bias is not None:
        per_group = bias.astype(np.float32).reshape(group, 1, -1)
        inputs.append(const("bias", np.broadcast_to(per_group, (group, s**n, per_group.shape[2])).ravel()))
    out = [
        helper.make_node(
            "Conv",
            inputs,
            [f"{base}/conv"],
            name=f"{base}/conv",
            kernel_shape=p.kernel,
            pads=p.pads,
            strides=[1] * n,
            dilations=[1] * n,
            group=group,
        )
    ]
    if s > 1:
        out += _interleave(out[-1].output[0], s, group, weight.shape[1], base, const)
    if any(p.crop_begin) or any(p.crop_end):
        end = [-e if e else np.iinfo(np.int64).max for e in p.crop_end]
        out.append(
            helper.make_node(
                "Slice",
                [
                    out[-1].output[0],
                    const("crop_begin", np.array(p.crop_begin, np.int64)),
                    const("crop_end", np.array(end, np.int64)),
                    const("crop_axes", np.arange(2, 2 + n, dtype=np.int64)),
                ],
                [f"{base}/crop"],
                name=f"{base}/crop",
            )
        )
    out[-1].output[0] = node.output[0]  # the last step writes the value the ConvTranspose wrote
    return out


def _interleave(
    phases: str, s: int, group: int, c_out_g: int, base: str, const: Callable[[str, np.ndarray], str]
) -> list[onnx.NodeProto]:
    """(N, group · s² · C_out/group, H, W) → (N, C_out, s·H, s·W), phase (a, b) to rows a::s, columns b::s.

    As a Split, then Concats of the phases along a new last axis (the columns) and along a new axis after
    the rows, and one Reshape: ORT's Concat copies runs of memory, where its DepthToSpace (a general 6-D
    transpose) moved the generator's deconvolution outputs three times slower."""
    nodes = []
    parts = [f"{base}/phase{g}_{i}" for g in range(group) for i in range(s * s)]
    nodes.append(
        helper.make_node(
            "Split",
            [phases, const("split", np.full(len(parts), c_out_g, np.int64))],
            parts,
            name=f"{base}/split",
            axis=1,
        )
    )

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [f"{base}/{name}"], name=f"{base}/{name}", **attrs))
        return f"{base}/{name}"

    last, row_axis = const("last_axis", np.array([-1], np.int64)), const("row_axis", np.array([3], np.int64))
    rows = []
    for a in range(s):
        columns = []
        for b in range(s):
            phase = [parts[g * s * s + a * s + b] for g in range(group)]
            whole = phase[0] if group == 1 else node("Concat", phase, f"phase_{a}_{b}", axis=1)
            columns.append(node("Unsqueeze", [whole, last], f"column_{a}_{b}"))
        row = node("Concat", columns, f"row_{a}", axis=4)  # (N, C, H, W, s): phase b at column b
        rows.append(node("Unsqueeze", [row, row_axis], f"row_{a}_axis"))
    stacked = node("Concat", rows, "rows", axis=3)  # (N, C, H, s, W, s): phase a at row a
    first = parts[0] if group == 1 else f"{base}/phase_0_0"
    size = node(
        "Mul",
        [node("Shape", [first], "phase_shape"), const("scale", np.array([1, 1, s, s], np.int64))],
        "size",
    )
    return nodes + [
        helper.make_node("Reshape", [stacked, size], [f"{base}/interleave"], name=f"{base}/interleave")
    ]
