"""The released presets: `mala-released` and `hmc-released` follow the authors' act_max.py step for step.

The references below re-implement the released loops (BowenXu/synthesizing, bowen_MCMC f21b857 and bowen_HMC
a382fc2, function `activation_maximization` and the functions it calls) one code at a time, line by line,
from that code and not from repro.samplers: its globals are the fields of a record, and the generator's input
blob is one numpy array whose views `prev_code` / `curr_code` are, as pycaffe's `src.data[:]` is, so the
in-place updates happen in the reference by construction. Its randomness is each chain's stream as the
sampler loop draws it (normal vector, then uniform), standing in for np.random's global stream.

The test target is a classifier of the code itself (no generator): the released code's generator backprop
J_Gᵀ(x − x0) is then x − x0 = step·h/mean|h|, the value the preset uses for `curr_g` on every target; on a
real generator the released value is step·h/mean|∂a_k/∂x| instead (docs/released_samplers.md).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.stats as st
from numpy.linalg import norm

from repro.errors import BadInput
from repro.report.plan import rows
from repro.samplers import METHODS, checkpoint, hmc_released, mala_released, sample
from repro.samplers.schedules import Schedule
from repro.samplers.state import Draws
from repro.samplers.targets import Gaussian

DIM, HIDDEN, CLASSES = 16, 8, 5
STEPS = 20


class SoftmaxNet:
    """A small nonlinear softmax classifier of the code, logits = V·tanh(Az + b) + Wz, standing in for
    CaffeNet's fc8 on G(z). Broadcasting sums, not BLAS, so a code's numbers are bit-identical alone or in a
    batch. `classes` is each chain's unit, as a backend holds it."""

    def __init__(self, seed: int, classes):
        rng = np.random.default_rng(seed)
        self.a = rng.standard_normal((HIDDEN, DIM)) / np.sqrt(DIM)
        self.b = rng.standard_normal(HIDDEN)
        self.v = rng.standard_normal((CLASSES, HIDDEN))
        self.w = rng.standard_normal((CLASSES, DIM)) / (2 * np.sqrt(DIM))
        self.classes = np.asarray(classes)
        self.calls = 0

    def _hidden(self, z):
        return np.tanh((z[:, None, :] * self.a).sum(axis=-1) + self.b)

    def logits(self, z):
        self.calls += 1
        return (self._hidden(z)[:, None, :] * self.v).sum(axis=-1) + (z[:, None, :] * self.w).sum(axis=-1)

    def value_and_grad(self, z):
        self.calls += 1
        return self.logit_and_grad(z, np.broadcast_to(self.classes, z.shape[:1]))

    def logit_and_grad(self, z, k):
        u = self._hidden(z)
        value = (u * self.v[k]).sum(axis=-1) + (z * self.w[k]).sum(axis=-1)
        grad = (((1 - u**2) * self.v[k])[:, :, None] * self.a).sum(axis=1) + self.w[k]
        return value, grad


class Net:
    """What act_max.py asks of its classifier for one code: the logit's gradient and the softmax `prob`."""

    def __init__(self, target: SoftmaxNet, unit: int):
        self.target = target
        self.unit = unit

    def logit(self, code):
        return self.target.logit_and_grad(code[None], np.array([self.unit]))[0][0]

    def backward(self, code):
        return self.target.logit_and_grad(code[None], np.array([self.unit]))[1][0]

    def prob(self, code):
        fc8 = self.target.logits(code[None])[0]
        e = np.exp(fc8 - fc8.max())
        return e / e.sum()


def streams(seed: int, chains: int) -> list[np.random.Generator]:
    return [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(seed).spawn(chains)]


@dataclasses.dataclass
class Globals:
    """act_max.py's module globals."""

    prev_posterior: float | None = None
    curr_posterior: float | None = None
    curr_g: np.ndarray | None = None
    prev_g: np.ndarray | None = None
    curr_code: np.ndarray | None = None
    prev_code: np.ndarray | None = None
    curr_p: np.ndarray | None = None
    prev_p: np.ndarray | None = None


