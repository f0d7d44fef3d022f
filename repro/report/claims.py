"""The paper's claims, each with the rule that decides it on this run and the numbers the rule saw.

Every rule compares rows by paired differences over shared units (same class, same start code; see
metrics.py) and calls a difference real only when it exceeds twice its standard error. A claim whose rows
were not run, or that has fewer than two units, is "not tested" rather than guessed.

The claims about realism rest on one judge, which can reward what it was never shown (saturated MAP+clip
images score above real ones on the embedded set); so they are also read with each metric in READINGS
(KID against real images of the class), the same rule with the metric swapped and its direction respected.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from repro.report.metrics import METRICS
from repro.report.stats import RowValues, Stat, format_stat, paired_difference, stat

Z = 2.0  # a difference counts when |mean| > Z · standard error


@dataclass(frozen=True)
class Claim:
    number: int
    claim: str
    rule: str
    verdict: str  # "reproduced", "not reproduced", "not tested"
    evidence: str
    numbers: dict = field(default_factory=dict)
    verdicts: dict = field(default_factory=dict)  # setting → {"verdict", "evidence"} (SETTINGS)

    @property
    def reproduced(self) -> bool | None:
        return None if self.verdict == "not tested" else self.verdict == "reproduced"

    def as_dict(self) -> dict:
        return {
            "number": self.number,
            "claim": self.claim,
            "rule": self.rule,
            "verdict": self.verdict,
            "reproduced": self.reproduced,
            "evidence": self.evidence,
            "numbers": self.numbers,
            "verdicts": self.verdicts,
        }


CLAIMS: list[Callable[..., Claim]] = []  # (rows, labels, steps) → Claim
REALISM_CLAIMS: set[Callable[..., Claim]] = set()  # those that also take `realism=<metric key>`
JUDGE = "judge_log_p_real"
READINGS: dict[str, str] = {"kid": "kid"}  # reading → the metric that stands in for the judge


def claim(fn=None, *, realism: bool = False):
    def register(f):
        CLAIMS.append(f)
        if realism:
            REALISM_CLAIMS.add(f)
        return f

    return register(fn) if fn is not None else register


def _greater(d: Stat) -> bool:
    return d.n >= 2 and d.mean > Z * d.se


def _diff_text(name_a: str, name_b: str, d: Stat) -> str:
    return f"{name_a} − {name_b} = {format_stat(d)} (n = {d.n})"


def _advantage(rows: dict[str, RowValues], labels: dict[str, str], a: str, b: str, metric: str):
    """The paired difference a rule reads as "a beats b", and its text: a − b, except for a realism reading
    whose metric is better when lower (KID), where it is b − a and the text names the metric."""
    if metric in READINGS.values() and METRICS[metric].higher_is_better is False:
        d = paired_difference(rows[b], rows[a], metric)
        return d, f"{METRICS[metric].label}: {_diff_text(labels[b], labels[a], d)}"
    d = paired_difference(rows[a], rows[b], metric)
    return d, _diff_text(labels[a], labels[b], d)


def _reading(metric: str) -> str:
    """The evidence's preamble when a realism claim is read with a metric other than the judge."""
    if metric == JUDGE:
        return ""
    m = METRICS[metric]
    better = "lower" if m.higher_is_better is False else "higher"
    return f"Read with {m.label} ({better} is better; the rule's judge swapped for it): "


def _missing(rows: dict[str, RowValues], keys: list[str]) -> list[str]:
    return [k for k in keys if k not in rows]


def _not_tested(number: int, text: str, rule: str, why: str) -> Claim:
    return Claim(number, text, rule, "not tested", why)


def _unmeasured(rows: dict[str, RowValues], keys: list[str], metric: str) -> str | None:
    """Why no row has a value of the metric (a scorer the model set lacks), or None when some do."""
    if any(rows[k].values.get(metric) for k in keys):
        return None
    needs = METRICS[metric].needs
    return f"no {needs} given, so there is no {METRICS[metric].label}" if needs else f"no {metric} values"


