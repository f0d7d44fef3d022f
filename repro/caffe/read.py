"""Reading Caffe nets: prototxt (V0/V1/V2, legacy input fields) plus an optional caffemodel, as a `Net`.

Follows what Caffe's `Net(prototxt, TEST)` + `CopyTrainedLayersFrom(caffemodel)` do, but turns every
failure into one `BadInput` line naming the file, the layer, what was expected and what was found.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import message, text_format, unknown_fields

from repro.caffe import schema
from repro.caffe.net import Layer, Net
from repro.caffe.shapes import Shape, infer_shapes, layer_shapes
from repro.caffe.upgrade import blobs_by_layer, upgrade_layers
from repro.errors import BadInput

# Layers that read a training database: a deploy net has an Input layer (or input: fields) instead.
DATA_TYPES = {"Data", "ImageData", "HDF5Data", "WindowData", "MemoryData", "DummyData", "AnnotatedData"}


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: {what} is a directory, expected a file") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot read {what}: {e.strerror}") from None


_QUOTED_LINE = 80  # longest echo of the offending line kept in a syntax error


def _error_position(error: text_format.ParseError) -> tuple[int | None, int | None]:
    """Line and column (1-based) of a text-format error.

    Most errors carry them; a few (a malformed value of a field the schema skips, say) are raised where
    only the tokenizer knows the position, so it is read from the innermost frame that has one.
    """
    if error.GetLine() is not None:
        return error.GetLine(), error.GetColumn()
    position: tuple[int | None, int | None] = (None, None)
    tb = error.__traceback__
    while tb is not None:
        tokenizer = tb.tb_frame.f_locals.get("tokenizer")
        line, column = getattr(tokenizer, "_line", None), getattr(tokenizer, "_column", None)
        if isinstance(line, int) and isinstance(column, int):
            position = (line + 1, column + 1)
        tb = tb.tb_next
    return position


def _error_detail(error: text_format.ParseError) -> tuple[str, str]:
    """protobuf's message without its "line:column : " prefix, and the offending line it echoes (or "")."""
    detail = str(error)
    if error.GetLine() is not None:
        detail = detail.split(" : ", 1)[-1]
    if detail.startswith("'"):  # "'<the offending line>': message"
        echoed, sep, message = detail[1:].partition("': ")
        if sep:
            echoed = echoed.strip()
            if len(echoed) > _QUOTED_LINE:
                echoed = echoed[: _QUOTED_LINE - 3] + "..."
            return message, echoed
    return detail, ""


def _deepest(text: str) -> tuple[int, int, int]:
    """The deepest message nesting of a text proto: (depth, line, column), 1-based, where it first occurs."""
    tokenizer = text_format.Tokenizer(text.splitlines(keepends=True))
    depth, deepest = 0, (0, 1, 1)
    while not tokenizer.AtEnd():
        token = tokenizer.token
        if token in ("{", "<"):
            depth += 1
            if depth > deepest[0]:
                deepest = (depth, tokenizer._line + 1, tokenizer._column + 1)
        elif token in ("}", ">"):
            depth -= 1
        tokenizer.NextToken()
    return deepest


def parse_prototxt(text: str, source: str) -> Any:
    """Text NetParameter of any version; fields outside repro's schema subset are skipped."""
    param = schema.NetParameter()
    try:
        text_format.Merge(text, param, allow_unknown_field=True, allow_unknown_extension=True)
    except RecursionError:  # protobuf skips unknown fields recursively, however deep they nest
        depth, line, column = _deepest(text)
        raise BadInput(
            f"{source}: prototxt syntax error at line {line}: messages nest {depth} levels deep, "
            f"too deep to parse (column {column})"
        ) from None
    except text_format.ParseError as e:
        line, column = _error_position(e)
        message, echoed = _error_detail(e)
        if line is None:
            raise BadInput(f"{source}: prototxt syntax error: {message}") from None
        context = [f"column {column}"] if column is not None else []
        context += [f"in '{echoed}'"] if echoed else []
        suffix = f" ({', '.join(context)})" if context else ""
        raise BadInput(f"{source}: prototxt syntax error at line {line}: {message}{suffix}") from None
    return param


