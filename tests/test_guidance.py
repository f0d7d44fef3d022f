"""Guidance β in the posterior graph: the objective (log-likelihood) times β, differentiated exactly."""

from __future__ import annotations

import numpy as np
import pytest

from repro.convert import to_onnx
from repro.errors import BadInput
from repro.parity import run_parity
from repro.posterior import PosteriorSpec, build_posterior
from repro.runtime.ort import OrtBackend
from tests.test_posterior import codes, tiny_nets


def guided(beta: float, objective: str = "log_softmax", prior=1.0):
    g, c = tiny_nets()
    spec = PosteriorSpec("feat", "deconv0", "data", "fc8", 12, 2, objective, prior, guidance=beta)
    return build_posterior(to_onnx(g), to_onnx(c), spec)


@pytest.mark.parametrize("objective", ["log_softmax", "logit"])
def test_the_likelihood_term_is_multiplied_by_beta_and_the_prior_is_not(objective):
    z, classes = codes(3), np.array([0, 3, 1])
    prior = -0.5 * (z.astype(np.float64) ** 2).sum(1)
    one = OrtBackend(guided(1.0, objective), classes).value_and_grad(z)[0].astype(np.float64)
    ten = OrtBackend(guided(10.0, objective), classes).value_and_grad(z)[0].astype(np.float64)
    np.testing.assert_allclose(ten - prior, 10.0 * (one - prior), rtol=1e-5, atol=1e-4)


def test_beta_one_is_the_papers_graph_node_for_node():
    assert "posterior/guidance" not in {n.name for n in guided(1.0).graph.node}
    assert "posterior/guidance" in {n.name for n in guided(3.0).graph.node}


def test_a_guided_posterior_passes_the_parity_checks():
    checks = run_parity(guided(10.0), 2, codes(3), n_directions=2)
    assert len(checks) == 6
    for check in checks:
        assert check.passed, (check.name, check.error)


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan"), float("inf")])
def test_a_guidance_that_is_not_a_positive_number_is_refused(beta):
    with pytest.raises(BadInput, match="guidance: expected a finite β > 0"):
        guided(beta)
