"""The embedded set's nets, small enough to train on two CPU cores in minutes and to ship in git.

Exported nets are CaffeChains (see layers.py); the reconstruction generator's adversary, needed only for
training, is plain torch. The judge is not a Caffe net: it is the paper's judge design, in dcgan_judge.py.
"""

from __future__ import annotations

import torch
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
    softmax,
)

CROP = 56
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


class _Adversary(nn.Module):
    """Image tower and code tower, joined before the logit."""

    def __init__(self, image: nn.Module, code: nn.Module, joint: nn.Module):
        super().__init__()
        self.image, self.code, self.joint = image, code, joint

    def forward(self, images: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return self.joint(torch.cat([self.image(images), self.code(codes)], 1))


def adversary(width: int = 16) -> nn.Module:
    """The reconstruction generator's own discriminator (D&B's adversarial term); not exported.

    As in DeePSiM it judges an image together with the code it should show: a sharp image of the wrong
    scene is then no escape for the generator, and the discriminator cannot win on class cues alone.
    Spectral normalisation keeps its gradients to the generator bounded, so that the adversarial weight can
    be fifty times the old one without the generator's updates blowing up. Width 16 keeps a step of the
    whole generator stage within about 1.3× the cost of the old one.
    """
    sn = nn.utils.parametrizations.spectral_norm
    w = width
    image = nn.Sequential(
        sn(nn.Conv2d(3, w, 4, 2, 1)),
        nn.LeakyReLU(0.2),
        sn(nn.Conv2d(w, 2 * w, 4, 2, 1)),
        nn.LeakyReLU(0.2),
        sn(nn.Conv2d(2 * w, 4 * w, 4, 2, 1)),
        nn.LeakyReLU(0.2),
        sn(nn.Conv2d(4 * w, 4 * w, 4, 2, 1)),
        nn.LeakyReLU(0.2),
        nn.Flatten(1),
        sn(nn.Linear(4 * w * 16, 256)),
        nn.LeakyReLU(0.2),
    )
    code = nn.Sequential(sn(nn.Linear(CODE, 256)), nn.LeakyReLU(0.2))
    joint = nn.Sequential(sn(nn.Linear(512, 256)), nn.LeakyReLU(0.2), sn(nn.Linear(256, 1)))
    return _Adversary(image, code, joint)