def generate_posterior(net: Net, src: np.ndarray, gl: Globals, code: np.ndarray, step_size: float):
    """Steps 1–5 of the loop body (a382fc2's `generate_posterior`) with G the identity: forward,
    `make_step_net` (score, image step), `make_step_generator` (backprop x − x0, in-place code step). Returns
    the generator's backprop g, f21b857's curr_g; a382fc2 normalises it."""
    src[...] = code  # generator.forward(feat=code)
    x0 = src.copy()
    image = x0.copy()  # the classifier's data blob
    g = net.backward(image)
    gl.curr_posterior = net.prob(image)[net.unit]
    if gl.prev_posterior is None:
        gl.prev_posterior = gl.curr_posterior
    image += step_size / np.abs(g).mean() * g
    x = image.copy()
    g = (x - x0).copy()  # J_Gᵀ(x − x0), G the identity
    src[:] += step_size / np.abs(g).mean() * g
    return g


def released_mala(net: Net, start_code, n_iters, start_lr, end_lr, l2, rng):
    """bowen_MCMC f21b857 `activation_maximization` for one unit."""
    gl = Globals()
    src = np.array(start_code, dtype=np.float64)  # generator.blobs['feat'].data
    trace = []
    for i in range(n_iters):
        if gl.prev_code is None:
            gl.prev_code = src[:]
        step_size = start_lr + ((end_lr - start_lr) * i) / n_iters
        gl.curr_g = generate_posterior(net, src, gl, src, step_size)
        if gl.prev_g is None:
            gl.prev_g = gl.curr_g
        updated_code = src.copy()
        if 0 < l2 < 1:
            updated_code[:] *= l2
        xi, u = rng.standard_normal(DIM), rng.random()
        gl.curr_code = updated_code + np.sqrt(2 * step_size) * (0 + 1.0 / np.power((1 + i), 0.55) * xi)
        # update_tracking(step_size) → calc_acceptance(step_size)
        q_curr_given_prev = norm(st.norm.pdf(gl.curr_code, gl.prev_code + gl.prev_g * step_size, step_size))
        q_prev_given_curr = norm(st.norm.pdf(gl.prev_code, gl.curr_code + gl.curr_g * step_size, step_size))
        if q_prev_given_curr == 0.0 or q_curr_given_prev == 0.0:
            acceptance = 0.0
        else:
            ratio = (gl.curr_posterior * q_prev_given_curr) / (gl.prev_posterior * q_curr_given_prev)
            acceptance = min(1.0, ratio)
        accepted = u <= acceptance
        if accepted:
            gl.prev_code = gl.curr_code
            gl.prev_g = gl.curr_g
            gl.prev_posterior = gl.curr_posterior
        start = trace[-1][0] if trace else np.asarray(start_code)
        src[:] = gl.prev_code
        trace.append((src.copy(), net.logit(src), accepted, acceptance, not np.array_equal(src, start)))
    return trace


def released_hmc(net: Net, start_code, n_iters, start_lr, end_lr, leapfrog, rng):
    """bowen_HMC a382fc2 `activation_maximization` → `update_tracking` → `leap_frog` for one unit."""
    gl = Globals()
    src = np.array(start_code, dtype=np.float64)
    gl.curr_code = src[:]
    gl.prev_code = src[:]

    def posterior(step_size):
        g = generate_posterior(net, src, gl, gl.curr_code, step_size)
        gl.curr_g = step_size / np.abs(g).mean() * g

    def hamiltonian(posterior, p):
        return -1.0 * np.log(posterior) + 0.5 * np.dot(p, p)

    trace = []
    for i in range(n_iters):
        gl.curr_p = rng.standard_normal(DIM)
        gl.prev_p = np.copy(gl.curr_p)
        step_size = start_lr + ((end_lr - start_lr) * i) / n_iters
        posterior(step_size)
        gl.curr_p += step_size * gl.curr_g / 2.0
        gl.curr_code += step_size * gl.curr_p
        for _ in range(leapfrog - 1):
            posterior(step_size)
            gl.curr_p += step_size * gl.curr_g / 2.0
            gl.curr_code += step_size * gl.curr_p
        posterior(step_size)
        gl.curr_p += step_size * gl.curr_g / 2.0
        acceptance = min(
            1.0,
            np.exp(
                -1.0 * hamiltonian(gl.curr_posterior, gl.curr_p) + hamiltonian(gl.prev_posterior, gl.prev_p)
            ),
        )
        accepted = rng.random() <= acceptance
        if accepted:
            gl.prev_code = gl.curr_code
            gl.prev_g = gl.curr_g
            gl.prev_posterior = gl.curr_posterior
        src[:] = gl.prev_code
        trace.append((src.copy(), net.logit(src), accepted, acceptance))
    return trace


