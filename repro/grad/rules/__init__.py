"""VJP rules, one module per family of ops; importing this package fills `repro.grad.registry.RULES`."""

from repro.grad.rules import (  # noqa: F401
    activations,
    arithmetic,
    indexing,
    linear,
    lrn,
    pooling,
    reductions,
    shape_ops,
)
