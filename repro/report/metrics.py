"""The report's metrics as data: one entry each, used by the cells' measuring, the real-image reference row,
metrics.json's definitions, the document's tables and the bar charts.

A metric is computed on a `Subject`: one class's images, with the codes and the sampler run that made them
when there are any (real images have neither, so metrics of codes and runs skip them). A metric that needs
an optional scorer (the judge, the evaluator) is skipped where the model set has none, and its statistics
are then empty (n = 0) rather than guessed. Its unit is one chain
(a list of one value per image) or one class (one value); the order of `METRICS` is the order of the tables.
Adding a metric is one decorated function here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from repro.evaluate import feature_metrics
from repro.evaluate.image_metrics import (
    ImageMetrics,
    as_saved,
    code_beyond_bounds,
    diversity,
    hsv_saturation,
    pixels_at_clip,
)
from repro.registry import registrar

NAN = float("nan")


@dataclass(frozen=True)
class Run:
    """The part of a sampler run that made one class's images."""

    mcmc: bool  # whether the method has an accept step
    logp: np.ndarray  # [steps, n] log π after each step
    accept_rate: np.ndarray  # [n] after warm-up
    n_grad: int  # gradient evaluations per chain
    seconds_per_chain: float
    diagnostics: dict  # repro.evaluate.diagnostics.summarize of these chains ({} for MAP)


@dataclass
class Subject:
    """What metrics are computed on. `images` are what the method produced (generator output, BGR,
    mean-subtracted, 0–255 scale); for real images, the images themselves as saved."""

    class_index: int
    images: np.ndarray  # [n, 3, H, W]
    scorers: ImageMetrics
    z: np.ndarray | None = None  # [n, D] the codes of the images
    upper: np.ndarray | None = None  # [D] clip bounds of the set, if any
    run: Run | None = None

    @property
    def n(self) -> int:
        return len(self.images)

    @cached_property
    def saved(self) -> np.ndarray:
        return as_saved(self.images)

    @cached_property
    def evaluator(self) -> tuple[np.ndarray, np.ndarray]:
        return self.scorers.evaluator_outputs(self.saved)

    @cached_property
    def classifier(self) -> np.ndarray:
        """The target classifier's softmax [n, K] on the raw output: every class's confidence at once."""
        return self.scorers.classifier_probs(self.images)

    def as_class(self, class_index: int) -> Subject:
        """The same images measured for another class, sharing what its scorers already computed (the
        exact reference scores one set of prior draws for every class)."""
        other = dataclasses.replace(self, class_index=class_index)
        other.__dict__.update({k: v for k, v in self.__dict__.items() if k in _SCORED})
        return other


_SCORED = ("saved", "evaluator", "classifier")  # Subject's cached scorer outputs, which no class changes


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str  # "chain": one value per image; "class": one per class
    higher_is_better: bool | None
    on: str  # "saved image", "generator output", "code" or "run": what `compute` reads
    compute: Callable[[Subject], list[float] | float]
    plotted: bool = True  # shown in the bar charts
    needs: str | None = (
        None  # what optional it needs: "judge", "evaluator", or "real" (evaluator + real images)
    )
    reads_class: bool = False  # whether an image's value depends on the class it is measured for

    def applies(self, s: Subject) -> bool:
        if self.needs is not None and not s.scorers.has[self.needs]:
            return False
        return not (self.on == "code" and s.z is None or self.on == "run" and s.run is None)


METRICS: dict[str, Metric] = {}
_file = registrar(METRICS, "metrics")


def metric(
    key: str,
    label: str,
    unit: str,
    higher_is_better: bool | None,
    on: str,
    plotted: bool = True,
    needs: str | None = None,
    reads_class: bool = False,
):
    def register(fn: Callable[[Subject], list[float] | float]):
        _file(key)(Metric(key, label, unit, higher_is_better, on, fn, plotted, needs, reads_class))
        return fn

    return register


def measure(s: Subject) -> dict[str, list[float] | float]:
    """Every metric that applies to the subject, in table order."""
    return {key: m.compute(s) for key, m in METRICS.items() if m.applies(s)}


def _per_image(fn: Callable[[np.ndarray], float], images: np.ndarray) -> list[float]:
    return [fn(images[j : j + 1]) for j in range(len(images))]


@metric("judge_log_p_real", "judge log p(real)", "chain", True, "saved image", needs="judge")
def _judge(s: Subject) -> list[float]:
    return s.scorers.judge_log_p_real(s.saved).tolist()


@metric("target_confidence", "classifier p(class)", "chain", None, "generator output", reads_class=True)
def _target_confidence(s: Subject) -> list[float]:
    return s.classifier[:, s.class_index].tolist()


