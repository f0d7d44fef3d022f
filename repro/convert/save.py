"""Writing converted models atomically, with the weights beside the file near protobuf's 2 GiB limit."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx import TensorProto

from repro.atomic import atomic_path, write_bytes

EXTERNAL_DATA_BYTES = 2**31 - 2**26  # protobuf cannot serialize a message of 2 GiB; keep room for the graph
_ALIGN = 4096  # external tensors start on page boundaries so runtimes can memory-map them
_INLINE_BYTES = 1024  # small tensors (shapes, scalars) stay in the model file


def save_onnx(model: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Write `model` to `path`; big models put their weights in `<name>.data` beside it.

    Both files go through temporary names; the weights are renamed into place before the model that
    refers to them, so a crash never leaves a model pointing at missing or partial weights. The caller's
    model is not modified.
    """
    path = Path(path)
    weight_bytes = sum(len(t.raw_data) for t in model.graph.initializer)
    if weight_bytes < EXTERNAL_DATA_BYTES:
        write_bytes(path, model.SerializeToString())
        return
    data_name = f"{path.name}.data"
    with atomic_path(path) as model_tmp, atomic_path(path.with_name(data_name)) as data_tmp:
        with open(data_tmp, "wb") as data:
            header = header_with_external_weights(model, data, data_name)
        model_tmp.write_bytes(header.SerializeToString())


def header_with_external_weights(model: onnx.ModelProto, data, location: str) -> onnx.ModelProto:
    """A copy of `model` whose large initializers point into `data` instead of holding their bytes."""
    header = copy_without(model, "graph")
    header.graph.CopyFrom(copy_without(model.graph, "initializer"))
    for tensor in model.graph.initializer:
        if len(tensor.raw_data) < _INLINE_BYTES:
            header.graph.initializer.add().CopyFrom(tensor)
            continue
        copy = header.graph.initializer.add(name=tensor.name, data_type=tensor.data_type, dims=tensor.dims)
        offset = -(-data.tell() // _ALIGN) * _ALIGN
        data.seek(offset)
        data.write(tensor.raw_data)
        copy.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", offset), ("length", len(tensor.raw_data))):
            copy.external_data.add(key=key, value=str(value))
    return header


def copy_without(message, skip: str):
    """Copy every field but `skip`, so the multi-GiB weights are never duplicated in memory."""
    copy = type(message)()
    for field, value in message.ListFields():
        if field.name == skip:
            continue
        if field.is_repeated:
            getattr(copy, field.name).extend(value)
        elif field.message_type is not None:
            getattr(copy, field.name).CopyFrom(value)
        else:
            setattr(copy, field.name, value)
    return copy
