"""The discriminator's parameters, in the order of its Theano function's arguments (and of its .npy files).

dcgan_code's imagenet/load_pretrained.py: six 3×3 convolutions 3→128→128→256→256→512→512 with strides
1,2,1,2,1,2 on a 32×32 input, batch normalisation (scale g, shift b) after every convolution but the first,
and a linear read-out wy of the flattened 512×4×4 features with no bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SIZE = 32
STRIDES = (1, 2, 1, 2, 1, 2)
CHANNELS = (3, 128, 128, 256, 256, 512, 512)


def _params() -> list[tuple[str, tuple[int, ...]]]:
    out: list[tuple[str, tuple[int, ...]]] = []
    for i in range(6):
        name = "w" if i == 0 else f"w{i + 1}"
        out.append((name, (CHANNELS[i + 1], CHANNELS[i], 3, 3)))
        if i:
            out += [(f"g{i + 1}", (CHANNELS[i + 1],)), (f"b{i + 1}", (CHANNELS[i + 1],))]
    side = IMAGE_SIZE // math.prod(STRIDES)
    out.append(("wy", (CHANNELS[-1] * side * side, 1)))
    return out


PARAMS: list[tuple[str, tuple[int, ...]]] = _params()  # w, w2, g2, b2, …, w6, g6, b6, wy: 17 entries


@dataclass(frozen=True)
class JudgeParams:
    """The 17 float32 arrays by name, and where they came from (the .jl index, or None if made in memory)."""

    arrays: dict[str, np.ndarray]
    source: Path | None = None


@dataclass(frozen=True)
class DcganFiles:
    """A DCGAN judge as a model set names it: its .jl index (or the folder holding it), the preprocessing
    preset (repro.dcgan.preprocess) and the format of the saved files it scores (repro.images)."""

    index: Path
    preprocess: str = "authors"
    file_format: str = "jpeg"
