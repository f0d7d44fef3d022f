"""The table of VJP rules, one per ONNX op type, filled by the `@vjp` decorator (as onnx2torch's converters).

A rule receives the forward node, the gradient value names flowing into each of its outputs (None where no
gradient reaches that output) and the `Emitter`; it returns one gradient value name per input (None for inputs
that need none), in input order; trailing Nones may be left out.
"""

from __future__ import annotations

from collections.abc import Callable

from onnx import NodeProto

from repro.grad.emitter import Emitter
from repro.registry import registrar

Rule = Callable[[NodeProto, list[str | None], Emitter], list[str | None]]

RULES: dict[str, Rule] = {}


vjp = registrar(RULES, "VJP rules for ONNX op")  # @vjp("Relu", ...): rules of default-domain ops
