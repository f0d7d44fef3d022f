"""Every ORT session repro builds over a user's prototxt runs at the batch repro feeds it, whatever batch the
prototxt declares (BVLC's deploy nets declare 10; the evaluator is fed one image at a time)."""

from __future__ import annotations

import numpy as np
import pytest

from repro.caffe import parse_net_text, random_weights, write_net
from repro.convert.cache import NetFiles, convert_net
from repro.evaluate.sessions import caffe_session

DECLARED = 10
NET = f"""name: "deploy10"
input: "data"
input_shape {{ dim: {DECLARED} dim: 3 dim: 9 dim: 9 }}
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param {{ num_output: 4 kernel_size: 3 stride: 2 }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }}
layer {{ name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc" inner_product_param {{ num_output: 5 }} }}
layer {{ name: "prob" type: "Softmax" bottom: "fc" top: "prob" }}
"""


@pytest.fixture
def deploy10(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    net = parse_net_text(NET)
    random_weights(net, 0)
    write_net(net, tmp_path / "n.prototxt", tmp_path / "n.caffemodel")
    return NetFiles(tmp_path / "n.prototxt", tmp_path / "n.caffemodel", {"input": "data", "logits": "fc"})


@pytest.mark.parametrize("outputs", [["prob"], ["fc", "conv1"]])  # the converted outputs, and others
def test_a_session_over_a_batch_10_deploy_net_runs_at_batches_1_and_3(deploy10, outputs):
    session = caffe_session(deploy10, outputs)
    x = np.random.default_rng(0).standard_normal((3, 3, 9, 9)).astype(np.float32)
    together = session.run(outputs, {"data": x})
    alone = [session.run(outputs, {"data": x[i : i + 1]}) for i in range(3)]
    for k in range(len(outputs)):
        np.testing.assert_allclose(together[k], np.concatenate([a[k] for a in alone]), rtol=1e-5, atol=1e-6)


def test_the_cached_conversion_declares_a_symbolic_batch(deploy10):
    for _ in range(2):  # converted, then read back from the cache
        model = convert_net(deploy10)
        dims = model.graph.input[0].type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch" and not dims[0].HasField("dim_value")
