"""The ORT backend's gradient convolutions get ORT's NCHWc kernels although they sit in an If branch
(repro.runtime.ort.conv_weights_inside), and compute the same convolution (torch float64)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from repro.onnx_versions import IR_VERSION, OPSET
from repro.runtime.ort import conv_weights_inside, external_weights, write_header

TOLERANCE = 2e-5  # float32 sums in another order, relative to the output's largest magnitude
NCHWC = "com.microsoft.nchwc"


def _gated(w: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    """y = Conv(x) in the then-branch, reading w and b from the main graph; a Conv at the top reads them
    too, as the forward and the gradient share the classifier's weights."""
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    then = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y_then"], name="inner", **conv)],
        "with_grad",
        [],
        [helper.make_tensor_value_info("y_then", TensorProto.FLOAT, None)],
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["top"], ["y_else"])],
        "without_grad",
        [],
        [helper.make_tensor_value_info("y_else", TensorProto.FLOAT, None)],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["top"], name="outer", **conv),
            helper.make_node("If", ["flag"], ["y"], then_branch=then, else_branch=other),
        ],
        "gated",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16, 9, 9]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("top", TensorProto.FLOAT, None),
        ],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


def _optimized(path: Path) -> tuple[ort.InferenceSession, onnx.ModelProto]:
    """The session and the graph ORT made of the model, as ORT writes it out."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(path.with_name("optimized.onnx"))
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", "optimized.bin"
    )
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session, onnx.load(str(path.with_name("optimized.onnx")), load_external_data=False)


def _then(model: onnx.ModelProto) -> onnx.GraphProto:
    return next(
        a.g for n in model.graph.node if n.op_type == "If" for a in n.attribute if a.name == "then_branch"
    )


def _domains(model: onnx.ModelProto) -> tuple[set[str], set[str]]:
    """The domains of the convolutions at the top and in the then-branch."""
    branch = _then(model)
    pick = lambda g: {n.domain for n in g.node if n.op_type == "Conv"}  # noqa: E731
    return pick(model.graph), pick(branch)


@pytest.mark.parametrize("external", [False, True], ids=["inline", "external"])
def test_a_branch_conv_reading_main_graph_weights_runs_as_nchwc_and_computes_the_same(external):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    x = rng.standard_normal((2, 16, 9, 9)).astype(np.float32)
    expected = torch.nn.functional.conv2d(
        torch.from_numpy(x).double(), torch.from_numpy(w).double(), torch.from_numpy(b).double(), padding=1
    ).numpy()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        model = _gated(w, b)
        if external:
            model = external_weights(model, folder)
        before = folder / "before" / "model.onnx"
        before.parent.mkdir()
        if external:
            (folder / "before" / "weights.bin").write_bytes((folder / "weights.bin").read_bytes())
        write_header(model, before.parent)
        top, inside = _domains(_optimized(before)[1])
        if top != {NCHWC}:
            pytest.skip("ONNX Runtime has no NCHWc convolutions on this CPU")
        assert inside == {""}, "the control: a branch Conv reading outer weights is not re-laid out"

        assert conv_weights_inside(model) == 2
        branch = _then(model)
        copies = {t.name: t for t in branch.initializer}
        assert sorted(copies) == ["with_grad/b", "with_grad/w"]
        if external:
            outer = {t.name: t for t in model.graph.initializer}
            assert copies["with_grad/w"].external_data == outer["w"].external_data  # a reference, no bytes
            assert not copies["with_grad/w"].raw_data
        path = write_header(model, folder)
        session, optimized = _optimized(path)
        assert _domains(optimized) == ({NCHWC}, {NCHWC})
        got = session.run(["y"], {"x": x, "flag": np.array(True)})[0]
        assert np.abs(got - expected).max() <= TOLERANCE * np.abs(expected).max()
