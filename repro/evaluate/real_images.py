"""Real images of one class, in the generator's output space: the yardstick of the feature-space metrics and
of the report's real-image row.

Two sources. The embedded set's own data set is procedural, so repro draws held-out images of it (seeds
apart from training). For other sets (the DGN sets' ImageNet is not shipped) a user may name a folder,
`--real-images DIR`, holding `DIR/<class index>/` image files (.jpg, .jpeg, .png); each is cut to its
central square and resized to the frame the classifier crops from (crop size + 2 × offset, as DGN-AM's
256-pixel images are to CaffeNet's 227), then put in the generator's space (BGR, mean subtracted).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from repro.dcgan.preprocess import central_square, read_rgb
from repro.errors import BadInput
from repro.modelsets import ModelSet

HELD_OUT_SEED = 20161116  # apart from the training seeds of tools/, so these images were never trained on
SUFFIXES = (".jpg", ".jpeg", ".png")


def available(ms: ModelSet) -> bool:
    return ms.real_images is not None or _procedural(ms)


def _procedural(ms: ModelSet) -> bool:
    from repro.data import procedural

    return list(ms.class_names) == list(procedural.CLASS_NAMES)


def real_images(ms: ModelSet, class_index: int, n: int, stream: int = 0) -> np.ndarray | None:
    """Up to n real images of one class [n, 3, H, W] (a folder may hold fewer), or None when the set has no
    source of real images. `stream` picks disjoint draws of the procedural data (pool vs. reference row)."""
    if ms.real_images is not None:
        return _from_folder(ms, class_index, n)
    if not _procedural(ms):
        return None
    from repro.data import procedural

    entropy = [HELD_OUT_SEED, class_index] + ([stream] if stream else [])  # stream 0: the real-image row
    streams = np.random.SeedSequence(entropy).spawn(n)
    rgb = np.stack([procedural.render(class_index, np.random.default_rng(s)) for s in streams])
    return procedural.to_caffe_input(rgb, ms.mean_bgr)


def _from_folder(ms: ModelSet, class_index: int, n: int) -> np.ndarray | None:
    from repro.data import procedural

    folder = ms.real_images / str(class_index)
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)[:n]
    if not files:
        return None
    size = ms.crop_size + 2 * ms.crop_offset
    rgb = []
    for path in files:
        try:
            square = central_square(read_rgb(path))
        except BadInput as e:
            raise BadInput(f"--real-images: {e}") from None
        rgb.append(np.asarray(Image.fromarray(square).resize((size, size), Image.BILINEAR)))
    return procedural.to_caffe_input(np.stack(rgb), ms.mean_bgr)
