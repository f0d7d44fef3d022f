"""The embedded set's nets, small enough to train on two CPU cores in minutes and to ship in git.

Exported nets are CaffeChains (see layers.py); the two helpers that are only needed for training (the
reconstruction generator's adversary and the DCGAN's generator) are plain torch.
"""

from __future__ import annotations

from torch import nn

from tools.embedded.layers import (
    CaffeChain,
    batchnorm,
    conv,
    deconv,
    dropout,
    ip,
    lrn,
    pool,
    relu,
    reshape,
    sigmoid,
    softmax,
)

CROP = 56
IMAGE = 64
CODE = 512  # fc6 units = the generator's code size
LEAK = 0.3  # DGN's leaky ReLU slope


def classifier() -> CaffeChain:
    """CaffeNet in miniature: conv, ReLU, Caffe-rounded max pool, LRN, grouped convs, fc6–fc8, softmax."""
    specs = [
        conv("conv1", 48, 5, s=2, p=2),
        relu("relu1"),
        pool("pool1", "MAX", 3, 2),
        lrn("norm1"),
        conv("conv2", 96, 3, p=1, group=2),
        relu("relu2"),
        pool("pool2", "MAX", 3, 2),
        lrn("norm2"),
        conv("conv3", 128, 3, p=1, group=2),
        relu("relu3"),
        pool("pool3", "MAX", 3, 2),
        ip("fc6", CODE),
        relu("relu6"),
        dropout("drop6"),
        ip("fc7", 256),
        relu("relu7"),
        dropout("drop7"),
        ip("fc8", 10),
        softmax("prob"),
    ]
    return CaffeChain("embedded_classifier", "data", (1, 3, CROP, CROP), specs)


def generator() -> CaffeChain:
    """The DGN fc6 generator in miniature: three leaky fc layers, reshape, deconv stack to 3×64×64, linear."""
    specs = [
        ip("defc7", 512),
        relu("relu_defc7", LEAK),
        ip("defc6", 512),
        relu("relu_defc6", LEAK),
        ip("defc5", 2048),
        relu("relu_defc5", LEAK),
        reshape("reshape", 128, 4, 4),
        deconv("deconv4", 64, 4, s=2, p=1),
        relu("relu_deconv4", LEAK),
        deconv("conv4_1", 64, 3, s=1, p=1),
        relu("relu_conv4_1", LEAK),
        deconv("deconv3", 48, 4, s=2, p=1),
        relu("relu_deconv3", LEAK),
        deconv("conv3_1", 48, 3, s=1, p=1),
        relu("relu_conv3_1", LEAK),
        deconv("deconv2", 32, 4, s=2, p=1),
        relu("relu_deconv2", LEAK),
        deconv("conv2_1", 32, 3, s=1, p=1),
        relu("relu_conv2_1", LEAK),
        deconv("deconv0", 3, 4, s=2, p=1),
    ]
    return CaffeChain("embedded_generator", "feat", (1, CODE), specs)


JUDGE_SCALE = 1 / 127.5  # DCGAN works in about [-1, 1]; folded into conv1's weights on export


def judge() -> CaffeChain:
    """A DCGAN discriminator on the 2×2-average-pooled (32×32) image; output P(real)."""
    specs = [
        pool("pool0", "AVE", 2, 2),
        conv("conv1", 32, 4, s=2, p=1, input_scale=JUDGE_SCALE),
        relu("relu1", 0.2),
        conv("conv2", 64, 4, s=2, p=1),
        *batchnorm("bn2", "scale2"),
        relu("relu2", 0.2),
        conv("conv3", 128, 4, s=2, p=1),
        *batchnorm("bn3", "scale3"),
        relu("relu3", 0.2),
        ip("logit", 1),
        sigmoid("p_real"),
    ]
    return CaffeChain("embedded_judge", "data", (1, 3, IMAGE, IMAGE), specs)


def evaluator() -> CaffeChain:
    """An independent classifier (VGG-like, BatchNorm + Scale, global average pooling), a different seed."""
    specs = []
    for i, (n, size) in enumerate([(24, CROP), (48, CROP // 2), (64, CROP // 4)], start=1):
        specs += [
            conv(f"conv{i}", n, 3, p=1),
            *batchnorm(f"bn{i}", f"scale{i}"),
            relu(f"relu{i}"),
            pool(f"pool{i}", "MAX", 2, 2),
        ]
        del size
    specs += [
        conv("conv4", 96, 3, p=1),
        *batchnorm("bn4", "scale4"),
        relu("relu4"),
        pool("gap", "AVE", 7, 1),
        ip("fc", 10),
    ]
    return CaffeChain("embedded_evaluator", "data", (1, 3, CROP, CROP), specs)


def adversary() -> nn.Module:
    """The reconstruction generator's own discriminator (D&B's adversarial term); not exported."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(16, 32, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(64, 64, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Flatten(1),
        nn.Linear(64 * 16, 1),
    )


DCGAN_Z = 64


def dcgan_generator() -> nn.Module:
    """The judge's opponent: z → 3×32×32 in the judge's ≈[-1, 1] space; not exported."""
    return nn.Sequential(
        nn.Linear(DCGAN_Z, 128 * 4 * 4),
        nn.Unflatten(1, (128, 4, 4)),
        nn.BatchNorm2d(128),
        nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.ConvTranspose2d(32, 3, 4, 2, 1),
        nn.Tanh(),
    )
