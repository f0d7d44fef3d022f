"""ONNX Runtime backend: one session over the value-and-grad graph built by `repro.grad`.

One session serves value, gradient, images and logits, so the weights are held once. ORT runs every node of
a graph whatever outputs a call asks for, so the gradient's nodes sit in an `If` on the boolean input
`with_grad`: images and logits run the forward nodes only (docs/architecture.md, "One ORT session"). Its
transposed convolutions run as convolutions (`repro.runtime.subpixel`).

Every session reads its model from a file with the weights beside it (ONNX external data). ORT maps the
weights from that file instead of copying them out of a serialized proto, and a model may exceed protobuf's
2 GiB limit. The file lives in a temporary folder that is removed once the session is open: the mapping
keeps the data.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from repro.convert.save import copy_without, header_with_external_weights
from repro.grad import value_and_grad_model
from repro.posterior import target_rows
from repro.runtime.subpixel import Weights, conv_transposes_as_convs

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
WEIGHTS = "weights.bin"
WITH_GRAD = "with_grad"  # the boolean input that runs the gradient's nodes


def providers(device: str) -> list[str]:
    """CUDA first when asked for and available; ORT falls back to CPU by itself if CUDA fails to load."""
    if device == "cuda" and CUDA in ort.get_available_providers():
        return [CUDA, CPU]
    return [CPU]


def external_weights(model: onnx.ModelProto, folder: Path) -> onnx.ModelProto:
    """A copy of `model` whose large initializers point into folder/weights.bin, which this writes.

    The caller's model is not modified, and the weights are never copied whole in memory."""
    with open(folder / WEIGHTS, "wb") as data:
        return header_with_external_weights(model, data, WEIGHTS)


def write_header(header: onnx.ModelProto, folder: Path) -> Path:
    """folder/model.onnx, whose external weights are folder/weights.bin."""
    path = folder / "model.onnx"
    path.write_bytes(header.SerializeToString())
    return path


def open_session(
    path: Path, device: str = "cpu", threads: int = 0, prepack: bool = True, profile: str | None = None
) -> ort.InferenceSession:
    """`prepack=False` keeps ORT from adding its own reordered copy of each matrix beside the original;
    `profile`: a file prefix for ORT's profiler (every node's run time; `end_profiling()` writes it)."""
    options = ort.SessionOptions()
    if profile is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # ceil-mode pooling shapes make ORT's verifier warn on valid graphs
    if not prepack:
        options.add_session_config_entry("session.disable_prepacking", "1")
    return ort.InferenceSession(str(path), options, providers=providers(device))


def make_session(model: onnx.ModelProto, device: str = "cpu", threads: int = 0) -> ort.InferenceSession:
    with tempfile.TemporaryDirectory(prefix="repro-ort-") as name:
        folder = Path(name)
        return open_session(write_header(external_weights(model, folder), folder), device, threads)


def gated_value_and_grad(header: onnx.ModelProto) -> onnx.ModelProto:
    """The posterior `header` (weights external) plus `grad_z`, computed only when `with_grad` is true.

    The gradient is built with the external weights declared as graph inputs: their shapes alone decide its
    nodes, and `repro.grad` measures shapes by running the graph from memory, where external data cannot be
    found. They become the same external initializers again afterwards.
    """
    external = [t for t in header.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    names = {t.name for t in external}
    skeleton = copy_without(header, "graph")
    skeleton.graph.CopyFrom(copy_without(header.graph, "initializer"))
    skeleton.graph.initializer.extend(t for t in header.graph.initializer if t.name not in names)
    skeleton.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in external)
    model = value_and_grad_model(skeleton, wrt="z", of="logp")
    inputs = [vi for vi in model.graph.input if vi.name not in names]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    model.graph.initializer.extend(external)
    _gate(model.graph, len(header.graph.node), "z", "grad_z")
    return model


def _gate(graph: onnx.GraphProto, n_forward: int, wrt: str, grad: str) -> None:
    """Move the nodes after the first `n_forward` (value_and_grad_model appends the gradient's nodes after
    the forward ones) into the true branch of an If on `with_grad`; the false branch gives zeros."""
    backward = [onnx.NodeProto() for _ in range(len(graph.node) - n_forward)]
    for copy, node in zip(backward, graph.node[n_forward:], strict=True):
        copy.CopyFrom(node)
    del graph.node[n_forward:]
    inner = f"grad/{WITH_GRAD}/{grad}"  # a subgraph may not reuse a name of the graph around it
    for node in backward:
        node.output[:] = [inner if name == grad else name for name in node.output]
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])
    without = [
        helper.make_node("Shape", [wrt], ["grad/without/shape"]),
        helper.make_node("ConstantOfShape", ["grad/without/shape"], ["grad/without/zeros"], value=zero),
    ]
    branches = {
        "then_branch": helper.make_graph(
            backward, WITH_GRAD, [], [helper.make_tensor_value_info(inner, TensorProto.FLOAT, None)]
        ),
        "else_branch": helper.make_graph(
            without,
            "without_grad",
            [],
            [helper.make_tensor_value_info("grad/without/zeros", TensorProto.FLOAT, None)],
        ),
    }
    graph.node.append(helper.make_node("If", [WITH_GRAD], [grad], name=f"grad/{WITH_GRAD}", **branches))
    graph.input.append(helper.make_tensor_value_info(WITH_GRAD, TensorProto.BOOL, []))


