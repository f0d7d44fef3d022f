"""Kinks whose branch float32 rounding decides, and how much of a gradient mismatch they explain.

A ReLU input within rounding of 0, or a max-pool window whose two largest values are within rounding of each
other, is a branch that two float32 implementations may take differently; the gradient then differs by the
exact effect of that one branch, which can be far larger than GRAD_TOL. Measured on AlexNet (seed 2,
unit 281): ORT's float32 forward (its NCHWc convolutions, ORT_ENABLE_ALL on an AVX2 CPU) rounds two pool2
inputs that differ by 4.9e-5 in float64 (3.6e-7 of max|norm2|) to the same float32 value, so its argmax
takes the earlier one where Caffe and float64 take the later; that single flip moves the input gradient by
2.1e-3 of max|grad| over 100 elements (7264 above 1e-4), while Caffe and a float64 reference agree to
1.3e-5 and ORT without the layout pass agrees with Caffe to 2.2e-5.

`Kinks` finds every such branch in the float64 forward of a graph (onnx2torch, torch autograd: no
repro.grad code), measures each one's effect on the gradient by forcing the other branch, and removes
from the mismatch the effects of a few of them (greedily, the one that lowers the worst remaining
difference most; with either sign where both compared sides are float32, only on our side where the
reference is the float64 forward itself, which by definition takes the float64 branch). What remains must
still be within the caller's tolerance element-wise, so a conversion or VJP bug, which is not the effect of
flipping a few near-ties, still fails.

One rule for every comparison that meets kinks: the Caffe golden comparison (tools/caffe_oracle/golden.py,
a Caffe net against Caffe's answers) and the parity gate before sampling (repro.parity, the posterior graph
against its float64 forward) both call `Kinks.explain` through `repro.parity.kink_allowance`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx
import onnx.utils
import torch
import torch.nn.functional as F

from repro.caffe.net import Net
from repro.convert import to_onnx
from repro.runtime.torch import to_torch_module

# A branch is within rounding when its float64 margin is at most KINK_BAND times the largest magnitude of
# the kink's input blob. Measured worst float32 forward error at any ReLU or max-pool input, relative to
# that blob's largest magnitude (ORT and torch float32 against float64): AlexNet 2.3e-6, CaffeNet 1.8e-6,
# Places205 2.2e-6, GoogLeNet 1.8e-6, fc6 generator 1.4e-6 (Caffe's blobs are not stored there, but at
# the logits Caffe errs as ORT does: AlexNet 6.9e-7 against 6.0e-7). Two float32 implementations can so
# disagree by ~4.6e-6; 1e-5 keeps twice that. It finds 32 kinks on AlexNet, 43 on CaffeNet, 47 on
# Places205, 50 on the fc6 generator (each costs one float64 gradient, 0.2-1 s, only when a check fails).
KINK_BAND = 1e-5
# The search measures the candidates nearest to their kink first (relative to their blob's largest magnitude:
# the flips float32 rounding makes are the near-ties), SEARCH_STRIDE at a time, and stops once the flips found
# explain the mismatch or MAX_KINKS were measured (each costs one float64 gradient). The full-size posterior
# (fc6 generator + CaffeNet, one chain) has 133 candidates; the golden cases 32-50.
MAX_KINKS = 64
SEARCH_STRIDE = 8
MAX_FLIPS = 4  # at most this many flips may be used to explain one gradient's mismatch

_KINK_TYPES = (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.MaxPool2d)

Nudge = tuple[str, int, float]  # (module name, flat index into the module's input, value added there)
# blob → (float64 module computing it, the inputs it takes in order, which of its outputs is the blob)
ModuleOf = Callable[[str], tuple[torch.nn.Module, list[str], int]]


def _pair(v) -> tuple[int, int]:
    return tuple(int(i) for i in v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _windows(pool: torch.nn.MaxPool2d, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each output's window as (N, C, Ho, Wo, kh·kw) values (−inf outside) and flat H·W indices (−1)."""
    k, s, p, d = _pair(pool.kernel_size), _pair(pool.stride), _pair(pool.padding), _pair(pool.dilation)
    out_h, out_w = F.max_pool2d(x, k, s, p, d, pool.ceil_mode).shape[2:]
    height, width = x.shape[2:]
    span = [(k[i] - 1) * d[i] + 1 for i in range(2)]
    need = [(out_h - 1) * s[0] + span[0], (out_w - 1) * s[1] + span[1]]
    pads = (p[1], max(0, need[1] - width - p[1]), p[0], max(0, need[0] - height - p[0]))
    index = torch.arange(height * width, dtype=x.dtype).reshape(1, 1, height, width)

    def unfold(t: torch.Tensor, fill: float) -> torch.Tensor:
        t = F.pad(t, pads, value=fill).unfold(2, span[0], s[0]).unfold(3, span[1], s[1])
        t = t[:, :, :out_h, :out_w, :: d[0], :: d[1]]
        return t.reshape(*t.shape[:4], -1)

    return unfold(x, -np.inf), unfold(index, -1).long()


