"""A model set: which generator, classifier, crop, bounds, judge and evaluator belong together.

The record's field defaults are the only defaults a set has: a manifest that leaves out a setting and a set
known by name both get them from here, so the two cannot disagree. A set's nets are read as Caffe lays them
out (`layout`) from the prototxts alone, so sizes are known before any weights are read or any model runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from repro.caffe import Net
from repro.convert.cache import NetFiles, load_caffe_net
from repro.dcgan import DcganFiles
from repro.errors import BadInput
from repro.samplers.methods import Method


@dataclass(frozen=True)
class ModelSet:
    name: str
    root: Path | None
    generator: NetFiles
    classifier: NetFiles
    crop_size: int
    crop_offset: int
    class_names: list[str]
    map_lr: float = 8.0  # DGN-AM's start step size for MAP (2.0 for GoogLeNet)
    mala_step: float = 1e-3  # initial τ of the paper's decaying MALA schedule, per set (code scale differs)
    hmc_step: float = 1e-2  # initial ε of the HMC leapfrog schedule
    clip_bounds: Path | None = None
    judge: NetFiles | DcganFiles | None = None  # a Caffe judge (embedded) or the paper's DCGAN judge
    evaluator: NetFiles | None = None
    mean_bgr: list[float] = field(default_factory=lambda: [104.0, 117.0, 123.0])
    manifest: dict = field(default_factory=dict)
    real_images: Path | None = (
        None  # DIR/<class index>/ image files (`--real-images`), see evaluate.real_images
    )

    def start_step(self, method: Method) -> float:
        """The published run's start step on this set (the field the method's table entry names), or the
        method's own where it is the same on every set."""
        if isinstance(method.start_step, str):
            return float(getattr(self, method.start_step))
        return float(method.start_step)

    def check_classes(self, classes: list[int]) -> None:
        """BadInput naming the first class index this set does not have: the one check of `repro sample`'s
        --class and `repro report`'s --classes (the posterior graph's one-hot has its own, for any caller)."""
        n = len(self.class_names)
        bad = [k for k in classes if not 0 <= k < n]
        if bad:
            raise BadInput(
                f"class index {bad[0]} is outside model set {self.name}'s {n} classes (0..{n - 1})"
            )


def layout(files: NetFiles) -> Net:
    """The Caffe net without its weights: its inputs and every blob's shape (`Net.shapes`, batch first), as
    Caffe infers them from the prototxt alone."""
    return load_caffe_net(files, weights=False)


def code_size(ms: ModelSet) -> int:
    """Units of the code z: the generator's input blob, per image."""
    return int(np.prod(layout(ms.generator).shapes[ms.generator.blobs["input"]][1:]))
