"""The discriminator's parameters, in the order of its Theano function's arguments (and of its .npy files).

dcgan_code's imagenet/load_pretrained.py: six 3×3 convolutions 3→128→128→256→256→512→512 with strides
1,2,1,2,1,2 on a 32×32 input, batch normalisation (scale g, shift b) after every convolution but the first,
and a linear read-out wy of the flattened 512×4×4 features with no bias. The layers are fixed; the widths
are read from the files, so that a narrower discriminator of the same design (the embedded set's) is the same
kind of judge, loaded and scored by the same code as the paper's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SIZE = 32
STRIDES = (1, 2, 1, 2, 1, 2)
PAPER_WIDTHS = (128, 128, 256, 256, 512, 512)  # output channels of the six convolutions
CONV_NAMES = ("w", "w2", "w3", "w4", "w5", "w6")


def param_shapes(widths: tuple[int, ...] = PAPER_WIDTHS) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of the discriminator's 17 parameters for these convolution widths, in file order."""
    channels = (3, *widths)
    out: list[tuple[str, tuple[int, ...]]] = []
    for i, name in enumerate(CONV_NAMES):
        out.append((name, (channels[i + 1], channels[i], 3, 3)))
        if i:
            out += [(f"g{i + 1}", (channels[i + 1],)), (f"b{i + 1}", (channels[i + 1],))]
    side = IMAGE_SIZE // math.prod(STRIDES)
    out.append(("wy", (channels[-1] * side * side, 1)))
    return out


PARAMS: list[tuple[str, tuple[int, ...]]] = param_shapes()  # the paper's: w, w2, g2, b2, …, b6, wy


@dataclass(frozen=True)
class JudgeParams:
    """The 17 float32 arrays by name, in file order, and where they came from (the .jl index, or None if
    made in memory)."""

    arrays: dict[str, np.ndarray]
    source: Path | None = None

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(int(self.arrays[name].shape[0]) for name in CONV_NAMES)


@dataclass(frozen=True)
class DcganFiles:
    """A DCGAN judge as a model set names it: its .jl index (or the folder holding it), the preprocessing
    preset (repro.dcgan.preprocess) and the format of the saved files it scores (repro.images)."""

    index: Path
    preprocess: str = "authors"
    file_format: str = "jpeg"
