"""Writing Caffe nets: V2 prototxt text and a V2 binary caffemodel that BVLC Caffe reads as is."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from google.protobuf import text_format

from repro import atomic
from repro.caffe import schema
from repro.caffe.net import Layer, Net


def _layer_param(layer: Layer) -> Any:
    """The layer's settings with the dataclass's name/type/bottoms/tops, which are authoritative."""
    param = schema.LayerParameter()
    param.CopyFrom(layer.params)
    param.ClearField("blobs")
    param.name, param.type = layer.name, layer.type
    param.ClearField("bottom")
    param.ClearField("top")
    param.bottom.extend(layer.bottoms)
    param.top.extend(layer.tops)
    return param


def net_to_prototxt(net: Net) -> str:
    param = schema.NetParameter(name=net.name)
    for layer in net.layers:
        param.layer.add().CopyFrom(_layer_param(layer))
    return text_format.MessageToString(param)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def fill_blob(blob: Any, array: np.ndarray) -> None:
    """Give a BlobProto the array's `shape` and packed float data.

    The packed field is assembled from the array's bytes and merged in: appending floats one by one
    through the protobuf API takes seconds for the 100M-parameter nets.
    """
    blob.shape.SetInParent()  # a 0-D blob still has a shape, just an empty one
    blob.shape.dim.extend(int(d) for d in array.shape)
    data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    blob.MergeFromString(_varint(5 << 3 | 2) + _varint(len(data)) + data)  # field 5 (data), length-delimited


def write_net(net: Net, prototxt_path: str | os.PathLike, caffemodel_path: str | os.PathLike) -> None:
    """V2 prototxt (settings) and caffemodel: an entry (name, type, blobs) for every layer, as Caffe's
    Net::ToProto writes one, so a layer without weights (and every layer of a weightless net) has an
    entry with no blobs."""
    model = schema.NetParameter(name=net.name)
    for layer in net.layers:
        entry = model.layer.add(name=layer.name, type=layer.type)
        for array in layer.blobs:
            fill_blob(entry.blobs.add(), array)
    atomic.write_bytes(caffemodel_path, model.SerializeToString())
    atomic.write_text(prototxt_path, net_to_prototxt(net))
