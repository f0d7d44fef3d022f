"""value_and_grad_model as a whole: a Caffe-like chain, symbolic batch, intermediate targets, several inputs,
the model it returns, its errors, and the `repro grad` command.

Tolerances: CHAIN_TOL = 1e-5 of max|grad| against torch float64 autograd, and the finite-difference bound of
test_grad_rules (FD_TOL of ‖grad‖ along random unit directions).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx2torch
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from repro.cli import main
from repro.errors import BadInput
from repro.grad import value_and_grad_model
from tests.test_grad_rules import (
    FD_TOL,
    check,
    const,
    fd_error,
    make_model,
    node,
    normal,
    objective,
    ort_grad,
    rel_max,
    session,
    torch_forward,
    torch_grad,
)

CHAIN_TOL = 1e-5


def chain_model(output: str = "y") -> onnx.ModelProto:
    """Conv g=2 → Relu → LRN → MaxPool ceil → Flatten → Gemm → LogSoftmax, as the converter emits CaffeNet."""
    nodes = [
        node("Conv", ["x", "W1", "b1"], ["conv"], group=2, pads=[1, 1, 1, 1], strides=[2, 2]),
        node("Relu", ["conv"], ["relu"]),
        node("LRN", ["relu"], ["norm"], size=5, alpha=1e-4, beta=0.75, bias=1.0),
        node("MaxPool", ["norm"], ["pool"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        node("Flatten", ["pool"], ["flat"], axis=1),
        node("Gemm", ["flat", "W2", "b2"], ["fc"], transB=1),
        node("LogSoftmax", ["fc"], ["y"], axis=1),
    ]
    inits = {
        "W1": const((8, 2, 3, 3), 1, 0.4),
        "b1": const((8,), 2, 0.1),
        "W2": const((10, 8 * 4 * 4), 3, 0.1),
        "b2": const((10,), 4, 0.1),
    }
    return make_model(nodes, (2, 4, 16, 16), inits, outputs=(output,))


def test_chain_matches_torch_and_finite_differences():
    model = chain_model()
    x = normal((3, 4, 16, 16), 5, 10.0)  # scale 10: LRN's α=1e-4 window term is not negligible
    unit = 7
    f = objective(torch_forward(model), unit)
    got = ort_grad(model, x, "y", unit)
    reference = torch_grad(f, x)
    torch_err, fd_err = rel_max(got, reference), fd_error(f, x, got, reference)
    print(f"\nGRADROW chain torch={torch_err:.2e} fd={fd_err:.2e}")
    assert torch_err <= CHAIN_TOL
    assert fd_err <= FD_TOL


def test_symbolic_batch_gives_each_item_its_own_gradient():
    """One gradient model run at batch 1 and 5: every item's gradient equals that item's gradient alone."""
    model = chain_model()
    grad_model = value_and_grad_model(model, "x", "y", unit=2)
    dims = grad_model.graph.output[-1].type.tensor_type.shape.dim
    assert grad_model.graph.output[-1].name == "grad_x" and dims[0].dim_param == "batch"
    run = session(grad_model)
    x = normal((5, 4, 16, 16), 6, 10.0)
    (together,) = run.run(["grad_x"], {"x": x})
    alone = np.concatenate([run.run(["grad_x"], {"x": x[i : i + 1]})[0] for i in range(5)])
    reference = torch_grad(objective(torch_forward(model), 2), x)
    print(
        f"\nGRADROW batch 5 vs torch={rel_max(together, reference):.2e} "
        f"batch 1 vs 5={rel_max(alone, together):.2e}"
    )
    assert rel_max(together, reference) <= CHAIN_TOL
    assert rel_max(alone, together) <= CHAIN_TOL


@pytest.mark.parametrize(("of", "unit"), [("relu", 100), ("pool", None), ("fc", 9)])
def test_intermediate_value(of, unit):
    """`of` inside the graph: nodes after it get no rule; torch sees the same value as an output."""
    model, as_output = chain_model(), chain_model(output=of)
    x = normal((2, 4, 16, 16), 7, 10.0)
    f = objective(torch_forward(as_output), unit)
    got, reference = ort_grad(model, x, of, unit), torch_grad(f, x)
    assert rel_max(got, reference) <= CHAIN_TOL


def test_posterior_shaped_graph_with_two_inputs():
    """z → Reshape → Gemm → Relu → Gemm → LogSoftmax → ·onehot → ReduceSum, plus the prior −½‖z‖² (z·z)."""
    nodes = [
        node("Reshape", ["z", "shape"], ["code"]),
        node("Gemm", ["code", "W1", "b1"], ["h"], transB=1),
        node("Relu", ["h"], ["r"]),
        node("Gemm", ["r", "W2", "b2"], ["logits"], transB=1),
        node("LogSoftmax", ["logits"], ["lp"], axis=1),
        node("Mul", ["lp", "onehot"], ["picked"]),
        node("ReduceSum", ["picked", "axis1"], ["objective"], keepdims=0),
        node("Mul", ["z", "z"], ["z_sq"]),
        node("ReduceSum", ["z_sq", "axis1"], ["z_sq_sum"], keepdims=0),
        node("Mul", ["z_sq_sum", "half"], ["prior"]),
        node("Add", ["objective", "prior"], ["logp"]),
    ]
    inits = {
        "shape": np.array([-1, 6], np.int64),
        "W1": const((9, 6), 8),
        "b1": const((9,), 9),
        "W2": const((4, 9), 10),
        "b2": const((4,), 11),
        "axis1": np.array([1], np.int64),
        "half": np.float32(-0.5),
    }
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "posterior",
        [
            helper.make_tensor_value_info("z", f32, ["batch", 6]),
            helper.make_tensor_value_info("onehot", f32, ["batch", 4]),
        ],
        [helper.make_tensor_value_info("logp", f32, ["batch"])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    model = helper.make_model_gen_version(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    grad_model = value_and_grad_model(model, "z", "logp")
    onnx.checker.check_model(grad_model)
    z, onehot = normal((3, 6), 12), np.eye(4, dtype=np.float32)[[0, 3, 1]]
    logp, grad = session(grad_model).run(["logp", "grad_z"], {"z": z, "onehot": onehot})
    module = onnx2torch.convert(model).eval().double()
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    value = module(zt, torch.tensor(onehot, dtype=torch.float64))
    (reference,) = torch.autograd.grad(value.sum(), zt)
    assert rel_max(logp, value.detach().numpy()) <= CHAIN_TOL
    assert rel_max(grad, reference.numpy()) <= CHAIN_TOL


def test_returned_model_keeps_forward_outputs_and_versions():
    """Same forward values (ceil pools restated, MaxPool gaining Indices), opset 17, IR ≤ 8, 13 upgraded."""
    model = chain_model()
    model.opset_import[0].version = 13
    grad_model = value_and_grad_model(model, "x", "y")
    onnx.checker.check_model(grad_model)
    assert [o.name for o in grad_model.graph.output] == ["y", "grad_x"]
    assert grad_model.opset_import[0].version == 17 and grad_model.ir_version <= 8
    assert model.opset_import[0].version == 13 and len(model.graph.output) == 1  # the input is not modified
    x = normal((2, 4, 16, 16), 13)
    (before,) = session(model).run(["y"], {"x": x})
    (after,) = session(grad_model).run(["y"], {"x": x})
    np.testing.assert_array_equal(before, after)


def test_drop_rule_pool_then_strided_conv_and_two_consumers():
    """A pool whose last ceil window is dropped (H 9 → 5, onnx infers 6) → Relu → a stride-2 Conv and a Mul:
    the Relu gradient meets the pooled value, and onnx's inferred sizes must agree for ORT to load it."""
    nodes = [
        node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
        node("Relu", ["p"], ["r"]),
        node("Conv", ["r", "W"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
        node("Mul", ["r", "C"], ["m"]),
        node("ReduceSum", ["m", "hw"], ["s"], keepdims=1),
        node("Tanh", ["c"], ["t"]),
        node("Add", ["t", "s"], ["y"]),
    ]
    inits = {"W": const((3, 3, 3, 3), 14), "C": const((1, 3, 1, 1), 15), "hw": np.array([2, 3], np.int64)}
    model = make_model(nodes, (2, 3, 9, 9), inits)
    check("drop-rule pool, two consumers", model, normal((2, 3, 9, 9), 16), of="y")


def test_count_include_pad_pool_that_cannot_be_restated():
    """count_include_pad=1 with a dropped window on one axis and an overhang on the other has no explicit-pad
    form (an added end pad would be counted); it is refused by name rather than loaded with wrong sizes."""
    pool = node(
        "AveragePool",
        ["x"],
        kernel_shape=[4, 4],
        strides=[4, 4],
        pads=[2, 2, 2, 2],
        ceil_mode=1,
        count_include_pad=1,
    )
    model = make_model([pool], (2, 2, 9, 7))
    with pytest.raises(BadInput, match="AveragePool node .averagepool_y.: no explicit-pad form .* axis 1"):
        value_and_grad_model(model, "x", "y")


def test_value_not_reached_from_input_has_zero_gradient():
    model = make_model(
        [node("Relu", ["x"], ["r"]), node("Identity", ["C"], ["y"])], (2, 3), {"C": const((3,), 1)}
    )
    got = ort_grad(model, normal((2, 3), 1), "y")
    np.testing.assert_array_equal(got, np.zeros((2, 3), np.float32))


def test_of_equal_to_wrt_is_the_seed():
    model = make_model([node("Relu", ["x"])], (2, 2, 3))
    np.testing.assert_array_equal(
        ort_grad(model, normal((2, 2, 3), 1), "x", unit=4),
        np.tile([0, 0, 0, 0, 1, 0], (2, 1)).reshape(2, 2, 3),
    )


# --- errors ----------------------------------------------------------------------------------------------
def test_op_without_rule_on_path_names_op_and_node():
    model = make_model([node("Abs", ["x"], ["a"]), node("Relu", ["a"])], (2, 3))
    with pytest.raises(BadInput, match=r"no gradient rule for op Abs \(node 'abs_a'\)"):
        value_and_grad_model(model, "x", "y")


def test_shape_computations_carry_no_gradient():
    """Reshape(tanh(x), Shape(x)): the integer Shape output needs no rule; the gradient is 1 − tanh²."""
    nodes = [node("Tanh", ["x"], ["t"]), node("Shape", ["x"], ["s"]), node("Reshape", ["t", "s"])]
    model = make_model(nodes, (2, 3, 4))
    x = normal((2, 3, 4), 2)
    assert rel_max(ort_grad(model, x, "y"), 1 - np.tanh(x.astype(np.float64)) ** 2) <= CHAIN_TOL


def test_op_without_rule_off_path_is_fine():
    model = make_model([node("Relu", ["x"], ["r"]), node("Abs", ["r"], ["y"])], (2, 3), outputs=("r", "y"))
    assert (
        rel_max(
            ort_grad(model, np.array([[1, -1, 2], [3, 4, -5]], np.float32), "r"),
            np.array([[1, 0, 1], [1, 1, 0]]),
        )
        == 0
    )


def test_weight_depending_on_input_is_refused():
    model = make_model([node("Conv", ["x", "x"])], (1, 1, 3, 3), batch=1)
    with pytest.raises(BadInput, match="Conv node 'conv_y'.*weights depend"):
        value_and_grad_model(model, "x", "y")


@pytest.mark.parametrize(
    ("wrt", "of", "unit", "message"),
    [
        ("nope", "y", None, r"no input 'nope'; inputs: x"),
        ("x", "nope", None, r"no value 'nope'; values: x, conv, relu, norm, pool, flat, fc, y"),
        ("x", "y", 10, r"unit 10 is out of range for 'y': it has 10 units per batch item \(0..9\)"),
        ("x", "y", -1, r"unit -1 is out of range"),
        ("x", "pool", 128, r"it has 128 units"),
    ],
)
def test_bad_arguments(wrt, of, unit, message):
    with pytest.raises(BadInput, match=message):
        value_and_grad_model(chain_model(), wrt, of, unit)


def test_wrong_opset_is_refused():
    model = chain_model()
    model.opset_import[0].version = 11
    with pytest.raises(BadInput, match="expected ONNX opset 13..17, got 11"):
        value_and_grad_model(model, "x", "y")


# --- command line ----------------------------------------------------------------------------------------
def test_cli_writes_gradient_model(tmp_path, capsys):
    source, target = tmp_path / "in.onnx", tmp_path / "out.onnx"
    onnx.save(chain_model(), source)
    assert main(["grad", str(source), "-o", str(target), "--wrt", "x", "--of", "y", "--unit", "3"]) == 0
    written = onnx.load(target)
    onnx.checker.check_model(written)
    x = normal((2, 4, 16, 16), 17, 10.0)
    (got,) = session(written).run(["grad_x"], {"x": x})
    assert rel_max(got, torch_grad(objective(torch_forward(chain_model()), 3), x)) <= CHAIN_TOL
    assert "grad_x" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--wrt", "z", "--of", "y"], "in.onnx: graph 'case' has no input 'z'; inputs: x"),
        (["--wrt", "x", "--of", "y", "--unit", "99"], "in.onnx: unit 99 is out of range"),
        (["--wrt", "x", "--of", "q"], "in.onnx: graph 'case' has no value 'q'"),
    ],
)
def test_cli_bad_input_exits_2_without_output(tmp_path, capsys, args, message):
    source, target = tmp_path / "in.onnx", tmp_path / "out.onnx"
    onnx.save(chain_model(), source)
    assert main(["grad", str(source), "-o", str(target), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not target.exists() and list(tmp_path.iterdir()) == [source]


def test_cli_unreadable_model_exits_2(tmp_path, capsys):
    source, target = tmp_path / "in.onnx", tmp_path / "out.onnx"
    source.write_bytes(b"\x0f\xff not a protobuf \xff" * 8)
    assert main(["grad", str(source), "-o", str(target), "--wrt", "x", "--of", "y"]) == 2
    assert "in.onnx" in capsys.readouterr().err and not target.exists()
    assert main(["grad", str(tmp_path / "missing.onnx"), "-o", str(target), "--wrt", "x", "--of", "y"]) == 2
    assert not target.exists()
