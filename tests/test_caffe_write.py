"""Writing Caffe files (V2 prototxt + caffemodel) and seeded random weights."""

from __future__ import annotations

import numpy as np
import pytest

from repro.caffe import (
    architectures,
    load_net,
    net_to_prototxt,
    parse_net_text,
    random_weights,
    schema,
    weight_shapes,
    write_net,
)
from repro.caffe.write import fill_blob

ZOO = """
name: "zoo"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 4 dim: 9 dim: 9 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 6 kernel_size: 3 pad: 1 group: 2 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "gain" type: "Scale" bottom: "conv" top: "gained" scale_param { num_axes: 0 } }
layer { name: "shift" type: "Bias" bottom: "gained" top: "shifted" }
layer { name: "relu" type: "ReLU" bottom: "shifted" top: "shifted" relu_param { negative_slope: 0.1 } }
layer { name: "up" type: "Deconvolution" bottom: "shifted" top: "up"
        convolution_param { num_output: 4 kernel_size: 4 stride: 2 pad: 1 } }
layer { name: "crop" type: "Crop" bottom: "up" bottom: "data" top: "crop" crop_param { offset: 2 } }
layer { name: "sum" type: "Eltwise" bottom: "crop" bottom: "data" top: "sum" }
layer { name: "pool" type: "Pooling" bottom: "sum" top: "pool"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "norm" type: "LRN" bottom: "pool" top: "norm" lrn_param { local_size: 3 k: 2 } }
layer { name: "split" type: "Slice" bottom: "norm" top: "a" top: "b" slice_param { slice_point: 1 } }
layer { name: "sig" type: "Sigmoid" bottom: "a" top: "a" }
layer { name: "tanh" type: "TanH" bottom: "b" top: "b" }
layer { name: "cat" type: "Concat" bottom: "b" bottom: "a" top: "cat" }
layer { name: "flat" type: "Flatten" bottom: "cat" top: "flat" }
layer { name: "fc" type: "InnerProduct" bottom: "flat" top: "fc"
        inner_product_param { num_output: 5 transpose: true } }
layer { name: "drop" type: "Dropout" bottom: "fc" top: "fc" }
layer { name: "pow" type: "Power" bottom: "fc" top: "pow" power_param { power: 2 shift: 1 } }
layer { name: "r" type: "Reshape" bottom: "pow" top: "r" reshape_param { shape { dim: 0 dim: 5 dim: 1 } } }
layer { name: "prob" type: "Softmax" bottom: "r" top: "prob" }
"""


def assert_same_net(a, b):
    assert a.name == b.name and a.shapes == b.shapes
    assert len(a.layers) == len(b.layers)
    for x, y in zip(a.layers, b.layers, strict=True):
        assert (x.name, x.type, x.bottoms, x.tops) == (y.name, y.type, y.bottoms, y.tops)
        assert x.params == y.params, x.name
        assert [w.shape for w in x.blobs] == [w.shape for w in y.blobs], x.name
        assert all(
            w.dtype == np.float32 and np.array_equal(w, v) for w, v in zip(x.blobs, y.blobs, strict=True)
        )


def test_zoo_round_trip(tmp_path):
    net = parse_net_text(ZOO)
    random_weights(net, seed=11)
    assert weight_shapes(net, net.layer("gain")) == [()]  # a 0-D blob survives the round trip too
    write_net(net, tmp_path / "out/zoo.prototxt", tmp_path / "out/zoo.caffemodel")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["zoo.caffemodel", "zoo.prototxt"]
    loaded = load_net(tmp_path / "out/zoo.prototxt", tmp_path / "out/zoo.caffemodel")
    loaded.source = net.source
    assert_same_net(net, loaded)


def test_built_in_round_trip(tmp_path):
    net = parse_net_text(architectures.googlenet(7, width=0.0625))
    random_weights(net, seed=2, last_scale=0.5)
    write_net(net, tmp_path / "g.prototxt", tmp_path / "g.caffemodel")
    loaded = load_net(tmp_path / "g.prototxt", tmp_path / "g.caffemodel")
    loaded.source = net.source
    assert_same_net(net, loaded)


def test_prototxt_text_round_trip():
    net = parse_net_text(ZOO)
    again = parse_net_text(net_to_prototxt(net))
    assert_same_net(net, again)


def test_caffemodel_is_plain_v2_with_packed_data(tmp_path):
    net = parse_net_text(ZOO)
    random_weights(net, seed=5)
    write_net(net, tmp_path / "z.prototxt", tmp_path / "z.caffemodel")
    model = schema.NetParameter.FromString((tmp_path / "z.caffemodel").read_bytes())
    assert not model.layers and [x.name for x in model.layer] == [x.name for x in net.layers]
    fc = next(x for x in model.layer if x.name == "fc")
    assert fc.type == "InnerProduct" and [list(b.shape.dim) for b in fc.blobs] == [[64, 5], [5]]
    # The hand-assembled packed field serializes exactly as protobuf's own API would write it.
    expected = schema.BlobProto(shape=schema.BlobShape(dim=[64, 5]), data=net.layer("fc").blobs[0].ravel())
    assert fc.blobs[0].SerializeToString() == expected.SerializeToString()


