"""MCLMC's isokinetic dynamics (repro.samplers.mclmc) against independent paths: the closed-form velocity
update against a fine Runge–Kutta integration of its ODE, its kinetic-energy change against the Jacobian
measured by finite differences on the sphere, and the step's reversibility (long chains on a skewed target,
which fail when the MH ratio's Jacobian term is off, are in test_samplers_mcmc beside GHMC's)."""

from __future__ import annotations

import numpy as np
import pytest

from repro.errors import BadInput
from repro.samplers import mclmc
from repro.samplers.state import Draws
from tests.test_samplers_adaptive import AXIS_STIFF


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _case(seed, dim, scale=2.0):
    rng = np.random.default_rng(seed)
    return _unit(rng.standard_normal((1, dim))), scale * rng.standard_normal((1, dim))


def _runge_kutta(u, grad, tau, n=4000):
    """du/dt = (I − u uᵀ) g / (D − 1), dK/dt = g·u (what log π loses the velocity's scale gains), RK4."""
    dim = u.shape[1]

    def rate(x):
        v = x[:, :dim]
        du = (grad - np.sum(grad * v, axis=1, keepdims=True) * v) / (dim - 1)
        return np.concatenate([du, np.sum(grad * v, axis=1, keepdims=True)], axis=1)

    x, h = np.concatenate([u, np.zeros((1, 1))], axis=1), tau / n
    for _ in range(n):
        k1 = rate(x)
        k2 = rate(x + 0.5 * h * k1)
        k3 = rate(x + 0.5 * h * k2)
        k4 = rate(x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x[:, :dim], x[:, dim]


@pytest.mark.parametrize("dim", [2, 3, 7])
def test_the_velocity_update_solves_its_ode(dim):
    u, grad = _case(dim, dim)
    moved, kinetic = mclmc.kick(u, grad, np.array([0.8]))
    expected_u, expected_k = _runge_kutta(u, grad, 0.8)
    np.testing.assert_allclose(moved, expected_u, atol=1e-9)
    np.testing.assert_allclose(kinetic, expected_k, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(moved), 1.0, rtol=1e-12)


def _tangent_basis(u, rng):
    q, _ = np.linalg.qr(np.concatenate([u.T, rng.standard_normal((u.shape[1], u.shape[1] - 1))], axis=1))
    return q[:, 1:]


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_the_kinetic_change_is_minus_the_log_jacobian_on_the_sphere(dim):
    """The MH ratio exp(−W) is exact only if exp(−ΔK) is the velocity map's Jacobian on the sphere: here by
    central differences along an orthonormal tangent basis at u, read in one at the image."""
    rng = np.random.default_rng(dim)
    u, grad = _case(10 + dim, dim)
    tau = np.array([0.9])
    moved, kinetic = mclmc.kick(u, grad, tau)
    before, after = _tangent_basis(u, rng), _tangent_basis(moved, rng)
    h, jac = 1e-6, np.zeros((dim - 1, dim - 1))
    for j in range(dim - 1):
        plus = mclmc.kick(_unit(u + h * before[:, j]), grad, tau)[0]
        minus = mclmc.kick(_unit(u - h * before[:, j]), grad, tau)[0]
        jac[:, j] = ((plus - minus) / (2 * h) @ after)[0]
    print(f"D = {dim}: |det J| {abs(np.linalg.det(jac)):.8f}, exp(−ΔK) {np.exp(-kinetic[0]):.8f}")
    np.testing.assert_allclose(abs(np.linalg.det(jac)), np.exp(-kinetic[0]), rtol=1e-6)


def test_a_step_run_back_from_its_reversed_end_returns():
    """The leapfrog step followed by u ← −u is an involution, and W changes sign: the MH test's premise."""
    z0 = AXIS_STIFF.draw(np.random.default_rng(2), 5)
    state = mclmc.init(AXIS_STIFF, z0)
    u = _unit(np.random.default_rng(3).standard_normal(z0.shape))
    eps = np.full(5, 0.02)
    there = mclmc.integrate(state, AXIS_STIFF, eps, u, 3)
    back = mclmc.integrate(there.state, AXIS_STIFF, eps, -there.momentum, 3)
    np.testing.assert_allclose(back.state.z, z0, atol=1e-10)
    np.testing.assert_allclose(-back.momentum, u, atol=1e-10)
    np.testing.assert_allclose(back.energy_error, -there.energy_error, atol=1e-8)


def test_a_huge_step_stays_finite_and_is_rejected():
    """δ = ε‖g‖/(D − 1) in the thousands overflows cosh and sinh; the update must not."""
    u, grad = _case(4, 20, scale=1e5)
    moved, kinetic = mclmc.kick(u, grad, np.array([10.0]))
    assert np.isfinite(moved).all() and np.isfinite(kinetic).all()
    state = mclmc.init(AXIS_STIFF, AXIS_STIFF.draw(np.random.default_rng(5), 3))
    step = mclmc.build()
    draws = Draws(np.random.default_rng(6).standard_normal((3, 20)), np.full(3, 0.5))
    moved_state, info = step(state, AXIS_STIFF, np.full(3, 50.0), draws, 0)
    assert not info.accepted.any()
    np.testing.assert_array_equal(moved_state.z, state.z)


def test_the_velocity_stays_a_unit_vector_kept_and_reversed_as_ghmcs_momentum():
    chains, dim = 6, 20
    state = mclmc.init(AXIS_STIFF, AXIS_STIFF.draw(np.random.default_rng(8), chains))
    step = mclmc.build()
    eps = np.array([1e-3] * 3 + [20.0] * 3)  # accepted; far beyond the stiffest direction: rejected
    rng = np.random.default_rng(9)
    first = Draws(rng.standard_normal((chains, dim)), rng.random(chains))
    moved, info = step(state, AXIS_STIFF, eps, first, 0)
    assert info.accepted[:3].all() and not info.accepted[3:].any()
    u = moved.memory[:, -dim - 1 : -1]
    end = mclmc.integrate(state, AXIS_STIFF, eps, _unit(first.normal), 1)
    np.testing.assert_allclose(u[:3], end.momentum[:3], rtol=1e-12)
    np.testing.assert_allclose(u[3:], -_unit(first.normal[3:]), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, rtol=1e-12)


def test_one_dimension_is_refused():
    with pytest.raises(BadInput, match="D ≥ 2"):
        mclmc.init(AXIS_STIFF, np.zeros((2, 1)))
