"""Backends that evaluate the posterior: ONNX Runtime over the VJP graph, and torch autograd over onnx2torch.

Both satisfy `Backend`, so samplers and checks never know which one they drive.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Backend(Protocol):
    n_classes: int
    code_size: int

    def value_and_grad(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """logp [C] and ∇_z logp [C, D] for C chains, float32 z [C, D]."""
        ...

    def images(self, z: np.ndarray) -> np.ndarray:
        """The generator's output [C, 3, H, W] (BGR, mean-subtracted, 0–255 scale)."""
        ...
