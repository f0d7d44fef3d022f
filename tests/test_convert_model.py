"""`to_onnx` as a whole: graph interface, batch independence, refusals, and `save_onnx`."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import repro.convert.save
from repro.caffe import Layer, Net, parse_net_text, random_weights
from repro.convert import save_onnx, to_onnx
from repro.errors import BadInput
from tests import caffe_reference
from tests.test_convert_layers import TOL, L, net_from, rel_error, session

# Every layer here is shaped by the batch somewhere: reshape copies, IP on a later axis, crops, flatten.
BATCH_NET = (
    L("conv", "Convolution", params="convolution_param { num_output: 4 kernel_size: 3 }")
    + L("relu", "ReLU", "conv", "conv")
    + L("pool", "Pooling", "conv", params="pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }")
    + L("crop", "Crop", "pool ref", params="crop_param { offset: 1 }")
    + L("r", "Reshape", "crop", params="reshape_param { shape { dim: 0 dim: 2 dim: -1 } }")
    + L("ip", "InnerProduct", "r", params="inner_product_param { num_output: 3 axis: 2 }")
    + L("flat", "Flatten", "ip")
    + L("sc", "Scale", "flat w", params="scale_param { axis: 0 }")
    + L("prob", "Softmax", "sc")
)


def batch_net(batch: int):
    return net_from(BATCH_NET, {"data": (batch, 2, 9, 9), "ref": (batch, 4, 2, 2), "w": (batch, 6)})


def test_graph_interface():
    net = batch_net(2)
    model = to_onnx(net)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17 and model.ir_version <= 8
    assert [i.name for i in model.graph.input] == ["data", "ref", "w"]
    assert [o.name for o in model.graph.output] == net.outputs == ["prob"]
    assert all(t.name not in net.shapes for t in model.graph.initializer)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
    assert shapes["pool"] == list(net.shapes["pool"]) and shapes["ip"] == list(net.shapes["ip"])


def test_dynamic_batch_runs_at_any_batch():
    net2 = batch_net(2)
    model = to_onnx(net2, ["prob", "ip", "crop"], dynamic_batch=True)
    dims = {v.name: v.type.tensor_type.shape.dim for v in [*model.graph.input, *model.graph.output]}
    assert dims["data"][0].dim_param == "batch" and dims["ip"][0].dim_param == "batch"
    assert [d.dim_value for d in dims["ip"][1:]] == list(net2.shapes["ip"][1:])
    net5 = batch_net(5)
    for layer, trained in zip(net5.layers, net2.layers, strict=True):
        layer.blobs = trained.blobs
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(net5.shapes[n]).astype(np.float32) for n in net5.inputs}
    got = session(model).run(["prob", "ip", "crop"], feeds)
    want = caffe_reference.forward(net5, feeds)
    for name, value in zip(["prob", "ip", "crop"], got, strict=True):
        assert value.shape == net5.shapes[name]
        assert rel_error(value, want[name]) <= TOL


def test_unknown_layer_type_names_layer_type_and_supported():
    net = net_from('layer { name: "r" type: "ReLU" bottom: "data" top: "r" }', {"data": (1, 3)})
    net.layers[1].type = "PReLU"  # a type no converter handles (shape inference ran before the change)
    with pytest.raises(BadInput) as e:
        to_onnx(net)
    message = str(e.value)
    assert "'r'" in message and "PReLU" in message and "Convolution" in message and "InnerProduct" in message


def test_pooling_that_onnx_cannot_express_is_refused():
    """Caffe keeps a window starting past the input when pad is 0 (stride > kernel); ONNX/torch drop it."""
    net = net_from(
        L("p", "Pooling", params="pooling_param { kernel_size: 1 stride: 3 }"),
        {"data": (1, 1, 5, 5)},
    )
    assert net.shapes["p"] == (1, 1, 3, 3)
    with pytest.raises(
        BadInput, match=r"'p'.*ONNX pooling \(ceil_mode=1\) gives \(2, 2\) where Caffe gives \(3, 3\)"
    ):
        to_onnx(net)


def test_input_rewritten_in_place_is_refused():
    net = net_from(
        L("pw", "Power", "data", "data", "power_param { scale: 2 }"),
        {"data": (1, 3)},
    )
    with pytest.raises(BadInput, match="rewrites the net input 'data'"):
        to_onnx(net)


def test_missing_weights_are_reported():
    net = parse_net_text(
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 } } }\n'
        + L("ip", "InnerProduct", params="inner_product_param { num_output: 2 }")
    )
    with pytest.raises(BadInput, match=r"'ip'.*weight blob"):
        to_onnx(net)


def test_outputs_may_name_any_blob_but_not_unknown_ones():
    net = batch_net(1)
    assert [o.name for o in to_onnx(net, ["conv", "pool"]).graph.output] == ["conv", "pool"]
    with pytest.raises(BadInput, match="'nope'.*blobs are: data, ref, w, conv"):
        to_onnx(net, ["prob", "nope"])
    with pytest.raises(BadInput, match="'ref' is a net input"):
        to_onnx(net, ["prob", "ref"])


def _run(path_or_model, feeds):
    source = path_or_model if isinstance(path_or_model, str) else path_or_model.SerializeToString()
    sess = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def test_save_small_and_external(tmp_path, monkeypatch):
    net = batch_net(1)
    model = to_onnx(net)
    feeds = {n: np.ones(net.shapes[n], np.float32) for n in net.inputs}
    expected = _run(model, feeds)

    save_onnx(model, tmp_path / "inline.onnx")
    assert not (tmp_path / "inline.onnx.data").exists()
    np.testing.assert_array_equal(_run(str(tmp_path / "inline.onnx"), feeds), expected)

    monkeypatch.setattr(repro.convert.save, "EXTERNAL_DATA_BYTES", 100)
    monkeypatch.setattr(repro.convert.save, "_INLINE_BYTES", 64)
    before = model.SerializeToString()
    save_onnx(model, tmp_path / "big.onnx")
    assert model.SerializeToString() == before  # the caller's model keeps its weights
    header = onnx.load(tmp_path / "big.onnx", load_external_data=False)
    external = [t.name for t in header.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert "conv/weight" in external and "ip/weight" in external
    assert (tmp_path / "big.onnx").stat().st_size < len(before)
    onnx.checker.check_model(str(tmp_path / "big.onnx"))
    np.testing.assert_array_equal(_run(str(tmp_path / "big.onnx"), feeds), expected)
    reloaded = onnx.load(tmp_path / "big.onnx")
    np.testing.assert_array_equal(_run(reloaded, feeds), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data", "inline.onnx"]


def test_unknown_layer_in_a_handmade_net_without_shapes():
    net = Net("n", [Layer("in", "Input", [], ["x"], None)], source="hand.prototxt")
    with pytest.raises(BadInput, match="hand.prototxt: the net has no inferred blob shapes"):
        to_onnx(net)


def test_random_weights_are_what_the_model_holds():
    net = batch_net(1)
    random_weights(net, 7)
    model = to_onnx(net)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(weights["conv/weight"], net.layer("conv").blobs[0])
    np.testing.assert_array_equal(weights["ip/weight"], net.layer("ip").blobs[0])


@pytest.mark.parametrize(
    "layer,message",
    [
        (L("p", "Pooling", params="pooling_param { pool: STOCHASTIC kernel_size: 2 }"), "STOCHASTIC"),
        (L("bn", "BatchNorm", params="batch_norm_param { use_global_stats: false }"), "batch statistics"),
        (L("n", "LRN", params="lrn_param { local_size: 4 }"), "local_size must be odd"),
    ],
)
def test_layers_without_a_faithful_conversion_are_refused(layer, message):
    net = net_from(layer, {"data": (1, 2, 4, 4)})
    with pytest.raises(BadInput, match=message):
        to_onnx(net)
