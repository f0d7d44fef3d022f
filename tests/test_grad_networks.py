"""The gradient graph on converted real architectures (random weights): CaffeNet and the DGN fc6 generator.

Reference: torch float64 autograd over onnx2torch's module of the same converted graph; tolerance CHAIN_TOL
(1e-5 of max|grad|). GoogLeNet is not compared here: with random weights its deep pooling/ReLU stack is so
sensitive to rounding that torch float32 and float64 gradients already differ by ~7e-4 of max|grad|.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_grad_model import CHAIN_TOL
from tests.test_grad_rules import objective, ort_grad, rel_max, torch_forward, torch_grad

PROTOTXT = Path(__file__).resolve().parents[2] / "shared/reference/prototxt"


def converted(name: str, output: str):
    from repro.caffe import load_net, random_weights
    from repro.convert import to_onnx

    path = PROTOTXT / name
    if not path.exists():
        pytest.skip(f"reference prototxt {path} is not present")
    net = load_net(path, batch=1)
    random_weights(net, 0, last_scale=0.1)
    return to_onnx(net, [output], dynamic_batch=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "wrt", "of", "unit", "shape", "scale"),
    [
        ("caffe__models__bvlc_reference_caffenet__deploy.prototxt", "data", "fc8", 3, (2, 3, 227, 227), 50.0),
        ("synthesizing__nets__upconv__fc6__generator.prototxt", "feat", "deconv0", 123456, (2, 4096), 1.0),
    ],
    ids=["caffenet fc8", "fc6 generator"],
)
def test_network_gradient_matches_torch(name, wrt, of, unit, shape, scale):
    model = converted(name, of)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32) * scale
    got = ort_grad(model, x, of, unit, wrt=wrt)
    reference = torch_grad(objective(torch_forward(model), unit), x)
    err = rel_max(got, reference)
    print(f"\nGRADROW {name} torch={err:.2e} fd=not run")
    assert err <= CHAIN_TOL
