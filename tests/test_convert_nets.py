"""Whole nets through the converter: the built-in CaffeNet and fc6 generator, and the real deploy prototxts.

ONNX Runtime's shape for every blob must equal Caffe's shape inference, values must match the float64
Caffe reference, and nothing may bake in the batch size.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from repro.caffe import architectures, load_net, parse_net_text, random_weights
from repro.convert import to_onnx
from tests import caffe_reference
from tests.test_convert_layers import TOL, rel_error, session

PROTOTXT = Path(__file__).resolve().parents[2] / "shared/reference/prototxt"


def random_feeds(net, seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: (rng.standard_normal(net.shapes[n]) * scale).astype(np.float32) for n in net.inputs}


def all_blobs(net) -> list[str]:
    return [b for b in net.shapes if b not in net.inputs]


@pytest.fixture(scope="module")
def caffenet():
    net = parse_net_text(architectures.caffenet(), source="<built-in caffenet>", batch=2)
    random_weights(net, 0, last_scale=0.1)
    return net


@pytest.fixture(scope="module")
def generator():
    net = parse_net_text(architectures.fc6_generator(), source="<built-in fc6 generator>")
    random_weights(net, 0)
    return net


def test_caffenet_converts_in_seconds_and_matches_reference(caffenet):
    start = time.perf_counter()
    model = to_onnx(caffenet, all_blobs(caffenet))
    seconds = time.perf_counter() - start
    weights = sum(b.size for layer in caffenet.layers for b in layer.blobs) / 1e6
    print(f"CaffeNet ({weights:.1f} M weights) converts in {seconds:.2f} s")
    assert seconds < 15
    onnx.checker.check_model(model, full_check=True)
    feeds = random_feeds(caffenet, scale=50.0)  # mean-subtracted 0-255 images have this spread
    blobs = all_blobs(caffenet)
    got = dict(zip(blobs, session(model).run(blobs, feeds), strict=True))
    for name in blobs:
        assert got[name].shape == caffenet.shapes[name], name
    want = caffe_reference.forward(caffenet, feeds)
    errors = {name: rel_error(got[name], want[name]) for name in blobs}
    print(f"CaffeNet max rel error vs reference: {max(errors.values()):.2e} ({max(errors, key=errors.get)})")
    assert max(errors.values()) <= TOL, errors


def test_generator_at_batch_3_although_its_reshape_says_1(generator):
    assert re.search(r'type: "Reshape".*?shape \{\s*dim: 1\s', architectures.fc6_generator(), re.S)
    net = parse_net_text(architectures.fc6_generator(), batch=3)
    for layer, trained in zip(net.layers, generator.layers, strict=True):
        layer.blobs = trained.blobs
    model = to_onnx(net, all_blobs(net))
    feeds = random_feeds(net, seed=1)
    blobs = all_blobs(net)
    got = dict(zip(blobs, session(model).run(blobs, feeds), strict=True))
    for name in blobs:
        assert got[name].shape == net.shapes[name], name
    assert got[net.outputs[0]].shape == (3, 3, 256, 256)

    # The batch-1 net converted with a symbolic batch gives each sample the same image.
    dynamic = to_onnx(generator, dynamic_batch=True)
    assert dynamic.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    (images,) = session(dynamic).run(None, feeds)
    assert rel_error(images, got[net.outputs[0]].astype(np.float64)) <= TOL
    want = caffe_reference.forward(net, feeds)[net.outputs[0]]
    err = rel_error(images, want)
    print(f"generator max rel error vs reference: {err:.2e}")
    assert err <= TOL


REAL = [
    ("synthesizing__nets__upconv__fc6__generator.prototxt", 2),
    ("synthesizing__nets__googlenet__bvlc_googlenet_updated.prototxt", 1),
    ("caffe__models__bvlc_reference_caffenet__deploy.v1_a6610018.prototxt", 1),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,batch", REAL)
def test_real_prototxt_shapes_and_values(name, batch):
    path = PROTOTXT / name
    if not path.exists():
        pytest.skip(f"reference prototxt {path} not available")
    net = load_net(path, batch=batch)
    random_weights(net, 0, last_scale=0.1)
    blobs = all_blobs(net)
    model = to_onnx(net, blobs, dynamic_batch=True)
    onnx.checker.check_model(model, full_check=True)
    feeds = random_feeds(net, seed=2, scale=1.0 if "generator" in name else 50.0)
    got = dict(zip(blobs, session(model).run(blobs, feeds), strict=True))
    want = caffe_reference.forward(net, feeds)
    for blob in blobs:
        assert got[blob].shape == net.shapes[blob], blob
        assert rel_error(got[blob], want[blob]) <= TOL, blob
