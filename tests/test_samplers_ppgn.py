"""PPGN parity: `sample(..., "ppgn-released")` follows PPGN's sampler.py loop step for step.

The reference below re-implements the loop of Evolving-AI-Lab/ppgn's `sampler.py` as its class-conditional
script runs it, from the description in ../shared/research/anchors-dgn.md §3.1 (not from repro.samplers):
one code at a time, softmax by hand, the (1 − p_k)·∂a_k class term, the ε1·(E(G(h)) − h) prior term, one
normalised step on the sum, clip to [0, 30], the image from the code before the update.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from repro.errors import BadInput
from repro.samplers import METHODS, sample

DIM, HIDDEN, CLASSES, UNIT = 48, 24, 5, 3


class StandIn:
    """Logits a(z) = W·tanh(Az + b) and an "encoder of the generator's image" E(z) = softplus(Mz + c), written
    with broadcasting sums so that a code's numbers are the same bits alone or in a batch."""

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.a = rng.standard_normal((HIDDEN, DIM)) / np.sqrt(DIM)
        self.b = rng.standard_normal(HIDDEN)
        self.w = rng.standard_normal((CLASSES, HIDDEN))
        self.m = rng.standard_normal((DIM, DIM)) / np.sqrt(DIM)
        self.c = rng.standard_normal(DIM)

    def _hidden(self, z):
        return np.tanh((z[:, None, :] * self.a).sum(axis=-1) + self.b)  # [C, H]

    def logits(self, z):
        return (self._hidden(z)[:, None, :] * self.w).sum(axis=-1)  # [C, K]

    def value_and_grad(self, z):
        u = self._hidden(z)
        value = (u * self.w[UNIT]).sum(axis=-1)
        grad = (((1 - u**2) * self.w[UNIT])[:, :, None] * self.a).sum(axis=1)
        return value, grad

    def autoencode(self, z):
        return np.logaddexp(0.0, (z[:, None, :] * self.m).sum(axis=-1) + self.c)

    def one(self, h):
        """What sampler.py computes at one code h: p_k, ∂a_k/∂h and E(G(h)). The softmax is the stable
        exp(a_k − max − log Σ exp(a − max)): normalised steps amplify a 1-ulp difference in p (that of
        e_k / Σ e) to O(1) within 200 steps, so parity needs the same bits on both sides."""
        logits = self.logits(h[None])[0]
        top = logits.max()
        p = np.exp(logits[UNIT] - top - np.log(np.sum(np.exp(logits - top))))
        return p, self.value_and_grad(h[None])[1][0], self.autoencode(h[None])[0]


def ppgn_reference(target: StandIn, h, n_iters, lr, lr_end, eps1, eps2, noise):
    """sampler.py's loop for one class: i = 0 … n_iters; `noise[i]` is that iteration's ε3-scaled draw."""
    h = h.copy()
    trajectory, images = [], []
    for i in range(n_iters + 1):
        step_size = lr + (lr_end - lr) * i / n_iters
        images.append(h.copy())  # the crop it records is generated from h before the update
        p, grad, reconstruction = target.one(h)
        d_prior = reconstruction - h
        d_condition = (1 - p) * grad
        d_h = eps1 * d_prior + eps2 * d_condition + noise[i]
        h += step_size / np.abs(d_h).mean() * d_h
        h = np.clip(h, 0, 30)
        trajectory.append(h.copy())
    return np.array(trajectory), images[-1]


def test_ppgn_matches_its_loop_step_for_step():
    m = METHODS["ppgn-released"]
    assert m.published_steps == 201 and m.start_step == 1.0 and m.published == {"schedule": "constant"}
    target = StandIn(1)
    z0 = np.random.default_rng(2).standard_normal((3, DIM))
    eps1 = 0.3  # the script's 1e-5 would leave the prior term below the class term's rounding
    result = sample(target, "ppgn-released", z0, 201, 0, 1.0, **m.published, eps1=eps1, eps3=0.0, thin=1)
    max_diff = 0.0
    for c in range(len(z0)):
        trajectory, image = ppgn_reference(target, z0[c], 200, 1.0, 1.0, eps1, 1.0, np.zeros((201, DIM)))
        max_diff = max(
            max_diff,
            np.abs(result.samples[:, c] - trajectory).max(),
            np.abs(result.z_image[c] - image).max(),
        )
    scale = np.abs(result.samples).max()
    print(
        f"PPGN parity over 3 chains × 201 steps: max |difference| {max_diff:.3e} (states up to {scale:.1f})"
    )
    assert max_diff <= 1e-12 * scale
    assert result.accepted.all() and result.n_grad == 1 + 2 * 201
    # the clip binds at 0, the states move, and the prior term matters: not a comparison of constants
    assert (result.samples == 0).any() and np.ptp(result.samples[:, 0], axis=0).min() > 0
    plain = sample(target, "ppgn-released", z0, 201, 0, 1.0, **m.published, eps1=0.0, eps3=0.0)
    assert np.abs(plain.z - result.z).max() > 0.1


def test_ppgn_noise_is_a_normal_draw_of_std_eps3_normalised():
    """With the other terms off, a step is s·ξ/mean|ξ|: mean |step| is s exactly, and ξ is standard normal."""
    target = StandIn(3)
    z0 = np.full((2, DIM), 10.0)  # inside [0, 30] for one step
    result = sample(target, "ppgn-released", z0, 1, 4, 0.5, schedule="constant", eps1=0.0, eps2=0.0, eps3=2.0)
    step = result.z - z0
    np.testing.assert_allclose(np.abs(step).mean(axis=1), 0.5, rtol=1e-12)
    standardised = (step / step.std(axis=1, keepdims=True)).ravel()
    assert stats.kstest(standardised, "norm").pvalue > 1e-3


def test_ppgn_refuses_clip_bounds():
    with pytest.raises(BadInput, match=r"clips every unit to \[0, 30\] itself"):
        sample(StandIn(0), "ppgn-released", np.zeros((1, DIM)), 2, clip=(0.0, np.ones(DIM)))
