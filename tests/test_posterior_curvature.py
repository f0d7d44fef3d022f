"""tools/posterior_curvature: Lanczos on finite-difference Hessian-vector products finds a Gaussian's
extreme curvatures (numpy's eigvalsh of its precision is the independent answer), the likelihood subspace
holds a low-rank likelihood's directions, and the command runs on the embedded set at its defaults and
under N(0, I) at β = 1."""

from __future__ import annotations

import json

import numpy as np
import pytest

from repro.samplers.targets import Gaussian
from tools.posterior_curvature import TOP, hessian_extremes, likelihood_subspace, main


def _low_rank_posterior(dim=30, rank=3, strength=40.0):
    """An N(0, I) prior times a Gaussian likelihood of precision strength · W diag(1 … 0.2) Wᵀ."""
    w, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((dim, rank)))
    precision = np.eye(dim) + strength * (w * np.linspace(1.0, 0.2, rank)) @ w.T
    return Gaussian(np.zeros(dim), np.linalg.inv(precision)), precision, w


def test_extreme_curvatures_of_a_gaussian():
    target, precision, _ = _low_rank_posterior()
    # off the mean and with a step the size of the tool's: central differences are exact for a quadratic
    top, bottom, vector = hessian_extremes(target, np.random.default_rng(4).standard_normal(30))
    values, vectors = np.linalg.eigh(precision)
    np.testing.assert_allclose(top, values[::-1][:TOP], rtol=2e-3)
    np.testing.assert_allclose(bottom, values[0], rtol=2e-3)
    assert abs(vector @ vectors[:, -1]) > 0.999


def test_the_likelihood_subspace_holds_the_likelihoods_directions():
    target, _, w = _low_rank_posterior()
    draws = target.draw(np.random.default_rng(5), 200)
    subspace = likelihood_subspace(target, draws, prior_sigma=1.0)
    assert subspace.shape == (30, 16)
    held = np.sum((subspace.T @ w) ** 2, axis=0)  # each direction's share inside the subspace
    np.testing.assert_allclose(held, 1.0, atol=1e-9)
    # a wrong prior scale leaves the prior's own gradients in and the top directions are no longer W's
    assert np.sum((likelihood_subspace(target, draws, prior_sigma=0.5)[:, :3].T @ w) ** 2) < 2.9


@pytest.mark.parametrize(
    ("setting", "prior", "beta"),
    [([], "fitted", 10.0), (["--beta", "1", "--prior", "standard"], "standard", 1.0)],
    ids=["defaults", "standard-beta1"],
)
def test_the_command(setting, prior, beta, tmp_path, capsys):
    out = tmp_path / "curvature.json"
    assert main([*setting, "--gradients", "150", "--chains", "2", "--points", "3", "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["prior"] == prior and result["beta"] == beta and len(result["points"]) == 3
    for p in result["points"]:
        assert p["top"] == sorted(p["top"], reverse=True) and p["top"][0] >= p["bottom"]
        assert 0.0 <= p["in_likelihood_subspace"] <= 1.0 + 1e-9
    assert result["stiffest_min"] <= result["stiffest_median"] <= result["stiffest_max"]
    assert "Stiffest curvature: median" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--beta", "0"], "--beta: expected a finite value > 0"),
        (["--points", "1"], "--points: at least 2"),
        (["--class", "99"], "class index 99 is outside"),
        (["-o", "/nonexistent/folder/c.json"], "its folder does not exist"),
        (["-o", "/tmp/c.txt"], "expected a .json file"),
    ],
)
def test_bad_options_are_refused_in_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
