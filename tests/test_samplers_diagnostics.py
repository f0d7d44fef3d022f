"""Sampler diagnostics on draws whose R̂ and ESS are known in advance."""

from __future__ import annotations

import json

import numpy as np

from repro.evaluate.diagnostics import summarize
from repro.samplers import Result, sample
from repro.samplers.targets import LogGamma

CHAINS, STEPS, DIM = 8, 1000, 3


def fake_result(samples: np.ndarray, warmup: int = 0, n_grad: int = STEPS + 1) -> Result:
    """A Result around given draws [steps, C, D]; logp is taken as −½‖z‖² of each draw."""
    steps, chains, _ = samples.shape
    return Result(
        z=samples[-1],
        samples=samples,
        logp=-0.5 * (samples**2).sum(axis=2),
        accepted=np.ones((steps, chains), dtype=bool),
        accept_rate=np.ones(chains),
        n_grad=n_grad,
        seconds=2.0,
        energy_error=None,
        divergent=None,
        n_nonfinite=np.zeros(chains, dtype=np.int64),
        step_size=np.full(chains, 0.1),
        z_last_start=None,
        method="mala",
        warmup=warmup,
        thin=1,
    )


def ar1(rho: float, seed: int) -> np.ndarray:
    """Stationary AR(1) chains with unit variance: ESS/N = (1 − ρ)/(1 + ρ)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((STEPS, CHAINS, DIM)) * np.sqrt(1 - rho**2)
    x = np.empty_like(noise)
    x[0] = rng.standard_normal((CHAINS, DIM))
    for t in range(1, STEPS):
        x[t] = rho * x[t - 1] + noise[t]
    return x


def test_independent_draws():
    out = summarize(fake_result(ar1(0.0, 0)))
    json.dumps(out)  # plain types only
    n = CHAINS * STEPS
    for name, s in out["summaries"].items():
        assert abs(s["rhat"] - 1) < 0.01, name
        assert 0.85 < s["ess_bulk"] / n < 1.15, name
        assert s["ess_per_grad"] == s["ess_bulk"] / ((STEPS + 1) * CHAINS)
        assert s["ess_per_second"] == s["ess_bulk"] / 2.0
    assert set(out["summaries"]) == {"logp", "projection_0", "projection_1", "projection_2"}


def test_autocorrelated_draws():
    rho = 0.9
    out = summarize(fake_result(ar1(rho, 1)))
    expected = CHAINS * STEPS * (1 - rho) / (1 + rho)
    ratios = [out["summaries"][f"projection_{j}"]["ess_bulk"] / expected for j in range(3)]
    print("AR(1) rho=0.9: bulk ESS / theory =", ratios)
    assert all(0.75 < r < 1.33 for r in ratios)


def test_chains_that_disagree_have_large_rhat_and_warmup_is_left_out():
    draws = ar1(0.5, 2)
    stuck = draws + np.arange(CHAINS)[None, :, None]  # each chain in its own place
    assert summarize(fake_result(stuck))["rhat_max"] > 1.5
    # the same disagreement confined to warm-up does not count
    mixed = draws.copy()
    mixed[:200] += 10 * np.arange(CHAINS)[None, :, None]
    assert summarize(fake_result(mixed, warmup=200))["rhat_max"] < 1.02
    assert summarize(fake_result(mixed, warmup=0))["rhat_max"] > 1.05


def test_real_run_and_map():
    target = LogGamma(np.array([2.0, 3.0]))
    z0 = target.draw(np.random.default_rng(0), 8)
    out = summarize(sample(target, "mala", z0, 400, 0, 0.5, adapt=100, thin=2))
    assert out["warmup"] == 100 and out["n_grad"] == 401
    assert out["rhat_max"] < 1.05 and out["ess_bulk_min"] > 100
    assert out["divergent"] is None and out["n_nonfinite"] == 0
    map_out = summarize(sample(target, "map", z0, 20, 0, 0.1))
    assert map_out["summaries"] == {} and map_out["rhat_max"] is None
    json.dumps(map_out)
