"""Fixtures shared by test modules: a small Caffe net written as real prototxt + caffemodel files."""

from __future__ import annotations

import pytest

from repro.caffe import parse_net_text, random_weights, write_net

NET = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 9 dim: 9 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


@pytest.fixture
def files(tmp_path):
    net = parse_net_text(NET)
    random_weights(net, 0)
    prototxt, caffemodel = tmp_path / "tiny.prototxt", tmp_path / "tiny.caffemodel"
    write_net(net, prototxt, caffemodel)
    return prototxt, caffemodel
