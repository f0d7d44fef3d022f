"""Backends that evaluate the posterior, and the one table that names them.

Every backend satisfies `Backend`, so samplers and checks never know which one they drive. `BACKENDS` is the
only list of them: the command line's choices, the sample job, the report, bench and parity all read it.
Each entry also names the backend its parity gate compares against, one that shares no gradient code with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from repro.errors import BadInput

if TYPE_CHECKING:
    import onnx


class Backend(Protocol):
    """The posterior of every class (or unit of its target blob): what each chain targets is an argument of
    the call that depends on it (class indices, one for all chains or one per chain; or float weight rows
    over the target, repro.posterior.target_rows), never state set between calls, so one backend serves
    every batch of classes (the report batches several in one sampler call) and no call can see a target
    another caller left behind."""

    name: str  # its key in BACKENDS
    label: str  # how checks name its numbers, e.g. "ORT-VJP"
    n_classes: int  # the classifier's logits
    target_size: int  # the width of a weight row: n_classes, or the size of a hidden target's blob
    code_size: int

    def value_and_grad(self, z: np.ndarray, classes: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """logp [C] and ∇_z logp [C, D] for C chains, float32 z [C, D], chain i aimed at classes[i] (or
        at weight row i)."""
        ...

    def images(self, z: np.ndarray) -> np.ndarray:
        """The generator's output [C, 3, H, W] (BGR, mean-subtracted, 0–255 scale)."""
        ...

    def logits(self, z: np.ndarray) -> np.ndarray:
        """The classifier's logits [C, K] of the generated images (every class: no class to give)."""
        ...


@dataclass(frozen=True)
class ClassTarget:
    """A backend aimed at classes (or weight rows): the target a sampler drives (`value_and_grad(z)`, and
    `logits(z)` for the released samplers), which knows nothing of classes."""

    backend: Backend
    classes: np.ndarray | int
    # codes [C, D] of images [C, 3, H, W] (a set's encoder, repro.evaluate.encoder), for PPGN's E(G(z))
    encoder: Callable[[np.ndarray], np.ndarray] | None = None

    def value_and_grad(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.backend.value_and_grad(z, self.classes)

    def logits(self, z: np.ndarray) -> np.ndarray:
        return self.backend.logits(z)

    def autoencode(self, z: np.ndarray) -> np.ndarray:
        """E(G(z)) [C, D]: the code the encoder reads back from the generator's image of z."""
        if self.encoder is None:
            raise BadInput("this target has no encoder: PPGN's prior term E(G(z)) needs the set's encoder")
        return self.encoder(self.backend.images(z))


Posterior = "onnx.ModelProto | Path"  # the graph, or a model file with its external weights beside it
Factory = Callable[[Posterior, str, int], Backend]


@dataclass(frozen=True)
class BackendKind:
    make: Factory  # (graph, device, threads) → backend; imports its runtime only when called
    checked_against: str  # the backend whose numbers the parity gate before sampling compares with


def _ort(posterior, device: str, threads: int) -> Backend:
    from repro.runtime.ort import OrtBackend

    return OrtBackend(posterior, device=device, threads=threads)


def _torch(posterior, device: str, threads: int) -> Backend:
    import onnx

    from repro.runtime.torch import TorchBackend

    if isinstance(posterior, Path):  # onnx2torch copies the weights into torch tensors, from memory
        posterior = onnx.load(str(posterior))
    return TorchBackend(posterior, device=device, threads=threads)


BACKENDS: dict[str, BackendKind] = {
    "ort": BackendKind(_ort, checked_against="torch"),
    "torch": BackendKind(_torch, checked_against="ort"),
}
DEVICES = ("cpu", "cuda")


def make_backend(
    name: str,
    posterior: onnx.ModelProto | Path,
    device: str = "cpu",
    threads: int = 0,
) -> Backend:
    """`posterior`: the graph, or a model file with its external weights beside it (which a backend may read
    from there without holding them in this process). `threads`: CPU threads the backend computes with (0:
    the runtime's default, every core). Processes that share a machine (Ray tasks) each pass their own
    share, or their thread pools fight for the cores."""
    if name not in BACKENDS:
        raise BadInput(f"backend: expected one of {', '.join(BACKENDS)}, got {name!r}")
    if device not in DEVICES:
        raise BadInput(f"device: expected one of {', '.join(DEVICES)}, got {device!r}")
    return BACKENDS[name].make(posterior, device, threads)