def parse_caffemodel(data: bytes, source: str) -> Any:
    """Binary NetParameter of any version; a truncated or non-protobuf file is refused.

    A caffemodel with no layers (even a zero-byte file: the empty NetParameter) is valid, as in Caffe: it is
    what a net without learnable layers needs, and `attach_weights` refuses it for any layer that does need
    weights. Such a file must still hold nothing but NetParameter fields: the schema has all of BVLC's, so
    top-level fields it does not know (another protobuf, say an ONNX model) mean it is no caffemodel.
    """
    param = schema.NetParameter()
    try:
        param.ParseFromString(data)
    except message.DecodeError as e:
        raise BadInput(
            f"{source}: not a valid caffemodel (truncated or not a binary NetParameter: {e})"
        ) from None
    if not param.layer and not param.layers:
        stray = sorted({field.field_number for field in unknown_fields.UnknownFieldSet(param)})
        if stray:
            raise BadInput(
                f"{source}: not a valid caffemodel (no layers, and top-level field(s) {stray} "
                "that a Caffe NetParameter does not have)"
            )
    return param


def _meets(rule: Any, state: Any) -> bool:
    """Net::StateMeetsRule."""
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    return all(s in state.stage for s in rule.stage) and not any(s in state.stage for s in rule.not_stage)


def _test_phase(layers: list[Any], net_state: Any, source: str) -> list[Any]:
    """Net::FilterNet for the TEST phase (levels and stages from the prototxt's `state`)."""
    state = schema.NetState()
    state.CopyFrom(net_state)
    state.phase = schema.TEST  # as in Net(prototxt, caffe::TEST)
    kept = []
    for layer in layers:
        if layer.include and layer.exclude:
            raise BadInput(
                f"{source}: layer '{layer.name}' gives both include and exclude rules; Caffe allows one"
            )
        included = not layer.include
        if any(_meets(rule, state) for rule in layer.exclude):
            included = False
        if any(_meets(rule, state) for rule in layer.include):
            included = True
        if included:
            kept.append(layer)
    return kept


def _to_layers(params: list[Any], source: str) -> list[Layer]:
    layers = []
    for p in params:
        if p.type in DATA_TYPES:
            raise BadInput(
                f"{source}: layer '{p.name}' is a {p.type} layer that reads training data; "
                "give a deploy prototxt whose inputs come from an Input layer or input: fields"
            )
        layers.append(Layer(p.name, p.type, list(p.bottom), list(p.top), p))
    return layers


def _free_reshape_batch(net: Net) -> None:
    """A Reshape that hard-codes the prototxt's batch in `dim[0]` (the DGN generator's `dim: 1`) copies the
    batch instead (dim 0), so the net runs at any batch size."""
    batches = {
        s.dim[0]
        for layer in net.layers
        if layer.type == "Input"
        for s in layer.params.input_param.shape
        if s.dim
    }
    shapes = infer_shapes(net, limit=None)  # at the prototxt's batch, which `batch` may yet lower
    for layer in net.layers:
        p = layer.params.reshape_param
        if layer.type != "Reshape" or not p.shape.dim or len(layer.bottoms) != 1:
            continue
        bottom = shapes[layer.bottoms[0]]
        starts_at_batch = p.axis == 0 or p.axis == -(len(bottom) + 1)
        if (
            starts_at_batch
            and p.shape.dim[0] > 0
            and p.shape.dim[0] in batches
            and p.shape.dim[0] == bottom[0]
        ):
            p.shape.dim[0] = 0


def _set_batch(net: Net, batch: int) -> None:
    if batch < 1:
        raise BadInput(f"{net.source}: batch must be at least 1, got {batch}")
    for layer in net.layers:
        if layer.type == "Input":
            for shape in layer.params.input_param.shape:
                if shape.dim:
                    shape.dim[0] = batch


def _build(param: Any, source: str, batch: int | None) -> Net:
    every = upgrade_layers(param, source)
    if not every:
        raise BadInput(
            f"{source}: the prototxt defines no layers and no inputs (expected layer {{ ... }} entries, "
            "V1 layers { ... } entries or input: fields); is it empty or not a Caffe net?"
        )
    params = _test_phase(every, param.state, source)
    if not params:
        raise BadInput(
            f"{source}: all {len(every)} layer(s) are excluded from the TEST phase by their include/exclude "
            "rules; a deploy net needs at least its input"
        )
    net = Net(param.name, _to_layers(params, source), source)
    producer: dict[str, str] = {}  # blob -> the layer that first wrote it
    for layer in net.layers:
        for bottom in layer.bottoms:
            if bottom not in producer:
                raise BadInput(
                    f"{source}: layer '{layer.name}' takes bottom '{bottom}', "
                    "which no earlier layer (or input) produces"
                )
        for i, top in enumerate(layer.tops):
            if i < len(layer.bottoms) and layer.bottoms[i] == top:
                continue  # in place, as Net::AppendTop recognises it: top i named like bottom i
            if top in producer or top in layer.tops[:i]:
                who = "an earlier top of this layer" if top in layer.tops[:i] else f"layer '{producer[top]}'"
                raise BadInput(
                    f"{source}: layer '{layer.name}' ({layer.type}) writes top '{top}', which {who} already "
                    "produces; Caffe gives every blob one producer, apart from in-place rewrites (top i "
                    "named like bottom i)"
                )
            producer[top] = layer.name
    _free_reshape_batch(net)
    if batch is not None:
        _set_batch(net, batch)
    net.shapes = infer_shapes(net)
    return net


