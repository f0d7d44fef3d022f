"""The ONNX graph under construction, and which ONNX value holds each Caffe blob at each point.

Caffe rewrites blobs in place (ReLU after a convolution, top == bottom); ONNX values are written once. So a
blob written by several layers is a chain of values: every writer but the last gets a fresh internal name,
and the last writer produces the value named exactly as the blob. The ONNX value `X` then holds what Caffe's
`net.blobs[X]` holds after a full forward, which is what users and the parity checks ask for by name.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper

from repro.caffe.net import Layer, Net
from repro.errors import BadInput


class Context:
    def __init__(self, net: Net, top_shapes: list[list[tuple[int, ...]]] | None = None):
        """`top_shapes[i]`: the shapes of layer i's tops when it runs (`layer_shapes`); they differ from
        `net.shapes` (after the full forward) for a blob that an in-place layer reshapes."""
        self.net = net
        self._top_shapes = top_shapes
        self._blob_shape: dict[str, tuple[int, ...]] = {}  # each blob's shape at the current layer
        self.value_origin: dict[str, tuple[int, int]] = {}  # value -> (layer index, top index) writing it
        self._index = -1
        self.source = net.source or f"<net {net.name}>"
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[tuple[str, np.ndarray]] = []  # added to the model last: no graph-sized copies
        self.value_blob: dict[str, str] = {}  # every value that holds a blob -> that blob (for value_info)
        self._current: dict[str, str] = {}
        self._used: set[str] = {blob for layer in net.layers for blob in (*layer.bottoms, *layer.tops)}
        self._last_writer: dict[str, int] = {}
        for index, layer in enumerate(net.layers):
            for top in layer.tops:
                self._last_writer[top] = index
        self._produced: set[str] = set()
        self._node_names: set[str] = set()
        self.layer: Layer | None = None
        self._tops: list[str] = []

    # ------------------------------------------------------------------ layer bookkeeping (used by to_onnx)

    def begin(self, index: int, layer: Layer) -> None:
        """Name this layer's outputs before its converter runs; bottoms still resolve to the old values."""
        self.layer = layer
        self._index = index
        self._tops = [top if self._last_writer[top] == index else self.fresh(top) for top in layer.tops]

    def commit(self) -> None:
        for top, value in zip(self.layer.tops, self._tops, strict=True):
            if value not in self._produced and self.layer.type != "Input":
                raise AssertionError(f"converter for {self.layer.type} did not produce top {top!r}")
            self._current[top] = value
            self.value_blob[value] = top
        for j, (top, value) in enumerate(zip(self.layer.tops, self._tops, strict=True)):
            self._blob_shape[top] = self.top_shape(j)
            self.value_origin[value] = (self._index, j)

    # ------------------------------------------------------------------------------ for converters

    def fail(self, message: str) -> BadInput:
        """A BadInput that names the file, the layer and its type; converters `raise ctx.fail(...)`."""
        return BadInput(f"{self.source}: layer {self.layer.name!r} ({self.layer.type}): {message}")

    def bottom(self, i: int = 0) -> str:
        blob = self.layer.bottoms[i]
        if blob not in self._current:
            raise self.fail(f"bottom {blob!r} is not produced by any earlier layer")
        return self._current[blob]

    def top(self, i: int = 0) -> str:
        return self._tops[i]

    def shape(self, blob: str) -> tuple[int, ...]:
        """The blob's shape as the current layer sees it (its last writer's top so far)."""
        if blob in self._blob_shape:
            return self._blob_shape[blob]
        try:
            return tuple(self.net.shapes[blob])
        except KeyError:
            raise self.fail(f"no inferred shape for blob {blob!r}") from None

    def bottom_shape(self, i: int = 0) -> tuple[int, ...]:
        return self.shape(self.layer.bottoms[i])

    def top_shape(self, i: int = 0) -> tuple[int, ...]:
        if self._top_shapes is not None:
            return tuple(self._top_shapes[self._index][i])
        return self.shape(self.layer.tops[i])

    def axis(self, axis: int, ndim: int, what: str = "axis") -> int:
        """Caffe's CanonicalAxisIndex: negative axes count from the end."""
        if not -ndim <= axis < ndim:
            raise self.fail(f"{what} {axis} is out of range for a {ndim}-axis blob")
        return axis % ndim

    def expect_counts(self, bottoms: int | tuple[int, int | None], tops: int | None = 1) -> None:
        """Exactly `bottoms`, or (least, most) with None for no limit; exactly `tops` unless None."""
        least, most = (bottoms, bottoms) if isinstance(bottoms, int) else bottoms
        n = len(self.layer.bottoms)
        if n < least or (most is not None and n > most):
            wanted = least if least == most else f"{least} to {most}" if most else f"at least {least}"
            raise self.fail(f"expected {wanted} bottom(s), got {n}")
        if tops is not None and len(self.layer.tops) != tops:
            raise self.fail(f"expected {tops} top(s), got {len(self.layer.tops)}")

    def blob(self, i: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Weight blob i, reshaped to `shape` (V1 files may carry legacy 4-D dims with the same count)."""
        blobs = self.layer.blobs
        if i >= len(blobs):
            raise self.fail(
                f"expected at least {i + 1} weight blob(s), got {len(blobs)} (weights not loaded?)"
            )
        array = np.asarray(blobs[i])
        if shape is not None:
            if array.size != int(np.prod(shape)):
                raise self.fail(f"weight blob {i}: expected shape {tuple(shape)}, got {array.shape}")
            array = array.reshape(shape)
        return array

    def fresh(self, hint: str) -> str:
        """A value or initializer name that no Caffe blob and no earlier value uses."""
        return _unique(f"{self.layer.name}/{hint}" if self.layer is not None else hint, self._used)

    def const(self, hint: str, value: Any, dtype: type = np.float32) -> str:
        """An initializer: float32 for weights and scalars, int64 for shapes, axes and indices."""
        name = self.fresh(hint)
        self.initializers.append((name, np.asarray(value, dtype=dtype)))
        return name

    def ints(self, hint: str, values: list[int] | tuple[int, ...]) -> str:
        return self.const(hint, list(values), np.int64)

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        """Append one node with one output (a fresh internal value unless named) and return the output."""
        output = output or self.fresh(op.lower())
        name = _unique(f"{self.layer.name}/{op}", self._node_names)
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        self._produced.add(output)
        return output


def _unique(base: str, used: set[str]) -> str:
    name, k = base, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name
