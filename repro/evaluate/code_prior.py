"""A Gaussian prior on z fitted to the codes of real images: the `-prior` rows (beyond the paper).

The paper's N(0, I) holds ‖z‖ near √D, while the codes the generator was trained on (fc6 after ReLU) have
per-unit means and stds of several units and many units that are always 0; MCMC under N(0, I) draws grey
images for that reason. The fitted prior is N(μ, diag σ²) with μ, σ the per-unit mean and std of real codes:

- where the set has real images (the embedded set's held-out draws, or `--real-images`) and a classifier
  blob that is the generator's code (its `code` blob, else its `features` blob, with as many units as the
  generator's input: the embedded classifier's fc6; CaffeNet's fc6 for dgn-caffenet, the encoder the fc6
  generator was trained to invert), the codes of REAL_PER_CLASS images per class;
- else, from the clip-bounds file read as DGN-AM's act_range/3x (three stds of each unit): σ = μ = bound/3,
  the mean of a rectified unit taken as its std.

σ is floored at STD_FLOOR × the median σ of the live units, so an always-0 unit gets a tight prior rather
than a zero variance. The rule used is the prior's `source`, which the report prints.
"""

from __future__ import annotations

import numpy as np

from repro.errors import BadInput
from repro.evaluate.real_images import available, real_images
from repro.evaluate.sessions import caffe_session
from repro.modelsets import ModelSet
from repro.posterior import GaussianPrior

REAL_PER_CLASS = 32
STD_FLOOR = 0.05


def _code_blob(ms: ModelSet) -> str | None:
    return ms.classifier.blobs.get("code") or ms.classifier.blobs.get("features")


def fitted_prior(ms: ModelSet, code_size: int) -> GaussianPrior:
    codes = _real_codes(ms, code_size)
    if codes is not None:
        mean, std = codes.mean(0), codes.std(0)
        source = (
            f"per-unit mean and std of the {_code_blob(ms)} codes of {len(codes)} real "
            f"images ({REAL_PER_CLASS} per class) through the classifier"
        )
    elif ms.clip_bounds is not None:
        from repro.samplers import load_bounds

        mean = std = load_bounds(ms.clip_bounds, code_size) / 3.0
        source = f"mean = std = bound / 3 of the clip-bounds file {ms.clip_bounds.name} (act_range/3x)"
        if available(ms):
            source += (
                f" (real images were given, but {ms.name}'s classifier has no blob of the generator's "
                f"{code_size}-unit code to encode them with)"
            )
    else:
        raise BadInput(
            f"model set {ms.name}: a fitted prior needs real images with a code-sized classifier features "
            "blob, or clip bounds; it has neither"
        )
    live = std[std > 0]
    floor = STD_FLOOR * (float(np.median(live)) if live.size else 1.0)
    return GaussianPrior(
        mean.astype(np.float64), np.maximum(std, floor), f"{source}; std floored at {floor:.3g}"
    )


def _real_codes(ms: ModelSet, code_size: int) -> np.ndarray | None:
    blob = _code_blob(ms)
    if blob is None or not available(ms):
        return None
    session = caffe_session(ms.classifier, [blob])
    o, s = ms.crop_offset, ms.crop_size
    codes = []
    for k in range(len(ms.class_names)):
        images = real_images(ms, k, REAL_PER_CLASS, stream=2)
        if images is None:
            continue
        x = images[:, :, o : o + s, o : o + s]
        for i in range(len(x)):
            out = session.run([blob], {ms.classifier.blobs["input"]: np.ascontiguousarray(x[i : i + 1])})[0]
            codes.append(out.reshape(-1).astype(np.float64))
    if not codes or codes[0].size != code_size:
        return None
    return np.stack(codes)
