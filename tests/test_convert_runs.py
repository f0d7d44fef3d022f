"""Everything that converts runs in ONNX Runtime; what would not is refused at load or conversion.

Three parts: nets that Caffe accepts (or that would need absurd memory) but ONNX Runtime refuses or cannot
allocate, each refused with one BadInput naming the file, the layer and the field; settings ONNX Runtime's
own kernels refuse but that convert exactly in other ops (LRN alpha 0, beta ≤ 0, sizes beyond cuDNN's
range; dilation 0; pools whose rounding differs between H and W), each against a numpy reference of
Caffe's formula; and a property test: small nets covering every converter type, and seeded random
settings of the layers with the most geometry, all convert and run in ORT (through
`repro.runtime.ort.make_session`, as `repro sample` does), with Caffe's shapes and values.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from repro.caffe import load_net, parse_net_text, random_weights
from repro.caffe.shapes import MAX_BLOB_BYTES
from repro.convert import CONVERTERS, to_onnx
from repro.errors import BadInput
from repro.grad import value_and_grad_model
from repro.runtime.ort import make_session
from tests import caffe_reference
from tests.test_convert_layers import CASES, L, net_from

SOURCE = "odd.prototxt"
TOL = 1e-5


def header(inputs: dict[str, tuple[int, ...]]) -> str:
    return "".join(
        f'layer {{ name: "{name}" type: "Input" top: "{name}" input_param {{ shape {{ '
        + " ".join(f"dim: {d}" for d in shape)
        + " } } }\n"
        for name, shape in inputs.items()
    )


def build(body: str, inputs: dict[str, tuple[int, ...]], seed: int = 0):
    net = parse_net_text(f'name: "odd"\n{header(inputs)}{body}', SOURCE)
    random_weights(net, seed)
    return net


def feeds_for(net, seed: int = 1, scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: (rng.standard_normal(net.shapes[n]) * scale).astype(np.float32) for n in net.inputs}


def run(net, outputs=None, feeds=None):
    """Convert, open with repro's ORT session, run; return {blob: value} for the outputs."""
    outputs = list(outputs or [b for b in net.shapes if b not in net.inputs])
    model = to_onnx(net, outputs)
    feeds = feeds if feeds is not None else feeds_for(net)
    values = make_session(model, threads=1).run(outputs, feeds)
    for name, value in zip(outputs, values, strict=True):
        assert value.shape == net.shapes[name], name
    return model, dict(zip(outputs, values, strict=True))


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-30))


# ------------------------------------------------------------------------------------------ refused nets

IMAGE = {"data": (1, 3, 8, 8)}


def conv(params: str, type_: str = "Convolution") -> str:
    return L("c", type_, params=f"convolution_param {{ {params} }}")


def lrn(params: str) -> str:
    return L("n", "LRN", params=f"lrn_param {{ {params} }}")


