"""One description of a chain of Caffe layers, from which both the torch module and the Caffe net are made.

Writing the net twice (once in torch, once as prototxt) invites a silent mismatch; here every layer type has
one torch builder and one entry of Caffe settings, and the exported Caffe file is produced from the very
modules that were trained. The Caffe net is a repro.caffe `Net`, written by repro.caffe's writer, so the
project writes Caffe files one way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from repro import caffe
from repro.caffe import schema


@dataclass
class Spec:
    name: str
    type: str  # Caffe V2 type string
    params: dict = field(default_factory=dict)
    in_place: bool = False  # top == bottom, as Caffe deploy files write ReLU, Dropout, BatchNorm, Scale


def conv(name, n, k, s=1, p=0, group=1, input_scale=1.0) -> Spec:
    """`input_scale` multiplies the input in torch and is folded into the weights on export."""
    return Spec(
        name,
        "Convolution",
        dict(num_output=n, kernel_size=k, stride=s, pad=p, group=group, input_scale=input_scale),
    )


def deconv(name, n, k, s=1, p=0) -> Spec:
    return Spec(name, "Deconvolution", dict(num_output=n, kernel_size=k, stride=s, pad=p))


def ip(name, n) -> Spec:
    return Spec(name, "InnerProduct", dict(num_output=n))


def relu(name, slope=0.0) -> Spec:
    return Spec(name, "ReLU", dict(negative_slope=slope), in_place=True)


def lrn(name, size=5, alpha=1e-4, beta=0.75, k=1.0) -> Spec:
    return Spec(name, "LRN", dict(local_size=size, alpha=alpha, beta=beta, k=k))


def pool(name, kind, k, s) -> Spec:
    return Spec(name, "Pooling", dict(pool=kind, kernel_size=k, stride=s))


def dropout(name, ratio=0.5) -> Spec:
    return Spec(name, "Dropout", dict(dropout_ratio=ratio), in_place=True)


def batchnorm(name, scale_name) -> list[Spec]:
    return [Spec(name, "BatchNorm", {}, in_place=True), Spec(scale_name, "Scale", {}, in_place=True)]


def reshape(name, c, h, w) -> Spec:
    return Spec(name, "Reshape", dict(shape=(c, h, w)))


def sigmoid(name) -> Spec:
    return Spec(name, "Sigmoid")


def softmax(name) -> Spec:
    return Spec(name, "Softmax")


# ---------------------------------------------------------------------------------------------- torch


class ScaleShift(nn.Module):
    """Caffe's Scale layer with bias: per-channel γ·x + β (BatchNorm's affine part, separate as in Caffe)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return x * self.weight[None, :, None, None] + self.bias[None, :, None, None]


class Lambda(nn.Module):
    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


_TORCH: dict[str, Callable[[dict, tuple[int, ...]], nn.Module]] = {}


def _torch_builder(type_: str):
    def register(fn):
        _TORCH[type_] = fn
        return fn

    return register


@_torch_builder("Convolution")
def _t_conv(p, shape):
    m = nn.Conv2d(shape[1], p["num_output"], p["kernel_size"], p["stride"], p["pad"], groups=p["group"])
    if p["input_scale"] == 1.0:
        return m
    return nn.Sequential(Lambda(lambda x, s=p["input_scale"]: x * s), m)


@_torch_builder("Deconvolution")
def _t_deconv(p, shape):
    return nn.ConvTranspose2d(shape[1], p["num_output"], p["kernel_size"], p["stride"], p["pad"])


@_torch_builder("InnerProduct")
def _t_ip(p, shape):
    return nn.Sequential(nn.Flatten(1), nn.Linear(int(np.prod(shape[1:])), p["num_output"]))


@_torch_builder("ReLU")
def _t_relu(p, shape):
    slope = p["negative_slope"]
    return nn.LeakyReLU(slope) if slope else nn.ReLU()


