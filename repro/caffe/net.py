"""The one in-memory form of a Caffe net that every reader upgrades to (V0, V1 and V2 alike).

Converters read layer settings from `Layer.params`, a V2 `caffe.LayerParameter` message of the runtime
schema (`repro.caffe.schema`), with Caffe's own field names (`params.convolution_param.kernel_size`, ...),
so a converter is written once against caffe.proto semantics whatever version the file was in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Layer:
    name: str
    type: str  # V2 type string ("Convolution", "InnerProduct", ...); V0/V1 enums are upgraded to these
    bottoms: list[str]
    tops: list[str]
    params: Any  # caffe.LayerParameter (runtime schema); its `blobs` field is left empty, see `blobs`
    blobs: list[np.ndarray] = field(default_factory=list)  # float32, Caffe's shapes; [] until weights load


@dataclass
class Net:
    name: str
    layers: list[Layer]  # TEST-phase layers in execution order; legacy `input:` headers become Input layers
    source: str = ""  # the prototxt path, for error messages
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # every blob, after a full forward

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def inputs(self) -> list[str]:
        return [top for layer in self.layers if layer.type == "Input" for top in layer.tops]

    @property
    def outputs(self) -> list[str]:
        """Caffe's net outputs: blobs left unconsumed after the last layer (in-place tops count as new)."""
        available: list[str] = []
        for layer in self.layers:
            available = [b for b in available if b not in layer.bottoms]
            available += [t for t in layer.tops if t not in available]
        return available
