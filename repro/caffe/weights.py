"""Seeded random weights for any net: stand-ins for real caffemodels in tests, benchmarks and the `random`
model set, scaled so that activations neither vanish nor explode through deep stacks."""

from __future__ import annotations

import zlib

import numpy as np

from repro.caffe.net import Layer, Net
from repro.caffe.shapes import LayerShapes, conv_geometry, layer_shapes


def _rng(seed: int, index: int, layer: Layer) -> np.random.Generator:
    """One independent stream per layer, fixed by the seed, the layer's position and its name."""
    return np.random.default_rng([seed, index, zlib.crc32(layer.name.encode())])


def _fan_in(layer: Layer, shapes: LayerShapes) -> float:
    """Inputs feeding one output value: He initialisation's fan-in."""
    weight = shapes.weights[0]
    if layer.type == "Convolution":
        return float(np.prod(weight[1:]))
    if layer.type == "Deconvolution":  # an output sees about C_in * prod(kernel / stride) taps
        stride = conv_geometry(layer, shapes.bottoms[0]).stride
        return float(weight[0] * np.prod([k / s for k, s in zip(weight[2:], stride, strict=True)]))
    if layer.type == "InnerProduct":
        return float(weight[0] if layer.params.inner_product_param.transpose else weight[1])
    return 1.0


def _layer_blobs(layer: Layer, shapes: LayerShapes, rng: np.random.Generator) -> list[np.ndarray]:
    weights = shapes.weights
    if layer.type == "BatchNorm":  # mean, variance (positive), scale factor 1
        return [rng.normal(0.0, 0.1, weights[0]), rng.uniform(0.5, 1.5, weights[1]), np.ones(weights[2])]
    if layer.type in ("Scale", "Bias"):
        learned_scale = layer.type == "Scale" and len(layer.bottoms) == 1
        scale = [rng.uniform(0.8, 1.2, weights[0])] if learned_scale else []
        return scale + [rng.normal(0.0, 0.1, s) for s in weights[len(scale) :]]
    weight = rng.normal(0.0, np.sqrt(2.0 / _fan_in(layer, shapes)), weights[0])
    return [weight] + [rng.normal(0.0, 0.05, s) for s in weights[1:]]


def random_weights(net: Net, seed: int, *, last_scale: float | None = None) -> None:
    """Fill every layer's `blobs` (float32, Caffe's shapes) with seeded He-scaled weights.

    BatchNorm gets positive variances and scale factor 1; `last_scale` multiplies the final InnerProduct's
    weights (and bias) so that a softmax over random logits is not saturated.
    """
    last_ip = max((i for i, layer in enumerate(net.layers) if layer.type == "InnerProduct"), default=None)
    for index, (layer, shapes) in enumerate(zip(net.layers, layer_shapes(net), strict=True)):
        blobs = _layer_blobs(layer, shapes, _rng(seed, index, layer)) if shapes.weights else []
        if index == last_ip and last_scale is not None:
            blobs = [blob * last_scale for blob in blobs]
        layer.blobs = [
            np.asarray(blob, dtype=np.float32).reshape(shape)
            for blob, shape in zip(blobs, shapes.weights, strict=True)
        ]
