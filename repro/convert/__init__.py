"""Caffe → ONNX: one converter per Caffe layer type in a registry; ONNX value names are Caffe blob names."""

from repro.convert.model import to_onnx
from repro.convert.registry import CONVERTERS, converter
from repro.convert.save import save_onnx
from repro.onnx_versions import OPSET

__all__ = ["CONVERTERS", "OPSET", "converter", "save_onnx", "to_onnx"]
