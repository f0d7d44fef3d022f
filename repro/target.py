"""What a run maximises or samples: a weighted selection of one blob of the classifier.

DGN-AM is "synthesizing the preferred inputs for neurons": its act_max.py drives any unit of any layer, a
class logit being only the commonest case. A target is one or more terms on one blob, each a unit with a
weight; the posterior graph takes it as one weight row per chain over the blob's flattened values
(`weights`), so chains in one batch may target different units, and its objective is the weighted sum.

    class:K            class K (the objective: a_k, or log p(k | x), as the method uses)
    BLOB:U             unit U of the blob's flattened non-batch part, e.g. fc6:123
    BLOB:C@Y,X         channel C at row Y, column X of a convolutional blob (DGN-AM's --xy N is @N,N)
    BLOB:C@mean        channel C's mean over the map
    … =W               the term's weight (default 1): class:643=1 and class:624=0.5 sample a_643 + ½a_624

A hidden blob is read as its first writer computed it, before any in-place layer rewrites it (conv5 before
relu5): act_max.py runs the forward pass to layer X and reads `net.blobs[X]`, so its objective is the
pre-activation, whose gradient does not vanish where the unit is off. Hidden targets are raw values; the
class objective (logit or log-softmax) applies to class terms only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from repro.errors import BadInput

CLASS = "class"
MEAN = "mean"


@dataclass(frozen=True)
class Term:
    blob: str  # CLASS, or a blob of the classifier
    unit: int  # the class, the flattened unit, or the channel (with `where`)
    where: tuple[int, int] | str | None = None  # (row, column), MEAN, or None: a flattened unit
    weight: float = 1.0

    def text(self) -> str:
        at = (
            ""
            if self.where is None
            else "@" + (self.where if self.where == MEAN else f"{self.where[0]},{self.where[1]}")
        )
        weight = "" if self.weight == 1.0 else f"={self.weight:g}"
        return f"{self.blob}:{self.unit}{at}{weight}"


@dataclass(frozen=True)
class Target:
    terms: tuple[Term, ...]

    @property
    def blob(self) -> str:
        return self.terms[0].blob

    @property
    def hidden(self) -> bool:
        """Whether it reads a hidden blob (raw values), not the class scores."""
        return self.blob != CLASS

    @property
    def class_index(self) -> int | None:
        """The one class it targets, which the class-based metrics (target confidence, evaluator accuracy)
        score; None for a hidden or a weighted target, whose images no class describes."""
        if self.hidden or len(self.terms) != 1 or self.terms[0].weight <= 0:
            return None
        return self.terms[0].unit

    def text(self) -> str:
        """Its canonical spelling, which a run's identity records: terms joined by spaces."""
        return " ".join(term.text() for term in self.terms)

    def weights(self, shape: tuple[int, ...]) -> np.ndarray:
        """[prod(shape)] float32: each term's weight on the units it reads, of a blob of non-batch `shape`
        ([K] for the class scores); a term outside the blob is refused, naming it and the blob's shape."""
        out = np.zeros(int(np.prod(shape)), np.float32)
        grid = out.reshape(shape)
        for term in self.terms:
            where = f"--target {term.text()}"
            size = f"{'×'.join(map(str, shape))}"
            if term.where is None:
                if not 0 <= term.unit < out.size:
                    raise BadInput(
                        f"{where}: unit {term.unit} is outside {term.blob}'s {out.size} values ({size})"
                    )
                out[term.unit] += term.weight
                continue
            if len(shape) != 3:
                raise BadInput(
                    f"{where}: {term.blob} is not a convolutional map (its shape is {size}); name a unit"
                )
            channels, height, width = shape
            if not 0 <= term.unit < channels:
                raise BadInput(f"{where}: channel {term.unit} is outside {term.blob}'s {channels} channels")
            if term.where == MEAN:
                grid[term.unit] += term.weight / (height * width)
                continue
            y, x = term.where
            if not (0 <= y < height and 0 <= x < width):
                raise BadInput(f"{where}: position ({y}, {x}) is outside {term.blob}'s {height}×{width} map")
            grid[term.unit, y, x] += term.weight
        return out


def for_class(k: int) -> Target:
    return Target((Term(CLASS, k),))


def _integer(text: str, what: str, spec: str) -> int:
    if not text.strip().isdigit():
        raise BadInput(f"--target {spec}: {what} must be a whole number ≥ 0, got {text!r}")
    return int(text)


def parse_term(spec: str) -> Term:
    """One `--target` value (the module docstring's forms)."""
    body, equals, weight_text = spec.partition("=")
    weight = 1.0
    if equals:
        try:
            weight = float(weight_text)
        except ValueError:
            raise BadInput(
                f"--target {spec}: the weight after '=' must be a number, got {weight_text!r}"
            ) from None
        if not math.isfinite(weight):
            raise BadInput(f"--target {spec}: the weight must be finite, got {weight_text!r}")
    blob, colon, unit_text = body.rpartition(":")
    if not colon or not blob:
        raise BadInput(f"--target {spec}: expected class:K, BLOB:U, BLOB:C@Y,X or BLOB:C@mean")
    unit_text, at, where_text = unit_text.partition("@")
    unit = _integer(unit_text, "the unit", spec)
    where: tuple[int, int] | str | None = None
    if at:
        if blob == CLASS:
            raise BadInput(f"--target {spec}: a class has no position; write class:K")
        if where_text == MEAN:
            where = MEAN
        else:
            y, comma, x = where_text.partition(",")
            if not comma:
                raise BadInput(
                    f"--target {spec}: expected @Y,X or @mean after the channel, got @{where_text}"
                )
            where = (_integer(y, "the row", spec), _integer(x, "the column", spec))
    return Term(blob, unit, where, weight)


def parse(specs: list[str] | tuple[str, ...]) -> Target:
    """`--target` values (one or more, on one blob) → a Target."""
    if not specs:
        raise BadInput("--target: give at least one")
    terms = tuple(parse_term(spec) for spec in specs)
    blobs = sorted({term.blob for term in terms})
    if len(blobs) > 1:
        raise BadInput(f"--target: every term must read one blob; got {', '.join(blobs)}")
    return Target(terms)
