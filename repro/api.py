"""repro from Python: a model set, a target, a posterior, a run, its images and their scores.

The notebook's view of what `repro sample` does, and the pieces `repro sample` itself is built from
(repro.sample_job adds the parity gate, checkpoints, the output folder and run.json around them):

    import repro.api as rp

    ms = rp.models("embedded")
    post = rp.posterior(ms, "conv3:11@3,3", method="map-clip")   # or a class: 4, "class:4"
    result = rp.run(post, chains=4, seed=0)                        # published settings by default
    pictures = rp.images(post, result.z_image)                     # uint8 [N, H, W, 3] RGB
    scores = rp.score(ms, result.z_image, post)                    # judge, evaluator, target probability

docs/python_api.md is a runnable walk-through (the test suite executes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from repro.errors import BadInput
from repro.evaluate.code_prior import fitted_prior
from repro.evaluate.encoder import Encoder, code_blob, encode
from repro.evaluate.image_metrics import ImageMetrics, as_saved, softmax
from repro.images import to_display
from repro.modelsets import ModelSet, code_size, resolve
from repro.posterior import GaussianPrior, Prior, posterior_model, target_shape
from repro.runtime import Backend, ClassTarget, make_backend
from repro.samplers import load_bounds, precondition
from repro.samplers.bounds import dgn_am_box
from repro.samplers.initial import initial_codes
from repro.samplers.methods import PRIORS, Method
from repro.samplers.methods import method as method_named
from repro.samplers.run import Result
from repro.target import Target, for_class, parse

__all__ = ["Posterior", "encode", "images", "models", "posterior", "run", "score", "target"]


def models(spec: str | None = None) -> ModelSet:
    """A model set by name (embedded, random), folder with manifest.json, or `dgn-…=FOLDER`."""
    return resolve(spec)


def target(spec: int | str | list[str] | tuple[str, ...] | Target) -> Target:
    """A class index, one `--target` string ("fc6:12", "conv3:5@3,3=0.5"), several, or a Target as is."""
    if isinstance(spec, Target):
        return spec
    if isinstance(spec, (int, np.integer)):
        return for_class(int(spec))
    return parse([spec] if isinstance(spec, str) else list(spec))


@dataclass(frozen=True)
class Posterior:
    """What a run samples: the graph, the backend that evaluates it, and the weight row (or class) it aims
    at. `aimed` is the sampler's target (value and gradient at z [C, D])."""

    models: ModelSet
    target: Target
    method: Method
    prior: Prior
    guidance: float
    graph: object  # the posterior's ONNX graph (onnx.ModelProto), for parity checks
    backend: Backend
    selection: np.ndarray | int

    @cached_property
    def aimed(self) -> ClassTarget:
        """Made once: PPGN's encoder is an ORT session of its own."""
        encoder = Encoder(self.models) if self.method.encoder else None
        return ClassTarget(self.backend, self.selection, encoder)


def selection(ms: ModelSet, aim: Target) -> np.ndarray | int:
    """What a backend's calls aim at: the class (as the report's class rows pass it), else the weight row
    over the target's blob (a unit outside it is refused)."""
    if aim.class_index is not None:
        return aim.class_index
    return aim.weights(target_shape(ms, aim.blob if aim.hidden else None))


def check_aim(ms: ModelSet, m: Method, aim: Target) -> None:
    """Refuse a target the set or the method cannot take (before any model is converted)."""
    if not aim.hidden:
        ms.check_classes(sorted({term.unit for term in aim.terms}))
    if m.encoder and code_blob(ms) is None:
        raise BadInput(
            f"--method {m.name} reads E(G(h)) through the set's encoder: model set {ms.name} has none "
            "(no classifier `code` blob, nor a `features` blob of the code's size)"
        )
    if m.released and aim.class_index is None:
        raise BadInput(
            f"--method {m.name}: the released sampler scores one class's softmax probability; it runs on "
            f"--class K only, not on --target {aim.text()}"
        )


def check_prior(m: Method, prior: str) -> None:
    if prior not in PRIORS:
        raise BadInput(f"--prior: expected one of {', '.join(PRIORS)}, got {prior!r}")
    if prior != "standard" and m.prior_sigma is None:
        raise BadInput(f"--prior {prior}: method {m.name} has no prior term to replace")


def prior_of(ms: ModelSet, m: Method, prior: str, scorers: ImageMetrics | None = None) -> Prior:
    """The prior term a run samples with: the method's σ, or a fitted Gaussian (repro.evaluate.code_prior;
    "fitted" measures its candidates with the set's scorers)."""
    check_prior(m, prior)
    if prior == "standard":
        return m.prior_sigma
    form = prior.removeprefix("fitted").removeprefix("-") or "fitted"
    return fitted_prior(ms, code_size(ms), form, scorers)


