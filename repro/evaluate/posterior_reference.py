"""The exact posterior p(z | k) ∝ p(k | G(z)) · p(z) as a reference, by importance sampling from the prior.

A sampler's numbers mix two things: what the model's posterior is, and how well the sampler reaches it.
This module measures the first without any sampler. Since p(k | G(z)) ≤ 1, p(z | k) ≤ p(z) / p(k): with
the prior as the proposal the importance weights w = p(k | G(z)) are bounded, so self-normalised
importance sampling (SNIS) is exact in the limit and efficient (Kish ESS = (Σw)²/Σw² ≥ Σw = N · p̂(k),
because w² ≤ w), and one set of prior draws, scored once, serves every class. Under guidance β,
p_β(z | k) ∝ p(k | G(z))^β p(z), the weights are p(k | G(z))^β, still ≤ 1.

Standard errors are the delta method's for a ratio of means (Owen, Monte Carlo theory, ch. 9):
SE(Σ w f / Σ w) = sqrt(Σ w_i² (f_i − μ̂)²) / Σ w_i. Where fewer than ESS_FLOOR draws would be accepted by
rejection sampling (N · p̂(k), a lower bound on the ESS), a class's estimates are withheld (None) with the
reason, not reported with an interval that would not cover.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from repro.errors import BadInput, ReproError
from repro.posterior import GaussianPrior

# The floor applies to N · p̂(k) = Σ p(k | G(z_i))^β, not to Kish's ESS. It is the number of draws that
# rejection sampling from the same prior draws would accept (the weights are ≤ 1, so they are acceptance
# probabilities), exact posterior draws, and a lower bound on Kish's ESS. Kish's ESS is scale-free: it
# cannot see that the weights are all tiny because the posterior lies where the prior rarely goes, and there
# it overstates, the more so the larger N. Measured on tests/test_posterior_reference.py's logistic target
# (D = 4, a = 3, b set for each N · p(k); the 95 % interval's coverage of the posterior means of u·z and
# ‖z‖²/D, 1000 seeds at N = 1000, 400 at N = 10 000):
#     N · p(k)            10           20           30           50           100          200
#     coverage        0.85–0.89    0.89–0.93    0.91–0.94    0.92–0.94    0.93–0.94    0.94–0.95
#     Kish ESS (median)  38–82       61–123       82–160      120–225      200–367      334–606
# (binomial noise ±0.007 and ±0.011), so a Kish floor would have to grow with N, where this one does not.
# Coverage sinks slowly to about 0.92 at 30, then fast (0.85 at 10): the SE, estimated from the same few
# heavy draws, is too small exactly when they missed part of the posterior. At 30 the relative SE of p̂(k)
# is about 1/√30 ≈ 0.18.
ESS_FLOOR = 30.0

Prior = float | GaussianPrior  # σ of N(0, σ²I), or a fitted Gaussian


def draw_prior(prior: Prior, n: int, code_size: int, seed: int | np.random.Generator) -> np.ndarray:
    """N codes [n, code_size] in float64. Only a proper prior can be a proposal: DGN-AM's 'no prior'
    (None) has no draws."""
    rng = np.random.default_rng(seed)
    if isinstance(prior, GaussianPrior):
        if prior.mean.shape != (code_size,):
            raise BadInput(
                f"prior: the fitted Gaussian has {prior.mean.shape[0]} units, "
                f"the generator's code has {code_size}"
            )
        return prior.draw(rng.standard_normal((n, code_size)))
    if isinstance(prior, (int, float)) and not isinstance(prior, bool) and prior > 0:
        return float(prior) * rng.standard_normal((n, code_size))
    raise BadInput(f"prior: expected σ > 0 or a GaussianPrior to draw from, got {prior!r}")


def log_likelihoods(backend, z: np.ndarray, *, batch: int = 64, progress: bool = True) -> np.ndarray:
    """log p(k | G(z)) [N, K] for every class at once, from the backend's logits: one pass over the draws
    serves every class. The log-softmax is taken in float64, so the weights add no rounding to the logits'."""
    n = len(z)
    out = []
    with tqdm(total=n, desc="prior draws", unit="code", file=sys.stderr, disable=not progress) as bar:
        for start in range(0, n, batch):
            logits = np.asarray(backend.logits(z[start : start + batch]), np.float64)
            out.append(logits)
            bar.update(len(logits))
    logits = np.concatenate(out) if out else np.zeros((0, backend.n_classes))
    if logits.ndim != 2 or logits.shape[0] != n:
        raise ReproError(f"backend.logits: expected [{n}, K] for z {z.shape}, got {logits.shape}")
    # log Σ exp = top + log1p(Σ of the others), so that log p of a near-certain class keeps its digits
    top = logits.max(axis=1, keepdims=True)
    others = np.exp(logits - top)
    others[np.arange(n), np.argmax(logits, axis=1)] = 0.0
    return logits - top - np.log1p(np.sum(others, axis=1, keepdims=True))


def ess(log_w: np.ndarray) -> float:
    """Kish's effective sample size (Σw)² / Σw², from log weights so that tiny weights do not underflow."""
    w = np.exp(log_w - np.max(log_w))
    return float(np.sum(w) ** 2 / np.sum(w**2))