FROZEN = 0.01  # mean acceptance below which a row's chains have not really moved from where they started


def _frozen(rows: dict[str, RowValues], labels: dict[str, str], keys: list[str]) -> str:
    """A sentence naming the MCMC rows whose chains barely accepted a move, or "" when none did.

    Their images are still what the method produced, but anything measured along the chain (time to
    plateau, mixing) describes a few early moves, not sampling."""
    stuck = []
    for k in keys:
        acc = stat(rows[k].values.get("acceptance", {}).values()).mean if k in rows else None
        if acc is not None and acc < FROZEN:
            stuck.append(f"{labels[k]} accepted {100 * acc:.2g}% of proposals")
    return "; ".join(stuck)


def _compare_all(
    number: int,
    text: str,
    rule: str,
    rows: dict[str, RowValues],
    labels: dict[str, str],
    pairs: list[tuple[str, str]],
    metric: str,
    extra: str = "",
    along_chain: bool = False,
) -> Claim:
    """Reproduced when every pair (a, b) has a − b significantly above zero on `metric`.

    `along_chain`: the metric is measured along the chains' paths, so rows whose chains never moved leave
    the claim untested instead of deciding it."""
    missing = _missing(rows, sorted({k for p in pairs for k in p}))
    if missing:
        return _not_tested(number, text, rule, f"rows not run: {', '.join(missing)}")
    unmeasured = _unmeasured(rows, sorted({k for p in pairs for k in p}), metric)
    if unmeasured:
        return _not_tested(number, text, rule, unmeasured)
    stuck = _frozen(rows, labels, sorted({k for p in pairs for k in p}))
    if stuck and along_chain:
        return _not_tested(number, text, rule, f"{stuck}: the chains barely moved, so this is not measurable")
    if stuck:
        extra += f". Caution: {stuck}, so those chains barely left their start codes"
    compared = {f"{a} - {b}": _advantage(rows, labels, a, b, metric) for a, b in pairs}
    diffs = {k: d for k, (d, _) in compared.items()}
    if any(d.n < 2 for d in diffs.values()):
        return _not_tested(number, text, rule, "fewer than two paired units: no standard error")
    ok = all(_greater(d) for d in diffs.values())
    evidence = _reading(metric) + "; ".join(t for _, t in compared.values()) + extra
    return Claim(
        number,
        text,
        rule,
        "reproduced" if ok else "not reproduced",
        evidence,
        {k: d.as_dict() for k, d in diffs.items()},
    )


@claim(realism=True)
def mcmc_without_clipping_is_realistic(rows, labels, steps, realism: str = JUDGE) -> Claim:
    return _compare_all(
        1,
        "MCMC without clipping gives realistic images.",
        "Without clipping, both MALA and HMC (paper schedules) must score higher with the judge "
        f"(log p(real)) than MAP without clipping at DGN-AM's {steps.get('map', 200)} steps, the "
        "super-stimulus baseline: paired difference > 2 SE for each.",
        rows,
        labels,
        [("mala", "map"), ("hmc", "map")],
        realism,
    )


@claim(realism=True)
def long_map_needs_no_clipping(rows, labels, steps, realism: str = JUDGE) -> Claim:
    text = "MAP needs no clipping after thousands of iterations."
    rule = (
        "MAP without clipping, run long, must not score below DGN-AM's MAP+clip with the judge: the paired "
        "difference (long MAP − MAP+clip) must be above −2 SE."
    )
    missing = _missing(rows, ["map-long", "map-clip"])
    if missing:
        return _not_tested(2, text, rule, f"rows not run: {', '.join(missing)}")
    unmeasured = _unmeasured(rows, ["map-long", "map-clip"], realism)
    if unmeasured:
        return _not_tested(2, text, rule, unmeasured)
    d, diff_text = _advantage(rows, labels, "map-long", "map-clip", realism)
    if d.n < 2:
        return _not_tested(2, text, rule, "fewer than two paired units: no standard error")
    ok = d.mean > -Z * d.se
    evidence = _reading(realism) + diff_text
    if "map" in rows:
        evidence += f"; against the short run: {_advantage(rows, labels, 'map-long', 'map', realism)[1]}"
    n_long = steps.get("map-long", 0)
    if n_long < 1000:
        evidence += f". Caution: the long run had only {n_long} iterations (budget-scaled), not thousands"
    return Claim(
        2,
        text,
        rule,
        "reproduced" if ok else "not reproduced",
        evidence,
        {"map-long - map-clip": d.as_dict()},
    )