def posterior(
    ms: ModelSet,
    aim: int | str | list[str] | Target,
    method: str | Method = "mala",
    prior: str | Prior = "standard",
    guidance: float = 1.0,
    backend: str = "ort",
    device: str = "cpu",
) -> Posterior:
    """The posterior of `method` (its objective and prior term) aimed at `aim`. `prior`: a name of
    repro.samplers.methods.PRIORS, or the prior itself (σ, a GaussianPrior, None)."""
    m = method_named(method) if isinstance(method, str) else method
    aimed = target(aim)
    check_aim(ms, m, aimed)
    chosen = prior_of(ms, m, prior) if isinstance(prior, str) else prior
    aim_at = selection(ms, aimed)
    graph = posterior_model(ms, m.objective, chosen, guidance, aimed.blob if aimed.hidden else None)
    return Posterior(ms, aimed, m, chosen, guidance, graph, make_backend(backend, graph, device), aim_at)


def start_codes(post: Posterior, chains: int, seed: int = 0) -> np.ndarray:
    """[chains, D] float32: draws of the run's prior (N(0, I) codes, or a fitted prior's draws)."""
    fitted = post.prior if isinstance(post.prior, GaussianPrior) else None
    return initial_codes(seed, chains, post.backend.code_size, fitted)


def run(
    post: Posterior,
    chains: int = 4,
    steps: int | None = None,
    seed: int = 0,
    z0: np.ndarray | None = None,
    step_size: float | None = None,
    tuning: str | None = None,
    progress: bool = False,
    **options,
) -> Result:
    """Sample (or optimise) from `z0` (default: `start_codes`) with the method's published settings, or
    dual averaging (`tuning="dual-averaging"`), any option overriding them (a clipping method clips to the
    set's bounds unless `clip` is given); a fitted prior's run is preconditioned by its covariance, as the
    report's `-prior` rows."""
    m = post.method
    tuning = tuning or m.tunings[0]
    if tuning not in m.tunings:
        raise BadInput(f"tuning {tuning!r}: method {m.name} runs with {' or '.join(m.tunings)}")
    steps = steps or m.published_steps
    settings = dict(m.published) if tuning == "paper" else m.dual_averaging(steps)
    settings.update(options)
    if m.clip and "clip" not in settings:  # DGN-AM's box from the set's bounds file
        if post.models.clip_bounds is None:
            raise BadInput(f"method {m.name} needs clip bounds: model set {post.models.name} has none")
        settings["clip"] = dgn_am_box(load_bounds(post.models.clip_bounds, post.backend.code_size))
    z0 = start_codes(post, chains, seed) if z0 is None else np.asarray(z0, np.float32)
    step = post.models.start_step(m) if step_size is None else step_size
    return precondition.sampler_under(post.prior)(
        post.aimed, m.name, z0, steps, seed, step, progress=progress, **settings
    )


def images(post: Posterior, z: np.ndarray, display: bool = True) -> np.ndarray:
    """The generator's images of codes z [N, D]: uint8 [N, H, W, 3] RGB as repro saves them, or with
    display=False its raw output [N, 3, H, W] (BGR, mean subtracted)."""
    raw = post.backend.images(np.asarray(z, np.float32))
    return np.stack([to_display(x) for x in raw]) if display else raw


def score(ms: ModelSet, z: np.ndarray, post: Posterior, scorers: ImageMetrics | None = None) -> dict:
    """The images of z scored as run.json scores them: the judge's log p(real) (where the set has a judge),
    the evaluator's top-1 class and its probability of the target class (where it has an evaluator and the
    target is one class), and the classifier's probability of that class."""
    scorers = scorers or ImageMetrics(ms)
    raw = images(post, z, display=False)
    saved = as_saved(raw)
    k = post.target.class_index
    out: dict = {"judge_log_p_real": None, "evaluator_top1": None, "evaluator_p_class": None}
    if scorers.has["judge"]:
        out["judge_log_p_real"] = scorers.judge_log_p_real(raw)
    if scorers.has["evaluator"]:
        logits = scorers.evaluator_outputs(saved)[0]
        out["evaluator_top1"] = np.argmax(logits, axis=1)
        out["evaluator_p_class"] = None if k is None else softmax(logits)[:, k]
    out["classifier_p_class"] = (
        None if k is None else softmax(post.backend.logits(np.asarray(z, np.float32)))[:, k]
    )
    return out
