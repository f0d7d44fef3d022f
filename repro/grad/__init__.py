"""Reverse-mode gradients of ONNX graphs, written as standard ONNX ops (DESIGN §5).

One vector-Jacobian-product rule per op type (`repro.grad.rules`, registered in `repro.grad.registry.RULES`);
`value_and_grad_model` applies them in reverse over the nodes between an input and a value.
"""

from repro.grad import rules  # noqa: F401  (fills the registry)
from repro.grad.registry import RULES, vjp
from repro.grad.sweep import value_and_grad_model

__all__ = ["RULES", "value_and_grad_model", "vjp"]