@claim(realism=True)
def mala_clip_scores_best(rows, labels, steps, realism: str = JUDGE) -> Claim:
    return _compare_all(
        3,
        "MALA+clip scores best with the judge (Table 2).",
        "MALA+clip's judge log p(real) must exceed each of MAP+clip, MALA and HMC (paper schedules) by more "
        "than 2 SE of the paired difference.",
        rows,
        labels,
        [("mala-clip", "map-clip"), ("mala-clip", "mala"), ("mala-clip", "hmc")],
        realism,
    )


@claim
def mcmc_is_more_diverse(rows, labels, steps) -> Claim:
    return _compare_all(
        4,
        "MCMC gives more content-diverse images than MAP.",
        "Diversity (mean pairwise distance between a class's images in the independent evaluator's feature "
        "space) of MALA, MALA+clip and HMC must each exceed MAP+clip's by more than 2 SE of the paired "
        "difference over classes.",
        rows,
        labels,
        [("mala", "map-clip"), ("mala-clip", "map-clip"), ("hmc", "map-clip")],
        "diversity",
    )


@claim
def clipping_cuts_mala_iterations(rows, labels, steps) -> Claim:
    return _compare_all(
        5,
        "Clipping cuts the iterations MALA needs.",
        "Iterations until log π covers 90% of its rise from the start to its plateau (median of the last "
        "10% of the run), per chain: MALA's must exceed MALA+clip's by more than 2 SE of the paired "
        "difference.",
        rows,
        labels,
        [("mala", "mala-clip")],
        "steps_to_plateau",
        along_chain=True,
    )


# Each claim is also answered under other settings: the rules stay, the rows they read are swapped for the
# rows of that setting (None: the setting has no such row, so the claim is not tested there). "paper" is
# the rows of the paper's equations, the claims' own `verdict`.
SETTINGS: dict[str, dict[str, str | None]] = {
    "paper": {},
    "released": {"mala": "mala-released", "hmc": "hmc-released", "mala-clip": None},
    "fitted-prior": {"mala": "mala-da-prior", "hmc": "hmc-da-prior", "mala-clip": None},
    # the exact posterior in place of both samplers: a claim it fails too belongs to the model, not to them
    "exact": {"mala": "exact", "hmc": "exact", "mala-clip": None},
}


def _in_setting(rows, labels, swap: dict[str, str | None]):
    """The rows and labels as the claims read them under a setting: row key k now holds row swap[k]."""
    seen = {k: rows[k] for k in rows if k not in swap}
    named = dict(labels)
    for k, other in swap.items():
        if other is not None and other in rows:
            seen[k] = rows[other]
            named[k] = labels[other]
    return seen, named


def check_claims(rows: dict[str, RowValues], labels: dict[str, str], steps: dict[str, int]) -> list[Claim]:
    """Each claim under each setting; a realism claim's setting also holds its READINGS, e.g.
    verdicts["paper"]["kid"] = {"verdict", "evidence"}."""
    claims = []
    for fn in CLAIMS:
        verdicts = {}
        for setting, swap in SETTINGS.items():
            seen = _in_setting(rows, labels, swap)
            c = fn(*seen, steps)
            verdicts[setting] = {"verdict": c.verdict, "evidence": c.evidence}
            if fn in REALISM_CLAIMS:
                for reading, metric in READINGS.items():
                    r = fn(*seen, steps, realism=metric)
                    verdicts[setting][reading] = {"verdict": r.verdict, "evidence": r.evidence}
        claims.append(dataclasses.replace(fn(rows, labels, steps), verdicts=verdicts))
    return claims
