"""Reading Caffe files: version upgrades, TEST-phase filtering, weights by name, clear bad-input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from repro.caffe import architectures, load_net, parse_net_text, random_weights, schema, write_net
from repro.errors import BadInput

REFERENCE = Path(__file__).resolve().parents[2] / "shared/reference/prototxt"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference prototxts not available")

TINY = """
name: "tiny"
input: "data"
input_dim: 2 input_dim: 3 input_dim: 6 input_dim: 6
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


SETTINGS = {  # the fields that change the computation, per layer type
    "Convolution": (
        "convolution_param",
        ("num_output", "kernel_size", "stride", "pad", "group", "bias_term"),
    ),
    "Pooling": ("pooling_param", ("pool", "kernel_size", "stride", "pad", "round_mode")),
    "LRN": ("lrn_param", ("local_size", "alpha", "beta", "k", "norm_region")),
    "InnerProduct": ("inner_product_param", ("num_output", "bias_term", "axis", "transpose")),
    "Dropout": ("dropout_param", ("dropout_ratio",)),
    "Concat": ("concat_param", ("axis",)),
}


def signature(net):
    """What must agree between file versions: topology and the settings that change the computation."""
    rows = []
    for layer in net.layers:
        message, fields = SETTINGS.get(layer.type, (None, ()))
        values = [getattr(getattr(layer.params, message), f) for f in fields]
        settings = [list(v) if hasattr(v, "__len__") else v for v in values]
        rows.append((layer.name, layer.type, layer.bottoms, layer.tops, settings))
    return rows[1:]  # the Input layer's name differs (legacy inputs become a layer named "input")


@needs_reference
@pytest.mark.parametrize(
    ("v1", "v2"),
    [
        (
            "caffe__models__bvlc_reference_caffenet__deploy.v1_a6610018",
            "caffe__models__bvlc_reference_caffenet__deploy",
        ),
        ("caffe__models__bvlc_alexnet__deploy.v1_a6610018", "caffe__models__bvlc_alexnet__deploy"),
        ("caffe__models__bvlc_googlenet__deploy.v1_f15210cd", "caffe__models__bvlc_googlenet__deploy"),
    ],
)
def test_v1_reference_upgrades_to_the_v2_reference(v1, v2):
    old, new = load_net(REFERENCE / f"{v1}.prototxt"), load_net(REFERENCE / f"{v2}.prototxt")
    assert signature(old) == signature(new)
    assert old.shapes == new.shapes
    assert old.layers[0].type == "Input" and old.layers[0].name == "input" and old.inputs == ["data"]
    lr = [(s.lr_mult, s.decay_mult) for s in old.layers[1].params.param]
    assert lr in ([], [(1, 1), (2, 0)])  # blobs_lr / weight_decay became ParamSpecs


@needs_reference
def test_v0_places_reference_upgrades():
    net = load_net(REFERENCE / "synthesizing__nets__placesCNN__places205CNN_deploy_updated.prototxt")
    caffenet = load_net(REFERENCE / "synthesizing__nets__caffenet__caffenet.prototxt")
    stage = ["Convolution", "ReLU", "Pooling", "LRN"]
    fc = ["InnerProduct", "ReLU", "Dropout"]
    tail = ["Convolution", "ReLU"] * 3 + ["Pooling"] + fc * 2 + ["InnerProduct", "Softmax"]
    assert [x.type for x in net.layers] == ["Input"] + stage * 2 + tail
    conv2 = net.layer("conv2").params.convolution_param
    assert (conv2.num_output, list(conv2.kernel_size), list(conv2.pad), conv2.group) == (256, [5], [2], 2)
    assert conv2.bias_filler.value == 1.0
    norm1 = net.layer("norm1").params.lrn_param
    assert (norm1.local_size, norm1.alpha, norm1.beta) == (5, pytest.approx(1e-4), 0.75)
    pool5 = net.layer("pool5").params.pooling_param
    assert (pool5.pool, pool5.kernel_size, pool5.stride) == (pool5.MAX, 3, 2)
    assert net.layer("drop6").params.dropout_param.dropout_ratio == 0.5
    assert [(s.lr_mult, s.decay_mult) for s in net.layer("fc6").params.param] == [(1, 1), (2, 0)]
    same = [s for s in signature(caffenet) if s[1] not in ("Dropout",)]
    assert [s for s in signature(net) if s[1] != "Dropout" and s[0] != "fc8"] == [
        s for s in same if s[0] != "fc8"
    ]


