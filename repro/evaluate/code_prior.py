"""A Gaussian prior on z fitted to the codes of real images: the `-prior` rows (beyond the paper).

The paper's N(0, I) holds ‖z‖ near √D, while the codes the generator was trained on (fc6 after ReLU) have
per-unit means and stds of several units and many units that are always 0; MCMC under N(0, I) draws grey
images for that reason. The codes come

- where the set has real images (the embedded set's held-out draws, or `--real-images`) and a classifier
  blob that is the generator's code (its `code` blob, else its `features` blob, with as many units as the
  generator's input: the embedded classifier's fc6; CaffeNet's fc6 for dgn-caffenet, the encoder the fc6
  generator was trained to invert), from REAL_PER_CLASS images per class;
- else from the clip-bounds file read as DGN-AM's act_range/3x (three stds of each unit): σ = μ = bound/3,
  the mean of a rectified unit taken as its std. There are no codes to correlate: the diagonal form only.

Two forms (FORMS): "diagonal", N(μ, diag σ²) with the per-unit mean and std; and "full", the same marginals
with the units' correlations, shrunk towards none by Ledoit and Wolf's rule (sklearn.covariance.ledoit_wolf
on the standardised codes, then rescaled to unit diagonal): with fewer codes than units the sample
correlation is singular, and the shrinkage, chosen from the codes themselves, makes it positive definite.
"fitted" (the default, and the report's) is the form whose own draws look most like real images by KID
(repro.evaluate.prior_realism); where that cannot be measured (no evaluator or no real images), the diagonal
form, as before the full one existed. The measurement and the rule travel with the prior (`realism`,
`source`).

σ is floored at STD_FLOOR × the median σ of the live units, so an always-0 unit gets a tight prior rather
than a zero variance. The rule used is the prior's `source`, which the report prints.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from repro.errors import BadInput
from repro.evaluate.encoder import code_blob, encode
from repro.evaluate.image_metrics import ImageMetrics
from repro.evaluate.prior_realism import realism
from repro.evaluate.real_images import available, real_images
from repro.modelsets import ModelSet
from repro.posterior import GaussianPrior

REAL_PER_CLASS = 32
STD_FLOOR = 0.05
FORMS = ("diagonal", "full")
PAPER_SIGMA = 1.0  # the paper's N(0, I), measured beside the candidates for comparison


def fitted_prior(
    ms: ModelSet, code_size: int, form: str = "fitted", metrics: ImageMetrics | None = None
) -> GaussianPrior:
    """The prior of `--prior fitted` (form "fitted": chosen by measurement, see the module docstring) or of
    one form. `metrics`: the set's scorers, when the caller already holds them."""
    candidates = fitted_forms(ms, code_size)
    if form != "fitted":
        if form not in candidates:
            raise BadInput(
                f"--prior fitted-{form}: model set {ms.name} has no real codes to fit correlations to "
                f"(its prior comes from {candidates['diagonal'].source.split(';')[0]}); use --prior fitted"
            )
        return candidates[form]
    measured = realism(
        ms, {"N(0, I)": PAPER_SIGMA, **candidates}, metrics if metrics is not None else ImageMetrics(ms)
    )
    if measured is None:
        return dataclasses.replace(
            candidates["diagonal"],
            source=candidates["diagonal"].source + "; diagonal (no evaluator and real images to choose by)",
        )
    kid = {m["prior"]: m["kid"] for m in measured}
    best = min(candidates, key=lambda f: kid[f])
    table = tuple({**m, "chosen": m["prior"] == best} for m in measured)
    chosen = candidates[best]
    return dataclasses.replace(
        chosen, source=f"{chosen.source}; {best}, the lowest KID of its own draws", realism=table
    )


def fitted_forms(ms: ModelSet, code_size: int) -> dict[str, GaussianPrior]:
    """Every form the set's data can fit: both with real codes, the diagonal alone from bounds."""
    codes = _real_codes(ms)
    if codes is not None:
        mean, std = codes.mean(0), codes.std(0)
        source = (
            f"per-unit mean and std of the {code_blob(ms)} codes of {len(codes)} real "
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
    std = np.maximum(std, floor)
    diagonal = GaussianPrior(mean.astype(np.float64), std, f"{source}; std floored at {floor:.3g}")
    if codes is None:
        return {"diagonal": diagonal}
    factor, shrinkage = _correlation_factor((codes - mean) / std)
    full = dataclasses.replace(
        diagonal,
        source=f"{diagonal.source}; correlations shrunk by Ledoit–Wolf ({shrinkage:.3f} towards none)",
        corr_factor=factor,
    )
    return {"diagonal": diagonal, "full": full}


def _correlation_factor(standardised: np.ndarray) -> tuple[np.ndarray, float]:
    """The lower Cholesky factor of the Ledoit–Wolf correlation matrix of standardised codes, and the
    shrinkage it used. Rescaled to unit diagonal, so the full form keeps the diagonal form's marginals."""
    from sklearn.covariance import ledoit_wolf

    cov, shrinkage = ledoit_wolf(standardised, assume_centered=True)
    dead = np.flatnonzero(np.diag(cov) <= 0)  # always-0 units, were nothing shrunk: uncorrelated
    cov[dead, dead] = 1.0
    d = np.sqrt(np.diag(cov))
    return np.linalg.cholesky(cov / np.outer(d, d)), float(shrinkage)


def _real_codes(ms: ModelSet) -> np.ndarray | None:
    if code_blob(ms) is None or not available(ms):
        return None
    images = [real_images(ms, k, REAL_PER_CLASS, stream=2) for k in range(len(ms.class_names))]
    images = [x for x in images if x is not None]
    return encode(ms, np.concatenate(images)) if images else None
