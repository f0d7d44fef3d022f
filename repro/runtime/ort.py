"""ONNX Runtime backend: one session over the value-and-grad graph built by `repro.grad`."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from repro.grad import value_and_grad_model
from repro.posterior import onehot

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def providers(device: str) -> list[str]:
    """CUDA first when asked for and available; ORT falls back to CPU by itself if CUDA fails to load."""
    if device == "cuda" and CUDA in ort.get_available_providers():
        return [CUDA, CPU]
    return [CPU]


def make_session(model: onnx.ModelProto, device: str = "cpu", threads: int = 0) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # ceil-mode pooling shapes make ORT's verifier warn on valid graphs
    return ort.InferenceSession(model.SerializeToString(), options, providers=providers(device))


class OrtBackend:
    """Value and gradient from the autograd-free ONNX graph; images from the forward graph."""

    name = "ort"
    label = "ORT-VJP"

    def __init__(
        self, posterior: onnx.ModelProto, classes: np.ndarray | int, device: str = "cpu", threads: int = 0
    ):
        self.classes = classes
        self._forward = make_session(posterior, device, threads)
        self._grad = make_session(value_and_grad_model(posterior, wrt="z", of="logp"), device, threads)
        inputs = {i.name: i.shape for i in self._forward.get_inputs()}
        self.code_size = int(inputs["z"][1])
        self.n_classes = int(inputs["class_onehot"][1])
        self.device = self._grad.get_providers()[0]

    def _feeds(self, z: np.ndarray) -> dict[str, np.ndarray]:
        z = np.ascontiguousarray(z, dtype=np.float32)
        return {"z": z, "class_onehot": onehot(self.classes, len(z), self.n_classes)}

    def value_and_grad(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logp, grad = self._grad.run(["logp", "grad_z"], self._feeds(z))
        return logp, grad

    def images(self, z: np.ndarray) -> np.ndarray:
        return self._forward.run(["image"], self._feeds(z))[0]

    def logits(self, z: np.ndarray) -> np.ndarray:
        return self._forward.run(["logits"], self._feeds(z))[0]