def test_v0_padding_layer_folds_into_the_conv():
    text = """input: "data" input_dim: 1 input_dim: 1 input_dim: 5 input_dim: 5
    layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
    layers { layer { name: "conv1" type: "conv" num_output: 2 kernelsize: 3 } bottom: "pad1" top: "conv1" }
    """
    net = parse_net_text(text)
    assert [x.name for x in net.layers] == ["input", "conv1"]
    assert net.layer("conv1").bottoms == ["data"] and list(
        net.layer("conv1").params.convolution_param.pad
    ) == [2]
    assert net.shapes["conv1"] == (1, 2, 7, 7)


def test_legacy_input_forms():
    shape_form = parse_net_text(
        'input: "a" input_shape { dim: 2 dim: 7 } input: "b" input_shape { dim: 2 dim: 3 }'
    )
    assert shape_form.inputs == ["a", "b"] and shape_form.shapes == {"a": (2, 7), "b": (2, 3)}
    dim_form = parse_net_text('input: "x" input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 4')
    assert dim_form.shapes == {"x": (1, 2, 3, 4)}
    with pytest.raises(BadInput, match="input 'x' has no shape"):
        parse_net_text('input: "x"')
    with pytest.raises(BadInput, match="need 4 input_dim values"):
        parse_net_text('input: "x" input_dim: 1 input_dim: 2')


def test_test_phase_filtering():
    text = (
        TINY
        + """
    layer { name: "train_only" type: "Dropout" bottom: "fc" top: "fc" include { phase: TRAIN } }
    layer { name: "not_test" type: "Dropout" bottom: "fc" top: "fc" exclude { phase: TEST } }
    layer { name: "test_only" type: "Power" bottom: "fc" top: "pw" include { phase: TEST } }
    layer { name: "staged" type: "Power" bottom: "fc" top: "st" include { stage: "deploy" } }
    layer { name: "leveled" type: "Power" bottom: "fc" top: "lv" include { min_level: 1 } }
    """
    )
    names = [x.name for x in parse_net_text(text).layers]
    assert names == ["input", "conv", "relu", "fc", "prob", "test_only"]
    staged = [x.name for x in parse_net_text(text + 'state { stage: "deploy" level: 2 }').layers]
    assert staged[-3:] == ["test_only", "staged", "leveled"]


def test_data_layers_are_refused():
    text = (
        'layer { name: "d" type: "Data" top: "data" top: "label" data_param { source: "x" batch_size: 4 } }'
    )
    with pytest.raises(BadInput, match="layer 'd' is a Data layer that reads training data.*Input layer"):
        parse_net_text(text)
    train_only = text[:-1] + 'include { phase: TRAIN } }\ninput: "z" input_shape { dim: 1 }'
    assert parse_net_text(train_only).inputs == ["z"]


def test_unknown_fields_are_skipped():
    text = TINY.replace('name: "relu"', 'name: "relu" future_param { knob: 3 nested { x: "y" } } blob_tag: 7')
    net = parse_net_text("debug_flag: true\nmystery { a: 1 }\n" + text)
    assert [x.name for x in net.layers] == ["input", "conv", "relu", "fc", "prob"]
    assert net.shapes["prob"] == (2, 5)


def test_batch_override():
    net = parse_net_text(TINY, batch=7)
    assert net.shapes["data"] == (7, 3, 6, 6) and net.shapes["prob"] == (7, 5)
    assert list(net.layers[0].params.input_param.shape[0].dim) == [7, 3, 6, 6]
    with pytest.raises(BadInput, match="batch must be at least 1"):
        parse_net_text(TINY, batch=0)


