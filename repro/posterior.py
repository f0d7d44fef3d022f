"""The posterior as one ONNX graph: z → G → centre crop → C → objective_k → + log prior → logp.

One graph, not three sessions glued in Python, so that `repro.grad` can differentiate it end to end and a
single ONNX Runtime run returns value and gradient for every chain. The target enters as an input, one
weight row per chain over the class scores (a one-hot for a class) or over a hidden blob (repro.target), so
chains in one batch may target different classes or units without rebuilding the graph. `posterior_model`
assembles it from a model set's generator and classifier files (docs/architecture.md, "Data flow").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np
import onnx
import onnx.compose
from onnx import TensorProto, helper, numpy_helper

from repro.convert.cache import NetFiles, convert_net
from repro.convert.model import first_writes
from repro.errors import BadInput
from repro.onnx_versions import IR_VERSION, OPSET

OBJECTIVES = ("logit", "log_softmax")


@dataclass(frozen=True, eq=False)
class GaussianPrior:
    """N(mean, Σ) on z, fitted to the codes of real images (beyond the paper, whose N(0, I) holds ‖z‖ near √D
    while real fc6 codes have per-unit std ≈ 4). Σ = diag(std) · R · diag(std): the per-unit stds, and the
    units' correlations R through its lower Cholesky factor `corr_factor` (R = L Lᵀ), or None for R = I, a
    diagonal prior. Stored by parts so the diagonal prior is the full one with L = I, and both whiten the same
    way: log p(z) = −½‖L⁻¹ (z − mean) / std‖² + const. `source` says how it was fitted and `realism` what its
    own draws looked like against real images (repro.evaluate.prior_realism); every result that uses it
    names both."""

    mean: np.ndarray  # [D]
    std: np.ndarray  # [D], > 0
    source: str
    corr_factor: np.ndarray | None = None  # [D, D] lower-triangular L with R = L Lᵀ; None: R = I
    realism: tuple[dict, ...] = ()  # the candidates measured when it was chosen, this one marked "chosen"

    @property
    def form(self) -> str:
        return "diagonal" if self.corr_factor is None else "full"

    @cached_property
    def whitening(self) -> np.ndarray | None:
        """(L⁻¹)ᵀ in float64, so a batch of rows whitens by one product: u = s (L⁻¹)ᵀ."""
        if self.corr_factor is None:
            return None
        return np.linalg.inv(np.asarray(self.corr_factor, np.float64)).T

    @cached_property
    def factor(self) -> np.ndarray:
        """S = diag(std) · L [D, D], Σ = S Sᵀ: a draw is mean + S ε, and the preconditioner of the samplers
        that run under this prior (repro.samplers.precondition)."""
        std = np.asarray(self.std, np.float64)
        if self.corr_factor is None:
            return np.diag(std)
        return std[:, None] * np.asarray(self.corr_factor, np.float64)

    def whiten(self, z: np.ndarray) -> np.ndarray:
        """u [N, D] with log p(z) = −½‖u‖² + const, in float64 (the graph computes the same in float32)."""
        s = (np.asarray(z, np.float64) - self.mean) / self.std
        return s if self.whitening is None else s @ self.whitening

    def draw(self, eps: np.ndarray) -> np.ndarray:
        """Codes from standard normal draws eps [N, D]: mean + std ⊙ (L eps), in float64."""
        e = np.asarray(eps, np.float64)
        if self.corr_factor is not None:
            e = e @ np.asarray(self.corr_factor, np.float64).T
        return self.mean + self.std * e

    def describe(self) -> dict:
        return {
            "kind": "fitted Gaussian",
            "form": self.form,
            "source": self.source,
            "mean_of_means": float(np.mean(self.mean)),
            "mean_of_stds": float(np.mean(self.std)),
            "realism": list(self.realism),
        }


Prior = float | GaussianPrior | None  # σ of N(0, σ²I), a fitted Gaussian, or no prior term (DGN-AM)


def log_prior(z: np.ndarray, prior: float | GaussianPrior) -> np.ndarray:
    """log p(z) up to its constant, as the posterior graph adds it, in float64; z [..., D] → [...]."""
    z = np.asarray(z, np.float64)
    if isinstance(prior, GaussianPrior):
        return -0.5 * np.sum(prior.whiten(z.reshape(-1, z.shape[-1])).reshape(z.shape) ** 2, axis=-1)
    return -0.5 * np.sum(z**2, axis=-1) / prior**2


@dataclass(frozen=True)
class PosteriorSpec:
    """How the generator and classifier ONNX graphs are joined and what is being maximised/sampled."""

    gen_input: str  # generator input blob (the code z), e.g. "feat"
    gen_output: str  # generator output blob (the image), e.g. "deconv0"
    cls_input: str  # classifier input blob, e.g. "data"
    cls_logits: str  # pre-softmax blob, e.g. "fc8"
    crop_size: int  # classifier input size (227 for CaffeNet, 224 GoogLeNet)
    crop_offset: int  # top-left offset of the centre crop (14 for 256→227, 16 for 256→224)
    objective: str = "log_softmax"  # "logit" (DGN-AM's a_k) or "log_softmax" (the paper's log p(k|x))
    prior: Prior = 1.0  # on z: σ of N(0, σ²I), a fitted GaussianPrior, or None (no prior term)
    # β: the objective times β, i.e. the likelihood raised to β (classifier guidance; 1 is the paper). Beyond
    # the paper: its exact posterior holds no class-specific images, and β > 1 sharpens it towards the class.
    guidance: float = 1.0
    # The classifier blob a hidden target reads (repro.target), as its first writer computed it; None: the
    # class scores (`objective` of cls_logits).
    target_blob: str | None = None


def _value_shape(model: onnx.ModelProto, name: str) -> list[int | str]:
    graph = model.graph
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.name == name:
            return [
                d.dim_value if d.HasField("dim_value") else d.dim_param for d in vi.type.tensor_type.shape.dim
            ]
    raise BadInput(f"no value named {name!r} in the ONNX graph {graph.name!r}")


def _with_dynamic_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """Declare the first dimension of every graph input and output symbolic, so B chains run in one call."""
    out = onnx.ModelProto()
    out.CopyFrom(model)  # a copy in memory: serializing would fail above protobuf's 2 GiB
    for vi in list(out.graph.input) + list(out.graph.output) + list(out.graph.value_info):
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    return out


def _prefixed(model: onnx.ModelProto, prefix: str) -> onnx.GraphProto:
    return onnx.compose.add_prefix(_with_dynamic_batch(model), prefix).graph


def build_posterior(
    generator: onnx.ModelProto, classifier: onnx.ModelProto, spec: PosteriorSpec
) -> onnx.ModelProto:
    """Forward graph: inputs `z` [B, D], `target_weights` [B, N]; outputs `logp` [B], `image`, `logits`.

    N is K, the classes, or the size of `spec.target_blob`; the objective is Σ_n target_weights[b, n] ·
    scores[b, n], the scores being the objective of the logits or the hidden blob's raw values.

    `generator` and `classifier` are converted Caffe nets (value names = blob names).
    """
    if spec.objective not in OBJECTIVES:
        raise BadInput(f"objective must be one of {', '.join(OBJECTIVES)}, got {spec.objective!r}")
    prior = spec.prior
    if isinstance(prior, GaussianPrior):
        if not (np.all(np.isfinite(prior.mean)) and np.all(prior.std > 0) and np.all(np.isfinite(prior.std))):
            raise BadInput(f"prior ({prior.source}): every std must be finite and > 0, and every mean finite")
        if prior.corr_factor is not None and not (
            np.all(np.isfinite(prior.corr_factor)) and np.all(np.diag(prior.corr_factor) > 0)
        ):
            raise BadInput(
                f"prior ({prior.source}): the correlation factor must be finite with a positive diagonal"
            )
    elif prior is not None and not prior > 0:
        raise BadInput(f"prior sigma must be positive, got {prior}")
    if not (np.isfinite(spec.guidance) and spec.guidance > 0):
        raise BadInput(f"guidance: expected a finite β > 0, got {spec.guidance}")
    gen_in = _value_shape(generator, spec.gen_input)
    gen_out = _value_shape(generator, spec.gen_output)
    cls_out = _value_shape(classifier, spec.cls_logits)
    code_size = int(np.prod([d for d in gen_in[1:]]))
    n_classes = int(np.prod([d for d in cls_out[1:]]))
    height, width = int(gen_out[2]), int(gen_out[3])
    end = spec.crop_offset + spec.crop_size
    if spec.crop_offset < 0 or end > min(height, width):
        raise BadInput(
            f"crop of {spec.crop_size} at offset {spec.crop_offset} does not fit the generator's "
            f"{height}×{width} output"
        )

    g = _prefixed(generator, "G/")
    c = _prefixed(classifier, "C/")
    const = [
        numpy_helper.from_array(np.array([spec.crop_offset, spec.crop_offset], np.int64), "crop_starts"),
        numpy_helper.from_array(np.array([end, end], np.int64), "crop_ends"),
        numpy_helper.from_array(np.array([2, 3], np.int64), "crop_axes"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([-1] + [int(d) for d in gen_in[1:]], np.int64), "code_shape"),
    ]
    nodes = [helper.make_node("Reshape", ["z", "code_shape"], ["G/" + spec.gen_input], name="posterior/code")]
    nodes += list(g.node)
    nodes.append(helper.make_node("Identity", ["G/" + spec.gen_output], ["image"], name="posterior/image"))
    nodes.append(
        helper.make_node(
            "Slice",
            ["image", "crop_starts", "crop_ends", "crop_axes"],
            ["C/" + spec.cls_input],
            name="posterior/crop",
        )
    )
    nodes += list(c.node)
    nodes.append(
        helper.make_node("Flatten", ["C/" + spec.cls_logits], ["logits"], axis=1, name="posterior/logits")
    )
    scores = "logits"
    if spec.objective == "log_softmax" and spec.target_blob is None:
        nodes.append(
            helper.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=1, name="posterior/log_softmax")
        )
        scores = "log_probs"
    n_target = n_classes
    if spec.target_blob is not None:
        value, shape = _hidden(classifier, spec.target_blob)
        n_target = int(np.prod(shape))
        nodes.append(helper.make_node("Flatten", ["C/" + value], ["hidden"], axis=1, name="posterior/hidden"))
        scores = "hidden"
    nodes.append(
        helper.make_node("Mul", [scores, "target_weights"], ["target_scores"], name="posterior/select")
    )
    # β = 1 is the paper's graph, node for node
    selected = "objective" if spec.guidance == 1.0 else "likelihood"
    nodes.append(
        helper.make_node(
            "ReduceSum", ["target_scores", "axis1"], [selected], keepdims=0, name="posterior/objective"
        )
    )
    if spec.guidance != 1.0:
        const.append(numpy_helper.from_array(np.array(spec.guidance, np.float32), "guidance"))
        nodes.append(
            helper.make_node("Mul", [selected, "guidance"], ["objective"], name="posterior/guidance")
        )
    if prior is None:
        nodes.append(helper.make_node("Identity", ["objective"], ["logp"], name="posterior/logp"))
    else:
        centred = "z"
        if isinstance(prior, GaussianPrior):
            if prior.mean.shape != (code_size,) or prior.std.shape != (code_size,):
                raise BadInput(
                    f"prior ({prior.source}): expected mean and std of {code_size} units, "
                    f"got {prior.mean.shape} and {prior.std.shape}"
                )
            const += [
                numpy_helper.from_array(prior.mean.astype(np.float32), "prior_mean"),
                numpy_helper.from_array((1.0 / prior.std).astype(np.float32), "prior_inv_std"),
                numpy_helper.from_array(np.array(-0.5, np.float32), "prior_coeff"),
            ]
            nodes += [
                helper.make_node("Sub", ["z", "prior_mean"], ["z_off"], name="posterior/z_off"),
                helper.make_node("Mul", ["z_off", "prior_inv_std"], ["z_std"], name="posterior/z_std"),
            ]
            centred = "z_std"
            if prior.corr_factor is not None:
                if prior.corr_factor.shape != (code_size, code_size):
                    raise BadInput(
                        f"prior ({prior.source}): expected a {code_size}×{code_size} correlation factor, "
                        f"got {prior.corr_factor.shape}"
                    )
                const.append(numpy_helper.from_array(prior.whitening.astype(np.float32), "priorwhitening"))
                nodes.append(
                    helper.make_node(
                        "MatMul", ["z_std", "priorwhitening"], ["z_white"], name="posterior/z_white"
                    )
                )
                centred = "z_white"
        else:
            const.append(numpy_helper.from_array(np.array(-0.5 / prior**2, np.float32), "prior_coeff"))
        nodes += [
            helper.make_node("Mul", [centred, centred], ["z_sq"], name="posterior/z_sq"),
            helper.make_node(
                "ReduceSum", ["z_sq", "axis1"], ["z_sq_sum"], keepdims=0, name="posterior/z_sq_sum"
            ),
            helper.make_node("Mul", ["z_sq_sum", "prior_coeff"], ["log_prior"], name="posterior/log_prior"),
            helper.make_node("Add", ["objective", "log_prior"], ["logp"], name="posterior/logp"),
        ]

    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "posterior",
        inputs=[
            helper.make_tensor_value_info("z", f32, ["batch", code_size]),
            helper.make_tensor_value_info("target_weights", f32, ["batch", n_target]),
        ],
        outputs=[
            helper.make_tensor_value_info("logp", f32, ["batch"]),
            helper.make_tensor_value_info("image", f32, ["batch", gen_out[1], height, width]),
            helper.make_tensor_value_info("logits", f32, ["batch", n_classes]),
        ],
        initializer=list(g.initializer) + list(c.initializer) + const,
        value_info=list(g.value_info) + list(c.value_info),
    )
    model = helper.make_model_gen_version(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="repro.posterior"
    )
    model.ir_version = min(model.ir_version, IR_VERSION)
    return model


def _hidden(classifier: onnx.ModelProto, blob: str) -> tuple[str, tuple[int, ...]]:
    """The value holding a hidden target's blob (as its first writer computed it) and its non-batch shape."""
    blobs = first_writes(classifier)
    inputs = {vi.name for vi in classifier.graph.input}
    if blob not in blobs or blob in inputs:
        raise BadInput(
            f"target blob {blob!r} is not a computed blob of the classifier {classifier.graph.name!r}; its "
            f"blobs: {', '.join(name for name in blobs if name not in inputs)}"
        )
    value = blobs[blob]
    return value, tuple(int(d) for d in _value_shape(classifier, value)[1:])


