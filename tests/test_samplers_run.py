"""The sampling loop: exact resume, batch-independent chains, cost accounting, NaNs, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from repro.errors import BadInput
from repro.samplers import checkpoint, sample
from repro.samplers.targets import LogGamma

TARGET = LogGamma(np.array([2.0, 0.7, 5.0]))  # element-wise, so rows never interact

# (method, step size, options): every option that carries state across steps is exercised somewhere.
RUNS = [
    ("mala", 0.5, {"adapt": 20, "schedule": "poly", "poly_gamma": 0.3, "noise_anneal": 0.2, "thin": 3}),
    ("hmc", 0.4, {"adapt": 15, "n_leapfrog": 4, "thin": 2}),
    ("map-clip", 0.5, {"clip": (0.0, 2.0), "schedule": "linear", "lr_end": 0.01}),
    ("mala-clip", 0.8, {"clip": (-1.0, 1.0)}),
    # a mass learnt in warm-up (its first window closes at 25, restarting dual averaging) and HMC's jittered
    # step, carried in State.memory
    ("mala-mass", 0.5, {"adapt": 30, "thin": 2}),
    ("hmc-jitter", 0.4, {"adapt": 30, "n_leapfrog": 3}),
    # GHMC's momentum and accept-test value, carried from one iteration to the next in State.memory
    ("ghmc", 0.3, {"adapt": 30, "thin": 2}),
    ("mclmc", 0.5, {"adapt": 30, "thin": 2}),
]


def z0(chains: int) -> np.ndarray:
    return TARGET.draw(np.random.default_rng(11), chains)


def assert_same(a, b):
    """Bitwise equality of every field but the wall-clock time."""
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "seconds":
            continue
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name, strict=True)
        else:
            assert x == y, f.name


class Killed(Exception):
    pass


class DiesAfter:
    """The target, until its n-th call: stands in for a run killed mid-way."""

    def __init__(self, calls: int):
        self.calls = calls

    def value_and_grad(self, z):
        self.calls -= 1
        if self.calls < 0:
            raise Killed
        return TARGET.value_and_grad(z)


@pytest.mark.parametrize(("method", "step", "options"), RUNS)
def test_killed_and_resumed_run_is_bit_identical(tmp_path, method, step, options):
    steps = 60
    whole = sample(TARGET, method, z0(4), steps, 3, step, **options)
    ckpt = tmp_path / "run.npz"
    with pytest.raises(Killed):
        sample(
            DiesAfter(whole.n_grad * 3 // 5),
            method,
            z0(4),
            steps,
            3,
            step,
            checkpoint=ckpt,
            checkpoint_every=7,
            **options,
        )
    meta, _ = checkpoint.load(ckpt)
    assert 0 < meta["t"] < steps  # killed mid-way, after at least one checkpoint
    resumed = sample(TARGET, method, z0(4), steps, 3, step, checkpoint=ckpt, resume=True, **options)
    assert_same(whole, resumed)
    # resuming a finished run returns it again without new work
    again = sample(DiesAfter(0), method, z0(4), steps, 3, step, checkpoint=ckpt, resume=True, **options)
    assert_same(whole, again)


def test_shorter_run_resumed_to_full_length_is_bit_identical(tmp_path):
    options = {"noise_anneal": 0.3, "thin": 4}
    whole = sample(TARGET, "mala", z0(3), 50, 5, 0.6, **options)
    ckpt = tmp_path / "short.npz"
    fresh = sample(
        TARGET, "mala", z0(3), 50, 5, 0.6, checkpoint=tmp_path / "none.npz", resume=True, **options
    )
    assert_same(whole, fresh)  # nothing to resume from: a fresh start
    sample(TARGET, "mala", z0(3), 22, 5, 0.6, checkpoint=ckpt, **options)
    resumed = sample(TARGET, "mala", z0(3), 50, 5, 0.6, checkpoint=ckpt, resume=True, **options)
    assert_same(whole, resumed)


def test_resume_refuses_a_different_run(tmp_path):
    ckpt = tmp_path / "c.npz"
    sample(TARGET, "map-clip", z0(2), 10, 0, 0.5, clip=(0.0, 2.0), checkpoint=ckpt)
    with pytest.raises(BadInput, match="seed"):
        sample(TARGET, "map-clip", z0(2), 10, 1, 0.5, clip=(0.0, 2.0), checkpoint=ckpt, resume=True)
    with pytest.raises(BadInput, match="z0"):
        sample(TARGET, "map-clip", z0(2) + 1, 10, 0, 0.5, clip=(0.0, 2.0), checkpoint=ckpt, resume=True)
    with pytest.raises(BadInput, match="steps=10"):  # the linear schedule depends on the step count
        sample(TARGET, "map-clip", z0(2), 20, 0, 0.5, clip=(0.0, 2.0), checkpoint=ckpt, resume=True)
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(BadInput, match="junk.npz"):
        sample(TARGET, "mala", z0(2), 10, 0, 0.5, checkpoint=tmp_path / "junk.npz", resume=True)


@pytest.mark.parametrize(("method", "step", "options"), RUNS)
def test_chain_does_not_depend_on_batch_size(method, step, options):
    one = sample(TARGET, method, z0(5)[:1], 40, 9, step, **options)
    five = sample(TARGET, method, z0(5), 40, 9, step, **options)
    np.testing.assert_array_equal(one.samples[:, 0], five.samples[:, 0])
    np.testing.assert_array_equal(one.logp[:, 0], five.logp[:, 0])
    np.testing.assert_array_equal(one.accepted[:, 0], five.accepted[:, 0])
    np.testing.assert_array_equal(one.step_size[0], five.step_size[0])
    assert not np.array_equal(five.samples[:, 0], five.samples[:, 1])  # chains do differ


def test_seed_changes_the_draws_and_repeats_exactly():
    a = sample(TARGET, "mala", z0(2), 20, 1, 0.5)
    b = sample(TARGET, "mala", z0(2), 20, 1, 0.5)
    c = sample(TARGET, "mala", z0(2), 20, 2, 0.5)
    assert_same(a, b)
    assert not np.array_equal(a.samples, c.samples)


class Counting:
    def __init__(self):
        self.calls = 0

    def value_and_grad(self, z):
        self.calls += 1
        return TARGET.value_and_grad(z)


@pytest.mark.parametrize(
    ("method", "options", "expected"),
    [
        ("map", {}, 31),
        ("mala", {}, 31),
        ("hmc", {"n_leapfrog": 7}, 1 + 30 * 7),
        ("hmc-jitter", {"n_leapfrog": 7}, 1 + 7 * 30),
        ("ghmc", {}, 31),
        ("ghmc", {"n_leapfrog": 3}, 1 + 3 * 30),
        ("mclmc", {"n_leapfrog": 2}, 1 + 2 * 30),
    ],
)
def test_gradient_count(method, options, expected):
    target = Counting()
    result = sample(target, method, z0(3), 30, 0, 0.3, **options)
    assert result.n_grad == target.calls == expected


def test_shapes_and_thinning():
    result = sample(TARGET, "hmc", z0(4), 25, 0, 0.3, n_leapfrog=3, thin=5)
    assert result.samples.shape == (5, 4, 3)
    assert result.logp.shape == result.accepted.shape == result.energy_error.shape == (25, 4)
    np.testing.assert_array_equal(result.samples[-1], result.z)
    np.testing.assert_array_equal(result.logp[-1], TARGET.value_and_grad(result.z)[0])
    np.testing.assert_array_equal(result.accept_rate, result.accepted.mean(axis=0))
    assert result.z_last_start is None and result.divergent.dtype == bool


class HoleAt:
    """LogGamma with a NaN region (first coordinate above 1.5) that the sampler must reject and count."""

    def value_and_grad(self, z):
        logp, grad = TARGET.value_and_grad(z)
        hole = z[:, 0] > 1.5
        logp = np.where(hole, np.nan, logp)
        grad = np.where(hole[:, None], np.inf, grad)
        return logp, grad


@pytest.mark.parametrize(("method", "options"), [("mala", {}), ("hmc", {"n_leapfrog": 5})])
def test_nonfinite_proposals_are_rejected_and_counted(method, options):
    start = np.clip(z0(50), None, 1.0)
    result = sample(HoleAt(), method, start, 100, 0, 1.0, **options)
    assert result.n_nonfinite.sum() > 0
    assert np.isfinite(result.logp).all() and np.isfinite(result.samples).all()
    assert (result.samples[..., 0] <= 1.5).all()
    if method == "hmc":
        broken = np.isnan(result.energy_error)
        assert broken.sum() == result.n_nonfinite.sum() and result.divergent[broken].all()
        assert not result.accepted[broken].any()


def test_hmc_flags_divergences():
    result = sample(TARGET, "hmc", z0(20), 30, 0, 3.0, n_leapfrog=5)
    finite = np.isfinite(result.energy_error)
    big = np.abs(result.energy_error) > 1000
    assert big.any()
    np.testing.assert_array_equal(result.divergent, big | ~finite)


GOOD = {"target": TARGET, "method": "mala", "z0": np.zeros((2, 3)), "steps": 5, "seed": 0, "step_size": 0.1}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"z0": np.zeros(3)}, "z0: expected a 2-D array"),
        ({"z0": np.zeros((2, 3, 1))}, "z0: expected a 2-D array"),
        ({"z0": np.zeros((0, 3))}, "z0: expected a 2-D array"),
        ({"z0": np.array([[0.0, np.nan, 0.0], [0, 0, 0]])}, r"z0: expected finite.*\[0\]"),
        ({"method": "nuts"}, "method: expected one of"),
        ({"steps": 0}, "steps: expected an integer >= 1"),
        ({"steps": 2.5}, "steps"),
        ({"step_size": 0.0}, "step_size"),
        ({"step_size": -1.0}, "step_size"),
        ({"step_size": np.array([0.1, 0.2, 0.3])}, r"step_size: expected a scalar or shape \(2,\)"),
        ({"bogus": 1}, "option 'bogus' is not known"),
        ({"n_leapfrog": 3}, "option 'n_leapfrog' is not known for method 'mala'"),
        ({"decay": 0.9}, "option 'decay' is not known"),
        ({"clip": (1.0, 0.0)}, "clip: lower > upper"),
        ({"clip": (0.0, np.ones(4))}, r"clip: upper bound: expected a scalar or shape \(3,\)"),
        ({"clip": 1.0}, r"clip: expected \(lower, upper\)"),
        ({"schedule": "cosine"}, "schedule: expected one of"),
        ({"lr_end": 0.1}, "lr_end applies only to schedule 'linear'"),
        ({"adapt": 5}, "adapt: expected fewer warm-up steps"),
        ({"thin": 0}, "thin"),
        ({"resume": True}, "resume: needs option checkpoint"),
        ({"method": "mala-clip"}, "clip: method 'mala-clip' needs bounds"),
    ],
)
def test_bad_input(change, message):
    args = {**GOOD, **change}
    with pytest.raises(BadInput, match=message):
        sample(**args)


def test_bad_input_start_outside_support():
    class Bounded:
        def value_and_grad(self, z):
            return np.where(z[:, 0] > 0, 0.0, -np.inf), np.zeros_like(z)

    with pytest.raises(BadInput, match=r"not finite at chains \[1\]"):
        sample(Bounded(), "mala", np.array([[1.0], [-1.0]]), 5, 0, 0.1)
