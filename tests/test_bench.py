"""`repro bench` and what it measures: its rows and fields, the ORT backend's one session, the eager port."""

from __future__ import annotations

import json

import numpy as np
import pytest

from repro.cli import main
from repro.errors import BadInput
from repro.grad import value_and_grad_model
from repro.modelsets import resolve
from repro.parity import FORWARD_TOL, GRAD_TOL, rel_max
from repro.posterior import target_rows
from repro.runtime.ort import OrtBackend, make_session
from tests.test_posterior import codes, tiny_posterior

ROW_FIELDS = {"backend", "batch", "median_s", "s_per_chain", "gflops", "peak_rss_mb", "times_s"}


def test_bench_json_has_a_row_per_backend_and_says_the_eager_port_does_not_apply(capsys):
    assert main(["bench", "--models", "embedded", "--batch", "2", "--repeats", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["models"] == "embedded" and result["repeats"] == 1 and result["gflop_per_chain"] > 0
    assert [(r["backend"], r["batch"]) for r in result["rows"]] == [("ort", 2), ("torch", 2)]
    for row in result["rows"]:
        assert ROW_FIELDS <= set(row) and len(row["times_s"]) == 1 and row["peak_rss_mb"] > 0
        assert ("speedup_vs_torch" in row) == (row["backend"] == "ort") and "speedup_vs_eager" not in row
    assert result["eager"]["available"] is False
    assert "fc6_generator + caffenet" in result["eager"]["note"]


def test_the_eager_port_refuses_a_set_it_does_not_port_in_one_line():
    from repro.eager_port import EagerPosterior, unavailable

    assert unavailable(resolve("random")) is None
    with pytest.raises(BadInput, match=r"^eager port: not available for this model set: it ports .*"):
        EagerPosterior(resolve("embedded"))


def test_one_ort_session_gives_what_the_forward_and_gradient_graphs_give():
    """The gated value-and-grad session against a plain forward session and a plain value-and-grad session,
    classes per chain included; images and logits come from the forward nodes alone."""
    posterior, _, _ = tiny_posterior()
    classes = np.array([0, 3, 4])
    z = codes(3)
    feeds = {"z": z, "target_weights": target_rows(classes, 3, 5)}
    forward = make_session(posterior).run(["image", "logits"], feeds)
    gradient = make_session(value_and_grad_model(posterior, wrt="z", of="logp"))
    logp, grad = gradient.run(["logp", "grad_z"], feeds)
    backend = OrtBackend(posterior)
    got_logp, got_grad = backend.value_and_grad(z, classes)
    assert rel_max(got_logp, logp) <= 1e-6 and rel_max(got_grad, grad) <= 1e-5
    assert rel_max(backend.images(z), forward[0]) <= 1e-6 and rel_max(backend.logits(z), forward[1]) <= 1e-6


@pytest.mark.parametrize("name", ["ort", "torch"])
def test_a_backend_made_from_a_model_file_gives_what_it_gives_from_the_graph(name, tmp_path):
    """The bench's children read the posterior from a file with its weights beside it."""
    from repro.runtime import make_backend
    from repro.runtime.ort import external_weights, write_header

    posterior, _, _ = tiny_posterior()
    path = write_header(external_weights(posterior, tmp_path), tmp_path)
    z = codes(3)
    from_graph = make_backend(name, posterior).value_and_grad(z, 2)
    from_file = make_backend(name, path).value_and_grad(z, 2)
    for got, expected in zip(from_file, from_graph, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "weights.bin"]  # nothing added


@pytest.mark.slow
def test_the_eager_port_matches_ort_vjp_on_the_random_set():
    """Full-size fc6 generator + CaffeNet, batch 2, a class per chain: value and gradient within parity's
    tolerances (relative 1e-4 of the largest magnitude)."""
    from repro.eager_port import EagerPosterior
    from repro.posterior import posterior_model

    ms = resolve("random")
    classes = np.array([7, 981])
    z = np.random.default_rng(0).standard_normal((2, 4096)).astype(np.float32)
    logp, grad = OrtBackend(posterior_model(ms)).value_and_grad(z, classes)
    eager_logp, eager_grad = EagerPosterior(ms).value_and_grad(z, classes)
    assert rel_max(eager_logp, logp) <= FORWARD_TOL
    assert rel_max(eager_grad, grad) <= GRAD_TOL


@pytest.mark.slow
def test_bench_on_the_random_set_has_the_eager_row_and_ort_within_its_memory_target():
    """At batch 8 the ORT child holds the posterior (0.47 GB of weights) and one session: at most 1.6 GB."""
    from repro.bench import run_bench
    from repro.posterior import posterior_model

    ms = resolve("random")
    result = run_bench(posterior_model(ms), (8,), 1, models=ms)
    assert result["eager"]["available"] is True
    rows = {r["backend"]: r for r in result["rows"]}
    assert set(rows) == {"ort", "torch", "eager"}
    ort = rows["ort"]
    assert ort["speedup_vs_eager"] == pytest.approx(rows["eager"]["median_s"] / ort["median_s"])
    assert ort["peak_rss_mb"] <= 1600


class _Stamped:
    """A backend that writes its name to a log on every call: the order of the calls across processes."""

    code_size = 2
    device = "cpu"

    def __init__(self, name: str, log: str):
        self.name, self.log = name, log

    def value_and_grad(self, z, classes):
        with open(self.log, "a") as f:
            f.write(self.name + "\n")
        return np.zeros(len(z)), np.zeros_like(z)


def test_the_backends_take_their_timed_calls_in_turn(tmp_path):
    import multiprocessing as mp
    from functools import partial

    from repro.bench import _interleaved

    log = str(tmp_path / "calls")
    makers = {name: partial(_Stamped, name, log) for name in ("a", "b", "c")}
    result = _interleaved(mp.get_context("spawn"), makers, batch=1, repeats=3, seed=0)
    calls = (tmp_path / "calls").read_text().split()
    assert calls == ["a", "b", "c"] + ["a", "b", "c"] * 3  # the warm-ups, one per child, then the rounds
    for name in "abc":
        assert len(result[name]["times_s"]) == 3 and result[name]["peak_rss_mb"] > 0