def target_shape(parts: PosteriorParts, blob: str | None) -> tuple[int, ...]:
    """The non-batch shape a target's weight row covers: the classes for None, else the hidden blob's."""
    classifier = convert_net(parts.classifier)
    if blob is None:
        return tuple(int(d) for d in _value_shape(classifier, parts.classifier.blobs["logits"])[1:])
    return _hidden(classifier, blob)[1]


def target_rows(selection: np.ndarray | int, n_chains: int, n_target: int) -> np.ndarray:
    """The graph's `target_weights` [C, N]: a one-hot row per chain for class indices (one class for all
    chains or one per chain), or float weight rows (one for all chains or one per chain) as given."""
    array = np.asarray(selection)
    if array.dtype.kind == "f":
        if array.shape not in ((n_target,), (n_chains, n_target)):
            raise BadInput(
                f"target weights: expected [{n_target}] or [{n_chains}, {n_target}], got {list(array.shape)}"
            )
        return np.ascontiguousarray(np.broadcast_to(array.astype(np.float32), (n_chains, n_target)))
    classes = np.broadcast_to(array.astype(np.int64), (n_chains,))
    if classes.min() < 0 or classes.max() >= n_target:
        bad = classes[(classes < 0) | (classes >= n_target)][0]
        raise BadInput(
            f"class index {bad} is outside the classifier's {n_target} outputs (0..{n_target - 1})"
        )
    out = np.zeros((n_chains, n_target), np.float32)
    out[np.arange(n_chains), classes] = 1.0
    return out


class PosteriorParts(Protocol):
    """What the posterior needs of a model set (repro.modelsets.ModelSet has it)."""

    generator: NetFiles  # blobs "input" (the code) and "output" (the image)
    classifier: NetFiles  # blobs "input" and "logits"
    crop_size: int
    crop_offset: int


def posterior_model(
    parts: PosteriorParts,
    objective: str = "log_softmax",
    prior: Prior = 1.0,
    guidance: float = 1.0,
    target_blob: str | None = None,
) -> onnx.ModelProto:
    """The forward posterior graph of a model set's generator and classifier, converted (and cached)."""
    spec = PosteriorSpec(
        gen_input=parts.generator.blobs["input"],
        gen_output=parts.generator.blobs["output"],
        cls_input=parts.classifier.blobs["input"],
        cls_logits=parts.classifier.blobs["logits"],
        crop_size=parts.crop_size,
        crop_offset=parts.crop_offset,
        objective=objective,
        prior=prior,
        guidance=guidance,
        target_blob=target_blob,
    )
    return build_posterior(convert_net(parts.generator), convert_net(parts.classifier), spec)