def drive(kernel, target, z0, steps, step0, seed, **options):
    """The kernel alone, step by step with the loop's schedule and draws: what `sample` hides, the
    acceptance probability of each step."""
    state = kernel.init(target, z0)
    step = kernel.build(None, **options)
    rngs = streams(seed, len(z0))
    schedule = Schedule("linear", lr_end=1e-10)
    probs = []
    for t in range(steps):
        normal = np.empty(z0.shape)
        uniform = np.empty(len(z0))
        for c, g in enumerate(rngs):
            normal[c] = g.standard_normal(z0.shape[1])
            uniform[c] = g.random()
        eps = schedule(np.full(len(z0), step0), t, steps)
        state, info = step(state, target, eps, Draws(normal, uniform), t)
        probs.append(info.accept_prob)
    return np.array(probs)


def start_codes(chains: int = 4) -> np.ndarray:
    return np.random.default_rng(7).standard_normal((chains, DIM))


UNITS = [0, 2, 4, 1]


def compare(result, references, probs, scale_of):
    worst = 0.0
    for c, trace in enumerate(references):
        codes = np.array([row[0] for row in trace])
        logits = np.array([row[1] for row in trace])
        worst = max(worst, np.abs(result.samples[:, c] - codes).max() / scale_of(codes))
        np.testing.assert_allclose(result.logp[:, c], logits, rtol=1e-12, atol=1e-12)
        assert result.accepted[:, c].tolist() == [row[2] for row in trace], f"chain {c}"
        np.testing.assert_allclose(probs[:, c], [row[3] for row in trace], rtol=1e-10, atol=1e-14)
    return worst


def test_mala_released_matches_the_released_loop():
    target = SoftmaxNet(1, UNITS)
    z0 = start_codes()
    step0, seed = 8.0, 3  # its script's start step
    result = sample(target, "mala-released", z0, STEPS, seed, step0)
    probs = drive(mala_released, SoftmaxNet(1, UNITS), z0, STEPS, step0, seed)
    references = [
        released_mala(Net(target, k), z0[c], STEPS, step0, 1e-10, 0.99, rng)
        for c, (k, rng) in enumerate(zip(UNITS, streams(seed, len(z0)), strict=True))
    ]
    worst = compare(result, references, probs, lambda codes: np.abs(codes).max())
    print(f"released MALA parity, {len(z0)} chains × {STEPS} steps: max relative |difference| {worst:.2e}")
    assert worst <= 1e-12
    np.testing.assert_array_equal(result.z_image, result.samples[-2])  # the image of the last start code
    decisions = np.array([[row[2] for row in trace] for trace in references])
    assert decisions.any() and not decisions.all()  # both outcomes occur
    # the in-place drift: some chain moves on a rejected step (before its first acceptance)
    assert any(row[4] and not row[2] for trace in references for row in trace)
    first = decisions.argmax(axis=1)
    assert (first > 0).any()  # and some chain rejects before it first accepts
    assert result.n_grad == 1 + 2 * STEPS


def test_hmc_released_matches_the_released_loop():
    target = SoftmaxNet(2, UNITS)
    z0 = start_codes()
    step0, seed, leapfrog = 0.3, 5, 5
    target.calls = 0
    result = sample(target, "hmc-released", z0, STEPS, seed, step0)
    assert result.n_grad == target.calls == 1 + 1 + (leapfrog + 2) * STEPS
    probs = drive(hmc_released, SoftmaxNet(2, UNITS), z0, STEPS, step0, seed)
    references = [
        released_hmc(Net(target, k), z0[c], STEPS, step0, 1e-10, leapfrog, rng)
        for c, (k, rng) in enumerate(zip(UNITS, streams(seed, len(z0)), strict=True))
    ]
    worst = compare(result, references, probs, lambda codes: np.abs(codes).max())
    print(f"released HMC parity, {len(z0)} chains × {STEPS} steps: max relative |difference| {worst:.2e}")
    assert worst <= 1e-12
    decisions = np.array([[row[2] for row in trace] for trace in references])
    assert decisions.any() and not decisions.all()
    # a rejection restores nothing: every step moves every chain
    assert (np.abs(np.diff(result.samples, axis=0)).max(axis=2) > 0).all()


