"""The one table of sampling methods: what each name runs, on which objective, with which settings.

Every place that lists methods reads `METHODS`: `sample` (kernel, option defaults, whether bounds are
required), the sample job and the report (objective, the published settings, the model set's start step),
and the command line's choices. Its order is the order of the report's rows.

Two kinds of settings are kept apart on purpose. `defaults` are what `sample(target, name, ...)` applies
with no options: textbook kernels (constant step, no annealing, decay or clipping), except the DGN-AM loop
that "map-clip" names. `published` are the settings of the paper (MCMC) and of DGN-AM (MAP) that
`repro sample` and `repro report` run on a model set.

The "-released" methods are the authors' own released samplers as their code computes them (`released`
names the commit; docs/released_samplers.md lists how they depart from the paper). They are presets: their
`defaults` are the released loop too, and the report gives each one row, at its script's iteration count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

from repro.errors import BadInput
from repro.samplers import (
    ghmc,
    hmc,
    hmc_jitter,
    hmc_released,
    mala,
    mala_mass,
    mala_released,
    mclmc,
    ppgn_released,
)
from repro.samplers import map as map_kernel
from repro.samplers.kernel import check_kernel

# DGN-AM's act_max.py as its CaffeNet script ran it: lr0 → 1e-10 linear, h/mean|h|, ×0.99 per iteration.
DGN_AM = {"schedule": "linear", "lr_end": 1e-10, "normalize": True, "decay": 0.99}
# The paper's decaying step a(b + t)^−γ (Teh et al.); MALA also anneals its noise, σ_t = (1 + t)^−0.55.
PAPER_DECAY = {"schedule": "poly", "poly_b": 1.0, "poly_gamma": 0.55}
PAPER_MALA = {**PAPER_DECAY, "noise_anneal": 0.55}
PAPER_HMC = {**PAPER_DECAY, "n_leapfrog": 10}
# The released scripts (1_activate_output.sh): --start_lr → --end_lr 1e-10, linear, as in DGN-AM's loop.
RELEASED_SCHEDULE = {"schedule": "linear", "lr_end": 1e-10}
RELEASED_MALA = {**RELEASED_SCHEDULE, "decay": 0.99, "noise_anneal": 0.55}
RELEASED_HMC = {**RELEASED_SCHEDULE, "n_leapfrog": 5}
WARMUP_FRACTION = 0.25  # share of a dual-averaging run's iterations spent in warm-up
# How a run of a method may depart from its published settings, as the report's rows beyond the paper do:
# its step sizes (the published schedules, or `Method.dual_averaging`) and its prior (the method's own
# N(0, σ²I), or a Gaussian fitted to real codes: the form whose draws look most real, or one form named).
TUNINGS = ("paper", "dual-averaging")
PRIORS = ("standard", "fitted", "fitted-diagonal", "fitted-full")


@dataclass(frozen=True)
class Method:
    name: str
    kernel: ModuleType  # a kernel module, keeping repro.samplers.kernel.CONTRACT (checked below)
    label: str  # how tables and figures name it
    objective: str  # the posterior's objective: "logit" (DGN-AM's a_k) or "log_softmax" (log p(k|x))
    prior_sigma: float | None  # N(0, σ²I) prior on z; None: no prior term (DGN-AM)
    clip: bool  # needs per-unit bounds (`clip` option)
    published: dict  # options of the published run (see the module docstring)
    # the model-set field holding the published start step (code scales differ per set), or the step itself
    start_step: str | float
    published_steps: int  # iterations `repro sample` runs by default
    defaults: dict = field(default_factory=dict)  # `sample`'s option defaults
    steps: int | None = None  # `sample`'s default step count (None: the caller must give one)
    step_size: float | None = None  # `sample`'s default step size
    paper_key: str | None = None  # the paper's Table 2 row this method reproduces
    released: str | None = None  # the authors' released code this preset computes (repository@commit)
    # How its step sizes may be chosen (TUNINGS), the first by default: the samplers beyond the paper adapt
    # in warm-up and have no published schedule to run.
    tunings: tuple[str, ...] = TUNINGS
    encoder: bool = False  # its kernel reads E(G(z)) (`ClassTarget.autoencode`): the set needs an encoder

    def __post_init__(self) -> None:
        check_kernel(self.kernel)

    @property
    def mcmc(self) -> bool:
        """Whether the kernel has an accept step (and so an acceptance rate, diagnostics, dual averaging)."""
        return self.kernel.TARGET_ACCEPT is not None

    def dual_averaging(self, steps: int) -> dict:
        """Options of the published run with a constant step tuned by dual averaging in its first
        WARMUP_FRACTION of `steps` in place of the decaying schedules (step and noise annealing); the
        trajectory's structure (HMC's L) stays as published. Beyond the paper: the report's `-da` rows and
        `repro sample --tuning dual-averaging`. Not for MAP (no accept step to tune by) nor for the released
        samplers (reproduced as their code ran)."""
        if not self.mcmc or self.released or "dual-averaging" not in self.tunings:
            kind = "the authors' released sampler" if self.released else "a method without an accept step"
            raise BadInput(f"method {self.name} is {kind}: dual averaging does not apply to it")
        kept = {
            k: v
            for k, v in self.published.items()
            if k in self.kernel.OPTIONS and not self.kernel.OPTIONS[k].schedule
        }
        return {"schedule": "constant", "adapt": max(1, round(steps * WARMUP_FRACTION)), **kept}


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "map-clip",
            map_kernel,
            "MAP+clip",
            "logit",
            None,
            clip=True,
            published=DGN_AM,
            start_step="map_lr",
            published_steps=200,
            defaults={"schedule": "linear", "normalize": True, "decay": 0.99},
            steps=200,
            step_size=8.0,
            paper_key="MAP+clip",
        ),
        Method("map", map_kernel, "MAP", "logit", None, False, DGN_AM, "map_lr", 200),
        Method(
            "mala-clip",
            mala,
            "MALA+clip",
            "log_softmax",
            1.0,
            True,
            PAPER_MALA,
            "mala_step",
            600,
            paper_key="MALA+clip",
        ),
        Method(
            "mala", mala, "MALA", "log_softmax", 1.0, False, PAPER_MALA, "mala_step", 600, paper_key="MALA"
        ),
        Method("hmc", hmc, "HMC", "log_softmax", 1.0, False, PAPER_HMC, "hmc_step", 600, paper_key="HMC"),
        # Its script ran --start_lr 8.0, DGN-AM's own CaffeNet value (the drift is DGN-AM's step): map_lr.
        Method(
            "mala-released",
            mala_released,
            "MALA (authors' code, f21b857)",
            "logit",
            None,
            False,
            RELEASED_MALA,
            "map_lr",
            400,
            defaults=RELEASED_SCHEDULE,
            steps=400,
            step_size=8.0,
            released="BowenXu/synthesizing@f21b857 (bowen_MCMC)",
        ),
        # Its script ran --start_lr 1.0, its own choice for the leapfrog step ε (the step of ε·p): hmc_step.
        Method(
            "hmc-released",
            hmc_released,
            "HMC (authors' code, a382fc2)",
            "logit",
            None,
            False,
            RELEASED_HMC,
            "hmc_step",
            400,
            defaults=RELEASED_SCHEDULE,
            steps=400,
            step_size=1.0,
            released="BowenXu/synthesizing@a382fc2 (bowen_HMC)",
        ),
        # PPGN's class-conditional script: lr 1 → 1 over 200 iterations + 1, ε1 1e-5, ε2 1, ε3 1e-17.
        Method(
            "ppgn-released",
            ppgn_released,
            "PPGN (its code, f0dbbad)",
            "logit",
            None,
            False,
            {"schedule": "constant"},
            1.0,
            201,
            defaults={"schedule": "constant"},
            steps=201,
            step_size=1.0,
            released="Evolving-AI-Lab/ppgn@f0dbbad (sampler.py)",
            encoder=True,
        ),
        # Beyond the paper (issue: samplers that mix): the paper's posterior, kernels that adapt more than a
        # step in warm-up. Their `published` keeps only the structure dual averaging keeps (HMC's mean L).
        Method(
            "mala-mass",
            mala_mass,
            "MALA, adapted diagonal mass",
            "log_softmax",
            1.0,
            False,
            {},
            "mala_step",
            600,
            tunings=("dual-averaging",),
        ),
        Method(
            "hmc-jitter",
            hmc_jitter,
            "HMC, jittered step, adapted diagonal mass",
            "log_softmax",
            1.0,
            False,
            {"n_leapfrog": hmc_jitter.OPTIONS["n_leapfrog"].default},
            "hmc_step",
            600,
            tunings=("dual-averaging",),
        ),
        Method(
            "ghmc",
            ghmc,
            "GHMC, persistent momentum, adapted diagonal mass",
            "log_softmax",
            1.0,
            False,
            {},
            "hmc_step",
            600,
            tunings=("dual-averaging",),
        ),
        Method(
            "mclmc",
            mclmc,
            "Adjusted MCLMC, isokinetic GHMC, adapted diagonal mass",
            "log_softmax",
            1.0,
            False,
            {},
            "hmc_step",
            600,
            tunings=("dual-averaging",),
        ),
    )
}


def iterations_for(gradients: float, per_iteration: int) -> int:
    """Iterations that spend `gradients` gradient evaluations per chain at a kernel's cost per iteration
    (its `gradients_per_step`: HMC's L, the released samplers' extra logits calls), at least one: the one
    rule by which a report's budget and `repro sample --gradients` become iterations, so methods compare at
    equal cost."""
    return max(1, round(gradients / per_iteration))


def method(name: str) -> Method:
    if name not in METHODS:
        raise BadInput(f"method: expected one of {', '.join(METHODS)}, got {name!r}")
    return METHODS[name]
