"""Real images of one class, in the generator's output space: the yardstick of the feature-space metrics and
of the report's real-image row.

Two sources. The embedded set's own data set is procedural, so repro draws held-out images of it (seeds
apart from training). For other sets (the DGN sets' ImageNet is not shipped) a user may name a folder,
`--real-images DIR`, holding `DIR/<class index>/` image files (.jpg, .jpeg, .png); each is cut to its
central square and resized to the frame the classifier crops from (crop size + 2 × offset, as DGN-AM's
256-pixel images are to CaffeNet's 227), then put in the generator's space (BGR, mean subtracted). Hidden
names (".DS_Store") are skipped.

`check_folder` reads such a folder before any sampling, so a bad one stops a report at once: every entry of
a class folder must be an image file (.jpg, .jpeg or .png that PIL reads as RGB), a folder with no images
of any of the report's classes is refused, and the classes without images are named in a notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


def _listing(folder: Path) -> tuple[list[Path], list[Path]]:
    """A class folder's image files (by suffix) and its other entries, each sorted; [] for both when the
    folder is absent."""
    if not folder.is_dir():
        return [], []
    try:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as e:
        raise BadInput(f"--real-images: cannot read {folder} ({e.strerror})") from None
    images = [p for p in entries if p.suffix.lower() in SUFFIXES and p.is_file()]
    return images, [p for p in entries if p not in images]


@dataclass(frozen=True)
class FolderCheck:
    found: dict[int, int]  # per class of the report: the image files in DIR/<class index>/ (0: none)
    notice: str | None  # the classes without images, when some have them; None when every class has


def check_folder(ms: ModelSet, classes: list[int], per_class: int) -> FolderCheck:
    """The `--real-images` folder, checked before any sampling (BadInput in one line): every class folder of
    the set holds only image files, the first `per_class` (the most any metric reads) of each of `classes`
    open as RGB images, and at least one of `classes` has images; the others are named in the notice."""
    root = ms.real_images
    where = f"--real-images {root}"
    for k in range(len(ms.class_names)):  # the fitted prior reads every class, not only the report's
        _, others = _listing(root / str(k))
        if others:
            raise BadInput(
                f"--real-images: {others[0]}: not a .jpg, .jpeg or .png image file; a class folder "
                f"{root}/<class index>/ may hold only images"
            )
    found = {}
    for k in classes:
        images, _ = _listing(root / str(k))
        found[k] = len(images)
        for path in images[:per_class]:
            try:
                read_rgb(path)
            except BadInput as e:
                raise BadInput(f"--real-images: {e}") from None
    named = ", ".join(map(str, classes))
    if not any(found.values()):
        if not any((root / str(k)).is_dir() for k in classes):
            held = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
            holds = ", ".join(held[:5]) + (", ..." if len(held) > 5 else "") if held else "nothing"
            raise BadInput(
                f"{where}: no <class index>/ subfolder for any of the report's classes {named} (it holds "
                f"{holds}); put each class's images in {root}/<class index>/"
            )
        raise BadInput(
            f"{where}: no .jpg, .jpeg or .png images in the subfolders of the report's classes {named}"
        )
    lacking = [k for k in classes if not found[k]]
    notice = None
    if lacking:
        listed = ", ".join(f"{k} ({ms.class_names[k]})" for k in lacking)
        many = len(lacking) > 1
        notice = (
            f"{where} has no images of class{'es' if many else ''} {listed}: the real-image row leaves "
            f"{'them' if many else 'it'} out, and {'their' if many else 'its'} KID, FD, precision and "
            "recall are empty"
        )
    return FolderCheck(found, notice)


def _from_folder(ms: ModelSet, class_index: int, n: int) -> np.ndarray | None:
    files = _listing(ms.real_images / str(class_index))[0][:n]
    if not files:
        return None
    try:
        return read_images(ms, files)
    except BadInput as e:
        raise BadInput(f"--real-images: {e}") from None


def read_images(ms: ModelSet, files: list[Path]) -> np.ndarray:
    """Image files [N, 3, H, W] in the generator's output space: each cut to its central square, resized
    to the frame the classifier crops from, BGR, mean subtracted (the module docstring)."""
    from repro.data import procedural

    size = ms.crop_size + 2 * ms.crop_offset
    rgb = [
        np.asarray(Image.fromarray(central_square(read_rgb(path))).resize((size, size), Image.BILINEAR))
        for path in files
    ]
    return procedural.to_caffe_input(np.stack(rgb), ms.mean_bgr)
