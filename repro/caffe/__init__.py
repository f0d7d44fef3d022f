"""Caffe files: the schema subset, reading (V0/V1/V2), writing (V2) and Caffe's shape inference."""

from repro.caffe.net import Layer, Net
from repro.caffe.read import load_net, net_from_param, parse_net_text
from repro.caffe.shapes import infer_shapes, weight_shapes
from repro.caffe.weights import random_weights
from repro.caffe.write import net_to_prototxt, write_net

__all__ = [
    "Layer",
    "Net",
    "infer_shapes",
    "load_net",
    "net_from_param",
    "net_to_prototxt",
    "parse_net_text",
    "random_weights",
    "weight_shapes",
    "write_net",
]
