"""Codes of real images: the encoder whose code the set's generator was trained to invert.

The fc6 generator of Dosovitskiy & Brox inverts CaffeNet's fc6 after its ReLU, and DGN-AM starts a run from a
real image's code by reading that blob (act_max.py's `get_code`, `--init_file`). A model set's encoder is its
classifier read at its `code` blob (dgn-caffenet: CaffeNet's fc6), or else at its `features` blob when that
has as many units as the generator's input (the embedded set: its classifier's fc6); the blob as a full
forward leaves it, after the in-place ReLU, as get_code reads it. A set with neither (dgn-googlenet, whose
GoogLeNet has no fc6, and the random set) has no encoder, and says so.

Images are read as the set's real images are (repro.evaluate.real_images.read_images: central square, the
frame the classifier crops from, BGR, mean subtracted), then centre-cropped to the classifier's input. That
departs from get_code, which stretches the whole image to 227 × 227 and subtracts the ILSVRC mean image,
which no set carries: its per-channel means are that image's means.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.errors import BadInput
from repro.evaluate.real_images import read_images
from repro.evaluate.sessions import caffe_session
from repro.modelsets import ModelSet, code_size
from repro.modelsets.record import layout


def code_blob(ms: ModelSet) -> str | None:
    """The classifier blob that is the generator's code, or None where the set has none (see above)."""
    blobs = ms.classifier.blobs
    if "code" in blobs:
        return blobs["code"]
    features = blobs.get("features")
    if features is None:
        return None
    shape = layout(ms.classifier).shapes.get(features)
    return features if shape is not None and int(np.prod(shape[1:])) == code_size(ms) else None


def _encoder_blob(ms: ModelSet) -> str:
    blob = code_blob(ms)
    if blob is None:
        raise BadInput(
            f"model set {ms.name} has no encoder: its classifier names no `code` blob, nor a `features` blob "
            f"with the generator's {code_size(ms)} units, to read an image's code from"
        )
    return blob


class Encoder:
    """The set's encoder as one ORT session, for callers that encode again and again (PPGN's prior term
    E(G(h)) at every iteration)."""

    def __init__(self, ms: ModelSet):
        self.blob = _encoder_blob(ms)
        self.session = caffe_session(ms.classifier, [self.blob])
        self.window = slice(ms.crop_offset, ms.crop_offset + ms.crop_size)
        self.feed = ms.classifier.blobs["input"]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Codes [N, D] float64 of images [N, 3, H, W] in the generator's output space (the frame it draws),
        one image per session call, so a code never depends on the images beside it."""
        x = np.ascontiguousarray(images[:, :, self.window, self.window], dtype=np.float32)
        codes = [
            self.session.run([self.blob], {self.feed: x[i : i + 1]})[0].reshape(-1) for i in range(len(x))
        ]
        return np.asarray(codes, np.float64).reshape(len(x), -1)


def encode(ms: ModelSet, images: np.ndarray) -> np.ndarray:
    """Codes [N, D] float64 of images [N, 3, H, W] in the generator's output space."""
    return Encoder(ms)(images)


def encode_files(ms: ModelSet, files: list[Path]) -> np.ndarray:
    """Codes [N, D] of image files, the encoder checked before any file is read."""
    _encoder_blob(ms)
    return encode(ms, read_images(ms, files))
