"""Reverse-mode gradients of ONNX graphs, written as standard ONNX ops.

Standard ops, so that one ONNX Runtime run of the extended graph returns value and gradient together for
every chain, with no autograd framework at sampling time (`docs/architecture.md` shows where this sits).

One vector-Jacobian-product rule per op type (`repro.grad.rules`, registered in `repro.grad.registry.RULES`);
`value_and_grad_model` applies them in reverse over the nodes between an input and a value.
"""

from repro.grad import rules  # noqa: F401  (fills the registry)
from repro.grad.registry import RULES, vjp
from repro.grad.sweep import value_and_grad_model

__all__ = ["RULES", "value_and_grad_model", "vjp"]
