"""The judge and evaluator a user names on the command line (--judge, --judge-preprocess, --judge-file,
--evaluator, --evaluator-blobs) in place of a set's own, checked against the set as a manifest's are.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from repro.convert.cache import NetFiles
from repro.dcgan import DcganFiles
from repro.errors import BadInput
from repro.modelsets.fit import check_evaluator
from repro.modelsets.record import ModelSet


def evaluator_files(
    prototxt: str | os.PathLike, caffemodel: str | os.PathLike, blobs: tuple[str, str] | None = None
) -> NetFiles:
    """An independent Caffe classifier as the evaluator. By default its logits are the top of its last
    InnerProduct layer (the one before the Softmax) and its features that layer's input."""
    from repro.caffe import load_net

    net = load_net(prototxt)
    if blobs is None:
        products = [layer for layer in net.layers if layer.type == "InnerProduct"]
        if not products:
            raise BadInput(
                f"evaluator {prototxt}: no InnerProduct layer to take logits from; name the blobs with "
                "--evaluator-blobs LOGITS,FEATURES"
            )
        blobs = (products[-1].tops[0], products[-1].bottoms[0])
    if not net.inputs:
        raise BadInput(f"evaluator {prototxt}: the net declares no input blob for the images")
    return NetFiles(
        Path(prototxt), Path(caffemodel), {"input": net.inputs[0], "logits": blobs[0], "features": blobs[1]}
    )


def with_scorers(
    ms: ModelSet,
    judge: str | os.PathLike | None = None,
    preprocess: str | None = None,
    file_format: str | None = None,
    evaluator: NetFiles | None = None,
) -> ModelSet:
    """The set with the judge and evaluator a user named on the command line in place of its own.

    A DCGAN judge's preset defaults to `authors`, what the paper's scoring did; `preprocess` and
    `file_format` alone change the set's own DCGAN judge."""
    new = {}
    if judge is not None:
        new["judge"] = DcganFiles(Path(judge))
    base = new.get("judge", ms.judge)
    if (preprocess or file_format) and not isinstance(base, DcganFiles):
        raise BadInput(
            f"--judge-preprocess and --judge-file apply to a DCGAN judge; model set {ms.name} has none"
        )
    if isinstance(base, DcganFiles):
        new["judge"] = DcganFiles(base.index, preprocess or base.preprocess, file_format or base.file_format)
    if evaluator is not None:
        new["evaluator"] = evaluator
    ms = dataclasses.replace(ms, **new)
    if evaluator is not None:
        hint = "; name the class scores and the features with --evaluator-blobs LOGITS,FEATURES"
        check_evaluator(ms, lambda role: f"evaluator {evaluator.prototxt}: {role} blob", hint)
    return ms