def test_generator_reshape_batch_is_freed():
    text = architectures.fc6_generator(code_size=32, width=1 / 32, batch=1)
    net = parse_net_text(text, batch=3)
    assert list(net.layer("reshape").params.reshape_param.shape.dim) == [0, 8, 4, 4]
    assert net.shapes["deconv0"] == (3, 3, 256, 256)
    # A Reshape that does not hard-code the batch is left alone.
    kept = parse_net_text(
        'input: "x" input_shape { dim: 2 dim: 6 }\n'
        'layer { name: "r" type: "Reshape" bottom: "x" top: "r" reshape_param { shape { dim: 4 dim: 3 } } }'
    )
    assert list(kept.layer("r").params.reshape_param.shape.dim) == [4, 3] and kept.shapes["r"] == (4, 3)


@needs_reference
def test_reference_generator_runs_at_any_batch():
    for name in (
        "synthesizing__nets__upconv__fc6__generator_160",
        "ppgn__nets__generator__noiseless__generator",
    ):
        net = load_net(REFERENCE / f"{name}.prototxt", batch=2)
        assert net.shapes["reshape_defc5"] == (2, 256, 4, 4) and net.shapes["deconv0"] == (2, 3, 256, 256)


def legacy_blob(array: np.ndarray):
    """A V1-era BlobProto: 4-D num/channels/height/width, right-aligned, no `shape`."""
    dims = (1,) * (4 - array.ndim) + array.shape
    return schema.BlobProto(num=dims[0], channels=dims[1], height=dims[2], width=dims[3], data=array.ravel())


def tiny_weights(seed: int = 0) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        "conv": [rng.normal(size=(4, 3, 3, 3)).astype(np.float32), rng.normal(size=4).astype(np.float32)],
        "fc": [rng.normal(size=(5, 64)).astype(np.float32), rng.normal(size=5).astype(np.float32)],
    }


def write_v1_caffemodel(path: Path, weights: dict[str, list[np.ndarray]], types=None) -> None:
    types = types or {"conv": "CONVOLUTION", "fc": "INNER_PRODUCT"}
    model = schema.NetParameter(name="tiny")
    for name, arrays in weights.items():
        enum = schema.V1LayerParameter.LayerType.Value(types[name])
        model.layers.add(name=name, type=enum, blobs=[legacy_blob(a) for a in arrays])
    model.layers.add(name="relu", type=schema.V1LayerParameter.LayerType.Value("RELU"))
    path.write_bytes(model.SerializeToString())


def test_v2_prototxt_with_v1_caffemodel(tmp_path):
    weights = tiny_weights()
    (tmp_path / "tiny.prototxt").write_text(TINY)
    write_v1_caffemodel(tmp_path / "tiny.caffemodel", weights)
    net = load_net(tmp_path / "tiny.prototxt", tmp_path / "tiny.caffemodel")
    for name, arrays in weights.items():
        blobs = net.layer(name).blobs
        assert [b.shape for b in blobs] == [
            a.shape for a in arrays
        ]  # (1,1,5,64) -> (5,64), (1,1,1,5) -> (5,)
        assert all(b.dtype == np.float32 and np.array_equal(b, a) for b, a in zip(blobs, arrays, strict=True))
    assert net.layer("relu").blobs == [] and net.layer("prob").blobs == []


def test_v0_caffemodel_weights(tmp_path):
    weights = tiny_weights(1)
    model = schema.NetParameter()
    for name, v0_type in (("conv", "conv"), ("fc", "innerproduct")):
        model.layers.add(
            layer={"name": name, "type": v0_type, "blobs": [legacy_blob(a) for a in weights[name]]}
        )
    (tmp_path / "m.caffemodel").write_bytes(model.SerializeToString())
    (tmp_path / "tiny.prototxt").write_text(TINY)
    net = load_net(tmp_path / "tiny.prototxt", tmp_path / "m.caffemodel")
    assert np.array_equal(net.layer("fc").blobs[0], weights["fc"][0])