@metric(
    "evaluator_accuracy",
    "evaluator accuracy",
    "chain",
    True,
    "saved image",
    needs="evaluator",
    reads_class=True,
)
def _evaluator_accuracy(s: Subject) -> list[float]:
    return (np.argmax(s.evaluator[0], axis=1) == s.class_index).astype(float).tolist()


@metric("diversity", "diversity (evaluator features)", "class", True, "saved image", needs="evaluator")
def _diversity(s: Subject) -> float:
    return diversity(s.evaluator[1])


def _against_real(s: Subject, fn: Callable[[np.ndarray, np.ndarray], float]) -> float:
    """fn(this class's evaluator features, the real pool's). For real images drawn from the very folder the
    pool comes from the comparison would be with themselves, so it is left empty (nan) there."""
    real = s.scorers.real_features(s.class_index)
    if real is None or (s.z is None and s.scorers.ms.real_images is not None):
        return NAN
    return fn(s.evaluator[1], real)


@metric("kid", "KID vs real images (evaluator features)", "class", False, "saved image", needs="real")
def _kid(s: Subject) -> float:
    return _against_real(s, feature_metrics.kid)


@metric("fd", "Fréchet distance vs real (evaluator features)", "class", False, "saved image", needs="real")
def _fd(s: Subject) -> float:
    return _against_real(s, feature_metrics.frechet_distance)


@metric("precision", "k-NN precision vs real", "class", True, "saved image", needs="real")
def _precision(s: Subject) -> float:
    return _against_real(s, lambda x, y: feature_metrics.precision_recall(x, y)[0])


@metric("recall", "k-NN recall vs real", "class", True, "saved image", needs="real")
def _recall(s: Subject) -> float:
    return _against_real(s, lambda x, y: feature_metrics.precision_recall(x, y)[1])


@metric("pixels_at_clip", "pixels at display clip", "chain", False, "generator output")
def _pixels_at_clip(s: Subject) -> list[float]:
    return _per_image(pixels_at_clip, s.images)


@metric("hsv_saturation", "mean HSV saturation", "chain", None, "generator output")
def _hsv_saturation(s: Subject) -> list[float]:
    return _per_image(hsv_saturation, s.images)


@metric("code_beyond_bounds", "code units beyond clip bounds", "chain", None, "code")
def _code_beyond_bounds(s: Subject) -> list[float]:
    return [code_beyond_bounds(z, s.upper) for z in s.z]


@metric("code_sq_norm", "‖z‖² / D", "chain", None, "code", plotted=False)
def _code_sq_norm(s: Subject) -> list[float]:
    """Where a sampler's codes sit: N(0, I) holds ‖z‖²/D near 1; comparing it with the exact posterior's
    tells whether a sampler reached that posterior, not only whether its images look alike."""
    return (np.sum(np.asarray(s.z, np.float64) ** 2, axis=1) / s.z.shape[1]).tolist()


@metric("acceptance", "acceptance rate", "chain", None, "run")
def _acceptance(s: Subject) -> list[float]:
    return s.run.accept_rate.tolist() if s.run.mcmc else [NAN] * s.n


@metric("ess_per_grad", "ESS per gradient", "class", True, "run")
def _ess_per_grad(s: Subject) -> float:
    return _or_nan(s.run.diagnostics.get("ess_per_grad_min"))


@metric("rhat", "split R-hat", "class", None, "run", plotted=False)
def _rhat(s: Subject) -> float:
    return _or_nan(s.run.diagnostics.get("rhat_max"))


@metric("steps_to_plateau", "iterations to plateau", "chain", False, "run", plotted=False)
def _steps_to_plateau(s: Subject) -> list[float]:
    return steps_to_plateau(s.run.logp).tolist() if s.run.mcmc else [NAN] * s.n


@metric("n_grad", "gradient evaluations / chain", "chain", None, "run", plotted=False)
def _n_grad(s: Subject) -> list[float]:
    return [float(s.run.n_grad)] * s.n


@metric("seconds", "wall seconds / chain", "chain", False, "run")
def _seconds(s: Subject) -> list[float]:
    return [s.run.seconds_per_chain] * s.n


def _or_nan(x: float | None) -> float:
    return NAN if x is None else float(x)


def steps_to_plateau(logp: np.ndarray, fraction: float = 0.9, tail: float = 0.1) -> np.ndarray:
    """Per chain: the first iteration at which log π has covered `fraction` of its rise from the start to
    the plateau (the median of the last `tail` of the run). 0 when there is no rise. logp: [steps, C]."""
    steps = logp.shape[0]
    plateau = np.median(logp[-max(1, int(steps * tail)) :], axis=0)
    start = logp[0]
    level = start + fraction * (plateau - start)
    out = np.zeros(logp.shape[1], np.int64)
    for c in range(logp.shape[1]):
        if plateau[c] > start[c]:
            out[c] = int(np.argmax(logp[:, c] >= level[c]))
    return out
