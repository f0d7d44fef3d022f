"""MAP parity: `sample(..., "map-clip")` follows DGN-AM's act_max.py loop step for step.

The reference below is a plain re-implementation of act_max.py's loop (DGN-AM's `activation_maximization`:
linear step start + (end − start)·i/n, the normalised step lr·h/mean|h|, clip to the bounds, then ×decay),
one code at a time, written from that description and not from repro.samplers.
"""

from __future__ import annotations

import numpy as np
import pytest

from repro.errors import BadInput
from repro.samplers import load_bounds, sample
from repro.samplers.targets import Gaussian

DIM, HIDDEN = 64, 32


class SmoothLogit:
    """A smooth nonlinear stand-in for a_k(crop(G(z))): w·tanh(Az + b) + 0.3·Σ sin(z).

    Written with broadcasting sums instead of BLAS so that a code's gradient is bit-identical whether it
    is computed alone or in a batch: DGN-AM's normalised steps amplify 1-ulp differences exponentially, so
    parity needs the same gradient bits on both sides.
    """

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.a = rng.standard_normal((HIDDEN, DIM)) / np.sqrt(DIM)
        self.b = rng.standard_normal(HIDDEN)
        self.w = rng.standard_normal(HIDDEN)

    def value_and_grad(self, z):
        u = np.tanh((z[:, None, :] * self.a).sum(axis=-1) + self.b)
        value = (u * self.w).sum(axis=-1) + 0.3 * np.sin(z).sum(axis=-1)
        grad = (((1 - u**2) * self.w)[:, :, None] * self.a).sum(axis=1) + 0.3 * np.cos(z)
        return value, grad

    def grad_one(self, code):
        """The gradient for one code, as the reference loop asks for it (act_max.py optimises one code)."""
        u = np.tanh((code * self.a).sum(axis=-1) + self.b)
        return (((1 - u**2) * self.w)[:, None] * self.a).sum(axis=0) + 0.3 * np.cos(code)


def act_max_reference(grad_fn, code, n_iters, start_lr, end_lr, upper, l2):
    """act_max.py's loop: linear lr, code += lr/mean|g|·g, per-unit clip to [0, ub], then ×L2."""
    code = code.copy()
    trajectory = []
    best = None
    for i in range(n_iters):
        step_size = start_lr + (end_lr - start_lr) * i / n_iters
        best = code.copy()  # the image act_max.py returns is generated from this code
        g = grad_fn(code)
        code += step_size / np.abs(g).mean() * g
        code = np.minimum(np.maximum(code, 0), upper)
        if 0 < l2 < 1:
            code *= l2
        trajectory.append(code.copy())
    return np.array(trajectory), best


@pytest.fixture
def bounds_file(tmp_path):
    """Bounds in act_range's format: one line of integers, no trailing newline."""
    upper = np.random.default_rng(0).integers(3, 18, size=DIM)
    path = tmp_path / "fc6.txt"
    path.write_text(" ".join(str(v) for v in upper))
    return path, upper.astype(np.float64)


def test_map_clip_matches_act_max_loop(bounds_file):
    path, upper = bounds_file
    ub = load_bounds(path, DIM)
    np.testing.assert_array_equal(ub, upper)
    target = SmoothLogit(1)
    z0 = np.random.default_rng(2).standard_normal((3, DIM)) * 3
    result = sample(target, "map-clip", z0, seed=0, clip=(0.0, ub))

    max_diff = 0.0
    for c in range(z0.shape[0]):
        trajectory, best = act_max_reference(target.grad_one, z0[c], 200, 8.0, 1e-10, upper, 0.99)
        max_diff = max(
            max_diff,
            np.abs(result.samples[:, c] - trajectory).max(),
            np.abs(result.z_last_start[c] - best).max(),
            np.abs(result.z[c] - trajectory[-1]).max(),
        )
    scale = np.abs(result.samples).max()
    print(
        f"MAP parity over 3 chains x 200 steps: max |difference| = {max_diff:.3e} (states up to {scale:.1f})"
    )
    assert max_diff <= 1e-12 * scale
    # DGN-AM's schedule: the last step used is 8·(1/200) (+1e-10 share), never 1e-10
    np.testing.assert_allclose(result.step_size, 8.0 + (1e-10 - 8.0) * 199 / 200, rtol=1e-15)
    # the clip binds and the states move: the comparison is not between two constants
    assert (result.samples == 0).any() and np.ptp(result.samples[:, 0], axis=0).min() > 0


def test_plain_map_reaches_gaussian_mode():
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    target = Gaussian(rng.standard_normal(5), (q * np.linspace(1.0, 4.0, 5)) @ q.T)
    result = sample(target, "map", rng.standard_normal((4, 5)) * 5, 600, 0, 0.5)
    err = np.abs(result.z - target.mean).max()
    print(f"plain MAP: max |z − mode| = {err:.2e}")
    assert err < 1e-10
    assert result.accepted.all() and result.n_grad == 601


def test_map_clip_needs_bounds():
    with pytest.raises(BadInput, match="clip"):
        sample(SmoothLogit(0), "map-clip", np.zeros((1, DIM)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (" ".join(["5"] * (DIM - 1)), f"expected {DIM} numbers .*got {DIM - 1}"),
        (" ".join(["5"] * (DIM + 3)), f"expected {DIM} numbers .*got {DIM + 3}"),
        (" ".join(["5"] * 32) + "\n" + " ".join(["5"] * 32), "one line"),
        (" ".join(["5"] * (DIM - 1) + ["x"]), "not a number"),
        (" ".join(["5"] * (DIM - 1) + ["-1"]), ">= 0"),
        ("", "one line"),
    ],
)
def test_load_bounds_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "bad_fc6.txt"
    path.write_text(content)
    with pytest.raises(BadInput, match=message) as info:
        load_bounds(path, DIM)
    assert str(path) in str(info.value)


def test_load_bounds_missing_file(tmp_path):
    with pytest.raises(BadInput, match="nowhere.txt"):
        load_bounds(tmp_path / "nowhere.txt", DIM)
