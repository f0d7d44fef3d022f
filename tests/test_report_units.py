"""The report's arithmetic and rules on hand-made numbers: plateau detection, paired statistics, claim
verdicts (which must be able to fail), the budget accounting and cell keys, and the Markdown/HTML writers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repro.errors import BadInput
from repro.report.claims import check_claims
from repro.report.document import Figure, Heading, Para, Table
from repro.report.html import render_html
from repro.report.markdown import render_markdown
from repro.report.metrics import steps_to_plateau
from repro.report.plan import mcmc_steps
from repro.report.stats import RowValues, format_stat, paired_difference, stat


def test_steps_to_plateau_finds_the_first_step_past_90_percent_of_the_rise():
    rise = np.concatenate([np.linspace(0.0, 10.0, 11), np.full(89, 10.0)])  # 100 steps
    flat = np.full(100, -3.0)
    falling = np.linspace(0.0, -5.0, 100)
    logp = np.stack([rise, flat, falling], axis=1)
    # rise: plateau 10, level 9 reached at index 9; flat and falling chains never rise
    assert steps_to_plateau(logp).tolist() == [9, 0, 0]


def test_stat_and_paired_difference_match_numpy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=12)
    b = a - 0.5 + rng.normal(scale=0.1, size=12)
    units = [(k, j) for k in range(3) for j in range(4)]
    ra = RowValues("a", {"m": dict(zip(units, a, strict=True))})
    rb = RowValues("b", {"m": {**dict(zip(units, b, strict=True)), (9, 9): 100.0}})  # unshared unit ignored
    d = paired_difference(ra, rb, "m")
    diff = a - b
    assert d.n == 12
    assert d.mean == pytest.approx(diff.mean())
    assert d.se == pytest.approx(diff.std(ddof=1) / math.sqrt(12))
    s = stat([1.0, float("nan"), 3.0, None])
    assert (s.mean, s.n) == (2.0, 2) and s.se == pytest.approx(1.0)
    assert math.isnan(stat([5.0]).se) and stat([]).n == 0


def test_format_stat():
    assert format_stat(stat([6000.0, 6000.0])) == "6000 ± 0"
    assert format_stat(stat([-5.53, -5.53])) == "-5.53 ± 0"
    assert format_stat({"mean": None, "se": None, "n": 0}) == "—"
    assert format_stat(stat([1.3e16, 1.3e16])) == "1.3e+16 ± 0"


def _rows(judge: dict[str, float], diversity: dict[str, float], plateau: dict[str, float], noise=0.05):
    """Rows with 3 classes × 4 chains: per-chain judge and plateau, per-class diversity, plus small noise."""
    rng = np.random.default_rng(1)
    units = [(k, j) for k in range(3) for j in range(4)]
    out = {}
    for key in judge:
        values = {
            "judge_log_p_real": {u: judge[key] + noise * rng.normal() for u in units},
            "steps_to_plateau": {u: plateau.get(key, float("nan")) + noise * rng.normal() for u in units},
            "diversity": {(k,): diversity[key] + noise * rng.normal() for k in range(3)},
        }
        out[key] = RowValues(key, values)
    return out


LABELS = {k: k for k in ("map-clip", "map", "map-long", "mala-clip", "mala", "hmc")}
STEPS = {"map": 200, "map-long": 6000}


def test_claims_follow_the_paper_when_the_numbers_do():
    rows = _rows(
        judge={
            "map-clip": -6.0,
            "map": -12.0,
            "map-long": -5.9,
            "mala-clip": -5.5,
            "mala": -9.8,
            "hmc": -8.0,
        },
        diversity={"map-clip": 1.0, "map": 1.0, "map-long": 1.0, "mala-clip": 2.0, "mala": 2.5, "hmc": 2.2},
        plateau={"mala-clip": 50.0, "mala": 400.0},
    )
    verdicts = [c.verdict for c in check_claims(rows, LABELS, STEPS)]
    assert verdicts == ["reproduced"] * 5


def test_claims_fail_when_the_numbers_disagree():
    rows = _rows(
        judge={"map-clip": -5.0, "map": -4.0, "map-long": -9.0, "mala-clip": -7.0, "mala": -6.0, "hmc": -8.0},
        diversity={"map-clip": 3.0, "map": 1.0, "map-long": 1.0, "mala-clip": 2.0, "mala": 2.5, "hmc": 2.2},
        plateau={"mala-clip": 400.0, "mala": 50.0},
    )
    claims = check_claims(rows, LABELS, STEPS)
    assert [c.verdict for c in claims] == ["not reproduced"] * 5
    assert all(c.reproduced is False for c in claims)
    assert "MALA" in claims[0].evidence or "mala" in claims[0].evidence


def test_claims_within_noise_do_not_reproduce_and_missing_rows_are_not_tested():
    rows = _rows(
        judge={"map-clip": -6.0, "map": -6.0, "map-long": -6.0, "mala-clip": -6.0, "mala": -6.0, "hmc": -6.0},
        diversity={k: 1.0 for k in LABELS},
        plateau={"mala-clip": 100.0, "mala": 100.0},
        noise=1.0,
    )
    claims = check_claims(rows, LABELS, STEPS)
    assert claims[2].verdict == "not reproduced"  # equal means: MALA+clip is not "best"
    del rows["hmc"]
    claims = check_claims(rows, LABELS, {"map": 200, "map-long": 300})
    assert claims[0].verdict == "not tested" and claims[0].reproduced is None
    assert "not thousands" in claims[1].evidence


def test_realism_claims_are_also_read_with_kid_where_lower_is_better():
    """The judge says the paper's ordering holds; KID (per class, lower is better) says the opposite for
    claims 1 and 3 and agrees on 2: each reading decides by its own numbers and direction."""
    rows = _rows(
        judge={"map-clip": -6.0, "map": -12.0, "map-long": -5.9, "mala-clip": -5.5, "mala": -9.8, "hmc": -8},
        diversity={"map-clip": 1.0, "map": 1.0, "map-long": 1.0, "mala-clip": 2.0, "mala": 2.5, "hmc": 2.2},
        plateau={"mala-clip": 50.0, "mala": 400.0},
    )
    kid = {"map-clip": 0.01, "map": 0.02, "map-long": 0.01, "mala-clip": 0.3, "mala": 0.2, "hmc": 0.2}
    rng = np.random.default_rng(2)
    for key, row in rows.items():
        row.values["kid"] = {(k,): kid[key] + 0.001 * rng.normal() for k in range(3)}
    claims = check_claims(rows, LABELS, STEPS)
    assert [c.verdict for c in claims] == ["reproduced"] * 5  # the judge's verdicts stay the claims' own
    by_kid = [c.verdicts["paper"].get("kid") for c in claims]
    assert [v["verdict"] for v in by_kid[:3]] == ["not reproduced", "reproduced", "not reproduced"]
    assert by_kid[3] is None and by_kid[4] is None  # diversity and iterations are not judge readings
    assert by_kid[0]["evidence"].startswith("Read with KID")
    assert "mala-clip − map-clip" not in by_kid[2]["evidence"]  # lower is better: the other row first
    assert "map-clip − mala-clip" in by_kid[2]["evidence"]
    del rows["map"].values["kid"]
    assert check_claims(rows, LABELS, STEPS)[0].verdicts["paper"]["kid"]["verdict"] == "not tested"


def test_frozen_chains_leave_path_claims_untested_and_flag_image_claims():
    rows = _rows(
        judge={"map-clip": -6.0, "map": -12.0, "map-long": -5.9, "mala-clip": -5.5, "mala": -9.8, "hmc": -8},
        diversity={"map-clip": 1.0, "map": 1.0, "map-long": 1.0, "mala-clip": 2.0, "mala": 2.5, "hmc": 2.2},
        plateau={"mala-clip": 50.0, "mala": 400.0},
    )
    units = list(rows["mala"].values["judge_log_p_real"])
    rows["mala"].values["acceptance"] = {u: 0.001 for u in units}  # the chains never moved
    rows["mala-clip"].values["acceptance"] = {u: 0.5 for u in units}
    claims = check_claims(rows, LABELS, STEPS)
    assert claims[4].verdict == "not tested" and "mala accepted 0.1% of proposals" in claims[4].evidence
    assert claims[0].verdict == "reproduced" and "barely left their start" in claims[0].evidence
    assert "barely" not in claims[1].evidence  # MAP rows have no accept step


def test_rows_beyond_the_paper_can_be_scaled_alone(tmp_path):
    from repro.modelsets import resolve
    from repro.report.plan import rows
    from tests.test_report import write_tiny_set

    ms = resolve(str(write_tiny_set(tmp_path / "tiny")))
    full = {r.key: r.steps for r in rows(ms, 0.1)}
    half = {r.key: r.steps for r in rows(ms, 0.1, beyond=0.5)}
    beyond = {k for k in full if "-da" in k}
    guided = {f"mala-da{prior}-g{beta}" for prior in ("", "-prior") for beta in (3, 10, 30)}
    adapted = {
        f"{m}-da{prior}" for m in ("mala-mass", "hmc-jitter", "ghmc", "mclmc") for prior in ("", "-prior")
    }
    assert beyond == {"mala-clip-da", "mala-da", "mala-da-prior", "hmc-da", "hmc-da-prior"} | guided | adapted
    for key in full:
        assert half[key] == (round(full[key] / 2) if key in beyond else full[key]), key


def test_budget_accounting():
    assert mcmc_steps(1.0) == 6000
    assert mcmc_steps(0.5) == 3000
    hmc = mcmc_steps(1.0, gradients_per_step=10)
    assert hmc * 10 == 6000  # iterations × L: the start gradient of a trajectory is cached
    assert mcmc_steps(0.001, gradients_per_step=10) == 2  # never fewer than 2 iterations


def test_plan_keys_and_checks(tmp_path):
    from repro.modelsets import resolve
    from repro.report.plan import make_plan
    from tests.test_report import write_tiny_set

    ms = resolve(str(write_tiny_set(tmp_path / "tiny")))
    a = make_plan(ms, [0, 1], 2, 0.01, map_steps=20)
    b = make_plan(ms, [0, 1], 2, 0.02, map_steps=20)
    keys_a = {(c.row.key, c.class_index): c.key for c in a.cells}
    keys_b = {(c.row.key, c.class_index): c.key for c in b.cells}
    # 6: the guidance study's rows; 8: the exact rows of 2 priors × 4 guidance levels; 6: the samplers
    # beyond the paper (mala-mass, hmc-jitter, ghmc, mclmc) with dual averaging under both priors
    assert len(set(keys_a.values())) == len(a.cells) == (13 + 6 + 8 + 8) * 2
    # guidance is part of a cell's key, and β = 1 rows keep the keys they had before guidance existed
    assert keys_a[("mala-da-g3", 0)] != keys_a[("mala-da-g10", 0)] != keys_a[("mala-da", 0)]
    assert "guidance" not in next(r for r in a.rows if r.key == "mala-da").settings()
    # MAP+clip does not depend on the MCMC budget: its cells carry over; MALA's do not
    assert keys_a[("map-clip", 0)] == keys_b[("map-clip", 0)]
    assert keys_a[("mala", 0)] != keys_b[("mala", 0)]
    hmc = next(r for r in a.rows if r.key == "hmc")
    assert hmc.steps == mcmc_steps(0.01, 10)  # L = 10 gradients per iteration
    with pytest.raises(BadInput, match="outside"):
        make_plan(ms, [0, 3], 2, 0.01)
    with pytest.raises(BadInput, match="at least 2"):
        make_plan(ms, [0], 1, 0.01)
    with pytest.raises(BadInput, match="unknown row"):
        make_plan(ms, [0], 2, 0.01, only=["nuts"])


def test_writers_escape_and_embed(tmp_path):
    from PIL import Image

    Image.new("RGB", (4, 4), "red").save(tmp_path / "f.png")
    blocks = [
        Heading("T <1>", 1),
        Para("a **bold** | pipe"),
        Table(["x", "verdict"], [["a|b", "not reproduced"]]),
        Figure("f.png", "cap"),
    ]
    html = render_html(blocks, tmp_path)
    assert "<title>T &lt;1&gt;</title>" in html and "<strong>bold</strong>" in html
    assert 'class="not-reproduced"' in html and "data:image/png;base64," in html
    md = render_markdown(blocks)
    assert "| a\\|b | not reproduced |" in md and "![cap](f.png)" in md
