"""The DCGAN judge as an ONNX graph, computing what Theano computed for the paper.

Three details of the Theano code decide the numbers and are easy to lose in a port:
- `dnn_conv` with its default `conv_mode='conv'` is a true convolution, so the kernels are flipped in both
  spatial axes here (ONNX Conv is a cross-correlation), with pads (1, 1) and strides 1,2,1,2,1,2;
- dcgan_code's `batchnorm` normalises with the **current batch's** mean and variance over (N, H, W),
  (x − μ)/√(σ² + 1e-8)·g + b; no running statistics exist, so a score depends on what else is in the batch,
  and images are scored one per batch, as the authors did;
- the read-out is `sigmoid(dot(flatten(h6), wy))` with no bias; `lrelu` leaks 0.2.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from repro.dcgan.params import IMAGE_SIZE, STRIDES, JudgeParams
from repro.onnx_versions import IR_VERSION, OPSET

EPSILON = 1e-8
LEAK = 0.2


def judge_to_onnx(params: JudgeParams) -> onnx.ModelProto:
    """Input `image` [batch, 3, 32, 32] as the net sees it (after preprocessing); outputs `logit` and
    `p_real`, both [batch]."""
    a = params.arrays
    inits = [numpy_helper.from_array(np.array(EPSILON, np.float32), "bn_eps")]
    nodes = []
    x = "image"
    for i, stride in enumerate(STRIDES):
        w = "w" if i == 0 else f"w{i + 1}"
        flipped = np.ascontiguousarray(a[w][:, :, ::-1, ::-1])
        inits.append(numpy_helper.from_array(flipped, f"{w}_flipped"))
        conv = f"conv{i + 1}"
        nodes.append(
            helper.make_node(
                "Conv", [x, f"{w}_flipped"], [conv], pads=[1, 1, 1, 1], strides=[stride, stride], name=conv
            )
        )
        x = conv
        if i:
            x = _batchnorm(nodes, inits, x, i + 1, a)
        nodes.append(helper.make_node("LeakyRelu", [x], [f"h{i + 1}"], alpha=LEAK, name=f"lrelu{i + 1}"))
        x = f"h{i + 1}"
    inits.append(numpy_helper.from_array(a["wy"], "wy"))
    inits.append(numpy_helper.from_array(np.array([-1], np.int64), "flat_shape"))
    nodes += [
        helper.make_node("Flatten", [x], ["features"], axis=1, name="flatten"),
        helper.make_node("MatMul", ["features", "wy"], ["logit_2d"], name="readout"),
        helper.make_node("Reshape", ["logit_2d", "flat_shape"], ["logit"], name="logit"),
        helper.make_node("Sigmoid", ["logit"], ["p_real"], name="p_real"),
    ]
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "dcgan_judge",
        inputs=[helper.make_tensor_value_info("image", f32, ["batch", 3, IMAGE_SIZE, IMAGE_SIZE])],
        outputs=[
            helper.make_tensor_value_info("logit", f32, ["batch"]),
            helper.make_tensor_value_info("p_real", f32, ["batch"]),
        ],
        initializer=inits,
    )
    model = helper.make_model_gen_version(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="repro.convert.dcgan"
    )
    model.ir_version = min(model.ir_version, IR_VERSION)
    return model


def _batchnorm(nodes: list, inits: list, x: str, k: int, a: dict) -> str:
    """Batch-statistics normalisation over (N, H, W), then ·g + b (dcgan_code lib/ops.py `batchnorm`)."""
    inits.append(numpy_helper.from_array(a[f"g{k}"].reshape(1, -1, 1, 1), f"g{k}"))
    inits.append(numpy_helper.from_array(a[f"b{k}"].reshape(1, -1, 1, 1), f"b{k}"))
    p = f"bn{k}/"
    nodes += [
        helper.make_node("ReduceMean", [x], [p + "mean"], axes=[0, 2, 3], keepdims=1, name=p + "mean"),
        helper.make_node("Sub", [x, p + "mean"], [p + "centred"], name=p + "centred"),
        helper.make_node("Mul", [p + "centred", p + "centred"], [p + "sq"], name=p + "sq"),
        helper.make_node("ReduceMean", [p + "sq"], [p + "var"], axes=[0, 2, 3], keepdims=1, name=p + "var"),
        helper.make_node("Add", [p + "var", "bn_eps"], [p + "var_eps"], name=p + "var_eps"),
        helper.make_node("Sqrt", [p + "var_eps"], [p + "std"], name=p + "std"),
        helper.make_node("Div", [p + "centred", p + "std"], [p + "normed"], name=p + "normed"),
        helper.make_node("Mul", [p + "normed", f"g{k}"], [p + "scaled"], name=p + "scaled"),
        helper.make_node("Add", [p + "scaled", f"b{k}"], [p + "out"], name=p + "out"),
    ]
    return p + "out"
