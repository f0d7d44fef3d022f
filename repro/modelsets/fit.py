"""The classifier's logits and the evaluator's blobs must fit the set (check_classifier, check_evaluator: one
score per class, an image input, one feature vector per image), or a run would score the wrong blob.

They are checked where a set is made (from_manifest, _from_known, with_scorers), from Caffe's own shape
inference over the prototxt alone, before any weights are read or any model runs. A message names the blob
by `where(role)` (the manifest field, or the command-line option) and ends in `hint`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from repro.caffe import Net
from repro.convert.cache import NetFiles
from repro.errors import BadInput
from repro.modelsets.record import ModelSet, layout

Where = Callable[[str], str]


def _shape(net: Net, files: NetFiles, role: str, where: Where) -> tuple[int, ...]:
    blob = files.blobs[role]
    if blob not in net.shapes:
        raise BadInput(f'{where(role)} "{blob}": {files.prototxt or files.arch} has no blob of that name')
    return net.shapes[blob]


def _shown(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _check_logits(ms: ModelSet, files: NetFiles, net: Net, where: Where, hint: str) -> None:
    """The logits blob holds one score per class of the set for each image."""
    shape = _shape(net, files, "logits", where)
    width, n = int(np.prod(shape[1:])), len(ms.class_names)
    if width != n:
        raise BadInput(
            f'{where("logits")} "{files.blobs["logits"]}" has {width} values per image (shape '
            f"{_shown(shape)}), but model set {ms.name} has {n} classes: the logits must be the class "
            f"scores, one per class{hint}"
        )


def check_classifier(ms: ModelSet, where: Where, hint: str = "") -> None:
    """The classifier's logits are the set's class scores: not a hidden layer, nor another label set."""
    _check_logits(ms, ms.classifier, layout(ms.classifier), where, hint)


def check_evaluator(ms: ModelSet, where: Where, hint: str = "") -> None:
    """The evaluator fits the set: its input an input of the net holding square colour images [N, 3, S, S]
    no larger than the generator's (the images are centre-cropped to S); its logits one score per class of
    the set; its features one vector per image (the input's batch first, as the metrics flatten them)."""
    files = ms.evaluator
    net = layout(files)
    blob = files.blobs["input"]
    image = _shape(net, files, "input", where)
    if blob not in net.inputs:
        inputs = ", ".join(net.inputs) or "none"
        raise BadInput(f'{where("input")} "{blob}" is not an input of the net; its inputs: {inputs}')
    if len(image) != 4 or image[1] != 3 or image[2] != image[3]:
        raise BadInput(
            f'{where("input")} "{blob}" has shape {_shown(image)}; expected square colour images '
            "[N, 3, S, S]: the evaluator scores the generator's images (is this the evaluator's prototxt?)"
        )
    drawn = layout(ms.generator).shapes.get(ms.generator.blobs["output"])
    if drawn is not None and len(drawn) == 4 and image[2] > min(drawn[2:]):
        raise BadInput(
            f'{where("input")} "{blob}" takes {image[2]}×{image[3]} images, larger than the '
            f"{drawn[2]}×{drawn[3]} images model set {ms.name}'s generator draws"
        )
    _check_logits(ms, files, net, where, hint)
    features = _shape(net, files, "features", where)
    if len(features) < 2 or features[0] != image[0]:
        raise BadInput(
            f'{where("features")} "{files.blobs["features"]}" has shape {_shown(features)}; expected one '
            f"feature vector per image, [{image[0]}, ...] as the input's batch{hint}"
        )
