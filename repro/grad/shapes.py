"""Static shapes of graph values, measured by running the forward graph in ONNX Runtime at two batch sizes.

onnx's own shape inference gets Caffe-style ceil pooling wrong (no last-window drop rule at opset 17), and a
wrong pooled size would give a wrong Conv output_padding downstream. Running the graph gives the sizes ORT
really produces; a dimension that differs between the two runs follows the batch and is reported as None.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from repro.errors import BadInput
from repro.grad.emitter import Shape

PROBE_BATCHES = (2, 3)  # not 1, so that no batch-sized dimension looks like a broadcast dimension


def probe_shapes(model: onnx.ModelProto, names: set[str]) -> dict[str, Shape]:
    """Shapes of `names` (values of `model`); symbolic input dimensions are fed 2, then 3."""
    graph = model.graph
    shapes: dict[str, Shape] = {t.name: tuple(t.dims) for t in graph.initializer if t.name in names}
    for vi in graph.input:  # declared static inputs (weights given as inputs): no copy of them fetched back
        dims = vi.type.tensor_type.shape.dim
        if vi.name in names and vi.name not in shapes and dims and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(d.dim_value for d in dims)
    wanted = sorted(names - set(shapes))
    if not wanted:
        return shapes
    outputs = {vi.name for vi in graph.output}
    n_outputs = len(graph.output)
    graph.output.extend(onnx.ValueInfoProto(name=n) for n in wanted if n not in outputs)
    try:
        data = model.SerializeToString()
    finally:
        del graph.output[n_outputs:]
    options = ort.SessionOptions()
    options.log_severity_level = 3  # ORT warns about onnx's (wrong) inferred sizes of ceil-mode pools
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    runs = [session.run(wanted, _zero_feeds(graph, batch)) for batch in PROBE_BATCHES]
    for name, first, second in zip(wanted, *runs, strict=True):
        if first.ndim != second.ndim:
            raise BadInput(
                f"value {name!r} changes rank with the batch size: {first.shape} vs {second.shape}"
            )
        shapes[name] = tuple(a if a == b else None for a, b in zip(first.shape, second.shape, strict=True))
    return shapes


def _zero_feeds(graph: onnx.GraphProto, batch: int) -> dict[str, np.ndarray]:
    initializers = {t.name for t in graph.initializer}
    feeds = {}
    for vi in graph.input:
        if vi.name in initializers:
            continue
        tensor = vi.type.tensor_type
        if not tensor.HasField("shape"):
            raise BadInput(f"graph input {vi.name!r} declares no shape")
        dims = [d.dim_value if d.HasField("dim_value") else batch for d in tensor.shape.dim]
        feeds[vi.name] = np.zeros(dims, helper.tensor_dtype_to_np_dtype(tensor.elem_type))
    return feeds