def parse_net_text(text: str, source: str = "<string>", *, batch: int | None = None) -> Net:
    """A net from prototxt text (no weights)."""
    return _build(parse_prototxt(text, source), source, batch)


def net_from_param(param: Any, source: str = "<message>") -> Net:
    """A net from a NetParameter built in code (no weights), checked and shaped as a parsed one is, so
    that a net described in code is written (`write_net`) and read by the same rules as a file."""
    return _build(param, source, None)


def _blob_array(blob: Any, expected: Shape, where: str) -> np.ndarray:
    """BlobProto -> float32 array of the expected shape. As in Blob::ShapeEquals, legacy num/channels/
    height/width, when present, win over `shape` and compare right-aligned (leading 1s squeezed)."""
    if any(blob.HasField(f) for f in ("num", "channels", "height", "width")):
        actual = (blob.num, blob.channels, blob.height, blob.width)
        matches = len(expected) <= 4 and actual == (1,) * (4 - len(expected)) + tuple(expected)
    else:
        actual = tuple(int(d) for d in blob.shape.dim)
        matches = actual == tuple(expected)
    if not matches:
        raise BadInput(f"{where}: expected shape {tuple(expected)}, caffemodel has {actual}")
    values = blob.double_data if len(blob.double_data) else blob.data
    array = np.array(values, dtype=np.float32)
    if array.size != int(np.prod(expected)):
        raise BadInput(
            f"{where}: shape {tuple(expected)} needs {int(np.prod(expected))} values, "
            f"caffemodel has {array.size}"
        )
    return array.reshape(expected)


def attach_weights(net: Net, param: Any, source: str) -> None:
    """CopyTrainedLayersFrom: weights by layer name; layers the net lacks are ignored, as in Caffe.

    A layer needs weights when its shape rule gives weight shapes (Convolution, Deconvolution, InnerProduct,
    BatchNorm, Scale with a learned scale or a bias, Bias with one bottom); any other layer needs no entry in
    the caffemodel, and an entry it has must carry no blobs. Unlike Caffe, which keeps filler values for a
    learnable layer the caffemodel lacks, a missing weighted layer is refused.
    """
    stored = blobs_by_layer(param)
    for layer, shapes in zip(net.layers, layer_shapes(net), strict=True):
        blobs = stored.get(layer.name)
        if blobs is None:
            if shapes.weights:
                found = "no layer of that name" if stored else "no layers at all (an empty NetParameter)"
                raise BadInput(
                    f"{source}: layer '{layer.name}' ({layer.type}) needs {len(shapes.weights)} weight "
                    f"blob(s) {[tuple(s) for s in shapes.weights]}, caffemodel has {found}"
                )
            continue
        if len(blobs) != len(shapes.weights):
            raise BadInput(
                f"{source}: layer '{layer.name}' ({layer.type}): expected {len(shapes.weights)} weight "
                f"blob(s), caffemodel has {len(blobs)}"
            )
        layer.blobs = [
            _blob_array(blob, shape, f"{source}: layer '{layer.name}' ({layer.type}) blob {i}")
            for i, (blob, shape) in enumerate(zip(blobs, shapes.weights, strict=True))
        ]


def load_net(
    prototxt: str | os.PathLike,
    caffemodel: str | os.PathLike | None = None,
    *,
    batch: int | None = None,
) -> Net:
    """A net from a prototxt and, optionally, its caffemodel; `batch` overrides the input batch size."""
    path = Path(prototxt)
    data = _read_bytes(path, "prototxt")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path}: prototxt is not text (a binary caffemodel given as the prototxt?)") from None
    net = _build(parse_prototxt(text, str(path)), str(path), batch)
    if caffemodel is not None:
        model_path = Path(caffemodel)
        attach_weights(
            net, parse_caffemodel(_read_bytes(model_path, "caffemodel"), str(model_path)), str(model_path)
        )
    return net