def test_weightless_net_writes_blobless_layer_entries(tmp_path):
    """As Caffe's Net::ToProto: the net's name and an entry per layer, none with blobs; it reads back."""
    text = """
name: "plain"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 4 dim: 6 dim: 6 } } }
layer { name: "relu" type: "ReLU" bottom: "data" top: "relu" }
layer { name: "gain" type: "Scale" bottom: "relu" bottom: "data" top: "gain" scale_param { axis: 0 } }
layer { name: "shift" type: "Bias" bottom: "gain" bottom: "relu" top: "shift" bias_param { axis: 0 } }
layer { name: "pool" type: "Pooling" bottom: "shift" top: "pool" pooling_param { pool: MAX kernel_size: 2 } }
layer { name: "prob" type: "Softmax" bottom: "pool" top: "prob" }
"""
    net = parse_net_text(text)
    random_weights(net, seed=0)  # no layer has weights to fill
    assert all(weight_shapes(net, x) == [] and x.blobs == [] for x in net.layers)
    write_net(net, tmp_path / "w.prototxt", tmp_path / "w.caffemodel")
    model = schema.NetParameter.FromString((tmp_path / "w.caffemodel").read_bytes())
    assert model.name == "plain" and not model.layers
    assert [(x.name, x.type, len(x.blobs)) for x in model.layer] == [(x.name, x.type, 0) for x in net.layers]
    loaded = load_net(tmp_path / "w.prototxt", tmp_path / "w.caffemodel")
    loaded.source = net.source
    assert_same_net(net, loaded)


def test_fill_blob_matches_protobuf_encoding():
    for array in (np.arange(40, dtype=np.float32).reshape(2, 4, 5), np.float32(3.5).reshape(()), np.zeros(0)):
        blob = schema.BlobProto()
        fill_blob(blob, array)
        reference = schema.BlobProto(data=np.asarray(array, np.float32).ravel())
        reference.shape.SetInParent()
        reference.shape.dim.extend(array.shape)
        assert blob.SerializeToString() == reference.SerializeToString()


def test_random_weights_are_seeded_and_shaped():
    a, b, c = (parse_net_text(ZOO) for _ in range(3))
    random_weights(a, seed=1)
    random_weights(b, seed=1)
    random_weights(c, seed=2)
    for x, y, z in zip(a.layers, b.layers, c.layers, strict=True):
        assert [w.shape for w in x.blobs] == [tuple(s) for s in weight_shapes(a, x)]
        assert all(w.dtype == np.float32 for w in x.blobs)
        assert all(np.array_equal(w, v) for w, v in zip(x.blobs, y.blobs, strict=True))
        assert all(not np.array_equal(w, v) for w, v in zip(x.blobs, z.blobs, strict=True) if w.size > 1)
    mean, variance, factor = a.layer("bn").blobs
    assert mean.shape == variance.shape == (6,) and (variance > 0).all() and factor.tolist() == [1.0]


def test_last_scale_scales_only_the_final_inner_product():
    plain, scaled = (
        parse_net_text(architectures.caffenet(4, width=0.02)),
        parse_net_text(architectures.caffenet(4, width=0.02)),
    )
    random_weights(plain, seed=0)
    random_weights(scaled, seed=0, last_scale=0.25)
    for x, y in zip(plain.layers, scaled.layers, strict=True):
        factor = 0.25 if x.name == "fc8" else 1.0
        assert all(np.allclose(w * factor, v, rtol=1e-6) for w, v in zip(x.blobs, y.blobs, strict=True))
    assert plain.layer("fc8").blobs[0].any()


def test_random_weights_keep_activations_order_one():
    """He scaling: a float64 forward through 6 InnerProduct+ReLU layers neither explodes nor vanishes."""
    body = 'input: "x" input_shape { dim: 512 dim: 256 }\n'
    blob = "x"
    for i in range(6):
        body += (f'layer {{ name: "fc{i}" type: "InnerProduct" bottom: "{blob}" top: "fc{i}" '
                 f'inner_product_param {{ num_output: 256 }} }}\n'
                 f'layer {{ name: "relu{i}" type: "ReLU" bottom: "fc{i}" top: "fc{i}" }}\n')  # fmt: skip
        blob = f"fc{i}"
    net = parse_net_text(body)
    random_weights(net, seed=0)
    x = np.random.default_rng(0).normal(size=(512, 256))
    for layer in net.layers:
        if layer.type == "InnerProduct":
            x = x @ layer.blobs[0].astype(np.float64).T + layer.blobs[1]
        elif layer.type == "ReLU":
            x = np.maximum(x, 0.0)
    rms = float(np.sqrt((x**2).mean()))
    assert 0.3 < rms < 3.0, rms


@pytest.mark.parametrize("name", ["caffenet", "alexnet", "googlenet", "fc6_generator"])
def test_built_in_prototxts_are_v2_text(name):
    text = getattr(architectures, name)()
    param = schema.NetParameter()
    from google.protobuf import text_format

    text_format.Merge(text, param)  # strict: no unknown fields, no legacy forms
    assert param.layer and not param.layers and not param.input
