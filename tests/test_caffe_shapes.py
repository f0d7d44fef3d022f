"""Caffe shape inference against the sizes Caffe itself reports (pooling_layer.cpp, deconv_layer.cpp, ...).

Expected numbers come from Caffe's C++ formulas worked by hand and from the published architectures
(CaffeNet 227 -> 55 -> 27 -> 13 -> 6, GoogLeNet's ceil pools 112 -> 56 -> 28 -> 14 -> 7), never from the
code under test.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from repro.caffe import architectures, infer_shapes, load_net, parse_net_text, weight_shapes
from repro.caffe.shapes import RULES, pooled_size
from repro.errors import BadInput

REFERENCE = Path(__file__).resolve().parents[2] / "shared/reference/prototxt"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference prototxts not available")


def reference(name: str) -> Path:
    return REFERENCE / f"{name}.prototxt"


def net(body: str, *shape: int):
    dims = " ".join(f"dim: {d}" for d in shape)
    return parse_net_text(f'input: "data" input_shape {{ {dims} }}\n{body}')


def layer(name: str, type_: str, bottoms: list[str], tops: list[str] | None = None, params: str = "") -> str:
    links = "".join(f' bottom: "{b}"' for b in bottoms) + "".join(f' top: "{t}"' for t in tops or [name])
    return f'layer {{ name: "{name}" type: "{type_}"{links} {params} }}\n'


def conv(name: str, settings: str, type_: str = "Convolution") -> str:
    return layer(name, type_, ["data"], params=f"convolution_param {{ {settings} }}")


def pool(name: str, settings: str) -> str:
    return layer(name, "Pooling", ["data"], params=f"pooling_param {{ {settings} }}")


CAFFENET_SHAPES = {
    "conv1": (1, 96, 55, 55),
    "pool1": (1, 96, 27, 27),
    "norm1": (1, 96, 27, 27),
    "conv2": (1, 256, 27, 27),
    "pool2": (1, 256, 13, 13),
    "norm2": (1, 256, 13, 13),
    "conv3": (1, 384, 13, 13),
    "conv4": (1, 384, 13, 13),
    "conv5": (1, 256, 13, 13),
    "pool5": (1, 256, 6, 6),
    "fc6": (1, 4096),
    "fc7": (1, 4096),
}
ALEXNET_SHAPES = CAFFENET_SHAPES | {"norm1": (1, 96, 55, 55), "norm2": (1, 256, 27, 27), "prob": (1, 1000)}
GOOGLENET_SHAPES = {
    "conv1/7x7_s2": (1, 64, 112, 112),
    "pool1/3x3_s2": (1, 64, 56, 56),  # floor would give 55
    "conv2/3x3": (1, 192, 56, 56),
    "pool2/3x3_s2": (1, 192, 28, 28),  # floor: 27
    "inception_3a/output": (1, 256, 28, 28),
    "inception_3b/output": (1, 480, 28, 28),
    "pool3/3x3_s2": (1, 480, 14, 14),  # floor: 13
    "inception_4e/output": (1, 832, 14, 14),
    "pool4/3x3_s2": (1, 832, 7, 7),  # floor: 6
    "inception_5b/output": (1, 1024, 7, 7),
    "pool5/7x7_s1": (1, 1024, 1, 1),
    "loss3/classifier": (1, 1000),
    "prob": (1, 1000),
}
GENERATOR_SHAPES = {
    "defc5": (1, 4096),
    "reshape_defc5": (1, 256, 4, 4),
    "deconv5": (1, 256, 8, 8),
    "conv5_1": (1, 512, 8, 8),
    "deconv4": (1, 256, 16, 16),
    "conv4_1": (1, 256, 16, 16),
    "deconv3": (1, 128, 32, 32),
    "conv3_1": (1, 128, 32, 32),
    "deconv2": (1, 64, 64, 64),
    "deconv1": (1, 32, 128, 128),
    "deconv0": (1, 3, 256, 256),
}
VISION_NETS = {
    "caffe__models__bvlc_reference_caffenet__deploy": CAFFENET_SHAPES | {"fc8": (1, 1000), "prob": (1, 1000)},
    "caffe__models__bvlc_reference_caffenet__deploy.v1_a6610018": CAFFENET_SHAPES | {"prob": (1, 1000)},
    "caffe__models__bvlc_alexnet__deploy": ALEXNET_SHAPES,
    "caffe__models__bvlc_alexnet__deploy.v1_a6610018": ALEXNET_SHAPES,
    "synthesizing__nets__caffenet__caffenet": CAFFENET_SHAPES | {"prob": (1, 1000)},
    "ppgn__nets__caffenet__caffenet": CAFFENET_SHAPES | {"log": (1, 1000)},
    "synthesizing__nets__placesCNN__places205CNN_deploy_updated": CAFFENET_SHAPES | {"prob": (1, 205)},
    "ppgn__nets__placesCNN__places205CNN_deploy_updated": CAFFENET_SHAPES | {"prob": (1, 205)},
    "caffe__models__bvlc_googlenet__deploy": GOOGLENET_SHAPES,
    "caffe__models__bvlc_googlenet__deploy.v1_f15210cd": GOOGLENET_SHAPES,
    "synthesizing__nets__googlenet__bvlc_googlenet_updated": GOOGLENET_SHAPES,
    "synthesizing__nets__upconv__fc6__generator": GENERATOR_SHAPES,
    "synthesizing__nets__upconv__fc7__generator": GENERATOR_SHAPES,
    "synthesizing__nets__upconv__fc6__generator_160": GENERATOR_SHAPES,
    "ppgn__nets__generator__noiseless__generator": GENERATOR_SHAPES,
    "ppgn__nets__generator__noiseless__example_generator_batchsize": GENERATOR_SHAPES,
    "synthesizing__nets__upconv__pool5__generator": {
        "feat": (1, 256, 6, 6),
        "Rconv6": (1, 512, 6, 6),
        "Rconv7": (1, 512, 6, 6),
        "Rconv8": (1, 512, 4, 4),
        "deconv5": (1, 256, 8, 8),
        "deconv0": (1, 3, 256, 256),
    },
}


@needs_reference
def test_every_vision_reference_is_covered():
    vision = {p.stem for p in REFERENCE.glob("*.prototxt") if "lrcn" not in p.name}
    assert vision == set(VISION_NETS)


@needs_reference
@pytest.mark.parametrize("name", sorted(VISION_NETS))
def test_reference_prototxt_shapes_match_caffe(name):
    shapes = load_net(reference(name), batch=1).shapes
    assert {blob: shapes[blob] for blob in VISION_NETS[name]} == VISION_NETS[name]


@needs_reference
def test_reference_batch_is_kept_without_override():
    assert load_net(reference("caffe__models__bvlc_reference_caffenet__deploy")).shapes["prob"] == (10, 1000)
    assert load_net(reference("synthesizing__nets__upconv__fc6__generator_160")).shapes["deconv0"] == (
        160,
        3,
        256,
        256,
    )


@needs_reference
def test_reference_generator_weight_shapes():
    gen = load_net(reference("synthesizing__nets__upconv__fc6__generator"))
    assert weight_shapes(gen, gen.layer("defc5")) == [(4096, 4096), (4096,)]
    assert weight_shapes(gen, gen.layer("deconv5")) == [(256, 256, 4, 4), (256,)]
    assert weight_shapes(gen, gen.layer("conv5_1")) == [(256, 512, 3, 3), (512,)]  # (C_in, C_out, k, k)
    assert weight_shapes(gen, gen.layer("deconv0")) == [(32, 3, 4, 4), (3,)]
    total = sum(math.prod(s) for layer in gen.layers for s in weight_shapes(gen, layer))
    assert total == 56_097_891  # the parameter count of the published generator


@needs_reference
def test_reference_caffenet_weight_shapes_have_groups():
    caffenet = load_net(reference("caffe__models__bvlc_reference_caffenet__deploy"))
    assert weight_shapes(caffenet, caffenet.layer("conv2")) == [(256, 48, 5, 5), (256,)]
    assert weight_shapes(caffenet, caffenet.layer("fc6")) == [(4096, 9216), (4096,)]
    assert weight_shapes(caffenet, caffenet.layer("relu1")) == []


BUILT_IN = {
    "caffe__models__bvlc_reference_caffenet__deploy": architectures.caffenet,
    "caffe__models__bvlc_alexnet__deploy": architectures.alexnet,
    "caffe__models__bvlc_googlenet__deploy": architectures.googlenet,
    "synthesizing__nets__upconv__fc6__generator": architectures.fc6_generator,
}


@needs_reference
@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_built_in_architecture_equals_reference(name):
    ours = parse_net_text(BUILT_IN[name](), batch=1)
    theirs = load_net(reference(name), batch=1)
    assert ours.shapes == theirs.shapes
    # Same layers (beyond the Input layer), names included, so real caffemodels attach by name.
    assert [(x.name, x.type, x.bottoms, x.tops) for x in ours.layers[1:]] == [
        (x.name, x.type, x.bottoms, x.tops) for x in theirs.layers[1:]
    ]
    for a, b in zip(ours.layers, theirs.layers, strict=True):
        assert weight_shapes(ours, a) == weight_shapes(theirs, b)
        for field in ("lrn_param", "dropout_param", "relu_param", "pooling_param"):
            assert getattr(a.params, field) == getattr(b.params, field), (a.name, field)


def test_built_in_small_variants():
    small = parse_net_text(architectures.googlenet(10, width=0.125, batch=2))
    assert small.shapes["pool4/3x3_s2"][2:] == (7, 7) and small.shapes["prob"] == (2, 10)
    caffenet = parse_net_text(architectures.caffenet(5, width=0.05))
    assert caffenet.shapes["pool5"] == (1, 12, 6, 6)  # 256 * 0.05, kept even for group 2
    assert caffenet.shapes["prob"] == (1, 5)
    alexnet = parse_net_text(architectures.alexnet(3, input_size=99))
    assert alexnet.shapes["pool5"] == (1, 256, 2, 2)  # 99 -> 23 -> 11 -> 5 -> 2
    generator = parse_net_text(architectures.fc6_generator(code_size=64, width=1 / 16, batch=2))
    assert generator.shapes["feat"] == (2, 64)
    assert generator.shapes["reshape_defc5"] == (2, 16, 4, 4) and generator.shapes["deconv0"] == (
        2,
        3,
        256,
        256,
    )


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pad", "expected"),
    [
        (5, 2, 2, 1, 3),  # ceil gives 4; the last window would start in the padding: dropped
        (112, 3, 2, 0, 56),  # ceil: GoogLeNet pool1 (floor gives 55)
        (55, 3, 2, 0, 27),  # exact: CaffeNet pool1
        (3, 2, 2, 1, 2),  # ceil gives 3, the last window starts at 4 >= 3 + 1: dropped
        (7, 3, 2, 1, 4),  # ceil 4, last window starts at 6 < 7 + 1: kept
        (28, 3, 1, 1, 28),  # inception pool
        (7, 7, 1, 0, 1),  # GoogLeNet pool5
    ],
)
def test_pooled_size(size, kernel, stride, pad, expected):
    assert pooled_size(size, kernel, stride, pad, ceil=True, any_pad=pad > 0) == expected


def test_pooling_variants():
    body = (
        pool("drop", "pool: MAX kernel_size: 2 stride: 2 pad: 1")
        + pool("floor", "kernel_size: 2 stride: 2 round_mode: FLOOR")
        + pool("ceil", "pool: AVE kernel_size: 2 stride: 2")
        + pool("hw", "kernel_h: 3 kernel_w: 1 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0")
        + pool("global", "pool: AVE global_pooling: true")
    )
    shapes = net(body, 2, 3, 5, 7).shapes
    assert shapes["drop"] == (2, 3, 3, 4)  # W: ceil((7+2-2)/2)+1 = 5, start 8 >= 7+1: dropped to 4
    assert shapes["floor"] == (2, 3, 2, 3)
    assert shapes["ceil"] == (2, 3, 3, 4)
    assert shapes["hw"] == (2, 3, 3, 7)  # H: ceil((5+2-3)/2)+1 = 3, kept; W: 7 windows of width 1
    assert shapes["global"] == (2, 3, 1, 1)


def test_convolution_forms_and_weights():
    body = (
        conv("c", "num_output: 6 kernel_size: 3 pad: 1 group: 2")
        + conv("hw", "num_output: 4 kernel_h: 3 kernel_w: 1 stride_h: 2 stride_w: 1 pad_h: 1")
        + conv("two", "num_output: 4 kernel_size: 3 kernel_size: 5 stride: 1 stride: 2")
        + conv("dil", "num_output: 2 kernel_size: 3 dilation: 2 bias_term: false")
    )
    n = net(body, 1, 4, 9, 11)
    assert n.shapes["c"] == (1, 6, 9, 11)
    assert weight_shapes(n, n.layer("c")) == [(6, 2, 3, 3), (6,)]
    assert n.shapes["hw"] == (1, 4, 5, 11)  # H: (9+2-3)//2+1 = 5; W: (11-1)//1+1
    assert weight_shapes(n, n.layer("hw")) == [(4, 4, 3, 1), (4,)]
    assert n.shapes["two"] == (1, 4, 7, 4)  # H: 9-3+1; W: (11-5)//2+1
    assert n.shapes["dil"] == (1, 2, 5, 7)  # extent 5
    assert weight_shapes(n, n.layer("dil")) == [(2, 4, 3, 3)]


def test_deconvolution_size_and_weight_layout():
    body = conv("up", "num_output: 6 kernel_size: 4 stride: 2 pad: 1 group: 2", "Deconvolution") + conv(
        "dil", "num_output: 3 kernel_size: 3 dilation: 2", "Deconvolution"
    )
    n = net(body, 2, 4, 5, 7)
    assert n.shapes["up"] == (2, 6, 10, 14)  # s(H-1) + k - 2p
    assert weight_shapes(n, n.layer("up")) == [(4, 3, 4, 4), (6,)]  # (C_in, C_out/group, k, k)
    assert n.shapes["dil"] == (2, 3, 9, 11)  # (H-1) + 2*(3-1) + 1


def test_inner_product_axis_and_transpose():
    body = layer("ip", "InnerProduct", ["data"], params="inner_product_param { num_output: 7 }") + layer(
        "ip2",
        "InnerProduct",
        ["data"],
        params="inner_product_param { num_output: 5 axis: 2 transpose: true }",
    )
    n = net(body, 2, 3, 4, 5)
    assert n.shapes["ip"] == (2, 7)
    assert weight_shapes(n, n.layer("ip")) == [(7, 60), (7,)]
    assert n.shapes["ip2"] == (2, 3, 5)
    assert weight_shapes(n, n.layer("ip2")) == [(20, 5), (5,)]


def test_concat_slice_split():
    body = (
        layer("a", "Split", ["data"], ["a1", "a2"])
        + layer("cat", "Concat", ["a1", "a2"])
        + layer("cat0", "Concat", ["a1", "a2"], params="concat_param { concat_dim: 0 }")
        + layer("catw", "Concat", ["a1", "a2"], params="concat_param { axis: -1 }")
        + layer(
            "s", "Slice", ["cat"], ["s1", "s2", "s3"], params="slice_param { slice_point: 1 slice_point: 4 }"
        )
        + layer("even", "Slice", ["cat"], ["e1", "e2"], params="slice_param { slice_dim: 3 }")
    )
    shapes = net(body, 2, 3, 4, 6).shapes
    assert shapes["a1"] == shapes["a2"] == (2, 3, 4, 6)
    assert (
        shapes["cat"] == (2, 6, 4, 6) and shapes["cat0"] == (4, 3, 4, 6) and shapes["catw"] == (2, 3, 4, 12)
    )
    assert (shapes["s1"], shapes["s2"], shapes["s3"]) == ((2, 1, 4, 6), (2, 3, 4, 6), (2, 2, 4, 6))
    assert shapes["e1"] == shapes["e2"] == (2, 6, 4, 3)


def test_reshape_flatten_crop():
    body = (
        layer("r", "Reshape", ["data"], params="reshape_param { shape { dim: 0 dim: -1 dim: 4 } }")
        + layer(
            "part",
            "Reshape",
            ["data"],
            params="reshape_param { shape { dim: 2 dim: 3 } axis: 1 num_axes: 1 }",
        )
        + layer("ins", "Reshape", ["data"], params="reshape_param { shape { dim: 1 } axis: 1 num_axes: 0 }")
        + layer("f", "Flatten", ["data"])
        + layer("f2", "Flatten", ["data"], params="flatten_param { axis: 1 end_axis: 2 }")
        + layer("small", "Pooling", ["data"], params="pooling_param { kernel_size: 2 stride: 2 }")
        + layer("crop", "Crop", ["data", "small"], params="crop_param { axis: 2 offset: 1 offset: 2 }")
    )
    shapes = net(body, 2, 6, 4, 8).shapes
    assert shapes["r"] == (2, 48, 4)
    assert shapes["part"] == (2, 2, 3, 4, 8)
    assert shapes["ins"] == (2, 1, 6, 4, 8)
    assert shapes["f"] == (2, 192) and shapes["f2"] == (2, 24, 8)
    assert shapes["crop"] == (2, 6, 2, 4)


def test_scale_bias_batchnorm_eltwise_weights():
    body = (
        layer("bn", "BatchNorm", ["data"])
        + layer("sc", "Scale", ["bn"], params="scale_param { bias_term: true }")
        + layer("sc2", "Scale", ["data"], params="scale_param { axis: 1 num_axes: -1 }")
        + layer("b", "Bias", ["data"], params="bias_param { num_axes: 2 }")
        + layer("v", "Pooling", ["data"], params="pooling_param { pool: AVE global_pooling: true }")
        + layer("flat", "Flatten", ["v"])
        + layer("sc3", "Scale", ["data", "flat"], params="scale_param { axis: 0 bias_term: true }")
        + layer("e", "Eltwise", ["data", "sc", "b"], params="eltwise_param { coeff: 1 coeff: -1 coeff: 2 }")
        + layer("pw", "Power", ["e"], params="power_param { power: 2 }")
    )
    n = net(body, 2, 3, 4, 5)
    assert weight_shapes(n, n.layer("bn")) == [(3,), (3,), (1,)]
    assert weight_shapes(n, n.layer("sc")) == [(3,), (3,)]
    assert weight_shapes(n, n.layer("sc2")) == [(3, 4, 5)]
    assert weight_shapes(n, n.layer("b")) == [(3, 4)]
    assert weight_shapes(n, n.layer("sc3")) == [(2, 3)]  # only the bias is learned with two bottoms
    assert n.shapes["e"] == n.shapes["pw"] == n.shapes["sc3"] == (2, 3, 4, 5)


def test_infer_shapes_matches_net_shapes():
    n = parse_net_text(architectures.caffenet(width=0.05))
    assert infer_shapes(n) == n.shapes


def test_unknown_type_names_layer_type_and_supported_list():
    with pytest.raises(BadInput) as error:
        net(layer("emb", "Embed", ["data"]), 1, 4)
    message = str(error.value)
    assert "'emb'" in message and "'Embed'" in message and "supported types:" in message
    assert all(t in message for t in ("Convolution", "Deconvolution", "Pooling", "InnerProduct"))
    required = (
        "Input Convolution Deconvolution InnerProduct ReLU Sigmoid TanH LRN Pooling Dropout Softmax Concat"
    )
    required += " Reshape Flatten Crop Eltwise Power Scale Bias BatchNorm Split Slice"
    assert set(RULES) >= set(required.split())


IMAGE = (1, 3, 8, 8)


@pytest.mark.parametrize(
    ("body", "shape", "words"),
    [
        (conv("c", "num_output: 4 kernel_size: 3 group: 2"), IMAGE, ["'c'", "3 input channels", "group 2"]),
        (conv("c", "num_output: 4 kernel_size: 9"), IMAGE, ["'c'", "kernel extent 9"]),
        (conv("c", "num_output: 2 kernel_size: 3 stride_h: 2"), IMAGE, ["must be positive, got [2, 0]"]),
        (conv("c", "num_output: 2 kernel_size: 3 kernel_h: 2"), IMAGE, ["either kernel_size or kernel_h"]),
        (pool("p", "kernel_size: 3 pad: 3"), IMAGE, ["'p'", "pad [3, 3] must be smaller than kernel"]),
        (pool("p", "kernel_size: 2 stride_h: 2"), IMAGE, ["give stride or both stride_h and stride_w"]),
        (layer("r", "Reshape", ["data"], params="reshape_param { shape { dim: 0 dim: 7 } }"), (2, 12),
         ["'r'", "cannot reshape (2, 12)", "(2, 7)"]),
        (layer("x", "Concat", ["data", "data"], params="concat_param { axis: 4 }"), IMAGE,
         ["'x'", "axis 4 is out of range"]),
        (layer("i", "InnerProduct", ["data"]), (1, 3), ["'i'", "num_output must be positive"]),
        (layer("s", "Slice", ["data"], ["a", "b"], params="slice_param { slice_point: 3 }"), IMAGE,
         ["'s'", "slice points [3] do not split 3"]),
        (layer("x", "Crop", ["data", "data"], params="crop_param { offset: 1 }"), IMAGE,
         ["'x'", "axis 2: offset 1 + size 8 exceeds 8"]),
    ],
)  # fmt: skip
def test_bad_settings_raise_bad_input(body, shape, words):
    with pytest.raises(BadInput) as error:
        net(body, *shape)
    assert all(w in str(error.value) for w in words), str(error.value)
