"""ONNX Runtime sessions over a model set's scoring nets (judge, evaluator, classifier) and their crop."""

from __future__ import annotations

import numpy as np

from repro.convert.cache import NetFiles, convert_net, load_caffe_net


def caffe_session(files: NetFiles, outputs: list[str]):
    """An ORT session over the converted net, exposing the named blobs as outputs, at any batch."""
    from repro.convert import to_onnx
    from repro.runtime.ort import make_session

    model = convert_net(files)
    missing = [b for b in outputs if b not in {o.name for o in model.graph.output}]
    if missing:
        model = to_onnx(load_caffe_net(files), outputs=outputs, dynamic_batch=True)
    return make_session(model)


def centre_crop(images: np.ndarray, size: int) -> np.ndarray:
    """The central size×size of [N, C, H, W] images, float32 and contiguous (what a session is fed)."""
    h = images.shape[2]
    off = (h - size) // 2
    return np.ascontiguousarray(images[:, :, off : off + size, off : off + size], dtype=np.float32)
