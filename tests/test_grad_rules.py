"""Every VJP rule, checked against two independent references.

Each case is a small forward ONNX graph x → op(s) → y, weighted by a fixed random tensor R (of = y·R) so the
rule sees a random cotangent rather than all ones. The ORT-run gradient of Σ of (or of one unit of it) is
compared with
  * torch autograd in float64 over onnx2torch's module of the same forward graph (hand-written torch where
    onnx2torch's semantics differ from ONNX), error = max|g_ort − g_torch| / max|g_torch| ≤ TORCH_TOL;
  * float64 central finite differences of that forward along random unit directions v, error =
    max_v |g_ort·v − fd_v| / ‖g_torch‖₂ ≤ FD_TOL (Cauchy–Schwarz scale of g·v).
TORCH_TOL and FD_TOL = 1e-5: the ORT side runs in float32 (eps 6e-8), and sums of up to a few hundred
products stay two orders of magnitude below 1e-5 relative; the float64 differences with step 1e-6 are
accurate to ~1e-9. Tie cases (MaxPool, Max) skip finite differences, which do not define a gradient at a
tie, and are checked against the tie rule instead.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx2torch
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from repro.grad import value_and_grad_model

TORCH_TOL = 1e-5
FD_TOL = 1e-5
FD_STEP = 1e-6
FD_DIRECTIONS = 3
BATCH = 2


# --- harness ---------------------------------------------------------------------------------------------
def session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def make_model(nodes, x_shape, inits=None, outputs=("y",), batch="batch", value_info=()) -> onnx.ModelProto:
    """Forward model with input x of shape [batch, *x_shape[1:]] and the given outputs (shapes measured);
    `batch` is the symbolic name, or an int for a model whose batch size is fixed."""
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, *x_shape[1:]])
    untyped_outputs = [onnx.ValueInfoProto(name=o) for o in outputs]
    untyped = helper.make_graph(nodes, "case", [x_info], untyped_outputs, inits, value_info=list(value_info))
    model = helper.make_model_gen_version(untyped, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    sizes = (2, 3) if isinstance(batch, str) else (batch, batch)
    runs = [session(model).run(list(outputs), {"x": np.zeros((b, *x_shape[1:]), np.float32)}) for b in sizes]
    infos = []
    for i, out in enumerate(outputs):
        pairs = zip(runs[0][i].shape, runs[1][i].shape, strict=True)
        dims = [
            a if a == b else "batch" if (a, b) == sizes else f"{out}_{j}" for j, (a, b) in enumerate(pairs)
        ]
        infos.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, dims))
    graph = helper.make_graph(nodes, "case", [x_info], infos, inits, value_info=list(value_info))
    model = helper.make_model_gen_version(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def weighted(nodes, x_shape, inits=None, seed=0, batch="batch") -> onnx.ModelProto:
    """x → nodes → y, then of = y·R with R random, fixed, broadcast over the batch-dependent axes of y."""
    base = make_model(nodes, x_shape, inits, batch=batch)
    dims = [
        d.dim_value if d.HasField("dim_value") else 1 for d in base.graph.output[0].type.tensor_type.shape.dim
    ]
    weights = np.random.default_rng(1000 + seed).normal(size=dims).astype(np.float32)
    nodes = [*nodes, helper.make_node("Mul", ["y", "R"], ["of"])]
    # y's measured shape is declared: onnx infers ceil-mode pooled sizes wrongly, and y·R would not load
    return make_model(nodes, x_shape, {**(inits or {}), "R": weights}, ("of",), batch, base.graph.output)


def torch_forward(model: onnx.ModelProto, output: int = 0):
    module = onnx2torch.convert(model).eval().double()

    def forward(x: torch.Tensor) -> torch.Tensor:
        out = module(x)
        return out[output] if isinstance(out, (tuple, list)) else out

    return forward


def objective(forward, unit):
    def f(x: torch.Tensor) -> torch.Tensor:
        out = forward(x)
        if unit is None:
            return out.sum()
        return out.reshape(out.shape[0], -1)[:, unit].sum()

    return f


def ort_grad(model: onnx.ModelProto, x: np.ndarray, of: str = "of", unit=None, wrt: str = "x") -> np.ndarray:
    grad_model = value_and_grad_model(model, wrt, of, unit)
    onnx.checker.check_model(grad_model)
    return session(grad_model).run([f"grad_{wrt}"], {wrt: x})[0]


def torch_grad(f, x: np.ndarray) -> np.ndarray:
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(f(xt), xt)
    return grad.numpy()


def fd_error(f, x: np.ndarray, grad: np.ndarray, reference: np.ndarray, seed: int = 0) -> float:
    """max over random unit directions v of |grad·v − central difference of f along v| / ‖reference‖."""
    rng = np.random.default_rng(seed)
    x64 = torch.tensor(x, dtype=torch.float64)
    worst = 0.0
    with torch.no_grad():
        for _ in range(FD_DIRECTIONS):
            v = rng.normal(size=x.shape)
            v /= np.linalg.norm(v)
            vt = torch.tensor(v)
            fd = (f(x64 + FD_STEP * vt) - f(x64 - FD_STEP * vt)).item() / (2 * FD_STEP)
            worst = max(worst, abs(float(np.sum(grad.astype(np.float64) * v)) - fd))
    return worst / max(np.linalg.norm(reference), 1e-30)


def rel_max(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).max() / max(np.abs(b).max(), 1e-30))


def check(case_id, model, x, *, unit=None, forward=None, fd=True, of="of") -> tuple[float, float | None]:
    """ORT gradient vs torch float64 autograd and (unless fd=False) float64 finite differences; print both."""
    f = objective(forward or torch_forward(model), unit)
    got = ort_grad(model, x, of, unit)
    reference = torch_grad(f, x)
    assert got.shape == x.shape
    torch_err = rel_max(got, reference)
    fd_err = fd_error(f, x, got, reference) if fd else None
    print(f"\nGRADROW {case_id} torch={torch_err:.2e} fd={'skipped' if fd_err is None else f'{fd_err:.2e}'}")
    assert np.abs(reference).max() > 0, "the reference gradient is all zeros: the case tests nothing"
    assert torch_err <= TORCH_TOL, f"{case_id}: ORT vs torch autograd {torch_err:.2e} > {TORCH_TOL}"
    if fd_err is not None:
        assert fd_err <= FD_TOL, f"{case_id}: ORT vs finite differences {fd_err:.2e} > {FD_TOL}"
    return torch_err, fd_err


def normal(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


def positive(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, size=shape).astype(np.float32)


def const(shape, seed, scale=0.5):
    return normal(shape, seed + 7, scale)


def node(op, inputs, outputs=("y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), name=f"{op.lower()}_{outputs[0]}", **attrs)


def i64(*values):
    return np.array(values, np.int64)


# --- cases: (id, nodes, x shape, initializers, options) -----------------------------------------------------
X4 = (BATCH, 4, 6, 6)
CASES = [
    ("Identity", [node("Identity", ["x"])], X4, {}, {}),
    ("Flatten axis1", [node("Flatten", ["x"], axis=1)], X4, {}, {}),
    ("Flatten axis2", [node("Flatten", ["x"], axis=2)], X4, {}, {}),
    ("Reshape 0,-1", [node("Reshape", ["x", "s"])], X4, {"s": i64(0, -1, 9)}, {}),
    ("Unsqueeze", [node("Unsqueeze", ["x", "a"])], X4, {"a": i64(2, -1)}, {}),
    ("Squeeze", [node("Squeeze", ["x", "a"])], (BATCH, 3, 1, 5), {"a": i64(2)}, {}),
    ("Transpose", [node("Transpose", ["x"], perm=[0, 2, 3, 1])], X4, {}, {}),
    ("Relu", [node("Relu", ["x"])], X4, {}, {}),
    ("LeakyRelu", [node("LeakyRelu", ["x"], alpha=0.3)], X4, {}, {}),
    ("LeakyRelu negative slope", [node("LeakyRelu", ["x"], alpha=-0.3)], X4, {}, {}),
    ("Sigmoid", [node("Sigmoid", ["x"])], X4, {}, {}),
    ("Tanh", [node("Tanh", ["x"])], X4, {}, {}),
    ("Exp", [node("Exp", ["x"])], X4, {}, {}),
    ("Log", [node("Log", ["x"])], X4, {}, {"x": "positive"}),
    ("Sqrt", [node("Sqrt", ["x"])], X4, {}, {"x": "positive"}),
    ("Neg", [node("Neg", ["x"])], X4, {}, {}),
    ("Softmax axis1 2-D", [node("Softmax", ["x"], axis=1)], (BATCH, 7), {}, {}),
    ("Softmax axis1 4-D", [node("Softmax", ["x"], axis=1)], X4, {}, {}),
    ("Softmax axis-1 4-D", [node("Softmax", ["x"], axis=-1)], X4, {}, {}),
    ("LogSoftmax axis1 2-D", [node("LogSoftmax", ["x"], axis=1)], (BATCH, 7), {}, {}),
    ("LogSoftmax axis1 4-D", [node("LogSoftmax", ["x"], axis=1)], X4, {}, {}),
    ("LogSoftmax axis2 4-D", [node("LogSoftmax", ["x"], axis=2)], X4, {}, {}),
    # convolutions: W is (M, C/g, kh, kw)
    (
        "Conv g2 d2 s2 p1",
        [node("Conv", ["x", "W", "B"], group=2, dilations=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1])],
        (BATCH, 4, 9, 9),
        {"W": const((6, 2, 3, 3), 1), "B": const((6,), 2)},
        {},
    ),
    (
        "Conv 7x7 s2 p3 even (output_padding 1)",
        [node("Conv", ["x", "W"], strides=[2, 2], pads=[3, 3, 3, 3])],
        (BATCH, 3, 10, 10),
        {"W": const((4, 3, 7, 7), 3, 0.2)},
        {},
    ),
    (
        "Conv rectangular asymmetric pads",
        [node("Conv", ["x", "W"], strides=[2, 1], pads=[0, 1, 2, 0], kernel_shape=[3, 2])],
        (BATCH, 2, 7, 6),
        {"W": const((3, 2, 3, 2), 4)},
        {},
    ),
    (
        "Conv g4 depthwise 1-D s3",
        [node("Conv", ["x", "W"], group=4, strides=[3], pads=[2, 1])],
        (BATCH, 4, 11),
        {"W": const((8, 1, 4), 5)},
        {},
    ),
    (
        "ConvTranspose g2 s2 p1 k4",
        [node("ConvTranspose", ["x", "W", "B"], group=2, strides=[2, 2], pads=[1, 1, 1, 1])],
        (BATCH, 4, 5, 5),
        {"W": const((4, 3, 4, 4), 6), "B": const((6,), 7)},
        {},
    ),
    (
        "ConvTranspose s2 k3 output_padding 1 d2",
        [node("ConvTranspose", ["x", "W"], strides=[2, 2], output_padding=[1, 1], dilations=[2, 2])],
        (BATCH, 3, 4, 5),
        {"W": const((3, 2, 3, 3), 8)},
        {},
    ),
    # matrix products
    (
        "Gemm transB1 after Flatten axis1",
        [node("Flatten", ["x"], ["f"], axis=1), node("Gemm", ["f", "W", "B"], transB=1)],
        (BATCH, 3, 2, 2),
        {"W": const((5, 12), 9), "B": const((5,), 10)},
        {},
    ),
    (
        "Gemm transB0 after Flatten axis2, alpha beta",
        [node("Flatten", ["x"], ["f"], axis=2), node("Gemm", ["f", "W", "B"], alpha=0.7, beta=2.0)],
        (BATCH, 3, 2, 2),
        {"W": const((4, 5), 11), "B": const((1, 5), 12)},
        {},
    ),
    (
        "Gemm transA1 (A computed)",
        [node("Transpose", ["x"], ["t"], perm=[1, 0]), node("Gemm", ["t", "W"], transA=1, transB=1)],
        (BATCH, 6),
        {"W": const((3, 6), 13)},
        {},
    ),
    (
        "Gemm both operands computed",
        [node("Tanh", ["x"], ["t"]), node("Gemm", ["x", "t"], transB=1, alpha=0.5)],
        (BATCH, 6),
        {},
        {},
    ),
    (
        "MatMul broadcast batch axes",
        [node("MatMul", ["x", "W"])],
        (BATCH, 1, 3, 4),
        {"W": const((2, 4, 5), 14)},
        {},
    ),
    (
        "MatMul both operands computed",
        [node("Transpose", ["x"], ["t"], perm=[0, 2, 1]), node("MatMul", ["x", "t"])],
        (BATCH, 3, 4),
        {},
        {},
    ),
    # pooling
    (
        "MaxPool ceil drop rule H5 k2 s2 p1",
        [node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)],
        (BATCH, 3, 5, 5),
        {},
        {},
    ),
    (
        "MaxPool k3 s2 ceil H16",
        [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)],
        (BATCH, 2, 16, 16),
        {},
        {},
    ),
    (
        "MaxPool k3 s1 p1 (inception)",
        [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])],
        (BATCH, 2, 5, 5),
        {},
        {},
    ),
    (
        "MaxPool k3 s2 ceil overlapping with ties",
        [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)],
        (BATCH, 2, 8, 8),
        {},
        {"x": "ties", "fd": False},
    ),
    (
        "AveragePool cip1 ceil overhang H6 k3 s2 p1",
        [
            node(
                "AveragePool",
                ["x"],
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
                ceil_mode=1,
                count_include_pad=1,
            )
        ],
        (BATCH, 2, 6, 6),
        {},
        {},
    ),
    (
        "AveragePool cip1 ceil drop rule H5 k2 s2 p1",
        [
            node(
                "AveragePool",
                ["x"],
                kernel_shape=[2, 2],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
                ceil_mode=1,
                count_include_pad=1,
            )
        ],
        (BATCH, 2, 5, 5),
        {},
        {},
    ),
    (
        "AveragePool cip0 ceil H6 k3 s2 p1",
        [
            node(
                "AveragePool",
                ["x"],
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
                ceil_mode=1,
                count_include_pad=0,
            )
        ],
        (BATCH, 2, 6, 6),
        {},
        {},
    ),
    (
        "AveragePool floor leftover H7 k2 s2",
        [node("AveragePool", ["x"], kernel_shape=[2, 2], strides=[2, 2])],
        (BATCH, 2, 7, 7),
        {},
        {},
    ),
    (
        "AveragePool k4 s4 p2 ceil drop rule H9",
        [
            node(
                "AveragePool",
                ["x"],
                kernel_shape=[4, 4],
                strides=[4, 4],
                pads=[2, 2, 2, 2],
                ceil_mode=1,
                count_include_pad=1,
            )
        ],
        (BATCH, 2, 9, 9),
        {},
        {},
    ),
    (
        "MaxPool ceil drop rule on H, overhang on W",
        [node("MaxPool", ["x"], kernel_shape=[4, 4], strides=[4, 4], pads=[2, 2, 2, 2], ceil_mode=1)],
        (BATCH, 2, 9, 7),
        {},
        {},
    ),
    (
        "AveragePool cip0 ceil drop rule on H, overhang on W",
        [node("AveragePool", ["x"], kernel_shape=[4, 4], strides=[4, 4], pads=[2, 2, 2, 2], ceil_mode=1)],
        (BATCH, 2, 9, 7),
        {},
        {},
    ),
    (
        "AveragePool global 7x7",
        [node("AveragePool", ["x"], kernel_shape=[7, 7], strides=[1, 1])],
        (BATCH, 3, 7, 7),
        {},
        {},
    ),
    # LRN across channels (ONNX bias = Caffe k)
    (
        "LRN 5 a0.5 b0.75 k2",
        [node("LRN", ["x"], size=5, alpha=0.5, beta=0.75, bias=2.0)],
        (BATCH, 7, 3, 3),
        {},
        {},
    ),
    (
        "LRN 3 a1e-4 b0.75 k1 (CaffeNet scale)",
        [node("LRN", ["x"], size=3, alpha=1e-4, beta=0.75)],
        (BATCH, 5, 4, 4),
        {},
        {"scale": 20.0},
    ),
    # joining and selecting
    (
        "Concat axis1 computed + constant",
        [node("Relu", ["x"], ["r"]), node("Concat", ["x", "C", "r"], axis=1)],
        X4,
        {"C": const((BATCH, 2, 6, 6), 15)},
        {"batch": BATCH},
    ),
    ("Concat axis0 (batch)", [node("Tanh", ["x"], ["t"]), node("Concat", ["t", "x"], axis=0)], X4, {}, {}),
    (
        "Slice steps 1 crop",
        [node("Slice", ["x", "st", "en", "ax"])],
        (BATCH, 3, 8, 8),
        {"st": i64(1, 2), "en": i64(6, 100), "ax": i64(2, 3)},
        {},
    ),
    (
        "Slice steps 2 and -1, negative starts",
        [node("Slice", ["x", "st", "en", "ax", "sp"])],
        (BATCH, 3, 8, 8),
        {"st": i64(-2, 1), "en": i64(0, 8), "ax": i64(3, 2), "sp": i64(-1, 2)},
        {"torch": "slice_steps"},
    ),
    (
        "Split one output unused",
        [
            node("Split", ["x", "sp"], ["a", "b", "c"], axis=1),
            node("Mul", ["a", "two"], ["a2"]),
            node("Concat", ["c", "a2"], axis=1),
        ],
        (BATCH, 6, 3, 3),
        {"sp": i64(1, 3, 2), "two": np.float32(2.0)},
        {},
    ),
    ("Gather 1-D repeated indices", [node("Gather", ["x", "i"], axis=1)], X4, {"i": i64(2, 0, 2, -1)}, {}),
    ("Gather scalar index", [node("Gather", ["x", "i"], axis=2)], X4, {"i": np.int64(3)}, {}),
    # broadcasting arithmetic
    ("Add [1,C,1,1] constant", [node("Add", ["x", "C"])], X4, {"C": const((1, 4, 1, 1), 16)}, {}),
    (
        "Add two computed",
        [node("Relu", ["x"], ["r"]), node("Sigmoid", ["x"], ["s"]), node("Add", ["r", "s"])],
        X4,
        {},
        {},
    ),
    (
        "Add computed broadcast [B,C,1,1]",
        [node("ReduceSum", ["x", "hw"], ["m"]), node("Tanh", ["x"], ["t"]), node("Add", ["t", "m"])],
        X4,
        {"hw": i64(2, 3)},
        {},
    ),
    ("Sub constant - x", [node("Sub", ["C", "x"])], X4, {"C": const((4, 1, 1), 17)}, {}),
    (
        "Sub computed broadcast",
        [node("ReduceMean", ["x"], ["m"], axes=[1]), node("Sub", ["x", "m"])],
        X4,
        {},
        {},
    ),
    ("Mul [1,C,1,1] constant", [node("Mul", ["x", "C"])], X4, {"C": const((1, 4, 1, 1), 18)}, {}),
    ("Mul x*x", [node("Mul", ["x", "x"])], X4, {}, {}),
    (
        "Mul computed broadcast",
        [node("Relu", ["x"], ["r"]), node("ReduceMean", ["x"], ["m"], axes=[2, 3]), node("Mul", ["r", "m"])],
        X4,
        {},
        {},
    ),
    ("Div x / constant", [node("Div", ["x", "C"])], X4, {"C": positive((1, 4, 1, 1), 19)}, {}),
    ("Div constant / x", [node("Div", ["C", "x"])], X4, {"C": const((6,), 20)}, {"x": "positive"}),
    (
        "Div computed / computed",
        [node("Exp", ["x"], ["e"]), node("ReduceSum", ["e", "a"], ["s"]), node("Div", ["e", "s"])],
        X4,
        {"a": i64(1)},
        {},
    ),
    ("Max with constant", [node("Max", ["x", "C"])], X4, {"C": const((1, 4, 1, 1), 21)}, {}),
    (
        "Max of three computed",
        [node("Tanh", ["x"], ["t"]), node("Neg", ["x"], ["n"]), node("Max", ["t", "x", "n"])],
        X4,
        {},
        {},
    ),
    ("Pow constant float exponent", [node("Pow", ["x", "e"])], X4, {"e": np.float32(3.0)}, {}),
    ("Pow constant int exponent", [node("Pow", ["x", "e"])], X4, {"e": np.int64(2)}, {}),
    (
        "Pow both computed",
        [node("Tanh", ["x"], ["t"]), node("Pow", ["x", "t"])],
        X4,
        {},
        {"x": "positive"},
    ),
    # reductions
    ("ReduceSum axes 2,3 keepdims0", [node("ReduceSum", ["x", "a"], keepdims=0)], X4, {"a": i64(2, 3)}, {}),
    ("ReduceSum axis -3 keepdims1", [node("ReduceSum", ["x", "a"], keepdims=1)], X4, {"a": i64(-3)}, {}),
    ("ReduceSum all axes", [node("ReduceSum", ["x"], keepdims=0)], X4, {}, {}),
    ("ReduceSum batch axis", [node("ReduceSum", ["x", "a"], keepdims=0)], X4, {"a": i64(0)}, {}),
    ("ReduceMean axes 1 keepdims0", [node("ReduceMean", ["x"], axes=[1], keepdims=0)], X4, {}, {}),
    ("ReduceMean all axes", [node("ReduceMean", ["x"])], X4, {}, {}),
]


def _random_conv_cases():
    """Random geometry: kernel, stride, pad, dilation, group and size drawn per seed."""
    cases = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        k, s, d, g = (
            int(rng.integers(1, 5)),
            int(rng.integers(1, 4)),
            int(rng.integers(1, 3)),
            int(rng.choice([1, 2])),
        )
        p = int(rng.integers(0, k))
        size = int(rng.integers(d * (k - 1) + 1, 12))
        c_in, c_out = 2 * g, 2 * g
        attrs = {"group": g, "strides": [s, s], "pads": [p] * 4, "dilations": [d, d]}
        cases.append(
            (
                f"Conv random k{k} s{s} p{p} d{d} g{g} H{size}",
                [node("Conv", ["x", "W"], **attrs)],
                (BATCH, c_in, size, size + 1),
                {"W": const((c_out, c_in // g, k, k), 30 + seed)},
                {},
            )
        )
        kp, sp = int(rng.integers(2, 4)), int(rng.integers(1, 3))
        pp = int(rng.integers(0, kp // 2 + 1))
        op = "MaxPool" if seed % 2 else "AveragePool"
        extra = {"count_include_pad": int(rng.integers(0, 2))} if op == "AveragePool" else {}
        pool = node(
            op,
            ["x"],
            kernel_shape=[kp, kp],
            strides=[sp, sp],
            pads=[pp] * 4,
            ceil_mode=int(rng.integers(0, 2)),
            **extra,
        )
        cases.append(
            (f"{op} random k{kp} s{sp} p{pp} H{size}", [pool], (BATCH, 2, size + 2, size + 3), {}, {})
        )
    return cases


CASES += _random_conv_cases()


def slice_steps(x: torch.Tensor) -> torch.Tensor:
    """x[:, :, 1::2, -2:0:-1] (torch slicing has no negative steps)."""
    return torch.flip(x[:, :, 1::2, 1:7], dims=[3])


def hand_written(kind: str, weights: np.ndarray):
    inner = {"slice_steps": slice_steps}[kind]
    r = torch.tensor(weights, dtype=torch.float64)
    return lambda x: inner(x) * r


def case_input(shape, kind, seed) -> np.ndarray:
    if kind == "positive":
        return positive(shape, seed)
    if kind == "ties":  # few distinct values: many windows hold their maximum more than once
        return np.random.default_rng(seed).integers(-2, 3, size=shape).astype(np.float32)
    return normal(shape, seed)


@pytest.mark.parametrize(("case_id", "nodes", "shape", "inits", "options"), CASES, ids=[c[0] for c in CASES])
def test_rule(case_id, nodes, shape, inits, options):
    model = weighted(nodes, shape, inits, seed=len(case_id), batch=options.get("batch", "batch"))
    x = case_input(shape, options.get("x"), seed=len(case_id)) * options.get("scale", 1.0)
    forward = None
    if "torch" in options:
        weights = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "R"))
        forward = hand_written(options["torch"], weights)
    check(case_id, model, x, forward=forward, fd=options.get("fd", True))


def test_max_ties_follow_caffe_eltwise_order():
    """Caffe's Eltwise MAX backward at ties: bottom 1 beats bottom 0, later bottoms win only if greater.

    a = x², b = x, c = 1: at x = 1 all three tie (winner b, derivative 1); at x = 0, a and b tie (winner b,
    derivative 1, where a would give 0); at x = −1, a and c tie (winner a, derivative −2; c gives 0).
    Reference: Caffe's forward loop with its mask, in float64 numpy.
    """
    nodes = [node("Mul", ["x", "x"], ["a"]), node("Identity", ["x"], ["b"]), node("Max", ["a", "b", "c"])]
    model = weighted(nodes, (BATCH, 3, 4), {"c": np.ones((1, 1, 4), np.float32)})
    x = np.random.default_rng(3).integers(-1, 2, size=(BATCH, 3, 4)).astype(np.float32)
    weights = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "R")).astype(
        np.float64
    )
    xs = x.astype(np.float64)
    bottoms = [xs * xs, xs, np.ones_like(xs)]
    slopes = [2 * xs, np.ones_like(xs), np.zeros_like(xs)]
    mask = np.where(bottoms[0] > bottoms[1], 0, 1)
    top = np.maximum(bottoms[0], bottoms[1])
    for i in range(2, 3):
        mask = np.where(bottoms[i] > top, i, mask)
        top = np.maximum(top, bottoms[i])
    expected = sum(np.where(mask == i, slopes[i], 0.0) for i in range(3)) * weights
    got = ort_grad(model, x)
    assert {0.0, 1.0, -1.0} <= set(np.unique(x))
    err = rel_max(got, expected)
    print(f"\nGRADROW Max ties (Caffe order) caffe-ref={err:.2e} fd=skipped")
    assert err <= TORCH_TOL
