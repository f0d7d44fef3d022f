"""Torch backend: onnx2torch of the forward posterior graph and torch autograd.

It shares no gradient code with `repro.grad`, which is why it is the cross-check; on a GPU it is also the
fast path.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import torch

from repro.posterior import target_rows

# onnx2torch 1.5.15's Slice indexes with a list at run time; torch deprecates that but computes the same.
warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing")


def resolve_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        warnings.warn("CUDA requested but not available; using the CPU", stacklevel=2)
        device = "cpu"
    if device == "cuda":
        # Convolutions default to TF32 on Ampere and later, which alone gives ~1e-3 errors against ORT.
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    return torch.device(device)


def to_torch_module(model: onnx.ModelProto) -> torch.nn.Module:
    import onnx2torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # onnx2torch's slice converter warns about tuple indexing
        module = onnx2torch.convert(model)
    return module.eval()  # onnx2torch returns training mode: Dropout would be active


class TorchBackend:
    name = "torch"
    label = "torch autograd"

    def __init__(
        self,
        posterior: onnx.ModelProto,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        threads: int = 0,
    ):
        if threads > 0:  # torch has one thread pool per process, so this sets the process's
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        self.dtype = dtype
        if dtype != torch.float32:  # the parity checks' float64 reference names itself
            self.label = f"{self.label} {str(dtype).removeprefix('torch.')}"
        self.module = to_torch_module(posterior).to(self.device, dtype)
        for p in self.module.parameters():
            p.requires_grad_(False)
        inputs = {i.name: i for i in posterior.graph.input}
        self.code_size = inputs["z"].type.tensor_type.shape.dim[1].dim_value
        self.target_size = inputs["target_weights"].type.tensor_type.shape.dim[1].dim_value
        outputs = {o.name: o for o in posterior.graph.output}
        self.n_classes = outputs["logits"].type.tensor_type.shape.dim[1].dim_value
        self.takes = list(inputs)  # the module's arguments, in order
        self.outputs = [o.name for o in posterior.graph.output]  # what it returns, in order
        self._index = {name: i for i, name in enumerate(self.outputs)}

    def _run(self, z: torch.Tensor, classes: np.ndarray | int | None) -> tuple[torch.Tensor, ...]:
        """`classes` None: outputs no class reaches (image, logits); the module still takes a one-hot."""
        n = z.shape[0]
        selected = (
            np.zeros((n, self.target_size), np.float32)
            if classes is None
            else target_rows(classes, n, self.target_size)
        )
        out = self.module(z, torch.from_numpy(selected).to(self.device, self.dtype))
        # onnx2torch returns a bare tensor for one output and a list or tuple for several.
        return tuple(out) if isinstance(out, (list, tuple)) else (out,)

    def value_and_grad(self, z: np.ndarray, classes: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        zt = torch.tensor(np.asarray(z), dtype=self.dtype, device=self.device, requires_grad=True)
        logp = self._run(zt, classes)[self._index["logp"]]
        (grad,) = torch.autograd.grad(logp.sum(), zt)
        return logp.detach().cpu().numpy(), grad.cpu().numpy()

    def _forward(self, z: np.ndarray, output: str, classes: np.ndarray | int | None = None) -> torch.Tensor:
        with torch.no_grad():
            zt = torch.tensor(np.asarray(z), dtype=self.dtype, device=self.device)
            return self._run(zt, classes)[self._index[output]].cpu()

    def logp(self, z: np.ndarray, classes: np.ndarray | int) -> np.ndarray:
        """In the backend's own precision: the float64 finite differences of repro.parity need it."""
        return self._forward(z, "logp", classes).numpy()

    def images(self, z: np.ndarray) -> np.ndarray:
        return self._forward(z, "image").float().numpy()

    def logits(self, z: np.ndarray) -> np.ndarray:
        return self._forward(z, "logits").float().numpy()
