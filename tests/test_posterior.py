"""The posterior graph, both backends and the parity checks, on small nets and at full size."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from repro import caffe
from repro.cli import main
from repro.convert import to_onnx
from repro.errors import BadInput
from repro.parity import FD_TOL, GRAD_TOL, rel_max, run_parity
from repro.posterior import PosteriorSpec, build_posterior
from repro.runtime.ort import OrtBackend
from repro.runtime.torch import TorchBackend

GENERATOR = """
name: "tiny_generator"
input: "feat"
input_shape { dim: 1 dim: 16 }
layer { name: "defc" type: "InnerProduct" bottom: "feat" top: "defc" inner_product_param { num_output: 128 } }
layer { name: "relu_defc" type: "ReLU" bottom: "defc" top: "defc" relu_param { negative_slope: 0.3 } }
layer { name: "reshape" type: "Reshape" bottom: "defc" top: "reshape"
        reshape_param { shape { dim: 1 dim: 8 dim: 4 dim: 4 } } }
layer { name: "deconv1" type: "Deconvolution" bottom: "reshape" top: "deconv1"
        convolution_param { num_output: 8 kernel_size: 4 stride: 2 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "deconv1" top: "deconv1" relu_param { negative_slope: 0.3 } }
layer { name: "deconv0" type: "Deconvolution" bottom: "deconv1" top: "deconv0"
        convolution_param { num_output: 3 kernel_size: 4 stride: 2 pad: 1 } }
"""

CLASSIFIER = """
name: "tiny_classifier"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 12 dim: 12 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 6 kernel_size: 3 stride: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc8" type: "InnerProduct" bottom: "pool1" top: "fc8" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }
"""


def tiny_nets(seed: int = 0):
    g = caffe.parse_net_text(GENERATOR, "<tiny generator>")
    c = caffe.parse_net_text(CLASSIFIER, "<tiny classifier>")
    caffe.random_weights(g, seed)
    caffe.random_weights(c, seed + 1, last_scale=0.1)
    return g, c


def tiny_posterior(objective="log_softmax", prior_sigma=1.0):
    g, c = tiny_nets()
    spec = PosteriorSpec("feat", "deconv0", "data", "fc8", 12, 2, objective, prior_sigma)
    return build_posterior(to_onnx(g), to_onnx(c), spec), g, c


def codes(n: int, seed: int = 3) -> np.ndarray:
    return np.abs(np.random.default_rng(seed).standard_normal((n, 16))).astype(np.float32)


@pytest.mark.parametrize("objective,prior", [("log_softmax", 1.0), ("logit", None), ("logit", 2.0)])
def test_posterior_equals_generator_crop_classifier_composed_by_hand(objective, prior):
    """logp from the one graph equals running G and C as separate sessions and composing in numpy."""
    model, g, c = tiny_posterior(objective, prior)
    z = codes(3)
    classes = np.array([0, 4, 2])
    logp = OrtBackend(model).value_and_grad(z, classes)[0]

    img = np.concatenate(
        [
            ort.InferenceSession(to_onnx(g).SerializeToString()).run(None, {"feat": z[i : i + 1]})[0]
            for i in range(3)
        ]
    )
    crop = img[:, :, 2:14, 2:14]
    sess_c = ort.InferenceSession(to_onnx(c, outputs=["fc8"]).SerializeToString())
    logits = np.concatenate([sess_c.run(["fc8"], {"data": crop[i : i + 1]})[0] for i in range(3)]).astype(
        np.float64
    )
    if objective == "log_softmax":
        logits = (
            logits
            - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
            - logits.max(1, keepdims=True)
        )
    expected = logits[np.arange(3), classes]
    if prior is not None:
        expected = expected - 0.5 * (z.astype(np.float64) ** 2).sum(1) / prior**2
    assert rel_max(logp, expected) < 1e-5


def test_ort_gradient_matches_torch_autograd_and_finite_differences():
    model, _, _ = tiny_posterior()
    checks = run_parity(model, 1, codes(4), n_directions=3, seed=0)
    for check in checks:
        assert check.passed, (check.name, check.error, check.tolerance)
    assert {c.tolerance for c in checks} == {GRAD_TOL, FD_TOL}


def test_per_chain_classes_give_per_chain_gradients():
    """Chain b's gradient depends only on chain b's code and class, whatever else is in the batch."""
    model, _, _ = tiny_posterior()
    z = codes(3)
    together = OrtBackend(model).value_and_grad(z, np.array([0, 1, 2]))[1]
    alone = OrtBackend(model).value_and_grad(z[1:2], 1)[1]
    assert np.allclose(together[1], alone[0], rtol=1e-5, atol=1e-6)


def test_torch_backend_images_equal_ort_images():
    model, _, _ = tiny_posterior()
    z = codes(2)
    assert rel_max(TorchBackend(model).images(z), OrtBackend(model).images(z)) < 1e-5


def test_class_outside_classifier_is_bad_input():
    model, _, _ = tiny_posterior()
    with pytest.raises(BadInput, match="class index 5 is outside the classifier's 5 outputs"):
        OrtBackend(model).value_and_grad(codes(1), 5)


def test_crop_that_does_not_fit_is_bad_input():
    g, c = tiny_nets()
    with pytest.raises(BadInput, match="does not fit"):
        build_posterior(to_onnx(g), to_onnx(c), PosteriorSpec("feat", "deconv0", "data", "fc8", 12, 8))


def write_tiny_set(root):
    g, c = tiny_nets()
    caffe.write_net(g, root / "g.prototxt", root / "g.caffemodel")
    caffe.write_net(c, root / "c.prototxt", root / "c.caffemodel")
    manifest = {
        "name": "tiny",
        "generator": {
            "prototxt": "g.prototxt",
            "caffemodel": "g.caffemodel",
            "input": "feat",
            "output": "deconv0",
        },
        "classifier": {
            "prototxt": "c.prototxt",
            "caffemodel": "c.caffemodel",
            "input": "data",
            "logits": "fc8",
        },
        "crop": {"size": 12, "offset": 2},
        "class_names": ["a", "b", "c", "d", "e"],
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_parity_command_on_a_model_set_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    root = write_tiny_set(tmp_path / "tiny")
    assert main(["parity", "--models", str(root), "--json", "--batch", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["models"] == "tiny" and len(report["checks"]) == 7  # ORT and torch vs float64, 3 FD
    assert all(c["passed"] and c["error"] <= c["tolerance"] for c in report["checks"])


def test_unknown_model_set_is_exit_2(capsys):
    assert main(["parity", "--models", "no-such-set"]) == 2
    assert "unknown model set 'no-such-set'" in capsys.readouterr().err


@pytest.mark.slow
def test_full_size_random_set_ort_vjp_matches_torch_autograd():
    """Full-size fc6 generator + CaffeNet (random weights), batch 2: ORT-VJP vs torch autograd within 1e-4."""
    from repro.modelsets import resolve
    from repro.posterior import posterior_model

    model = posterior_model(resolve("random"))
    z = np.abs(np.random.default_rng(0).standard_normal((2, 4096))).astype(np.float32)
    checks = run_parity(model, 7, z, n_directions=0)
    assert checks  # an empty list would pass the loop below
    for check in checks:
        assert check.passed, (check.name, check.error)


def test_a_fitted_gaussian_prior_is_its_closed_form_and_differentiates_exactly():
    """logp with N(μ, diag σ²) minus logp without a prior is −½ Σ ((z − μ)/σ)², in numpy; its gradient passes
    the parity checks (torch autograd, float64 finite differences)."""
    from repro.posterior import GaussianPrior

    rng = np.random.default_rng(5)
    prior = GaussianPrior(rng.uniform(0, 2, 16), rng.uniform(0.5, 4, 16), "test")
    with_prior, _, _ = tiny_posterior("logit", prior)
    without, _, _ = tiny_posterior("logit", None)
    z = codes(3)
    logp = OrtBackend(with_prior).value_and_grad(z, 2)[0].astype(np.float64)
    base = OrtBackend(without).value_and_grad(z, 2)[0].astype(np.float64)
    expected = -0.5 * (((z.astype(np.float64) - prior.mean) / prior.std) ** 2).sum(1)
    np.testing.assert_allclose(logp - base, expected, rtol=1e-5, atol=1e-4)
    checks = run_parity(with_prior, 2, z, n_directions=2)
    assert any("finite differences" in c.name for c in checks)  # not an empty or forward-only list
    for check in checks:
        assert check.passed, (check.name, check.error)


def _correlated_prior(rng, d: int = 16):
    from repro.posterior import GaussianPrior

    a = rng.standard_normal((d, d))
    cov = a @ a.T / d + 0.2 * np.eye(d)
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    prior = GaussianPrior(
        rng.uniform(0, 2, d), rng.uniform(0.5, 4, d), "test", corr_factor=np.linalg.cholesky(corr)
    )
    return prior, np.outer(prior.std, prior.std) * corr


def test_a_full_covariance_prior_is_its_closed_form_and_differentiates_exactly():
    """logp with N(μ, Σ) minus logp without a prior is −½ (z − μ)ᵀ Σ⁻¹ (z − μ), Σ solved for in float64
    (not through the prior's own whitening); its gradient passes the parity checks."""
    prior, cov = _correlated_prior(np.random.default_rng(6))
    with_prior, _, _ = tiny_posterior("logit", prior)
    without, _, _ = tiny_posterior("logit", None)
    z = codes(3)
    logp = OrtBackend(with_prior).value_and_grad(z, 2)[0].astype(np.float64)
    base = OrtBackend(without).value_and_grad(z, 2)[0].astype(np.float64)
    off = z.astype(np.float64) - prior.mean
    expected = -0.5 * np.einsum("nd,nd->n", off, np.linalg.solve(cov, off.T).T)
    np.testing.assert_allclose(logp - base, expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(-0.5 * (prior.whiten(z) ** 2).sum(1), expected, rtol=1e-10)
    checks = run_parity(with_prior, 2, z, n_directions=2)
    assert any("finite differences" in c.name for c in checks)
    for check in checks:
        assert check.passed, (check.name, check.error)


def test_a_full_covariance_prior_draws_with_its_covariance():
    prior, cov = _correlated_prior(np.random.default_rng(7), d=6)
    eps = np.random.default_rng(8).standard_normal((50_000, 6))
    z = prior.draw(eps)
    np.testing.assert_allclose(prior.whiten(z), eps, atol=1e-9)  # whitening undoes drawing
    np.testing.assert_allclose(np.cov(z.T), cov, atol=0.05 * np.abs(cov).max())
    np.testing.assert_allclose(z.mean(0), prior.mean, atol=5 * prior.std.max() / np.sqrt(len(z)))


def test_a_prior_of_the_wrong_size_or_a_zero_std_is_refused():
    from repro.posterior import GaussianPrior

    with pytest.raises(BadInput, match=r"prior \(short\): expected mean and std of 16 units"):
        tiny_posterior("logit", GaussianPrior(np.zeros(3), np.ones(3), "short"))
    with pytest.raises(BadInput, match=r"prior \(flat\): every std must be finite and > 0"):
        tiny_posterior("logit", GaussianPrior(np.zeros(16), np.zeros(16), "flat"))
    with pytest.raises(BadInput, match=r"prior \(square\): expected a 16×16 correlation factor"):
        tiny_posterior("logit", GaussianPrior(np.zeros(16), np.ones(16), "square", corr_factor=np.eye(3)))
    with pytest.raises(BadInput, match=r"prior \(singular\): the correlation factor must be finite"):
        tiny_posterior(
            "logit", GaussianPrior(np.zeros(16), np.ones(16), "singular", corr_factor=np.zeros((16, 16)))
        )
