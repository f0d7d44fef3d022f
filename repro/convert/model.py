"""A Caffe `Net` (weights attached, shapes inferred) → one ONNX model, layer by layer through the registry."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any

import onnx
from onnx import TensorProto, helper
from tqdm import tqdm

import repro.convert.layers  # noqa: F401  (fills the registry)
from repro.caffe.net import Layer, Net
from repro.caffe.shapes import layer_shapes
from repro.convert.context import Context
from repro.convert.registry import lookup
from repro.errors import BadInput
from repro.onnx_versions import OPSET

BATCH = "batch"
FIRST_WRITES = "repro.first_writes"  # metadata: JSON {blob: the value its first writer produced}
_PROGRESS_WEIGHTS = 20_000_000  # weights beyond which conversion takes long enough to show progress
_PROGRESS_LAYERS = 200


def to_onnx(
    net: Net, outputs: Sequence[str] | None = None, *, dynamic_batch: bool = False
) -> onnx.ModelProto:
    """Convert `net`; the ONNX value named X holds Caffe's `net.blobs[X]` after a full forward.

    `outputs` picks which blobs become graph outputs (default: the net's unconsumed blobs). With
    `dynamic_batch` the batch axis of inputs, outputs and intermediate values is the symbol "batch".
    """
    source = net.source or f"<net {net.name}>"
    if not net.layers:
        raise BadInput(f"{source}: the net has no layers and no inputs (an empty prototxt?)")
    if not net.shapes:
        raise BadInput(
            f"{source}: the net has no inferred blob shapes "
            "(nets made by repro.caffe.load_net or parse_net_text have them)"
        )
    outputs = list(net.outputs if outputs is None else outputs)
    unknown = [name for name in outputs if name not in net.shapes]
    if unknown or not outputs:
        raise BadInput(
            f"{source}: unknown output blob(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"blobs are: {', '.join(net.shapes)}"
        )
    _check_rewrites(net, source)
    given = [name for name in outputs if name in net.inputs]
    if given:
        raise BadInput(f"{source}: {', '.join(map(repr, given))} is a net input, not a computed blob")

    tops = [[tuple(t) for t in result.tops] for result in layer_shapes(net, limit=None)]
    ctx = Context(net, tops)
    n_weights = sum(b.size for layer in net.layers for b in layer.blobs)
    quiet = n_weights < _PROGRESS_WEIGHTS and len(net.layers) < _PROGRESS_LAYERS
    layers = tqdm(net.layers, desc="convert", unit="layer", file=sys.stderr, disable=quiet, leave=False)
    for index, layer in enumerate(layers):
        convert = lookup(layer, source)
        ctx.begin(index, layer)
        _check_finite_settings(layer, ctx)
        convert(layer, ctx)
        ctx.commit()

    declared = _symbolic_tops(net, tops, source) if dynamic_batch else tops

    def shape_of(value: str) -> tuple[int | str | None, ...]:
        layer, top = ctx.value_origin[value]  # a value named X is blob X's last writer's
        return declared[layer][top]

    inputs = net.inputs
    graph = helper.make_graph(
        ctx.nodes,
        net.name or "caffe_net",
        [_value_info(name, shape_of(name)) for name in inputs],
        [_value_info(name, shape_of(name)) for name in outputs],
        value_info=[
            _value_info(value, shape_of(value))
            for value in ctx.value_blob
            if value not in inputs and value not in outputs
        ],
    )
    model = helper.make_model_gen_version(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="repro"
    )
    model.doc_string = f"converted from {source}"
    helper.set_model_props(model, {FIRST_WRITES: json.dumps(_first_values(ctx))})
    for name, array in ctx.initializers:  # written into the final model once; weights can be GiBs
        tensor = model.graph.initializer.add(name=name, dims=array.shape)
        tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
        tensor.raw_data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return model


# Settings that do not change a layer's forward pass (training only), by message type and by field name.
_NOT_FORWARD = {"FillerParameter", "ParamSpec", "NetStateRule", "BlobProto"}
_NOT_FORWARD_FIELDS = {"loss_weight", "moving_average_fraction"}


def _non_finite(message: Any, path: str) -> tuple[str, float] | None:
    """The first float setting of `message` (searched recursively) that is inf or NaN, with its path."""
    for field, value in message.ListFields():
        name = f"{path}.{field.name}" if path else field.name
        if field.name in _NOT_FORWARD_FIELDS:
            continue
        if field.message_type is not None:
            if field.message_type.name in _NOT_FORWARD:
                continue
            for i, item in enumerate(value if field.is_repeated else [value]):
                found = _non_finite(item, f"{name}[{i}]" if field.is_repeated else name)
                if found:
                    return found
        elif field.type in (field.TYPE_FLOAT, field.TYPE_DOUBLE):
            for i, number in enumerate(value if field.is_repeated else [value]):
                if not math.isfinite(number):
                    return (f"{name}[{i}]" if field.is_repeated else name), number
    return None


def _check_finite_settings(layer: Layer, ctx: Context) -> None:
    """A setting of inf or NaN (text format accepts both) would only make the outputs inf or NaN."""
    if layer.params is None:
        return
    found = _non_finite(layer.params, "")
    if found:
        raise ctx.fail(f"{found[0]} is {found[1]}; expected a finite number")


def _check_rewrites(net: Net, source: str) -> None:
    """Only in-place rewrites of a blob keep "value X == Caffe's blob X" well defined; say so otherwise."""
    writer: dict[str, Layer] = {}
    for layer in net.layers:
        for top in layer.tops:
            first = writer.setdefault(top, layer)
            if first is layer:
                continue
            if top not in layer.bottoms:
                raise BadInput(
                    f"{source}: layer {layer.name!r} ({layer.type}) writes blob {top!r}, already written by "
                    f"{first.name!r}, without reading it; only in-place rewrites are supported"
                )
            if first.type == "Input":
                raise BadInput(
                    f"{source}: layer {layer.name!r} ({layer.type}) rewrites the net input {top!r} in place; "
                    f"the graph input must keep that name, so give the layer a new top"
                )


def _symbolic_tops(
    net: Net, tops: list[list[tuple[int, ...]]], source: str
) -> list[list[tuple[int | str | None, ...]]]:
    """Every layer's top shapes with each batch-dependent axis symbolic ("batch" on axis 0, unnamed
    elsewhere).

    Which axes depend on the batch is found the way Caffe would: infer the shapes again at batch + 1.
    """
    layers = []
    for layer in net.layers:
        if layer.type == "Input":
            params = type(layer.params)()
            params.CopyFrom(layer.params)
            for shape in params.input_param.shape:
                if shape.dim:
                    shape.dim[0] += 1
            layer = Layer(layer.name, layer.type, layer.bottoms, layer.tops, params)
        layers.append(layer)
    try:
        other = layer_shapes(Net(net.name, layers, net.source), limit=None)  # only compared
    except BadInput as e:
        raise BadInput(f"{source}: the net does not work at another batch size: {e}") from None
    batch = net.shapes[net.inputs[0]][0] if net.inputs else None
    return [
        [
            tuple(
                d if d == o else (BATCH if i == 0 and d == batch else None)
                for i, (d, o) in enumerate(zip(shape, more, strict=True))
            )
            for shape, more in zip(layer_tops, result.tops, strict=True)
        ]
        for layer_tops, result in zip(tops, other, strict=True)
    ]


def _first_values(ctx: Context) -> dict[str, str]:
    """Every blob → the value its first writer produced: for a blob an in-place layer rewrites (conv5 before
    relu5), what DGN-AM's act_max.py reads as `net.blobs[X]` after `net.forward(end=X)`, a hidden target's
    meaning (repro.target); for any other blob, the value of its own name."""
    first: dict[str, str] = {}
    for value, blob in sorted(ctx.value_blob.items(), key=lambda item: ctx.value_origin[item[0]]):
        first.setdefault(blob, value)
    return first


def first_writes(model: onnx.ModelProto) -> dict[str, str]:
    """Every blob of a net `to_onnx` converted (inputs included) → the value holding it as its first writer
    computed it."""
    props = {p.key: p.value for p in model.metadata_props}
    if FIRST_WRITES not in props:
        raise BadInput(
            f"graph {model.graph.name!r} was not converted by this version of repro (no {FIRST_WRITES})"
        )
    return json.loads(props[FIRST_WRITES])


def _value_info(name: str, shape: tuple[int | str | None, ...]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))
