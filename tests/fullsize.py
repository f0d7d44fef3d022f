"""The paper's model files at full size, as a user who holds them would lay them out: a `dgn-caffenet`
folder built from the real architecture prototxts of ../shared/reference/prototxt/ (the fc6 generator,
CaffeNet, and BVLC's GoogLeNet deploy net as the independent evaluator) with seeded random weights written
as real .caffemodel files by repro, DGN-AM's 3x clip bounds file, and the paper's DCGAN judge from
../shared/reference/dcgan_imagenet/ with seeded stand-ins for its two missing parameter files
(tools/theano_oracle/standins.py says which and how).

Random weights, not the released ones: what is tested is the path (conversion, sessions at any batch, the
parity gate, sampling, the report), not the pictures.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from repro.caffe import load_net, random_weights, write_net
from repro.data import procedural

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference"
PROTOTXT = SHARED / "prototxt"
DCGAN = SHARED / "dcgan_imagenet"
AVAILABLE = PROTOTXT.is_dir() and DCGAN.is_dir()

NETS = {  # file in the folder → (reference prototxt, seed, scale of the last InnerProduct)
    "generator": ("synthesizing__nets__upconv__fc6__generator.prototxt", 11, None),
    "caffenet": ("synthesizing__nets__caffenet__caffenet.prototxt", 12, 0.02),
    "bvlc_googlenet": ("caffe__models__bvlc_googlenet__deploy.prototxt", 13, 0.02),
}
# role → (prototxt, caffemodel) names in the folder, as `repro.modelsets.known.KNOWN_EXTERNAL` expects
FILES = {
    "generator": ("generator.prototxt", "generator.caffemodel"),
    "caffenet": ("caffenet.prototxt", "bvlc_reference_caffenet.caffemodel"),
    "bvlc_googlenet": ("bvlc_googlenet.prototxt", "bvlc_googlenet.caffemodel"),
}
CODE_SIZE = 4096
CLASS = 643  # the class the commands of the tests target


def build(folder: Path) -> Path:
    """Write the dgn-caffenet folder (models, `fc6.txt`), `folder/judge/` (the DCGAN judge) and
    `folder/real/<CLASS>/` (a few procedural images standing in for `--real-images`); return folder.

    The prototxts are copied as they are (the evaluator keeps its declared batch of 10); the weights are
    written through repro's Caffe writer from `random_weights` at fixed seeds."""
    from tools.theano_oracle.standins import judge_folder

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for role, (reference, seed, last_scale) in NETS.items():
        prototxt, caffemodel = (folder / name for name in FILES[role])
        shutil.copyfile(PROTOTXT / reference, prototxt)
        net = load_net(prototxt)
        random_weights(net, seed, last_scale=last_scale)
        write_net(net, folder / f".{role}.written.prototxt", caffemodel)
        (folder / f".{role}.written.prototxt").unlink()
    # DGN-AM's act_range/3x file: one line of per-unit upper bounds of fc6 (ReLU outputs, so >= 0).
    bounds = np.random.default_rng(14).uniform(2.0, 12.0, CODE_SIZE)
    (folder / "fc6.txt").write_text(" ".join(f"{b:.6f}" for b in bounds) + "\n")
    judge_folder(folder / "judge", DCGAN)
    real = folder / "real" / str(CLASS)
    real.mkdir(parents=True, exist_ok=True)
    for i in range(6):
        rgb = procedural.render(i % len(procedural.CLASS_NAMES), np.random.default_rng(100 + i))
        Image.fromarray(rgb).resize((256, 256), Image.BILINEAR).save(real / f"real_{i}.png")
    return folder
