"""What the report measures on generated images: realism (the judge), class accuracy (an independent
evaluator, not the classifier the images were optimised against), content diversity and over-saturation.
"""

from __future__ import annotations

import numpy as np

from repro.evaluate.judges import make_judge
from repro.evaluate.real_images import available, real_images
from repro.evaluate.sessions import caffe_session, centre_crop
from repro.images import DISPLAY_CLIP, to_display
from repro.modelsets import ModelSet

# Real images per class the feature-space metrics compare with (a folder may hold fewer; all are used).
REAL_POOL = 64


class ImageMetrics:
    """A model set's scorers, run on generator outputs (BGR, mean-subtracted, 0–255 scale): the realism
    judge and the independent evaluator where the set has them (None where not), and the target classifier.

    Both are loaded here, so a broken judge or evaluator file stops a report or a sample job before any
    sampling; that the evaluator's blobs fit the set is checked where the set is made (repro.modelsets)."""

    def __init__(self, ms: ModelSet):
        self.ms = ms
        self.judge = None if ms.judge is None else make_judge(ms.judge)
        self._eval = None
        if ms.evaluator is not None:
            self._eval_in = ms.evaluator.blobs["input"]
            self._eval_out = [ms.evaluator.blobs["logits"], ms.evaluator.blobs["features"]]
            self._eval = caffe_session(ms.evaluator, self._eval_out)
            self._eval_size = self._eval.get_inputs()[0].shape[2]
        self._cls_in = ms.classifier.blobs["input"]
        self._cls_out = ms.classifier.blobs["logits"]
        self._cls = None  # built on first use: the posterior graph already holds the classifier
        self._real: dict[int, np.ndarray | None] = {}

    @property
    def has(self) -> dict[str, bool]:
        """Which optional scorers the set has: "judge", "evaluator", and "real" (the evaluator and real
        images to compare with in its feature space)."""
        evaluator = self._eval is not None
        return {
            "judge": self.judge is not None,
            "evaluator": evaluator,
            "real": evaluator and available(self.ms),
        }

    def real_features(self, class_index: int) -> np.ndarray | None:
        """Evaluator features [n, F] of REAL_POOL real images of the class (as saved), computed once; None
        when the set has no real images of that class."""
        if class_index not in self._real:
            images = real_images(self.ms, class_index, REAL_POOL, stream=1)
            self._real[class_index] = None if images is None else self.evaluator_outputs(as_saved(images))[1]
        return self._real[class_index]

    def describe(self) -> dict:
        ev = self.ms.evaluator
        return {
            "judge": None if self.judge is None else self.judge.describe(),
            "evaluator": None if ev is None else {"prototxt": str(ev.prototxt), **ev.blobs},
        }

    def judge_log_p_real(self, images: np.ndarray) -> np.ndarray:
        """log p(real) per image (Table 2's metric), one image at a time so batch size cannot matter."""
        return self.judge.log_p_real(images)

    def evaluator_outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits [N, K], features [N, F]) of the independent evaluator."""
        x = centre_crop(images, self._eval_size)
        outs = [self._eval.run(self._eval_out, {self._eval_in: x[i : i + 1]}) for i in range(len(x))]
        logits = np.concatenate([o[0].reshape(1, -1) for o in outs])
        feats = np.concatenate([o[1].reshape(1, -1) for o in outs])
        return logits, feats

    def classifier_probs(self, images: np.ndarray) -> np.ndarray:
        """Softmax [N, K] of the target classifier on its crop (the confidence the images were pushed to)."""
        if self._cls is None:
            self._cls = caffe_session(self.ms.classifier, [self._cls_out])
        o, s = self.ms.crop_offset, self.ms.crop_size
        x = np.ascontiguousarray(images[:, :, o : o + s, o : o + s], dtype=np.float32)
        logits = np.concatenate(
            [
                self._cls.run([self._cls_out], {self._cls_in: x[i : i + 1]})[0].reshape(1, -1)
                for i in range(len(x))
            ]
        )
        return softmax(logits)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of [N, K] logits, in float64."""
    z = np.asarray(logits, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def as_saved(images: np.ndarray) -> np.ndarray:
    """The image as DGN-AM saved it and as the report shows it: values clipped to the display range.

    The paper's judge scored saved image files, so realism and accuracy are measured on what a user gets;
    over-saturation is measured separately on the raw output (`saturation`)."""
    return np.clip(images, -DISPLAY_CLIP, DISPLAY_CLIP)


def diversity(features: np.ndarray) -> float:
    """Mean pairwise Euclidean distance between feature vectors (of one class's images)."""
    n = len(features)
    if n < 2:
        return float("nan")
    f = features.astype(np.float64)
    d = np.sqrt(np.maximum(((f[:, None, :] - f[None, :, :]) ** 2).sum(-1), 0.0))
    return float(d[np.triu_indices(n, 1)].mean())


def pixels_at_clip(images: np.ndarray) -> float:
    """Fraction of pixel values at or beyond the display clip: the visible symptom of super-stimuli."""
    return float(np.mean(np.abs(images) >= DISPLAY_CLIP))


def hsv_saturation(images: np.ndarray) -> float:
    """Mean HSV saturation of the images as shown: over-saturated colour that the clip alone hides."""
    rgb = np.stack([to_display(img) for img in images]).astype(np.float64) / 255.0
    mx, mn = rgb.max(-1), rgb.min(-1)
    return float(np.where(mx > 0, (mx - mn) / np.where(mx > 0, mx, 1.0), 0.0).mean())


def code_beyond_bounds(z: np.ndarray, upper: np.ndarray | None) -> float:
    """Fraction of code units outside DGN-AM's [0, ub] box (nan when the set has no bounds)."""
    if upper is None:
        return float("nan")
    return float(np.mean((z < 0) | (z > upper)))
