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
    one = OrtBackend(guided(1.0, objective)).value_and_grad(z, classes)[0].astype(np.float64)
    ten = OrtBackend(guided(10.0, objective)).value_and_grad(z, classes)[0].astype(np.float64)
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


def test_repro_sample_runs_what_a_report_row_runs(tmp_path, monkeypatch):
    """`--tuning dual-averaging --prior fitted --guidance 10` is the report's mala-da-prior-g10 row alone:
    its options are `Method.dual_averaging`'s, and run.json records all three."""
    import json

    from repro.cli import main
    from repro.samplers import METHODS
    from tests.test_report import write_tiny_set

    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    tiny = write_tiny_set(tmp_path / "tiny")
    out = tmp_path / "out"
    args = ["sample", "--models", str(tiny), "--class", "1", "--method", "mala", "--chains", "2"]
    args += ["--steps", "8", "--tuning", "dual-averaging", "--prior", "fitted", "--guidance", "10"]
    assert main([*args, "-o", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert (record["tuning"], record["prior"], record["guidance"]) == ("dual-averaging", "fitted", 10.0)
    assert record["options"] == METHODS["mala"].dual_averaging(8) == {"schedule": "constant", "adapt": 2}
    assert record["settings"]["guidance"] == 10.0
    # a sampler beyond the paper has no published schedule: dual averaging is its default
    assert main([*args[:5], "--method", "hmc-jitter", "--steps", "8", "-o", str(tmp_path / "jitter")]) == 0
    record = json.loads((tmp_path / "jitter" / "run.json").read_text())
    assert record["tuning"] == "dual-averaging"
    assert record["options"] == {"schedule": "constant", "adapt": 2, "n_leapfrog": 5}
    # GHMC and MCLMC spend one gradient an iteration, so --gradients N runs N iterations
    for method in ("ghmc", "mclmc"):
        assert main([*args[:5], "--method", method, "--gradients", "12", "-o", str(tmp_path / method)]) == 0
        record = json.loads((tmp_path / method / "run.json").read_text())
        assert (record["tuning"], record["steps"], record["n_grad"]) == ("dual-averaging", 12, 13)


@pytest.mark.parametrize(
    ("method", "option", "message"),
    [
        ("map", ["--prior", "fitted"], "--prior fitted: method map has no prior term to replace"),
        ("map-clip", ["--tuning", "dual-averaging"], "method map-clip is a method without an accept step"),
        ("hmc-released", ["--tuning", "dual-averaging"], "method hmc-released is the authors' released"),
        ("mala", ["--guidance", "0"], "Invalid value for '--guidance'"),
        ("mala-mass", ["--tuning", "paper"], "method mala-mass runs only with dual-averaging"),
    ],
)
def test_sample_options_that_do_not_apply_are_refused_in_one_line(method, option, message, capsys, tmp_path):
    from repro.cli import main

    assert main(["sample", "--class", "0", "--method", method, *option, "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o").exists()


def test_a_fitted_prior_counts_by_content_and_chains_start_at_its_draws(tmp_path, monkeypatch):
    """`--prior fitted-full`: run.json's settings identify the prior by its numbers (it depends on real
    images, which the model set's identity leaves out), and the chains start at draws of it, the same noise
    as N(0, I) chains, mapped through it."""
    import json

    from repro.cli import main
    from repro.evaluate.code_prior import fitted_prior
    from repro.modelsets import resolve
    from repro.sample_job import _prior_identity
    from repro.samplers.initial import initial_codes

    ms = resolve("embedded")
    prior = fitted_prior(ms, 512, "full")
    noise = initial_codes(0, 2, 512)
    # (noise here is float32, rounded before the mapping)
    np.testing.assert_allclose(initial_codes(0, 2, 512, prior), prior.draw(noise), rtol=1e-5, atol=1e-5)
    out = tmp_path / "out"
    args = ["sample", "--class", "1", "--method", "mala", "--chains", "2", "--steps", "4", "--tuning"]
    args += ["dual-averaging", "--prior", "fitted-full", "--no-parity-check", "-o", str(out)]
    assert main(args) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["prior"] == "fitted-full"
    assert record["settings"]["prior_fit"] == json.loads(json.dumps(_prior_identity(prior)))
    assert record["settings"]["prior_fit"]["corr_factor"]["shape"] == [512, 512]
    assert record["settings"]["preconditioner"] == "the fitted prior's covariance"
    # the first kept state is one step from the start: near the prior draw, far from the N(0, I) code
    first = np.load(out / "samples.npz")["samples"][0]
    start = prior.draw(noise)
    assert np.linalg.norm(first - start) < 0.5 * np.linalg.norm(first - noise)


@pytest.mark.parametrize(("method", "iterations"), [("mala", 40), ("hmc", 4), ("mala-released", 20)])
def test_gradients_set_the_run_length_at_the_methods_cost(method, iterations, tmp_path, monkeypatch):
    """`--gradients 40`: MALA 40 iterations, HMC (L = 10) 4, the released MALA (a logits call beside each
    gradient) 20; run.json says both, and the gradients the run spent (each iteration's, plus the start's)."""
    import json

    from repro.cli import main
    from tests.test_report import write_tiny_set

    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    tiny = write_tiny_set(tmp_path / "tiny")
    out = tmp_path / "out"
    args = ["sample", "--models", str(tiny), "--class", "1", "--method", method, "--chains", "2"]
    assert main([*args, "--gradients", "40", "--no-parity-check", "-o", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert (record["gradients"], record["steps"]) == (40, iterations)
    assert record["n_grad"] == 41  # the budget, and the start's evaluation


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--gradients", "40", "--steps", "10"], "--steps and --gradients both set the run's length"),
        (["--gradients", "5"], "--gradients 5: one iteration of hmc costs 10 gradient evaluations"),
    ],
)
def test_a_gradient_budget_that_cannot_run_is_refused_in_one_line(extra, message, capsys, tmp_path):
    from repro.cli import main

    args = ["sample", "--class", "0", "--method", "hmc", *extra, "-o", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o").exists()
