"""One module per family of Caffe layers; importing them fills `repro.convert.registry.CONVERTERS`."""

from repro.convert.layers import (  # noqa: F401
    activations,
    convolution,
    elementwise,
    inner_product,
    input,
    normalization,
    pooling,
    reshaping,
)
