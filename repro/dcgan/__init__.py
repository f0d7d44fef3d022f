"""The DCGAN judge's files: Radford et al.'s ImageNet discriminator as dcgan_code stores it (.jl + .npy).

The paper scored realism with this network. Its parameters are a joblib index (a Python 2 pickle) naming one
.npy file per parameter; read.py reads that without joblib, scikit-learn or Theano, write.py writes the same
format, params.py is the network's parameter list and preprocess.py the ways an image file becomes its input.
"""

from repro.dcgan.params import PARAMS, DcganFiles, JudgeParams
from repro.dcgan.preprocess import PRESETS, judge_input, read_rgb
from repro.dcgan.read import find_index, judge_files, load_judge
from repro.dcgan.write import random_judge, write_judge

__all__ = [
    "PARAMS",
    "PRESETS",
    "DcganFiles",
    "JudgeParams",
    "find_index",
    "judge_files",
    "judge_input",
    "load_judge",
    "random_judge",
    "read_rgb",
    "write_judge",
]
