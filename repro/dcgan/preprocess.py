"""How an image file becomes the judge's 32×32 input: the named presets, one of which every score records.

`authors` is what the paper's scoring script (davidjesusacu/DNNdiscriminator, `get_sample_crop`) did to each
saved image: read it as RGB uint8, keep the **top-left** 227×227 ("to remove irrelevant details and
captions"), resize to 32×32 with PIL's bilinear filter (`scipy.misc.imresize`), transpose with `.T` to
(3, W, H) — height and width swapped — and feed the 0–255 values unscaled. `standard` is the input the
network was trained on in dcgan_code: the central square, resized, scaled to [−1, 1], channels first.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from repro.dcgan.params import IMAGE_SIZE
from repro.errors import BadInput

AUTHORS_CROP = 227


def _resize(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR))


def authors(rgb: np.ndarray) -> np.ndarray:
    return _resize(np.ascontiguousarray(rgb[:AUTHORS_CROP, :AUTHORS_CROP])).T.astype(np.float32)


def central_square(rgb: np.ndarray) -> np.ndarray:
    """The largest centred square of an [H, W, 3] image, contiguous."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(rgb[top : top + side, left : left + side])


def standard(rgb: np.ndarray) -> np.ndarray:
    small = _resize(central_square(rgb))
    return (small.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)


PRESETS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"authors": authors, "standard": standard}


def decode_rgb(data: bytes, source: str) -> np.ndarray:
    """An image file's bytes → uint8 [H, W, 3] RGB (grey and RGBA files converted, as scipy's imread did)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("RGB"))
    except UnidentifiedImageError:  # PIL's message names its buffer, not the file
        raise BadInput(f"{source}: not an image file (not a format PIL reads)") from None
    except (OSError, ValueError) as e:
        raise BadInput(f"{source}: not an image file ({e})") from None


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise BadInput(f"{path}: cannot read the image ({e.strerror})") from None
    return decode_rgb(data, str(path))


def judge_input(rgb: np.ndarray, preset: str) -> np.ndarray:
    """uint8 [H, W, 3] RGB → float32 [3, 32, 32], the values the judge sees."""
    if preset not in PRESETS:
        raise BadInput(f"judge preprocessing: expected one of {', '.join(PRESETS)}, got {preset!r}")
    return PRESETS[preset](rgb)