class ChannelLRN(nn.Module):
    """Caffe's ACROSS_CHANNELS LRN, x / (k + α/n · Σ_window x²)^β, with the window sum as a banded 1×1 conv.

    Same function as torch's LocalResponseNorm (zero-padded window of n channels centred on c), several times
    faster on CPU, which matters when the whole set must train in minutes.
    """

    def __init__(self, channels: int, size: int, alpha: float, beta: float, k: float):
        super().__init__()
        c = torch.arange(channels)
        band = ((c[:, None] - c[None, :]).abs() <= (size - 1) // 2).float() * (alpha / size)
        self.register_buffer("band", band[:, :, None, None], persistent=False)
        self.beta, self.k = beta, k

    def forward(self, x):
        return x * (self.k + F.conv2d(x * x, self.band)).pow(-self.beta)


@_torch_builder("LRN")
def _t_lrn(p, shape):
    if p["local_size"] % 2 == 0:
        raise ValueError("LRN local_size must be odd (Caffe centres the window)")
    return ChannelLRN(shape[1], p["local_size"], p["alpha"], p["beta"], p["k"])


@_torch_builder("Pooling")
def _t_pool(p, shape):
    k, s = p["kernel_size"], p["stride"]
    if p["pool"] == "MAX":  # unpadded: torch's ceil mode equals Caffe's rounding
        return nn.MaxPool2d(k, s, ceil_mode=True)
    if any((d - k) % s for d in shape[2:]):
        raise ValueError(
            "AVE pooling windows must tile exactly (Caffe and torch divide overhangs differently)"
        )
    return nn.AvgPool2d(k, s)


@_torch_builder("Dropout")
def _t_dropout(p, shape):
    return nn.Dropout(p["dropout_ratio"])


@_torch_builder("BatchNorm")
def _t_bn(p, shape):
    return nn.BatchNorm2d(shape[1], eps=1e-5, affine=False)


@_torch_builder("Scale")
def _t_scale(p, shape):
    return ScaleShift(shape[1])


@_torch_builder("Reshape")
def _t_reshape(p, shape):
    return Lambda(lambda x, s=p["shape"]: x.reshape(x.shape[0], *s))


@_torch_builder("Sigmoid")
def _t_sigmoid(p, shape):
    return nn.Sigmoid()


@_torch_builder("Softmax")
def _t_softmax(p, shape):
    return nn.Softmax(dim=1)


class CaffeChain(nn.Module):
    """A chain of Caffe layers as torch modules; `forward` returns the requested Caffe blobs by name.

    A blob written in place holds the last writer's value, as in Caffe after a full forward.
    """

    def __init__(self, name: str, input_name: str, input_shape: tuple[int, ...], specs: list[Spec]):
        super().__init__()
        self.net_name, self.input_name, self.input_shape, self.specs = (
            name,
            input_name,
            tuple(input_shape),
            specs,
        )
        self.mods = nn.ModuleList()
        self.tops: list[str] = []
        self.bottoms: list[str] = []
        self.shapes = {input_name: self.input_shape}
        blob, x = input_name, torch.zeros((2, *self.input_shape[1:]))
        for spec in specs:
            mod = _TORCH[spec.type](spec.params, tuple(x.shape))
            self.mods.append(mod)
            self.bottoms.append(blob)
            blob = blob if spec.in_place else spec.name
            self.tops.append(blob)
            with torch.no_grad():
                mod.eval()
                x = mod(x)
            self.shapes[blob] = (self.input_shape[0], *x.shape[1:])

    def forward(self, x: torch.Tensor, outputs: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        outputs = outputs or (self.tops[-1],)
        last = {t: i for i, t in enumerate(self.tops)}
        stop = max(last[o] for o in outputs)
        got = {}
        for i, mod in enumerate(self.mods[: stop + 1]):
            x = mod(x)
            if last[self.tops[i]] == i and self.tops[i] in outputs:
                got[self.tops[i]] = x
        return got

    def blob(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return self.forward(x, (name,))[name]


# ---------------------------------------------------------------------------------------------- Caffe


def _conv_param(p: dict) -> dict:
    fields = {
        "num_output": p["num_output"],
        "kernel_size": [p["kernel_size"]],
        "stride": [p["stride"]],
        "pad": [p["pad"]],
    }
    if p.get("group", 1) != 1:
        fields["group"] = p["group"]
    return {"convolution_param": fields}


# Caffe type → the layer's settings as LayerParameter fields; `input_scale` is absent, being in the weights.
_CAFFE: dict[str, Callable[[dict], dict]] = {
    "Convolution": _conv_param,
    "Deconvolution": _conv_param,
    "InnerProduct": lambda p: {"inner_product_param": {"num_output": p["num_output"]}},
    "ReLU": lambda p: {"relu_param": {"negative_slope": p["negative_slope"]}} if p["negative_slope"] else {},
    "LRN": lambda p: {"lrn_param": {k: p[k] for k in ("local_size", "alpha", "beta", "k")}},
    "Pooling": lambda p: {"pooling_param": {k: p[k] for k in ("pool", "kernel_size", "stride")}},
    "Dropout": lambda p: {"dropout_param": {"dropout_ratio": p["dropout_ratio"]}},
    # the running statistics as trained (torch's BatchNorm2d eps), with the affine part in Scale
    "BatchNorm": lambda p: {"batch_norm_param": {"use_global_stats": True, "eps": 1e-5}},
    "Scale": lambda p: {"scale_param": {"bias_term": True}},
    "Reshape": lambda p: {"reshape_param": {"shape": {"dim": [0, *p["shape"]]}}},  # dim 0 keeps the batch
    "Sigmoid": lambda p: {},
    "Softmax": lambda p: {},
}


def caffe_net(chain: CaffeChain) -> caffe.Net:
    """The chain as a deploy net (V2, an Input layer, batch 1), for repro.caffe's writer to write."""
    layers = [
        schema.LayerParameter(
            name=chain.input_name,
            type="Input",
            top=[chain.input_name],
            input_param={"shape": [{"dim": [1, *chain.input_shape[1:]]}]},
        )
    ]
    for spec, bottom, top in zip(chain.specs, chain.bottoms, chain.tops, strict=True):
        layers.append(
            schema.LayerParameter(
                name=spec.name, type=spec.type, bottom=[bottom], top=[top], **_CAFFE[spec.type](spec.params)
            )
        )
    return caffe.net_from_param(
        schema.NetParameter(name=chain.net_name, layer=layers), source=f"<{chain.net_name}>"
    )


def caffe_blobs(spec: Spec, mod: nn.Module) -> list[np.ndarray]:
    """The layer's Caffe weight blobs from its trained torch module (the layouts agree, see module doc)."""

    def f32(t):
        return t.detach().cpu().numpy().astype(np.float32)

    if spec.type == "Convolution":
        scale = spec.params["input_scale"]
        m = mod[-1] if isinstance(mod, nn.Sequential) else mod
        return [f32(m.weight * scale), f32(m.bias)]
    if spec.type == "Deconvolution":
        return [f32(mod.weight), f32(mod.bias)]
    if spec.type == "InnerProduct":
        return [f32(mod[1].weight), f32(mod[1].bias)]
    if spec.type == "BatchNorm":
        return [f32(mod.running_mean), f32(mod.running_var), np.ones(1, np.float32)]
    if spec.type == "Scale":
        return [f32(mod.weight), f32(mod.bias)]
    return []
