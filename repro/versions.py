"""The versions of everything that can change a number, recorded in every run record and report."""

from __future__ import annotations

import platform


def versions() -> dict[str, str]:
    import numpy
    import onnx
    import onnxruntime
    import torch

    import repro

    return {
        "repro": repro.__version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
    }
