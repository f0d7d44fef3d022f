"""The table of VJP rules, one per ONNX op type, filled by the `@vjp` decorator (as onnx2torch's converters).

A rule receives the forward node, the gradient value names flowing into each of its outputs (None where no
gradient reaches that output) and the `Emitter`; it returns one gradient value name per input (None for inputs
that need none), in input order; trailing Nones may be left out.
"""

from __future__ import annotations

from collections.abc import Callable

from onnx import NodeProto

from repro.grad.emitter import Emitter

Rule = Callable[[NodeProto, list[str | None], Emitter], list[str | None]]

RULES: dict[str, Rule] = {}


def vjp(*op_types: str) -> Callable[[Rule], Rule]:
    """Register `rule` as the vector-Jacobian product of the default-domain ONNX ops `op_types`."""

    def register(rule: Rule) -> Rule:
        for op_type in op_types:
            if op_type in RULES:
                raise ValueError(f"a VJP rule for {op_type} is already registered")
            RULES[op_type] = rule
        return rule

    return register