def _float64(model: onnx.ModelProto) -> torch.nn.Module:
    module = to_torch_module(model).to(torch.float64)
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class Kinks:
    """Float64 reference gradients of one graph at one input, with any set of kinks forced the other way.

    `module_of(blob)` gives the float64 module that computes a blob (see `of_net`, `of_module`); each is
    asked for once."""

    def __init__(self, module_of: ModuleOf, inputs: dict[str, np.ndarray], band: float = KINK_BAND):
        self.band = band
        self.inputs = {k: np.asarray(v, np.float64) for k, v in inputs.items()}
        self._module_of = module_of
        self._modules: dict[str, tuple[torch.nn.Module, list[str], int]] = {}

    @classmethod
    def of_net(cls, net: Net, inputs: dict[str, np.ndarray], band: float = KINK_BAND) -> Kinks:
        """A Caffe net's blobs, each through the layers it depends on alone (others' kinks cannot move its
        gradient)."""

        def module_of(blob: str) -> tuple[torch.nn.Module, list[str], int]:
            model = to_onnx(net, outputs=[blob])
            model = onnx.utils.Extractor(model).extract_model(list(net.inputs), [blob])
            return _float64(model), [i.name for i in model.graph.input], 0

        return cls(module_of, inputs, band)

    @classmethod
    def of_module(
        cls, module: torch.nn.Module, takes: list[str], outputs: list[str], inputs: dict[str, np.ndarray]
    ) -> Kinks:
        """An already converted float64 module (e.g. a float64 backend's posterior) with the inputs it
        `takes` and the names of its `outputs`, in order: no second copy of its weights."""
        return cls(lambda blob: (module, takes, outputs.index(blob)), inputs)

    def _module(self, blob: str) -> tuple[torch.nn.Module, list[str], int]:
        if blob not in self._modules:
            self._modules[blob] = self._module_of(blob)
        return self._modules[blob]

    def gradient(self, blob: str, unit: int | None, wrt: str, nudges: Sequence[Nudge] = ()) -> np.ndarray:
        """d(Σ_batch blob.flat[unit]) / d wrt (unit None: Σ blob) in float64, after adding each nudge."""
        module, takes, which = self._module(blob)
        if wrt not in takes:
            return np.zeros_like(self.inputs[wrt])
        named = dict(module.named_modules())
        by_module: dict[str, list[tuple[int, float]]] = {}
        for name, index, value in nudges:
            by_module.setdefault(name, []).append((index, value))

        def hook(changes):
            def pre(_, args):
                x = args[0].clone(memory_format=torch.contiguous_format)
                for index, value in changes:
                    x.view(-1)[index] += value
                return (x, *args[1:])

            return pre

        handles = [named[name].register_forward_pre_hook(hook(c)) for name, c in by_module.items()]
        try:
            feeds = {k: torch.tensor(v, requires_grad=k == wrt) for k, v in self.inputs.items()}
            out = module(*[feeds[k] for k in takes])
            out = out[which] if isinstance(out, (list, tuple)) else out
            picked = out.sum() if unit is None else out.reshape(out.shape[0], -1)[:, unit].sum()
            (grad,) = torch.autograd.grad(picked, feeds[wrt])
        finally:
            for h in handles:
                h.remove()
        return grad.numpy()

    def candidates(self, blob: str) -> list[Nudge]:
        """One nudge per branch within rounding: a ReLU input mirrored across 0, a max-pool runner-up lifted
        just above its window's maximum (changing the forward by at most ~band·max|input| either way); the
        nearest to its kink, relative to its blob's largest magnitude, first."""
        module, takes, _ = self._module(blob)
        seen: dict[str, torch.Tensor] = {}
        handles = [
            m.register_forward_pre_hook(lambda _, args, n=n: seen.__setitem__(n, args[0].detach().clone()))
            for n, m in module.named_modules()
            if isinstance(m, _KINK_TYPES)
        ]
        try:
            with torch.no_grad():
                module(*[torch.tensor(self.inputs[k]) for k in takes])
        finally:
            for h in handles:
                h.remove()
        named = dict(module.named_modules())
        found: list[tuple[float, Nudge]] = []
        for name, x in seen.items():
            finite = x[torch.isfinite(x)]
            largest = float(finite.abs().max()) if finite.numel() else 0.0
            margin = self.band * largest
            if margin == 0.0:
                continue
            if isinstance(named[name], torch.nn.MaxPool2d):  # a lift is the gap to the maximum (and a hair)
                found += [(n[2] / largest, n) for n in self._pool_candidates(name, named[name], x, margin)]
            else:  # exact zeros are exact in every implementation: no rounding decides them
                flat = x.reshape(-1)
                near = ((flat.abs() <= margin) & (flat != 0)).nonzero().flatten().tolist()
                found += [(abs(float(flat[i])) / largest, (name, i, -2.0 * float(flat[i]))) for i in near]
        return [nudge for _, nudge in sorted(found)]

    @staticmethod
    def _pool_candidates(name: str, pool: torch.nn.MaxPool2d, x: torch.Tensor, margin: float) -> list[Nudge]:
        values, index = _windows(pool, x)
        top = values.max(-1, keepdim=True).values
        gap = top - values
        # Exact equality in float64 means copies of one value (ReLU zeros, an earlier overlapping max-pool's
        # output): they are copies in float32 too, so every implementation breaks the tie the same way (the
        # first index). Only a runner-up that differs from the maximum, by at most the margin, is a candidate.
        runner_up = (gap > 0) & (gap <= margin) & torch.isfinite(values)
        channels, plane = x.shape[1], x.shape[2] * x.shape[3]
        found = set()
        for n, c, h, w, e in runner_up.nonzero().tolist():
            lift = float(gap[n, c, h, w, e]) + 1e-3 * margin  # just above the window's maximum
            found.add((name, (n * channels + c) * plane + int(index[0, 0, h, w, e]), lift))
        return sorted(found)

    def explain(
        self,
        blob: str,
        unit: int | None,
        wrt: str,
        ours: np.ndarray,
        theirs: np.ndarray,
        enough: float,
        exact_theirs: bool = False,
    ) -> dict:
        """How far `ours − theirs` stays from the effect of flipping a few kinks within rounding; the search
        stops once the remaining difference is at most `enough` (relative, like "error"). `exact_theirs`:
        `theirs` is this float64 forward's own gradient, so only our side may have taken another branch.

        Returns {"error": max remaining |difference| / max|theirs|, "flips": the kinks used, as
        "module@index (ours|theirs)" (which side took the other branch), "kinks": how many were found,
        "searched": how many of them, nearest first, were measured (at most MAX_KINKS)};
        "error" is checked on float64 gradients with those flips applied (not on the sum of their separate
        effects), so interacting flips are measured as they are.
        """
        ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
        scale = float(np.abs(theirs).max()) or 1.0
        diff = ours - theirs
        found = self.candidates(blob)
        result = {"error": float(np.abs(diff).max()) / scale, "flips": [], "kinks": len(found), "searched": 0}
        if not found:
            return result
        base = self.gradient(blob, unit, wrt)
        effects: list[np.ndarray] = []
        signs: dict[int, int] = {}
        for start in range(0, min(len(found), MAX_KINKS), SEARCH_STRIDE):
            batch = found[start : min(start + SEARCH_STRIDE, MAX_KINKS)]
            effects += [self.gradient(blob, unit, wrt, [k]) - base for k in batch]
            signs = _greedy(diff, effects, enough * scale, (1,) if exact_theirs else (1, -1))
            remaining = diff - sum((s * effects[i] for i, s in signs.items()), np.zeros_like(diff))
            if np.abs(remaining).max() <= enough * scale:
                break
        result["searched"] = len(effects)
        if not signs:
            return result
        # sign +1: our side took the flipped branch; −1: the reference's side did
        ours_branch = self.gradient(blob, unit, wrt, [found[i] for i, s in signs.items() if s > 0])
        their_branch = self.gradient(blob, unit, wrt, [found[i] for i, s in signs.items() if s < 0])
        error = float(np.abs(diff - (ours_branch - their_branch)).max()) / scale
        if error < result["error"]:
            flips = [
                f"{found[i][0]}@{found[i][1]} ({'ours' if s > 0 else 'theirs'})" for i, s in signs.items()
            ]
            result.update(error=error, flips=flips)
        return result


def _greedy(
    diff: np.ndarray, effects: list[np.ndarray], enough: float, sides: tuple[int, ...]
) -> dict[int, int]:
    """Up to MAX_FLIPS flips, each the one (and the side) that lowers the worst remaining difference most,
    until it is at most `enough` or no flip lowers it: index → sign (+1 ours, −1 theirs)."""
    remaining, signs = diff.copy(), {}
    while len(signs) < MAX_FLIPS:
        worst = np.abs(remaining).max()
        if worst <= enough:
            break
        options = [
            (np.abs(remaining - sign * effects[i]).max(), i, sign)
            for i in range(len(effects))
            if i not in signs
            for sign in sides
        ]
        best, i, sign = min(options, default=(worst, -1, 0))
        if best >= worst:
            break
        signs[i] = sign
        remaining -= sign * effects[i]
    return signs