# (body, inputs, words the message must hold): every message names the file and the layer.
REFUSED = {
    "deconv stride 10^6": (
        conv("num_output: 2 kernel_size: 2 stride: 1000000", "Deconvolution"),
        IMAGE,
        ["layer 'c' (Deconvolution)", "top 'c' would have shape (1, 2, 7000002, 7000002)", "357 TiB",
         "over the 4 GiB limit"],
    ),
    "deconv dilation 10^6": (
        conv("num_output: 2 kernel_size: 3 dilation: 1000000", "Deconvolution"),
        IMAGE,
        ["layer 'c' (Deconvolution)", "(1, 2, 2000008, 2000008)", "29.1 TiB"],
    ),
    "conv pad 10^5": (
        conv("num_output: 2 kernel_size: 2 pad: 100000"),
        IMAGE,
        ["layer 'c' (Convolution)", "top 'c' would have shape (1, 2, 200007, 200007)", "298 GiB"],
    ),
    "conv num_output 10^8": (
        conv("num_output: 100000000 kernel_size: 1"),
        IMAGE,
        ["layer 'c' (Convolution)", "top 'c' would have shape (1, 100000000, 8, 8)", "23.8 GiB"],
    ),
    "conv kernel 5000 (im2col buffer)": (
        conv("num_output: 1 kernel_size: 5000 pad: 2500"),
        IMAGE,
        ["layer 'c' (Convolution)", "im2col buffer would have shape (75000000, 9, 9)", "22.6 GiB"],
    ),
    "inner product weights 8 GB": (
        L("ip", "InnerProduct", params="inner_product_param { num_output: 2000 }"),
        {"data": (1, 1000000)},
        ["layer 'ip' (InnerProduct)", "weight blob 0 would have shape (2000, 1000000)", "7.45 GiB"],
    ),
    "input 10^12 values": (
        "",
        {"data": (1000, 1000, 1000, 1000)},
        ["layer 'data' (Input)", "top 'data' would have shape (1000, 1000, 1000, 1000)", "3.64 TiB"],
    ),
    "lrn alpha negative": (
        lrn("local_size: 5 alpha: -1 beta: 0.75"),
        IMAGE,
        ["layer 'n' (LRN)", "lrn_param.alpha must be >= 0, got -1", "inf or NaN"],
    ),
    "lrn k 0": (
        lrn("local_size: 5 alpha: 1 beta: 0.75 k: 0"),
        IMAGE,
        ["layer 'n' (LRN)", "lrn_param.k must be > 0, got 0 (with beta 0.75)", "all zeros"],
    ),
    "lrn k negative": (
        lrn("local_size: 3 alpha: 0 beta: 0.5 k: -2"),
        IMAGE,
        ["layer 'n' (LRN)", "lrn_param.k must be > 0, got -2"],
    ),
    "lrn alpha 0 overflow": (
        lrn("local_size: 3 alpha: 0 beta: 40 k: 1e-3"),
        IMAGE,
        ["layer 'n' (LRN)", "with lrn_param.alpha 0 the layer is x·k^−beta", "overflows float32"],
    ),
    "lrn even size": (lrn("local_size: 4"), IMAGE, ["layer 'n' (LRN)", "local_size must be odd, got 4"]),
    "batch norm eps negative": (
        L("bn", "BatchNorm", params="batch_norm_param { eps: -10 }"),
        IMAGE,
        ["layer 'bn' (BatchNorm)", "batch_norm_param.eps -10", "is not finite",
         "expected variance·f + eps > 0"],
    ),
    "power nan": (
        L("p", "Power", params="power_param { power: nan }"),
        IMAGE,
        ["layer 'p' (Power)", "power_param.power is nan; expected a finite number"],
    ),
    "relu slope inf": (
        L("r", "ReLU", params="relu_param { negative_slope: inf }"),
        IMAGE,
        ["layer 'r' (ReLU)", "relu_param.negative_slope is inf; expected a finite number"],
    ),
    "eltwise coeff -inf": (
        L("e", "Eltwise", "data data", params="eltwise_param { coeff: 1 coeff: -inf }"),
        IMAGE,
        ["layer 'e' (Eltwise)", "eltwise_param.coeff[1] is -inf"],
    ),
    "conv on a 2-D blob": (
        conv("num_output: 2 kernel_size: 1"),
        {"data": (2, 5)},
        ["layer 'c' (Convolution)", "expected a bottom with spatial axes", "got shape (2, 5)"],
    ),
    "pool window past the input": (
        L("p", "Pooling", params="pooling_param { kernel_size: 2 stride: 1000000 }"),
        IMAGE,
        ["layer 'p' (Pooling)", "gives (1, 1) where Caffe gives (2, 2)", "stride [1000000, 1000000]"],
    ),
    "top written twice": (
        L("a", "ReLU", tops="x") + L("b", "Sigmoid", tops="x"),
        IMAGE,
        ["layer 'b' (Sigmoid) writes top 'x', which layer 'a' already produces", "in-place rewrites"],
    ),
    "slice in place": (
        L("s", "Split", tops="a b")
        + L("sl", "Slice", "b", "b c", "slice_param { axis: 1 slice_point: 1 }"),
        IMAGE,
        ["layer 'sl' (Slice): rewrites blob 'b' in place but changes its shape from (1, 3, 8, 8) to "
         "(1, 1, 8, 8)", "Give top 0 a new name"],
    ),
    "two tops of one name": (
        L("s", "Split", tops="x x"),
        IMAGE,
        ["layer 's' (Split) writes top 'x', which an earlier top of this layer already produces"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_with_one_clear_message(case):
    body, inputs, words = REFUSED[case]
    with pytest.raises(BadInput) as error:
        net = build(body, inputs)
        to_onnx(net)
    message = str(error.value)
    print(f"{case}: {message}")
    assert message.startswith(f"{SOURCE}: ") and "\n" not in message
    assert all(w in message for w in words), message


def test_memory_limit_is_at_load_and_names_the_file(tmp_path):
    """The limit applies while reading, before any weights exist, and a lower batch brings a net under it."""
    text = (
        'name: "big"\n' + header({"data": (4096, 3, 256, 256)}) + conv("num_output: 64 kernel_size: 3 pad: 1")
    )
    (tmp_path / "big.prototxt").write_text(text)
    with pytest.raises(BadInput, match=r"big\.prototxt: layer 'c' \(Convolution\): top 'c' would have shape "
                       r"\(4096, 64, 256, 256\)"):  # fmt: skip
        load_net(tmp_path / "big.prototxt")
    net = load_net(tmp_path / "big.prototxt", batch=2)
    assert net.shapes["c"] == (2, 64, 256, 256)
    assert 4 * math.prod(net.shapes["c"]) < MAX_BLOB_BYTES


# ---------------------------------------------------------------------------------- reader error messages


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", ["the prototxt defines no layers and no inputs"]),
        ("# only a comment\nname: \"x\"\n", ["the prototxt defines no layers and no inputs"]),
        (
            'layer { name: "d" type: "Input" top: "d" include { phase: TRAIN } '
            "input_param { shape { dim: 1 } } }",
            ["all 1 layer(s) are excluded from the TEST phase"],
        ),
        ('name: "x"\nmystery: }\n', ["prototxt syntax error at line 2: Invalid field value: } (column 10)"]),
        ('name: "x"\n\n  layer { name: "a" }\n  other { v: : }',
         ["at line 4: Invalid field value: : (column 14)"]),
        ("mystery { " * 600 + "}" * 600, ["at line 1: messages nest 600 levels deep", "too deep to parse"]),
        ('name: "x"\nlayer { name: "p" type: "Pooling" pooling_param { pool: FOO } }',
         ['at line 2: Enum type "caffe.PoolingParameter.PoolMethod" has no value named FOO.',
          "(column 57,"]),
        ('input: "data" input_dim: 1 input_dim: 1 input_dim: 5 input_dim: 5\n'
         'layers { layer { name: "pad" type: "padding" pad: 1 } top: "p" }\n'
         'layers { layer { name: "c" type: "conv" num_output: 1 kernelsize: 3 } bottom: "p" top: "c" }',
         ["V0 padding layer 'pad' takes 0 blob(s), expected exactly 1"]),
    ],
)  # fmt: skip
def test_reader_messages_name_the_file_and_the_place(tmp_path, text, words):
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    with pytest.raises(BadInput) as error:
        load_net(path)
    message = str(error.value)
    print(message)
    assert message.startswith(f"{path}: ") and "line None" not in message and "\n" not in message
    assert all(w in message for w in words), message


# ----------------------------------------------------------------------------- oddities converted exactly


def caffe_lrn(x: np.ndarray, n: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """lrn_layer.cpp CrossChannelForward_cpu in float64: y = x · (k + alpha/n · Σ_window x²)^−beta."""
    half = (n - 1) // 2
    squares = np.pad(x.astype(np.float64) ** 2, ((0, 0), (half, half), (0, 0), (0, 0)))
    window = sum(squares[:, i : i + x.shape[1]] for i in range(n))
    return x * (k + alpha / n * window) ** (-beta)


@pytest.mark.parametrize(
    ("n", "alpha", "beta", "k", "uses_ort_lrn"),
    [
        (5, 0.0, 0.75, 2.0, False),  # alpha 0: the constant factor k^−beta
        (5, 0.0, 0.75, 1.0, False),  # alpha 0, k 1: the identity
        (3, 0.5, 0.0, 2.0, False),  # beta 0: the identity
        (5, 0.5, -0.75, 2.0, False),  # beta < 0: ORT refuses
        (3, 1e-4, 0.75, 0.0001, True),  # AlexNet-like but k small: within ORT's range
        (17, 0.5, 0.75, 1.0, False),  # size beyond cuDNN's 16
        (5, 0.5, 0.005, 1.0, False),  # beta below cuDNN's 0.01
        (5, 0.5, 0.75, 1e-7, False),  # k below cuDNN's 1e-5
        (5, 0.5, -0.5, 0.0, False),  # k 0 with beta < 0: scale^0.5, finite
        (5, 1e-4, 0.75, 1.0, True),  # the common setting stays one ONNX LRN
    ],
)
def test_lrn_settings_ort_refuses_convert_exactly(n, alpha, beta, k, uses_ort_lrn):
    body = lrn(f"local_size: {n} alpha: {alpha} beta: {beta} k: {k}")
    net = build(body, {"data": (2, 7, 4, 5)})
    feeds = feeds_for(net, scale=3.0)
    model, got = run(net, ["n"], feeds)
    ops = [node.op_type for node in model.graph.node]
    assert ("LRN" in ops) == uses_ort_lrn, ops
    p = net.layer("n").params.lrn_param  # the float32 values Caffe computes with
    want = caffe_lrn(feeds["data"], n, float(p.alpha), float(p.beta), float(p.k))
    if alpha == 0:
        np.testing.assert_allclose(want, feeds["data"] * np.float64(p.k) ** -float(p.beta), rtol=1e-12)
    if beta == 0 or (alpha == 0 and k == 1):
        assert ops == ["Identity"]
    assert rel_error(got["n"], want) <= TOL
    assert rel_error(got["n"], caffe_reference.forward(net, feeds)["n"]) <= TOL


def test_lrn_within_channel_alpha_zero_and_negative_beta():
    for params, expect in (("alpha: 0 beta: 0.75", "x"), ("alpha: 0.5 beta: -0.5", None)):
        net = build(lrn(f"local_size: 3 norm_region: WITHIN_CHANNEL {params}"), {"data": (2, 3, 5, 6)})
        feeds = feeds_for(net, scale=2.0)
        _, got = run(net, ["n"], feeds)
        want = caffe_reference.forward(net, feeds)["n"]
        if expect == "x":  # the shift is 1, so alpha 0 leaves x·1^−beta = x
            np.testing.assert_array_equal(want, feeds["data"])
        assert rel_error(got["n"], want) <= TOL


@pytest.mark.parametrize(
    ("params", "type_", "shape"),
    [
        ("num_output: 3 kernel_size: 3 dilation: 0 pad: 1", "Convolution", (2, 4, 6, 7)),
        ("num_output: 4 kernel_size: 3 dilation: 0 dilation: 2 stride: 2 group: 2", "Convolution",
         (1, 4, 9, 9)),
        ("num_output: 2 kernel_size: 4 dilation: 0 stride: 2", "Deconvolution", (2, 3, 4, 5)),
        ("num_output: 4 kernel_size: 3 dilation: 1 dilation: 0 pad: 1 group: 2", "Deconvolution",
         (1, 2, 5, 5)),
    ],
)  # fmt: skip
def test_dilation_zero_converts_to_the_summed_kernel(params, type_, shape):
    """Caffe's im2col with dilation 0 reads one pixel for every tap along that axis (ONNX refuses 0)."""
    net = build(conv(params, type_), {"data": shape})
    feeds = feeds_for(net)
    model, got = run(net, ["c"], feeds)
    node = next(n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose"))
    assert 0 not in next(a.ints for a in node.attribute if a.name == "dilations")
    assert rel_error(got["c"], caffe_reference.forward(net, feeds)["c"]) <= TOL


def test_pool_with_different_rounding_per_axis_loads_in_ort():
    """H needs ceil's drop rule, W plain ceil: onnx's shape inference (no drop rule) would say H = 2 and ORT
    would refuse the graph where the pool meets the InnerProduct's weight (found by the reader fuzzer)."""
    body = L("p", "Pooling", params="pooling_param { pool: AVE kernel_size: 3 stride: 8 pad: 1 }") + L(
        "fc", "InnerProduct", "p", params="inner_product_param { num_output: 3 }"
    )
    for pool in ("AVE", "MAX"):
        net = build(body.replace("AVE", pool), {"data": (2, 4, 2, 8)})
        assert net.shapes["p"] == (2, 4, 1, 2)
        feeds = feeds_for(net)
        _, got = run(net, ["p", "fc"], feeds)
        want = caffe_reference.forward(net, feeds)
        assert rel_error(got["p"], want["p"]) <= TOL and rel_error(got["fc"], want["fc"]) <= TOL


@pytest.mark.parametrize(
    "body",
    [
        lrn("local_size: 5 alpha: 0 beta: 0.75 k: 2"),
        lrn("local_size: 5 alpha: 0.5 beta: -0.75 k: 2"),
        lrn("local_size: 17 alpha: 0.5 beta: 0.75 k: 2"),
        conv("num_output: 3 kernel_size: 3 dilation: 0 pad: 1"),
        L("p", "Pooling", params="pooling_param { pool: MAX kernel_size: 3 stride: 8 pad: 1 }"),
    ],
)
def test_oddities_also_have_a_gradient_graph_that_runs(body):
    """`repro sample` runs the value-and-grad graph: it must build and load for the rewritten forms too."""
    net = build(body, {"data": (2, 4, 2, 8)})
    out = net.outputs[0]
    model = value_and_grad_model(to_onnx(net, [out], dynamic_batch=True), "data", out)
    grad = make_session(model, threads=1).run(["grad_data"], feeds_for(net))[0]
    assert grad.shape == net.shapes["data"] and np.isfinite(grad).all()


@pytest.mark.parametrize("dynamic_batch", [False, True])
def test_in_place_reshape_converts_with_the_shape_of_the_moment(dynamic_batch):
    """Reshape in place shares the data in Caffe, so it is exact; the blob has one shape before it and
    another after, and each ONNX value (and the converters reading it) must see the shape it has then."""
    body = (
        L("a", "ReLU", tops="y")
        + L("r", "Reshape", "y", "y", "reshape_param { shape { dim: 0 dim: -1 } }")
        + L("ip", "InnerProduct", "y", params="inner_product_param { num_output: 3 }")
    )
    net = build(body, {"data": (2, 3, 4, 4)})
    model = to_onnx(net, ["ip", "y"], dynamic_batch=dynamic_batch)
    declared = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*model.graph.value_info, *model.graph.output]
    }
    batch = "batch" if dynamic_batch else 2
    assert declared == {"a/y": [batch, 3, 4, 4], "y": [batch, 48], "ip": [batch, 3]}
    feeds = feeds_for(net)
    got = dict(zip(["ip", "y"], make_session(model, threads=1).run(["ip", "y"], feeds), strict=True))
    want = caffe_reference.forward(net, feeds)
    assert rel_error(got["ip"], want["ip"]) <= TOL and rel_error(got["y"], want["y"]) <= TOL


# ------------------------------------------------------------------------------------ the property test


def test_every_converter_case_converts_and_runs_in_ort():
    """The layer cases of tests/test_convert_layers.py, which cover every converter type, through repro's
    ORT session (graph optimizations on, as `repro sample` runs)."""
    covered: set[str] = set()
    for case, (body, inputs) in CASES.items():
        net = net_from(body, inputs)
        covered |= {layer.type for layer in net.layers}
        feeds = feeds_for(net)
        _, got = run(net, feeds=feeds)
        want = caffe_reference.forward(net, feeds)
        for name, value in got.items():
            assert np.isfinite(value).all() and rel_error(value, want[name]) <= TOL, (case, name)
    assert covered >= set(CONVERTERS), sorted(set(CONVERTERS) - covered)


def _random_layer(rng: np.random.Generator) -> tuple[str, tuple[int, ...]]:
    def pick(*options):
        return options[int(rng.integers(len(options)))]

    shape = (int(pick(1, 2)), int(pick(1, 2, 3, 4, 6)), int(rng.integers(1, 10)), int(rng.integers(1, 10)))
    kind = pick("Convolution", "Deconvolution", "Pooling", "LRN", "LRN within")
    if kind in ("Convolution", "Deconvolution"):
        fields = [
            f"num_output: {pick(1, 2, 4, 6)}",
            f"kernel_size: {pick(1, 2, 3, 5, 9, 20)}",
            f"stride: {pick(1, 1, 2, 3, 7, 30)}",
            f"pad: {pick(0, 0, 1, 2, 4, 10)}",
            f"dilation: {pick(1, 1, 0, 2, 3)}",
            f"group: {pick(1, 1, 2)}",
        ]
        if rng.random() < 0.3:
            fields.append("kernel_size: 1")  # per-axis kernels
        return L("l", kind, params=f"convolution_param {{ {' '.join(fields)} }}"), shape
    if kind == "Pooling":
        fields = [
            f"pool: {pick('MAX', 'AVE')}",
            f"kernel_size: {pick(1, 2, 3, 5, 9, 20)}",
            f"stride: {pick(1, 2, 3, 7, 30)}",
            f"pad: {pick(0, 0, 1, 2, 4, 10)}",
        ]
        if rng.random() < 0.2:
            fields.append("round_mode: FLOOR")
        if rng.random() < 0.1:
            fields = [fields[0], "global_pooling: true"]
        return L("l", "Pooling", params=f"pooling_param {{ {' '.join(fields)} }}"), shape
    fields = [
        f"local_size: {pick(1, 3, 5, 17, 31)}",
        f"alpha: {pick(0, 1e-4, 1, -0.5, 2)}",
        f"beta: {pick(0.75, 0, -0.5, 0.005, 2)}",
        f"k: {pick(1, 2, 0, 1e-7, -1)}",
    ]
    if kind == "LRN within":
        fields.append("norm_region: WITHIN_CHANNEL")
    return L("l", "LRN", params=f"lrn_param {{ {' '.join(fields)} }}"), shape


def test_random_geometry_converts_and_runs_or_is_refused():
    """Seeded settings of Convolution, Deconvolution, Pooling and LRN, odd ones included: each net is
    refused (BadInput at load or conversion) or converts, loads in ORT and matches Caffe's formula."""
    rng = np.random.default_rng(20261201)
    outcomes = {"refused": 0, "ran": 0}
    for _ in range(200):
        body, shape = _random_layer(rng)
        try:
            net = build(body, {"data": shape})
            model = to_onnx(net, ["l"])
        except BadInput:
            outcomes["refused"] += 1
            continue
        feeds = feeds_for(net, seed=int(rng.integers(1000)), scale=2.0)
        got = make_session(model, threads=1).run(["l"], feeds)[0]
        want = caffe_reference.forward(net, feeds)["l"]
        assert got.shape == want.shape, body
        assert np.isfinite(got).all() and np.isfinite(want).all(), body
        assert rel_error(got, want) <= 1e-4, body
        outcomes["ran"] += 1
    print(outcomes)
    assert outcomes["ran"] >= 100 and outcomes["refused"] >= 20, outcomes


# ------------------------------------------------------------------------------ as a model set, end to end


RELU = 'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }'
RELU1 = 'layer { name: "relu1" type: "ReLU" bottom: "up1" top: "up1" }'


def _odd_set(root, classifier: str, generator: str):
    """The tiny report set (tests/test_report.py) with its classifier and generator replaced."""
    from repro import caffe
    from tests.test_report import write_tiny_set

    write_tiny_set(root)
    for i, (name, text) in enumerate((("classifier", classifier), ("generator", generator))):
        net = caffe.parse_net_text(text, source=name)
        caffe.random_weights(net, seed=20 + i)
        caffe.write_net(net, root / f"{name}.prototxt", root / f"{name}.caffemodel")
    return root


def test_a_model_set_with_the_oddities_samples(tmp_path, monkeypatch, capsys):
    """`repro sample` (ORT-VJP, parity gate against torch) on nets with an LRN of alpha 0, one of negative
    beta, a dilation-0 convolution and an LRN wider than cuDNN's: what died with an ORT traceback samples."""
    from repro.cli import main
    from tests.test_report import CLASSIFIER, GENERATOR

    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    extra = (
        'layer { name: "n1" type: "LRN" bottom: "conv" top: "n1"\n'
        "  lrn_param { local_size: 3 alpha: 0 k: 2 } }\n"
        'layer { name: "n2" type: "LRN" bottom: "n1" top: "n2"\n'
        "  lrn_param { local_size: 5 alpha: 0.5 beta: -0.5 } }\n"
        'layer { name: "d0" type: "Convolution" bottom: "n2" top: "d0" '
        "convolution_param { num_output: 6 kernel_size: 3 dilation: 0 pad: 1 } }"
    )
    assert RELU in CLASSIFIER and 'bottom: "conv" top: "fc8"' in CLASSIFIER and RELU1 in GENERATOR
    classifier = CLASSIFIER.replace(RELU, f"{RELU}\n{extra}").replace(
        'bottom: "conv" top: "fc8"', 'bottom: "d0" top: "fc8"'
    )
    wide = 'layer { name: "n" type: "LRN" bottom: "up1" top: "up1" lrn_param { local_size: 17 alpha: 0.1 } }'
    root = _odd_set(tmp_path / "set", classifier, GENERATOR.replace(RELU1, f"{RELU1}\n{wide}"))
    out = tmp_path / "out"
    args = ["sample", "--models", str(root), "--class", "1", "--method", "mala", "--chains", "2"]
    assert main([*args, "--steps", "3", "-o", str(out)]) == 0, capsys.readouterr().err
    record = json.loads((out / "run.json").read_text())
    assert [(c["gates"], c["passed"]) for c in record["parity"]] == [(True, True)] * 2 + [(False, True)] * 2


def test_a_model_set_with_a_refused_net_is_one_line(tmp_path, monkeypatch, capsys):
    from repro.cli import main
    from tests.test_report import CLASSIFIER, GENERATOR

    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    bad = 'layer { name: "n" type: "LRN" bottom: "conv" top: "conv" lrn_param { alpha: -1 } }'
    root = _odd_set(tmp_path / "set", CLASSIFIER.replace(RELU, f"{RELU}\n{bad}"), GENERATOR)
    args = ["sample", "--models", str(root), "--class", "1", "--method", "map", "--chains", "2"]
    assert main([*args, "--steps", "2", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert "classifier.prototxt: layer 'n' (LRN): lrn_param.alpha must be >= 0, got -1" in err, err
