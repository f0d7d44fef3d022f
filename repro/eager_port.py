"""A hand-written PyTorch eager port of the `random` set's posterior, the baseline of `repro bench`.

What someone porting the paper's models to PyTorch by hand would run: the DGN fc6 generator and CaffeNet
written from their architecture facts (`repro.caffe.architectures`) in torch.nn.functional, the centre crop,
log p(k | x) and the N(0, I) prior, as `repro.posterior.posterior_model` assembles them by default, with the
gradient from torch autograd. It reads the same Caffe weights as the converter, but shares no code with the
ONNX route (no graph, no onnx2torch), so agreeing with it also checks the conversion.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from repro.caffe.architectures import GENERATOR_DECONVS
from repro.convert.cache import load_caffe_net
from repro.errors import BadInput
from repro.posterior import PosteriorParts, target_rows
from repro.runtime.torch import resolve_device

GENERATOR, CLASSIFIER = "fc6_generator", "caffenet"  # the built-in architectures this port is written for
LEAK = 0.3  # the generator's leaky ReLU slope
DECONV_PAD = 1  # every Deconvolution of the fc6 generator pads by 1
# CaffeNet's convolutions: (name, stride, pad, group, followed by max pooling 3/2 and LRN).
CAFFENET_CONVS = [
    ("conv1", 4, 0, 1, True),
    ("conv2", 1, 2, 2, True),
    ("conv3", 1, 1, 1, False),
    ("conv4", 1, 1, 2, False),
    ("conv5", 1, 1, 2, False),
]
LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}


def unavailable(parts: PosteriorParts) -> str | None:
    """Why the port cannot run this model set, or None when its nets are the architectures it ports."""
    nets = (parts.generator, parts.classifier)
    if tuple(n.arch for n in nets) == (GENERATOR, CLASSIFIER):
        return None
    named = " + ".join(n.arch or n.prototxt.name for n in nets)
    return f"it ports the built-in {GENERATOR} + {CLASSIFIER} (the random set); this set has {named}"


def _weights(files) -> dict[str, list[torch.Tensor]]:
    """Each layer's Caffe blobs (weight, bias) as tensors over the same memory."""
    net = load_caffe_net(files)
    return {layer.name: [torch.from_numpy(b) for b in layer.blobs] for layer in net.layers if layer.blobs}


def _linear(x: torch.Tensor, blobs: list[torch.Tensor]) -> torch.Tensor:
    weight, bias = blobs
    return F.linear(x.flatten(1), weight.reshape(weight.shape[0], -1), bias)


class EagerPosterior:
    """logp(z) = log softmax(C(crop(G(z))))_k − ½‖z‖², evaluated op by op in torch."""

    name = "eager"
    label = "torch eager (hand-written)"

    def __init__(self, parts: PosteriorParts, device: str = "cpu"):
        why = unavailable(parts)
        if why is not None:
            raise BadInput(f"eager port: not available for this model set: {why}")
        self.device = resolve_device(device)
        self.crop = slice(parts.crop_offset, parts.crop_offset + parts.crop_size)
        self._g = {k: [t.to(self.device) for t in v] for k, v in _weights(parts.generator).items()}
        self._c = {k: [t.to(self.device) for t in v] for k, v in _weights(parts.classifier).items()}
        self.code_size = self._g["defc7"][0].shape[1]
        self.n_classes = self._c["fc8"][0].shape[0]
        self.target_size = self.n_classes  # class targets only: a hand-written port of the class posterior

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        x = z
        for name in ("defc7", "defc6", "defc5"):
            x = F.leaky_relu(_linear(x, self._g[name]), LEAK)
        x = x.reshape(len(z), -1, 4, 4)
        for name, _, _, stride in GENERATOR_DECONVS:
            x = F.conv_transpose2d(x, *self._g[name], stride=stride, padding=DECONV_PAD)
            if name != "deconv0":
                x = F.leaky_relu(x, LEAK)
        return x

    def classify(self, image: torch.Tensor) -> torch.Tensor:
        x = image
        for name, stride, pad, group, pool_and_norm in CAFFENET_CONVS:
            x = F.relu(F.conv2d(x, *self._c[name], stride=stride, padding=pad, groups=group))
            if pool_and_norm:
                x = F.local_response_norm(F.max_pool2d(x, 3, 2, ceil_mode=True), **LRN)
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        for name in ("fc6", "fc7"):
            x = F.relu(_linear(x, self._c[name]))  # Dropout is the identity at test time
        return _linear(x, self._c["fc8"])

    def logp(self, z: torch.Tensor, classes: np.ndarray | int) -> torch.Tensor:
        logits = self.classify(self.generate(z)[:, :, self.crop, self.crop])
        selected = torch.from_numpy(target_rows(classes, len(z), self.n_classes)).to(self.device)
        return (F.log_softmax(logits, dim=1) * selected).sum(1) - 0.5 * (z * z).sum(1)

    def value_and_grad(self, z: np.ndarray, classes: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        zt = torch.tensor(np.asarray(z), dtype=torch.float32, device=self.device, requires_grad=True)
        logp = self.logp(zt, classes)
        (grad,) = torch.autograd.grad(logp.sum(), zt)
        return logp.detach().cpu().numpy(), grad.cpu().numpy()