def snis(log_w: np.ndarray, f: np.ndarray) -> tuple[float, float]:
    """Σ w f / Σ w and its delta-method SE, sqrt(Σ w_i² (f_i − μ)²) / Σ w_i: the ratio's linearisation
    around μ, whose variance the weighted squared residuals estimate."""
    w = np.exp(log_w - np.max(log_w))
    w = w / np.sum(w)
    f = np.asarray(f, np.float64)
    mean = float(np.sum(w * f))
    return mean, float(np.sqrt(np.sum(w**2 * (f - mean) ** 2)))


@dataclass(frozen=True)
class Reference:
    """One class's exact-posterior reference. `estimates` and `se` are None, with `reason`, below the
    floor. `p_k` is reported regardless, since it is what the floor reads (`accepted` = N · p_k); below the
    floor its SE too rests on fewer than ESS_FLOOR draws."""

    k: int
    beta: float
    n: int  # prior draws
    ess: float  # Kish's, (Σw)² / Σw²: reported, but scale-free, so not what the floor reads
    p_k: float  # E_prior[p(k | G(z))^β]: p(k) at β = 1, the tempered posterior's normaliser otherwise
    p_k_se: float
    weights: np.ndarray  # [n], normalised: the draws' masses under p_β(z | k), for `resample`
    estimates: dict[str, float] | None
    se: dict[str, float] | None
    reason: str | None = None  # why the estimates are withheld; None where they are meaningful

    @property
    def accepted(self) -> float:
        """Σ p(k | G(z_i))^β: the draws rejection sampling would accept, a lower bound on `ess`."""
        return self.n * self.p_k

    @property
    def meaningful(self) -> bool:
        return self.reason is None

    def summary(self) -> dict:
        """The reference as plain JSON (no weights): what a report cell keeps."""
        return {
            "draws": self.n,
            "beta": self.beta,
            "ess": self.ess,
            "p_k": self.p_k,
            "p_k_se": self.p_k_se,
            "accepted": self.accepted,
            "estimates": self.estimates,
            "se": self.se,
            "reason": self.reason,
        }


def reference(
    log_lik: np.ndarray,
    quantities: dict[str, np.ndarray] | None = None,
    *,
    beta: float = 1.0,
    classes: list[int] | None = None,
    ess_floor: float = ESS_FLOOR,
) -> dict[int, Reference]:
    """Per class, SNIS estimates of the posterior means of `quantities` (name → per-draw values [N], or
    [N, K] of which class k reads column k, e.g. a per-class score) from log p(k | G(z)) [N, K] at prior
    draws. One scoring serves every class and every β."""
    log_lik = np.asarray(log_lik, np.float64)
    if log_lik.ndim != 2:
        raise BadInput(f"log_lik: expected [N, K], got shape {log_lik.shape}")
    n, n_classes = log_lik.shape
    quantities = {name: np.asarray(f, np.float64) for name, f in (quantities or {}).items()}
    for name, f in quantities.items():
        if f.shape not in ((n,), (n, n_classes)):
            raise BadInput(f"quantity {name!r}: expected [{n}] or [{n}, {n_classes}], got {f.shape}")
    out = {}
    for k in range(n_classes) if classes is None else classes:
        log_w = beta * log_lik[:, k]
        top = np.max(log_w)
        w = np.exp(log_w - top)  # w · e^top = p(k | G(z))^β, kept scaled so that it cannot underflow
        scale = np.exp(top)
        p_k, p_k_se = float(scale * np.mean(w)), float(scale * np.std(w, ddof=1) / np.sqrt(n))
        size = ess(log_w)
        estimates = se = None
        reason = None
        if n * p_k < ess_floor:
            reason = (
                f"N · p(k) = {n * p_k:.1f} of {n} prior draws (Kish ESS {size:.1f}) is below the floor "
                f"{ess_floor:g}: the standard errors would be too small"
            )
        else:
            estimates, se = {}, {}
            for name, f in quantities.items():
                estimates[name], se[name] = snis(log_w, f if f.ndim == 1 else f[:, k])
        out[k] = Reference(k, beta, n, size, p_k, p_k_se, w / np.sum(w), estimates, se, reason)
    return out


def resample(
    weights: np.ndarray, n: int, seed: int | np.random.Generator, method: str = "systematic"
) -> np.ndarray:
    """n indices drawn in proportion to `weights`, so that the draws they pick (their codes, images,
    features) are draws of the exact posterior for figures and set metrics. Systematic resampling (one
    uniform, n evenly spaced points) gives each draw within one of its expected count n · w_i, less noise
    than multinomial; its indices come out sorted, and repeats are the rule where ESS < n, so n distinct
    images need ESS well above n."""
    w = np.asarray(weights, np.float64)
    if w.ndim != 1 or np.any(w < 0) or not np.sum(w) > 0:
        raise BadInput("weights: expected a non-negative 1-D array with a positive sum")
    cdf = np.cumsum(w / np.sum(w))
    cdf[-1] = 1.0
    rng = np.random.default_rng(seed)
    if method == "systematic":
        points = (rng.uniform() + np.arange(n)) / n
    elif method == "multinomial":
        points = rng.uniform(size=n)
    else:
        raise BadInput(f"method: expected 'systematic' or 'multinomial', got {method!r}")
    return np.searchsorted(cdf, points, side="right")