def conv_weights_inside(model: onnx.ModelProto) -> int:
    """Give every Conv in a subgraph its own copy of the weights it reads from the main graph; returns how
    many tensors were copied.

    ORT's NCHWc layout transformer, which selects its fastest CPU convolutions, takes a Conv's weights only
    from the initializers of the Conv's own graph. Read from the main graph, the gradient's convolutions in
    the `If` ran as plain Conv, and the value-and-grad call of the `random` set took 7 % longer
    (docs/architecture.md, "One ORT session"). A copy of an external weight is a reference into the same
    file, not a copy of its bytes.
    """
    outer = {t.name: t for t in model.graph.initializer}
    return sum(_copy_conv_weights(attr.g, outer) for attr in _subgraphs(model.graph))


def _subgraphs(graph: onnx.GraphProto):
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield attr
                yield from _subgraphs(attr.g)


def _copy_conv_weights(graph: onnx.GraphProto, outer: dict[str, onnx.TensorProto]) -> int:
    copies: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        for i in range(1, len(node.input)):
            name = node.input[i]
            if name not in outer:
                continue
            if name not in copies:
                copies[name] = f"{graph.name}/{name}"  # a subgraph may not reuse an outer graph's name
                copy = graph.initializer.add()
                copy.CopyFrom(outer[name])
                copy.name = copies[name]
            node.input[i] = copies[name]
    return len(copies)


def _copied_header(path: Path, folder: Path) -> onnx.ModelProto:
    """The model at `path` without its weights' bytes, its external data files copied into `folder` on
    disk, never through this process's memory (ONNX refuses symbolic and hard links to weights)."""
    header = onnx.load(str(path), load_external_data=False)
    tensors = [t for t in header.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    for location in {d.value for t in tensors for d in t.external_data if d.key == "location"}:
        shutil.copyfile(path.parent / location, folder / location)
    return header


def _constants(graph: onnx.GraphProto, folder: Path) -> Weights:
    """An initializer's value by name, its bytes read from `folder` when they are external."""
    tensors = {t.name: t for t in graph.initializer}

    def value(name: str) -> np.ndarray | None:
        return numpy_helper.to_array(tensors[name], str(folder)) if name in tensors else None

    return value


class OrtBackend:
    """Value and gradient from the autograd-free ONNX graph; images and logits from its forward nodes."""

    name = "ort"
    label = "ORT-VJP"

    def __init__(
        self,
        posterior: onnx.ModelProto | Path,
        device: str = "cpu",
        threads: int = 0,
        profile: str | None = None,
    ):
        """`posterior`: the graph, or a model file with its external weights beside it, which ORT then reads
        from there, so that this process never holds the weights but in ORT's session."""
        with tempfile.TemporaryDirectory(prefix="repro-ort-") as name:
            folder = Path(name)
            if isinstance(posterior, Path):
                header = _copied_header(posterior, folder)
            else:
                header = external_weights(posterior, folder)
            header = gated_value_and_grad(header)
            conv_transposes_as_convs(header, _constants(header.graph, folder))
            conv_weights_inside(header)
            # Prepacking holds each fully connected matrix in two packed layouts (forward, gradient) instead
            # of once, for 17 % less time per call on the random set at batch 8 (docs/architecture.md).
            self._session = open_session(write_header(header, folder), device, threads, profile=profile)
        inputs = {i.name: i.shape for i in self._session.get_inputs()}
        self.code_size = int(inputs["z"][1])
        self.target_size = int(inputs["target_weights"][1])
        self.n_classes = int({o.name: o.shape for o in self._session.get_outputs()}["logits"][1])
        self.device = self._session.get_providers()[0]

    def _run(
        self, outputs: list[str], z: np.ndarray, with_grad: bool, classes: np.ndarray | int | None = None
    ) -> list[np.ndarray]:
        """`classes` None: outputs no class reaches (image, logits); the graph still takes a one-hot."""
        with np.errstate(over="ignore"):  # a code beyond float32 becomes inf, which the callers report
            z = np.ascontiguousarray(z, dtype=np.float32)
        feeds = {
            "z": z,
            "target_weights": np.zeros((len(z), self.target_size), np.float32)
            if classes is None
            else target_rows(classes, len(z), self.target_size),
            WITH_GRAD: np.array(with_grad),
        }
        return self._session.run(outputs, feeds)

    def value_and_grad(self, z: np.ndarray, classes: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        logp, grad = self._run(["logp", "grad_z"], z, True, classes)
        return logp, grad

    def images(self, z: np.ndarray) -> np.ndarray:
        return self._run(["image"], z, False)[0]

    def logits(self, z: np.ndarray) -> np.ndarray:
        return self._run(["logits"], z, False)[0]

    def end_profiling(self) -> str:
        """The profile's file (a Chrome trace), when the backend was made with `profile`."""
        return self._session.end_profiling()
