"""ConvTranspose as Conv + interleave + crop (repro.runtime.subpixel) against torch's transposed
convolution in float64, over strides, kernels, pads, output_padding, groups and ranks."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from repro.onnx_versions import IR_VERSION, OPSET
from repro.runtime.subpixel import conv_transposes_as_convs

TOLERANCE = 2e-5  # float32 sums in another order, relative to the output's largest magnitude


def _reference(x, w, bias, stride, pads, output_padding, group):
    """ONNX ConvTranspose from torch's unpadded transposed convolution: pad the end by output_padding
    (rows no tap reaches hold only the bias), then cut the pads off both ends."""
    n = x.ndim - 2
    fn = {1: torch.nn.functional.conv_transpose1d, 2: torch.nn.functional.conv_transpose2d,
          3: torch.nn.functional.conv_transpose3d}[n]  # fmt: skip
    full = fn(torch.from_numpy(x), torch.from_numpy(w), stride=stride, groups=group).numpy()
    full = np.pad(full, [(0, 0), (0, 0)] + [(0, output_padding[i]) for i in range(n)])
    index = tuple(slice(pads[i], full.shape[2 + i] - pads[i + n]) for i in range(n))
    out = full[(slice(None), slice(None), *index)]
    if bias is not None:
        out = out + bias.reshape(1, -1, *([1] * n))
    return out


def _model(x_shape, w, bias, **attrs):
    inits = [numpy_helper.from_array(w.astype(np.float32), "w")]
    inputs = ["x", "w"]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias.astype(np.float32), "b"))
        inputs.append("b")
    graph = helper.make_graph(
        [helper.make_node("ConvTranspose", inputs, ["y"], name="deconv", **attrs)],
        "deconv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


def _constants(model):
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return values.get


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.astype(np.float32)})[0]


CASES = [
    # (spatial, c_in, c_out, kernel, stride, pads, output_padding, group, bias)
    ((5, 6), 4, 6, (4, 4), 2, (1, 1, 1, 1), (0, 0), 1, True),  # the fc6 generator's deconvolutions
    ((7, 7), 6, 4, (3, 3), 1, (1, 1, 1, 1), (0, 0), 2, True),  # a stride-1 conv's transpose, grouped
    ((6, 5), 3, 5, (11, 11), 4, (0, 0, 0, 0), (3, 2), 1, False),  # CaffeNet conv1's transpose
    ((4, 6), 4, 4, (5, 3), 3, (2, 0, 1, 2), (1, 2), 2, True),  # rectangular kernel, asymmetric pads
    ((3, 3), 2, 3, (2, 2), 2, (0, 0, 0, 0), (1, 1), 1, True),  # output_padding past the last tap
    ((5, 5), 3, 2, (1, 1), 2, (0, 0, 0, 0), (0, 0), 1, False),  # kernel smaller than the stride
    ((6, 6), 2, 2, (4, 4), 2, (3, 3, 3, 3), (0, 0), 1, False),  # pads beyond a whole block
    ((9,), 3, 4, (5,), 1, (2, 1), (0,), 1, True),  # 1-D, stride 1
    ((3, 4, 3), 2, 3, (3, 2, 3), 1, (1, 0, 1, 1, 1, 0), (0, 0, 0), 1, True),  # 3-D, stride 1
]


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_the_rewrite_computes_the_transposed_convolution(case):
    spatial, c_in, c_out, kernel, stride, pads, output_padding, group, has_bias = case
    rng = np.random.default_rng(len(spatial) * 100 + stride)
    x = rng.standard_normal((2, c_in, *spatial))
    w = rng.standard_normal((c_in, c_out // group, *kernel))
    bias = rng.standard_normal(c_out) if has_bias else None
    n = len(spatial)
    expected = _reference(x, w, bias, stride, pads, output_padding, group)
    model = _model(
        x.shape, w, bias, strides=[stride] * n, pads=list(pads), output_padding=list(output_padding),
        group=group, kernel_shape=list(kernel),
    )  # fmt: skip
    assert conv_transposes_as_convs(model, _constants(model)) == 1
    assert "ConvTranspose" not in {node.op_type for node in model.graph.node}
    got = _run(model, x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOLERANCE * np.abs(expected).max()


def test_the_reference_is_onnx_runtimes_own_transposed_convolution():
    """The float64 reference agrees with ORT's ConvTranspose on the asymmetric case, so it is ONNX's."""
    spatial, c_in, c_out, kernel, stride, pads, output_padding, group, _ = CASES[3]
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, c_in, *spatial))
    w = rng.standard_normal((c_in, c_out // group, *kernel))
    bias = rng.standard_normal(c_out)
    model = _model(
        x.shape, w, bias, strides=[stride] * 2, pads=list(pads), output_padding=list(output_padding),
        group=group,
    )  # fmt: skip
    expected = _reference(x, w, bias, stride, pads, output_padding, group)
    assert np.abs(_run(model, x) - expected).max() <= TOLERANCE * np.abs(expected).max()


@pytest.mark.parametrize(
    "attrs, constant",
    [
        ({"strides": [2, 1]}, True),  # one block size cannot interleave two strides
        ({"strides": [2, 2], "dilations": [2, 2]}, True),
        ({"strides": [2, 2]}, False),  # weights computed at run time
    ],
    ids=["unequal-strides", "dilated", "weights-not-constant"],
)
def test_a_layer_the_rewrite_does_not_cover_stays_a_conv_transpose(attrs, constant):
    w = np.ones((2, 2, 3, 3))
    model = _model((1, 2, 4, 4), w, None, **attrs)
    before = model.SerializeToString()
    assert conv_transposes_as_convs(model, _constants(model) if constant else lambda name: None) == 0
    assert model.SerializeToString() == before


def test_a_conv_transpose_inside_an_if_branch_is_rewritten_with_its_constants_in_the_branch():
    """The ORT backend's gradient nodes sit in an If: the rewrite reaches them there, and puts the new
    weights where ORT's NCHWc convolutions look for them, in the branch itself."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((3, 2, 4, 4))
    inner = helper.make_graph(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y_inner"], strides=[2, 2], pads=[1, 1, 1, 1])],
        "then",
        [],
        [helper.make_tensor_value_info("y_inner", TensorProto.FLOAT, None)],
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y_other"])],
        "else",
        [],
        [helper.make_tensor_value_info("y_other", TensorProto.FLOAT, None)],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["flag"], ["y"], then_branch=inner, else_branch=other)],
        "gated",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 5]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w.astype(np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    assert conv_transposes_as_convs(model, _constants(model)) == 1
    branch = next(a.g for a in model.graph.node[0].attribute if a.name == "then_branch")
    ops = [node.op_type for node in branch.node]
    assert ops[:2] == ["Conv", "Split"] and ops[-2:] == ["Reshape", "Slice"] and "ConvTranspose" not in ops
    assert branch.node[0].input[1] in {t.name for t in branch.initializer}
    assert [t.name for t in model.graph.initializer] == ["w"]
    x = rng.standard_normal((1, 3, 5, 5))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x.astype(np.float32), "flag": np.array(True)})[0]
    expected = _reference(x, w, None, 2, (1, 1, 1, 1), (0, 0), 1)
    assert np.abs(got - expected).max() <= TOLERANCE * np.abs(expected).max()
