"""Caffe layer → ONNX parity: every layer type and edge case, against the float64 Caffe reference.

Each case builds a tiny net from prototxt text with seeded weights, converts it, runs ONNX Runtime (CPU)
and compares every blob with `tests/caffe_reference.py` (Caffe's C++ semantics in numpy), then runs the
same model through onnx2torch and compares with ONNX Runtime. Errors are relative to the largest
magnitude of the expected blob.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from repro.caffe import parse_net_text, random_weights
from repro.convert import to_onnx
from tests import caffe_reference

TOL = 1e-5
ALLOWED_OPS = set(
    "Identity Conv ConvTranspose Gemm Flatten Reshape MaxPool AveragePool LRN Relu LeakyRelu Sigmoid Tanh "
    "Softmax LogSoftmax Concat Slice Split Add Sub Mul Div Max Pow Sqrt Exp Log Neg ReduceSum Transpose "
    "Unsqueeze Squeeze".split()
)


def net_from(body: str, inputs: dict[str, tuple[int, ...]], seed: int = 0):
    header = "".join(
        f'layer {{ name: "{name}" type: "Input" top: "{name}" input_param {{ shape {{ '
        + " ".join(f"dim: {d}" for d in shape)
        + " } } }\n"
        for name, shape in inputs.items()
    )
    net = parse_net_text(f'name: "case"\n{header}{body}')
    random_weights(net, seed)
    return net


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def torch_outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnx2torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # onnx2torch's Slice indexes with a list, which torch deprecates
        module = onnx2torch.convert(model).eval()
        out = module(*[torch.from_numpy(feeds[i.name]) for i in model.graph.input])
    return [t.numpy() for t in (out if isinstance(out, (tuple, list)) else [out])]


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-30))


def check(net, outputs=None, *, scale: float = 1.0, seed: int = 1) -> tuple[float, float]:
    """Convert, run ORT and onnx2torch; assert shapes and both parities; return (vs reference, vs torch)."""
    blobs = [b for b in net.shapes if b not in net.inputs] if outputs is None else outputs
    model = to_onnx(net, blobs)
    onnx.checker.check_model(model, full_check=True)  # includes onnx's strict shape inference
    assert {n.op_type for n in model.graph.node} <= ALLOWED_OPS
    rng = np.random.default_rng(seed)
    feeds = {n: (rng.standard_normal(net.shapes[n]) * scale).astype(np.float32) for n in net.inputs}
    got = session(model).run(blobs, feeds)
    want = caffe_reference.forward(net, feeds)
    ref_err = 0.0
    for name, value in zip(blobs, got, strict=True):
        assert value.shape == net.shapes[name], name
        assert np.isfinite(value).all(), name
        ref_err = max(ref_err, rel_error(value, want[name]))
    torch_err = max(
        rel_error(t, o.astype(np.float64)) for t, o in zip(torch_outputs(model, feeds), got, strict=True)
    )
    assert ref_err <= TOL, ref_err
    assert torch_err <= TOL, torch_err
    return ref_err, torch_err


# ------------------------------------------------------------------------------------- layer cases


def L(name: str, type_: str, bottoms: str = "data", tops: str | None = None, params: str = "") -> str:
    """One prototxt layer; bottoms and tops are space-separated blob names (tops default to the name)."""
    blobs = [f'bottom: "{b}"' for b in bottoms.split()] + [f'top: "{t}"' for t in (tops or name).split()]
    return f'layer {{ name: "{name}" type: "{type_}" {" ".join(blobs)} {params} }}\n'


def conv(params: str, type_: str = "Convolution") -> str:
    return L("conv", type_, params=f"convolution_param {{ {params} }}")


def pool(params: str) -> str:
    return L("pool", "Pooling", params=f"pooling_param {{ {params} }}")


X4 = {"data": (2, 4, 9, 9)}
N4 = {"data": (2, 3, 4, 5)}

CASES = {
    "conv_group_dilation": (conv("num_output: 6 kernel_size: 3 group: 2 dilation: 2 pad: 1 stride: 2"), X4),
    "conv_hw_fields_no_bias": (
        conv(
            "num_output: 5 kernel_h: 3 kernel_w: 2 pad_h: 1 pad_w: 0 stride_h: 2 stride_w: 1 bias_term: false"
        ),
        X4,
    ),
    "conv_per_axis_repeated": (conv("num_output: 3 kernel_size: 3 kernel_size: 1 pad: 0 pad: 2"), X4),
    "deconv_group_s2": (
        conv("num_output: 6 kernel_size: 4 stride: 2 pad: 1 group: 2", "Deconvolution"),
        {"data": (2, 4, 5, 5)},
    ),
    "deconv_s1_dilated": (
        conv("num_output: 3 kernel_size: 3 pad: 1 dilation: 2", "Deconvolution"),
        {"data": (1, 2, 6, 7)},
    ),
    "pool_max_drop_rule_h5": (pool("pool: MAX kernel_size: 2 stride: 2 pad: 1"), {"data": (2, 3, 5, 5)}),
    "pool_ave_drop_rule_h5": (pool("pool: AVE kernel_size: 2 stride: 2 pad: 1"), {"data": (2, 3, 5, 5)}),
    "pool_ave_ceil_pad_h6": (pool("pool: AVE kernel_size: 3 stride: 2 pad: 1"), {"data": (2, 3, 6, 6)}),
    "pool_ave_ceil_pad_h4": (pool("pool: AVE kernel_size: 3 stride: 2 pad: 1"), {"data": (2, 3, 4, 4)}),
    "pool_max_ceil_h16": (pool("pool: MAX kernel_size: 3 stride: 2"), {"data": (1, 2, 16, 16)}),
    "pool_max_floor_round_mode": (
        pool("pool: MAX kernel_size: 3 stride: 2 pad: 1 round_mode: FLOOR"),
        {"data": (1, 2, 6, 6)},
    ),
    "pool_hw_fields": (
        pool("pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0"),
        {"data": (2, 2, 7, 6)},
    ),
    "pool_global_ave": (pool("pool: AVE global_pooling: true"), {"data": (2, 3, 5, 7)}),
    "pool_global_max": (pool("pool: MAX global_pooling: true"), {"data": (2, 3, 5, 7)}),
    "lrn_across_k2": (
        L("n", "LRN", params="lrn_param { local_size: 5 alpha: 0.5 beta: 0.75 k: 2 }"),
        {"data": (2, 7, 4, 4)},
    ),
    "lrn_within_channel": (
        L(
            "n",
            "LRN",
            params="lrn_param { local_size: 3 alpha: 0.7 beta: 0.6 k: 2 norm_region: WITHIN_CHANNEL }",
        ),
        {"data": (2, 3, 6, 5)},
    ),
    "ip_axis2": (L("ip", "InnerProduct", params="inner_product_param { num_output: 6 axis: 2 }"), N4),
    "ip_transpose_4d": (
        L("ip", "InnerProduct", params="inner_product_param { num_output: 7 transpose: true }"),
        {"data": (3, 2, 3, 3)},
    ),
    "ip_2d_no_bias": (
        L("ip", "InnerProduct", params="inner_product_param { num_output: 4 bias_term: false }"),
        {"data": (3, 10)},
    ),
    "relu_leaky_sigmoid_tanh_dropout": (
        L("a", "ReLU", params="relu_param { negative_slope: 0.3 }")
        + L("b", "Sigmoid", "a")
        + L("c", "TanH")
        + L("d", "Dropout", "c", params="dropout_param { dropout_ratio: 0.5 }")
        + L("e", "ReLU", "d"),
        {"data": (2, 3, 4)},
    ),
    "exp_log_absval_silence": (
        L("e1", "Exp")
        + L("e2", "Exp", params="exp_param { base: 2 scale: 0.5 shift: 1 }")
        + L("a", "AbsVal")
        + L("l1", "Log", "a", params="log_param { shift: 0.1 }")
        + L("l2", "Log", "a", params="log_param { base: 10 scale: 2 shift: 1 }")
        + L("quiet", "Silence", "e1 l2", tops=" "),
        {"data": (2, 3, 4)},
    ),
    "inplace_chain": (
        conv("num_output: 4 kernel_size: 3 pad: 1")
        + L("pre", "Sigmoid", "conv")
        + L("relu", "ReLU", "conv", "conv")
        + L("mid", "TanH", "conv")
        + L("pow", "Power", "conv", "conv", "power_param { scale: 2 shift: -0.5 }")
        + L("drop", "Dropout", "conv", "conv")
        + L("sum", "Eltwise", "conv pre mid"),
        {"data": (2, 3, 5, 5)},
    ),
    "eltwise_sum_coeff": (
        L("e", "Eltwise", "a b c", params="eltwise_param { operation: SUM coeff: 1 coeff: -0.5 coeff: 2 }"),
        {"a": (2, 3, 4), "b": (2, 3, 4), "c": (2, 3, 4)},
    ),
    "eltwise_prod_max": (
        L("p", "Eltwise", "a b c", params="eltwise_param { operation: PROD }")
        + L("m", "Eltwise", "a b c", params="eltwise_param { operation: MAX }"),
        {"a": (2, 5), "b": (2, 5), "c": (2, 5)},
    ),
    "batchnorm_scale_bias": (
        L("bn", "BatchNorm", tops="data_bn")
        + L("sc", "Scale", "data_bn", "data_bn", "scale_param { bias_term: true }"),
        {"data": (2, 3, 4, 4)},
    ),
    "batchnorm_2d": (L("bn", "BatchNorm", params="batch_norm_param { eps: 0.001 }"), {"data": (4, 6)}),
    "scale_learned_two_axes": (
        L("s", "Scale", params="scale_param { axis: 1 num_axes: 2 bias_term: true }"),
        N4,
    ),
    "scale_learned_scalar_and_to_end": (
        L("s0", "Scale", params="scale_param { num_axes: 0 }")
        + L("s1", "Scale", "s0", params="scale_param { axis: -2 num_axes: -1 }"),
        N4,
    ),
    "scale_two_bottoms_bias": (
        L("s", "Scale", "data w", params="scale_param { axis: 1 bias_term: true }"),
        {"data": (2, 3, 4, 5), "w": (3, 4)},
    ),
    "scale_two_bottoms_axis0": (
        L("s", "Scale", "data w", params="scale_param { axis: 0 }"),
        {"data": (2, 3, 4), "w": (2, 3)},
    ),
    "bias_learned_and_two_bottoms": (
        L("b1", "Bias", params="bias_param { axis: -1 }")
        + L("b2", "Bias", "b1 v", params="bias_param { axis: 1 }"),
        {"data": (2, 3, 4, 5), "v": (3,)},
    ),
    "power_forms": (
        L("p", "Power", params="power_param { power: 2 scale: 0.5 shift: 1.5 }")
        + L("q", "Power", params="power_param { power: 0.5 scale: 0.25 shift: 3 }")
        + L("r", "Power", params="power_param { power: 3 scale: 0 shift: 2 }")
        + L("s", "Power", params="power_param { power: 0 }")
        + L("t", "Power"),
        {"data": (2, 3, 4)},
    ),
    "concat_axes": (
        L("c1", "Concat", "a b")
        + L("c2", "Concat", "a a", params="concat_param { axis: -1 }")
        + L("c3", "Concat", "a a", params="concat_param { concat_dim: 2 }"),
        {"a": (2, 3, 4, 5), "b": (2, 2, 4, 5)},
    ),
    "slice_points_and_equal": (
        L("s1", "Slice", tops="p q r", params="slice_param { axis: 1 slice_point: 1 slice_point: 4 }")
        + L("s2", "Slice", tops="u v", params="slice_param { axis: -1 }")
        + L("s3", "Slice", tops="w z", params="slice_param { slice_dim: 2 slice_point: 3 }"),
        {"data": (2, 6, 4, 4)},
    ),
    "crop_offsets": (
        L("c1", "Crop", "data ref", params="crop_param { axis: 2 offset: 1 offset: 2 }")
        + L("c2", "Crop", "data ref1", params="crop_param { axis: 1 offset: 1 }")
        + L("c3", "Crop", "data ref"),
        {"data": (2, 4, 7, 8), "ref": (2, 4, 4, 5), "ref1": (2, 2, 5, 5)},
    ),
    "reshape_forms": (
        L("r1", "Reshape", params="reshape_param { shape { dim: 0 dim: 3 dim: -1 dim: 5 } }")
        + L("r2", "Reshape", params="reshape_param { axis: 1 num_axes: 2 shape { dim: -1 } }")
        + L("r3", "Reshape", params="reshape_param { axis: -1 num_axes: 0 shape { dim: 1 } }")
        + L("r4", "Reshape", params="reshape_param { shape { dim: 2 dim: -1 } }")
        + L("r5", "Reshape", params="reshape_param { axis: 2 shape { dim: 2 dim: 0 dim: -1 } }"),
        {"data": (2, 6, 4, 5)},
    ),
    "flatten_forms": (
        L("f1", "Flatten")
        + L("f2", "Flatten", params="flatten_param { axis: 1 end_axis: 2 }")
        + L("f3", "Flatten", params="flatten_param { axis: 2 }")
        + L("f4", "Flatten", params="flatten_param { axis: 0 end_axis: 1 }"),
        N4,
    ),
    "softmax_axes": (
        L("s1", "Softmax")
        + L("s2", "Softmax", params="softmax_param { axis: 2 }")
        + L("s3", "Softmax", params="softmax_param { axis: -1 }"),
        N4,
    ),
    "split_tops": (
        L("sp", "Split", tops="a b c") + L("ra", "ReLU", "a", "a") + L("sum", "Eltwise", "a b"),
        {"data": (2, 3, 4)},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_layer_matches_caffe_reference_and_onnx2torch(case):
    body, inputs = CASES[case]
    net = net_from(body, inputs)
    # LRN is non-linear in the input's scale: exercise it beyond the unit range.
    ref_err, torch_err = check(net, scale=3.0 if case.startswith("lrn") else 1.0)
    print(f"{case}: ref {ref_err:.1e} torch {torch_err:.1e}")


def test_batchnorm_scale_factor_and_zero_factor():
    for factor in (4.0, 0.0):
        net = net_from(L("bn", "BatchNorm"), {"data": (2, 3, 4, 4)})
        layer = net.layer("bn")
        layer.blobs[0] = layer.blobs[0] * 4  # stored sums, divided by the factor at test time
        layer.blobs[1] = layer.blobs[1] * 4
        layer.blobs[2] = np.array([factor], np.float32)
        ref_err, torch_err = check(net)
        print(f"batchnorm_scale_factor_{factor:g}: ref {ref_err:.1e} torch {torch_err:.1e}")


def test_inplace_blob_value_is_the_last_writer():
    """The value named like an in-place blob holds the last writer's result; readers in between see theirs."""
    body, inputs = CASES["inplace_chain"]
    net = net_from(body, inputs)
    model = to_onnx(net, ["conv", "pre", "mid"])
    writers = {n.output[0]: n.op_type for n in model.graph.node}
    assert writers["conv"] == "Identity"  # the Dropout, last of conv → relu → pow → drop
    feeds = {"data": np.random.default_rng(3).standard_normal(net.shapes["data"]).astype(np.float32)}
    conv, pre, mid = session(model).run(["conv", "pre", "mid"], feeds)
    want = caffe_reference.forward(net, feeds)
    raw = caffe_reference.FORWARD["Convolution"](
        net.layer("conv").params,
        [feeds["data"].astype(np.float64)],
        [b.astype(np.float64) for b in net.layer("conv").blobs],
        1,
    )[0]
    assert rel_error(conv, 2 * np.maximum(raw, 0) - 0.5) <= TOL
    assert rel_error(pre, 1 / (1 + np.exp(-raw))) <= TOL
    assert rel_error(mid, np.tanh(np.maximum(raw, 0))) <= TOL
    assert rel_error(conv, want["conv"]) <= TOL