class Killed(Exception):
    pass


class DiesAfter(SoftmaxNet):
    """The target until its n-th call of either kind: stands in for a run killed mid-way."""

    def __init__(self, calls: int):
        super().__init__(1, UNITS)
        self.left = calls

    def _count(self):
        self.left -= 1
        if self.left < 0:
            raise Killed

    def value_and_grad(self, z):
        self._count()
        return super().value_and_grad(z)

    def logits(self, z):
        self._count()
        return super().logits(z)


@pytest.mark.parametrize(("method", "step0"), [("mala-released", 1.0), ("hmc-released", 0.3)])
def test_killed_and_resumed_run_is_bit_identical(tmp_path, method, step0):
    """What a chain carries between acceptances is in the checkpoint: a resumed run is the same run."""
    whole = sample(SoftmaxNet(1, UNITS), method, start_codes(), 30, 2, step0)
    ckpt = tmp_path / "run.npz"
    with pytest.raises(Killed):
        dies = DiesAfter(whole.n_grad * 3 // 5)
        sample(dies, method, start_codes(), 30, 2, step0, checkpoint=ckpt, checkpoint_every=4)
    meta, arrays = checkpoint.load(ckpt)
    assert 0 < meta["t"] < 30 and "state_memory" in arrays
    resumed = sample(SoftmaxNet(1, UNITS), method, start_codes(), 30, 2, step0, checkpoint=ckpt, resume=True)
    for f in dataclasses.fields(whole):
        if f.name != "seconds":
            a, b = getattr(whole, f.name), getattr(resumed, f.name)
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, b, err_msg=f.name)
            else:
                assert a == b, f.name


def test_the_report_gives_each_released_preset_one_row(tmp_path):
    from repro.modelsets import resolve
    from tests.test_report import write_tiny_set

    ms = resolve(str(write_tiny_set(tmp_path / "tiny")))
    made = rows(ms, 1.0, 20)
    released = [r for r in made if METHODS[r.method].released]
    assert [r.key for r in released] == ["mala-released", "hmc-released"]
    assert all("authors' code" in r.label and r.tuning == "paper" and r.paper_key is None for r in released)
    assert [r.steps for r in released] == [400, 400]  # as the released scripts ran, at budget 1
    assert [r.step_size for r in released] == [ms.map_lr, ms.hmc_step]
    scaled = [r.steps for r in rows(ms, 0.01, 20) if METHODS[r.method].released]
    assert scaled == [4, 4]  # scaled with the budget like every MCMC row


GOOD = {"target": SoftmaxNet(0, 0), "z0": start_codes(2), "steps": 3, "seed": 0, "step_size": 0.5}


@pytest.mark.parametrize(
    ("method", "change", "message"),
    [
        ("mala-released", {"decay": 0.0}, "option decay: expected a finite number > 0.0"),
        ("mala-released", {"decay": 1.5}, "option decay"),
        ("mala-released", {"noise_anneal": -1.0}, "option noise_anneal"),
        ("mala-released", {"n_leapfrog": 5}, "option 'n_leapfrog' is not known for method 'mala-released'"),
        ("mala-released", {"clip": (0.0, 1.0)}, "the released MALA does not clip"),
        ("hmc-released", {"n_leapfrog": 0}, "option n_leapfrog: expected an integer >= 1"),
        ("hmc-released", {"n_leapfrog": 2.5}, "option n_leapfrog"),
        ("hmc-released", {"decay": 0.99}, "option 'decay' is not known for method 'hmc-released'"),
        ("hmc-released", {"clip": (0.0, 1.0)}, "the released HMC does not clip"),
        ("hmc-released", {"target": Gaussian(np.zeros(DIM), np.eye(DIM))}, "need one with logits"),
        ("mala-released", {"target": Gaussian(np.zeros(DIM), np.eye(DIM))}, "need one with logits"),
    ],
)
def test_bad_options_are_bad_input(method, change, message):
    with pytest.raises(BadInput, match=message):
        sample(**{**GOOD, "method": method, **change})
