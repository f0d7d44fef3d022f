"""Real Theano computing the DCGAN ImageNet discriminator (dcgan_code, Radford et al.): the paper's judge.

Runs INSIDE the Theano venv that build.sh makes (Theano 1.0.5, numpy < 1.24), with
THEANO_FLAGS=blas.ldflags=,floatX=float32[,compiledir=...]:

    python oracle.py JUDGE_DIR INPUTS.npz OUT.npz

JUDGE_DIR holds the 17 `30_discrim_params.jl_NN.npy` files (standins.judge_folder makes one); INPUTS.npz
holds float32 arrays of shape (N, 3, 32, 32), each already preprocessed (the values the net sees). For each
array KEY, OUT.npz gets

    KEY/single_logit, KEY/single_p_real  (N,)  each image alone, a batch of one (the authors' way)
    KEY/batch_logit,  KEY/batch_p_real   (N,)  the whole array as one batch (batch statistics differ)
    KEY/h1 ... KEY/h6                   (C, H, W) activations of image 0 in a batch of one
    theano_version, numpy_version, scipy_version, python_version  (0-d unicode arrays)

The logit is T.dot(flatten(h6, 2), wy), p_real = T.nnet.sigmoid(logit): discrim() of
imagenet/load_pretrained.py with its `y = sigmoid(T.dot(h6, wy))` split in two. Layers as there and in
lib/ops.py: conv 3x3 pad 1 with strides 1, 2, 1, 2, 1, 2; lrelu = 0.6 x + 0.4 |x| (leak 0.2); batchnorm with
the current batch's mean and mean((x - mean)^2) over (0, 2, 3), eps 1e-8, then * g + b; no BN after the
first conv. dnn_conv (cuDNN, GPU only) defaults to conv_mode='conv', a true convolution with flipped
kernels; its CPU equivalent is theano.tensor.nnet.conv2d(..., filter_flip=True), used here.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import standins  # noqa: E402


def lrelu(x, leak=0.2):
    """lib/activations.py LeakyRectify."""
    f1 = 0.5 * (1 + leak)
    f2 = 0.5 * (1 - leak)
    return f1 * x + f2 * abs(x)


def batchnorm(x, g, b, e=1e-8):
    """lib/ops.py batchnorm, 4-d branch, batch statistics (u = s = None, a = 1)."""
    import theano.tensor as T

    b_u = T.mean(x, axis=[0, 2, 3]).dimshuffle("x", 0, "x", "x")
    b_s = T.mean(T.sqr(x - b_u), axis=[0, 2, 3]).dimshuffle("x", 0, "x", "x")
    x = (x - b_u) / T.sqrt(b_s + e)
    return x * g.dimshuffle("x", 0, "x", "x") + b.dimshuffle("x", 0, "x", "x")


def conv(x, w, stride):
    """dnn_conv(x, w, subsample=(stride, stride), border_mode=(1, 1)) with conv_mode='conv', on the CPU."""
    from theano.tensor.nnet import conv2d

    return conv2d(x, w, subsample=(stride, stride), border_mode=(1, 1), filter_flip=True)


def discrim(X, w, w2, g2, b2, w3, g3, b3, w4, g4, b4, w5, g5, b5, w6, g6, b6, wy):
    """imagenet/load_pretrained.py discrim(), returning (logit, p_real, [h1, ..., h6])."""
    import theano.tensor as T

    h = lrelu(conv(X, w, 1))
    h2 = lrelu(batchnorm(conv(h, w2, 2), g2, b2))
    h3 = lrelu(batchnorm(conv(h2, w3, 1), g3, b3))
    h4 = lrelu(batchnorm(conv(h3, w4, 2), g4, b4))
    h5 = lrelu(batchnorm(conv(h4, w5, 1), g5, b5))
    h6 = lrelu(batchnorm(conv(h5, w6, 2), g6, b6))
    logit = T.dot(T.flatten(h6, 2), wy)
    return logit, T.nnet.sigmoid(logit), [h, h2, h3, h4, h5, h6]


def compile_judge(folder):
    """A theano function X (N, 3, 32, 32) float32 -> (logit (N, 1), p_real (N, 1), h1, ..., h6)."""
    import theano
    import theano.tensor as T

    if theano.config.floatX != "float32":
        raise SystemExit(f"run with THEANO_FLAGS=floatX=float32 (got floatX={theano.config.floatX})")
    params = [
        theano.shared(p, name=n)
        for n, p in zip(standins.PARAM_NAMES, standins.load_params(folder), strict=True)
    ]
    X = T.tensor4("X")
    logit, p_real, hs = discrim(X, *params)
    return theano.function([X], [logit, p_real, *hs])


def _scipy_version():
    try:
        import scipy
    except ImportError:
        return "none"
    return scipy.__version__


def run(folder, inputs):
    """{key: (N, 3, 32, 32) array} -> the OUT.npz dictionary described in the module docstring."""
    import theano

    judge = compile_judge(folder)
    out = {
        "theano_version": np.array(theano.__version__),
        "numpy_version": np.array(np.__version__),
        "scipy_version": np.array(_scipy_version()),
        "python_version": np.array(platform.python_version()),
    }
    for key, x in inputs.items():
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != (3, 32, 32):
            raise SystemExit(f"{key}: shape {x.shape}, expected (N, 3, 32, 32)")
        singles = [judge(x[i : i + 1]) for i in range(len(x))]
        out[f"{key}/single_logit"] = np.array([s[0][0, 0] for s in singles], np.float32)
        out[f"{key}/single_p_real"] = np.array([s[1][0, 0] for s in singles], np.float32)
        for k, h in enumerate(singles[0][2:], start=1):
            out[f"{key}/h{k}"] = np.asarray(h[0], np.float32)
        whole = judge(x)
        out[f"{key}/batch_logit"] = np.asarray(whole[0][:, 0], np.float32)
        out[f"{key}/batch_p_real"] = np.asarray(whole[1][:, 0], np.float32)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("judge_dir", help="folder with the 17 30_discrim_params.jl_NN.npy files")
    parser.add_argument("inputs", help=".npz of float32 (N, 3, 32, 32) arrays, preprocessed")
    parser.add_argument("out", help=".npz to write")
    args = parser.parse_args(argv)
    with np.load(args.inputs, allow_pickle=False) as npz:
        inputs = {k: npz[k] for k in npz.files}
    np.savez(args.out, **run(args.judge_dir, inputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