@needs_reference
def test_v1_prototxt_with_v2_caffemodel(tmp_path):
    v1 = REFERENCE / "caffe__models__bvlc_alexnet__deploy.v1_a6610018.prototxt"
    small = parse_net_text(architectures.alexnet(width=0.05, input_size=67))
    random_weights(small, seed=3)
    write_net(small, tmp_path / "a.prototxt", tmp_path / "a.caffemodel")
    # The V1 reference has full-width layers, so matching by name reports the first shape difference.
    with pytest.raises(
        BadInput, match=r"layer 'conv1' \(Convolution\) blob 0: expected shape \(96, 3, 11, 11\)"
    ):
        load_net(v1, tmp_path / "a.caffemodel")
    text = (
        v1.read_text().replace("num_output: 96", "num_output: 4").replace("num_output: 256", "num_output: 12")
    )
    text = text.replace("num_output: 384", "num_output: 20").replace("num_output: 4096", "num_output: 204")
    text = text.replace("input_dim: 227", "input_dim: 67")
    net = parse_net_text(text)
    assert [x.type for x in net.layers] == [x.type for x in small.layers]
    (tmp_path / "v1.prototxt").write_text(text)
    loaded = load_net(tmp_path / "v1.prototxt", tmp_path / "a.caffemodel")
    for a, b in zip(loaded.layers, small.layers, strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(a.blobs, b.blobs, strict=True))


# Bad input: one BadInput each, naming the file and what is wrong.


def test_missing_files(tmp_path):
    with pytest.raises(BadInput, match=r"nope\.prototxt: prototxt not found"):
        load_net(tmp_path / "nope.prototxt")
    (tmp_path / "tiny.prototxt").write_text(TINY)
    with pytest.raises(BadInput, match=r"nope\.caffemodel: caffemodel not found"):
        load_net(tmp_path / "tiny.prototxt", tmp_path / "nope.caffemodel")


def test_syntax_error_names_the_line(tmp_path):
    broken = TINY.replace('top: "fc" inner_product_param', 'top: "fc" inner_product_param {{')
    (tmp_path / "bad.prototxt").write_text(broken)
    line = broken.splitlines().index(next(x for x in broken.splitlines() if "{{" in x)) + 1
    with pytest.raises(BadInput, match=rf"bad\.prototxt: prototxt syntax error at line {line}: "):
        load_net(tmp_path / "bad.prototxt")


def test_syntax_error_without_a_position_from_protobuf_still_names_the_line(tmp_path):
    """protobuf gives no line for a bad value of a field the schema skips; the reader finds it."""
    (tmp_path / "bad.prototxt").write_text(TINY + "\nmystery_setting: }\n")
    line = len(TINY.splitlines()) + 2
    with pytest.raises(BadInput, match=rf"bad\.prototxt: prototxt syntax error at line {line}: .*column 18"):
        load_net(tmp_path / "bad.prototxt")


@pytest.mark.parametrize("text", ["", "\n# nothing but a comment\n", 'name: "empty"'])
def test_empty_prototxt_says_so(tmp_path, text):
    (tmp_path / "empty.prototxt").write_text(text)
    with pytest.raises(BadInput, match=r"empty\.prototxt: the prototxt defines no layers and no inputs"):
        load_net(tmp_path / "empty.prototxt")


def test_binary_given_as_prototxt(tmp_path):
    (tmp_path / "w.caffemodel").write_bytes(b"\x0a\x04tiny\xff\xfe\x80")
    with pytest.raises(BadInput, match="prototxt is not text"):
        load_net(tmp_path / "w.caffemodel")


