"""Sets repro knows by name, without a manifest: `random` (the full-size built-in architectures with seeded
random weights, made in memory, for parity and speed at full size without anyone's weight files), and the
DGN sets, known by the files they expect; repro never downloads them.
"""

from __future__ import annotations

from pathlib import Path

from repro.convert.cache import NetFiles
from repro.errors import BadInput
from repro.modelsets.fit import check_classifier
from repro.modelsets.record import ModelSet

# DGN's fc6 generator, which every set here draws with: the code goes in at feat, the image comes out of
# deconv0.
_FC6_GENERATOR_BLOBS = {"input": "feat", "output": "deconv0"}

KNOWN_EXTERNAL = {
    "dgn-caffenet": {
        "files": [
            "generator.prototxt",
            "generator.caffemodel",
            "caffenet.prototxt",
            "bvlc_reference_caffenet.caffemodel",
            "fc6.txt (act_range/3x, optional)",
        ],
        "generator": ("generator.prototxt", "generator.caffemodel", _FC6_GENERATOR_BLOBS),
        "classifier": (
            "caffenet.prototxt",
            "bvlc_reference_caffenet.caffemodel",
            {"input": "data", "logits": "fc8", "code": "fc6"},  # fc6: the code the generator inverts
        ),
        "crop": (227, 14),
        "map_lr": 8.0,
        "classes": 1000,
    },
    # PPGN's sampler as its class-conditional script ran it: its own generator weights (the "noiseless
    # joint PPGN-h", 181007__generator.caffemodel, DGN's fc6 prototxt) with CaffeNet, whose fc6 is also its
    # encoder. The clip bounds are DGN-AM's; PPGN clips to [0, 30] itself.
    "ppgn-caffenet": {
        "files": [
            "generator.prototxt",
            "181007__generator.caffemodel",
            "caffenet.prototxt",
            "bvlc_reference_caffenet.caffemodel",
            "fc6.txt (act_range/3x, optional)",
        ],
        "generator": ("generator.prototxt", "181007__generator.caffemodel", _FC6_GENERATOR_BLOBS),
        "classifier": (
            "caffenet.prototxt",
            "bvlc_reference_caffenet.caffemodel",
            {"input": "data", "logits": "fc8", "code": "fc6"},
        ),
        "crop": (227, 14),
        "map_lr": 8.0,
        "classes": 1000,
    },
    "dgn-googlenet": {
        "files": [
            "generator.prototxt",
            "generator.caffemodel",
            "bvlc_googlenet_updated.prototxt",
            "bvlc_googlenet.caffemodel",
            "fc6.txt (act_range/3x, optional)",
        ],
        "generator": ("generator.prototxt", "generator.caffemodel", _FC6_GENERATOR_BLOBS),
        "classifier": (
            "bvlc_googlenet_updated.prototxt",
            "bvlc_googlenet.caffemodel",
            {"input": "data", "logits": "loss3/classifier"},
        ),
        "crop": (224, 16),
        "map_lr": 2.0,
        "classes": 1000,
    },
    "dgn-places205": {
        "files": [
            "generator.prototxt",
            "generator.caffemodel",
            "places205CNN_deploy_updated.prototxt",
            "places205CNN_iter_300000.caffemodel",
            "fc6.txt (act_range/3x, optional)",
        ],
        "generator": ("generator.prototxt", "generator.caffemodel", _FC6_GENERATOR_BLOBS),
        "classifier": (
            "places205CNN_deploy_updated.prototxt",
            "places205CNN_iter_300000.caffemodel",
            {"input": "data", "logits": "fc8"},
        ),
        "crop": (227, 14),
        "map_lr": 8.0,
        "classes": 205,
    },
}


def _random_set() -> ModelSet:
    return ModelSet(
        name="random",
        root=None,
        generator=NetFiles(None, None, _FC6_GENERATOR_BLOBS, arch="fc6_generator", seed=1),
        classifier=NetFiles(
            None, None, {"input": "data", "logits": "fc8"}, arch="caffenet", seed=2, last_scale=0.02
        ),
        crop_size=227,
        crop_offset=14,
        class_names=[f"class {i}" for i in range(1000)],
    )


def _from_known(name: str, root: Path) -> ModelSet:
    k = KNOWN_EXTERNAL[name]
    missing = [f for f in k["files"] if "optional" not in f and not (root / f).exists()]
    if missing:
        raise BadInput(f"model set {name} in {root}: missing {', '.join(missing)}")
    gp, gm, gb = k["generator"]
    cp, cm, cb = k["classifier"]
    bounds = root / "fc6.txt"
    ms = ModelSet(
        name=name,
        root=root,
        generator=NetFiles(root / gp, root / gm, gb),
        classifier=NetFiles(root / cp, root / cm, cb),
        crop_size=k["crop"][0],
        crop_offset=k["crop"][1],
        class_names=[f"class {i}" for i in range(k["classes"])],
        map_lr=k["map_lr"],
        clip_bounds=bounds if bounds.exists() else None,
    )
    check_classifier(ms, lambda role: f"model set {name}: {cp}'s {role} blob")
    return ms