@pytest.mark.parametrize("damage", ["truncated", "text", "garbage"])
def test_broken_caffemodel(tmp_path, damage):
    net = parse_net_text(TINY)
    random_weights(net, seed=0)
    write_net(net, tmp_path / "t.prototxt", tmp_path / "t.caffemodel")
    data = (tmp_path / "t.caffemodel").read_bytes()
    broken = {"truncated": data[: len(data) // 2], "text": TINY.encode(), "garbage": b"\xff" * 64}[damage]
    (tmp_path / "t.caffemodel").write_bytes(broken)
    with pytest.raises(BadInput, match=r"t\.caffemodel: not a valid caffemodel"):
        load_net(tmp_path / "t.prototxt", tmp_path / "t.caffemodel")


# A net without learnable layers: what Caffe's Net::ToProto writes for it holds no blobs at all.
WEIGHTLESS = """
name: "plain"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
layer { name: "relu" type: "ReLU" bottom: "data" top: "relu" }
layer { name: "pool" type: "Pooling" bottom: "relu" top: "pool"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "norm" type: "LRN" bottom: "pool" top: "norm" lrn_param { local_size: 3 } }
layer { name: "pow" type: "Power" bottom: "norm" top: "pow" power_param { power: 2 shift: 1 } }
layer { name: "sum" type: "Eltwise" bottom: "pow" bottom: "norm" top: "sum" }
layer { name: "gain" type: "Scale" bottom: "sum" bottom: "pow" top: "gain" scale_param { axis: 0 } }
layer { name: "crop" type: "Crop" bottom: "data" bottom: "sum" top: "crop" crop_param { axis: 2 offset: 1 } }
layer { name: "cat" type: "Concat" bottom: "gain" bottom: "crop" top: "cat" }
layer { name: "drop" type: "Dropout" bottom: "cat" top: "cat" }
layer { name: "flat" type: "Flatten" bottom: "cat" top: "flat" }
layer { name: "r" type: "Reshape" bottom: "flat" top: "r" reshape_param { shape { dim: 0 dim: -1 dim: 4 } } }
layer { name: "prob" type: "Softmax" bottom: "r" top: "prob" }
"""


def weightless_caffemodels(path: Path) -> dict[str, bytes]:
    """Every form a weightless net's caffemodel comes in: zero bytes, a named NetParameter with no layers,
    repro's writer (a blobless entry per layer, as Caffe writes it) and a V1 file with blobless entries."""
    net = parse_net_text(WEIGHTLESS)
    write_net(net, path / "w.prototxt", path / "w.caffemodel")
    v1 = schema.NetParameter(name="plain")
    for name, kind in (("relu", "RELU"), ("pool", "POOLING"), ("prob", "SOFTMAX")):
        v1.layers.add(name=name, type=schema.V1LayerParameter.LayerType.Value(kind))
    return {
        "zero-byte": b"",
        "named": schema.NetParameter(name="plain").SerializeToString(),
        "blobless": (path / "w.caffemodel").read_bytes(),
        "v1-blobless": v1.SerializeToString(),
    }


@pytest.mark.parametrize("form", ["zero-byte", "named", "blobless", "v1-blobless"])
def test_weightless_net_takes_a_caffemodel_without_blobs(tmp_path, form):
    (tmp_path / "plain.prototxt").write_text(WEIGHTLESS)
    (tmp_path / "plain.caffemodel").write_bytes(weightless_caffemodels(tmp_path)[form])
    net = load_net(tmp_path / "plain.prototxt", tmp_path / "plain.caffemodel")
    assert all(layer.blobs == [] for layer in net.layers)
    assert [x.type for x in net.layers] == [x.type for x in parse_net_text(WEIGHTLESS).layers]
    assert net.shapes["pool"] == (2, 3, 4, 4) and net.shapes["prob"] == (2, 24, 4)


@pytest.mark.parametrize("form", ["zero-byte", "named"])
def test_empty_caffemodel_for_a_net_with_weights(tmp_path, form):
    (tmp_path / "t.prototxt").write_text(TINY)
    data = {"zero-byte": b"", "named": schema.NetParameter(name="tiny").SerializeToString()}[form]
    (tmp_path / "t.caffemodel").write_bytes(data)
    with pytest.raises(BadInput) as error:
        load_net(tmp_path / "t.prototxt", tmp_path / "t.caffemodel")
    message = str(error.value)
    assert message.startswith(
        f"{tmp_path / 't.caffemodel'}: layer 'conv' (Convolution) needs 2 weight blob(s)"
    )
    assert "[(4, 3, 3, 3), (4,)]" in message and "caffemodel has no layers at all" in message


def test_weightless_layer_with_blobs_is_refused(tmp_path):
    (tmp_path / "plain.prototxt").write_text(WEIGHTLESS)
    model = schema.NetParameter(name="plain")
    model.layer.add(name="relu", type="ReLU", blobs=[legacy_blob(np.ones(3, np.float32))])
    (tmp_path / "plain.caffemodel").write_bytes(model.SerializeToString())
    with pytest.raises(
        BadInput, match=r"layer 'relu' \(ReLU\): expected 0 weight blob\(s\), caffemodel has 1"
    ):
        load_net(tmp_path / "plain.prototxt", tmp_path / "plain.caffemodel")


def test_other_protobuf_is_not_an_empty_caffemodel(tmp_path):
    """With no layers, top-level fields outside NetParameter (here an ONNX model's) mean no caffemodel."""
    import onnx
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info("data", TensorProto.FLOAT, [2, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["data"], ["relu"])], "g", [value], [])
    (tmp_path / "plain.prototxt").write_text(WEIGHTLESS)
    (tmp_path / "plain.caffemodel").write_bytes(helper.make_model(graph).SerializeToString())
    assert onnx.load(tmp_path / "plain.caffemodel").graph.node[0].op_type == "Relu"
    with pytest.raises(
        BadInput, match=r"plain\.caffemodel: not a valid caffemodel \(no layers, and top-level"
    ):
        load_net(tmp_path / "plain.prototxt", tmp_path / "plain.caffemodel")


def test_bottom_nobody_produces():
    text = TINY.replace('bottom: "conv" top: "fc"', 'bottom: "conv5" top: "fc"')
    with pytest.raises(BadInput, match="layer 'fc' takes bottom 'conv5', which no earlier layer"):
        parse_net_text(text, "net.prototxt")


def test_wrong_weight_shape(tmp_path):
    weights = tiny_weights()
    weights["fc"][0] = weights["fc"][0][:, :60]
    (tmp_path / "tiny.prototxt").write_text(TINY)
    write_v1_caffemodel(tmp_path / "tiny.caffemodel", weights)
    with pytest.raises(BadInput) as error:
        load_net(tmp_path / "tiny.prototxt", tmp_path / "tiny.caffemodel")
    message = str(error.value)
    assert "tiny.caffemodel" in message and "layer 'fc'" in message
    assert "expected shape (5, 64)" in message and "(1, 1, 5, 60)" in message


def test_wrong_blob_count(tmp_path):
    weights = tiny_weights()
    weights["conv"] = weights["conv"][:1]
    (tmp_path / "tiny.prototxt").write_text(TINY)
    write_v1_caffemodel(tmp_path / "tiny.caffemodel", weights)
    with pytest.raises(
        BadInput, match="layer 'conv' \\(Convolution\\): expected 2 weight blob\\(s\\), caffemodel has 1"
    ):
        load_net(tmp_path / "tiny.prototxt", tmp_path / "tiny.caffemodel")


def test_missing_weights(tmp_path):
    weights = tiny_weights()
    del weights["fc"]
    (tmp_path / "tiny.prototxt").write_text(TINY)
    write_v1_caffemodel(tmp_path / "tiny.caffemodel", weights)
    with pytest.raises(
        BadInput, match=r"layer 'fc' \(InnerProduct\) needs 2 weight blob\(s\).*no layer of that name"
    ):
        load_net(tmp_path / "tiny.prototxt", tmp_path / "tiny.caffemodel")
    assert load_net(tmp_path / "tiny.prototxt").layer("fc").blobs == []  # no caffemodel: no weights needed


def test_both_include_and_exclude_is_refused():
    text = TINY.replace('name: "relu"', 'name: "relu" include { phase: TEST } exclude { phase: TRAIN }')
    with pytest.raises(BadInput, match="layer 'relu' gives both include and exclude rules"):
        parse_net_text(text)
