"""The report's iteration floor: a --budget that leaves an MCMC row fewer than MIN_MCMC_STEPS iterations per
chain still runs (the smoke-sized budgets of the other tests do), but the plan names the short rows and the
smallest budget that lifts them, and metrics.json and the page say the verdicts rest on too few iterations.
No sampling here: the record is built from the plan with no finished cells."""

from __future__ import annotations

import pytest

from repro.modelsets import resolve
from repro.report.document import Para, build_document
from repro.report.plan import MIN_MCMC_STEPS, PAPER_BUDGET, make_plan
from repro.report.results import build_results, schema_errors
from tests.test_report import write_tiny_set


@pytest.fixture(scope="module")
def ms(tmp_path_factory):
    return resolve(str(write_tiny_set(tmp_path_factory.mktemp("tiny") / "set")))


def record(ms, plan) -> dict:
    settings = {"chains": plan.chains, "budget": plan.budget, "seed": 0, "map_steps": 20}
    settings |= {"backend": "ort", "device": "cpu", "quick": False}
    return build_results(
        models={
            "name": ms.name,
            "id": "x",
            "n_classes": len(ms.class_names),
            "judge": None,
            "evaluator": None,
        },
        plan=plan,
        class_names=ms.class_names,
        settings=settings,
        cell_metas=[],
        counts={"run": 0, "reused": 0},
        wall_seconds=0.0,
        reference=None,
        figures={},
        versions={},
    )


def test_the_paper_budget_clears_the_floor(ms):
    plan = make_plan(ms, [0], 2, 1.0, map_steps=20)
    mcmc = [r for r in plan.rows if r.mcmc]
    # 6: the guidance study; 8: the samplers beyond the paper, with dual averaging, N(0, I) and fitted prior
    assert len(mcmc) == 10 + 6 + 8 and min(r.steps for r in mcmc) >= MIN_MCMC_STEPS
    assert plan.short_rows == {} and plan.floor_budget is None
    floor = record(ms, plan)["settings"]["iteration_floor"]
    assert floor == {"floor": MIN_MCMC_STEPS, "short_rows": {}, "floor_budget": None, "notice": None}


@pytest.mark.parametrize("beyond", [1.0, 0.5])
def test_a_small_budget_names_its_short_rows_and_the_budget_that_lifts_them(ms, beyond):
    plan = make_plan(ms, [0], 2, 0.01, map_steps=20, beyond=beyond)
    short = {r.key: r.steps for r in plan.rows if r.mcmc and r.steps < MIN_MCMC_STEPS}
    assert plan.short_rows == short and {"mala", "hmc", "hmc-da", "hmc-released"} <= set(short)
    assert short["mala"] == round(PAPER_BUDGET * 0.01) and short["hmc"] == round(PAPER_BUDGET * 0.01 / 10)
    assert "map-clip" not in short and "map-long" not in short  # MAP rows are not MCMC rows
    needed = plan.floor_budget
    # the smallest budget, to 0.001, at which no row is short: HMC's 600 iterations × budget with the rows
    # beyond the paper at `beyond` of it, or the released scripts' 400 × budget
    assert needed == {1.0: 0.249, 0.5: 0.332}[beyond]
    assert make_plan(ms, [0], 2, needed, map_steps=20, beyond=beyond).short_rows == {}
    assert make_plan(ms, [0], 2, needed - 0.001, map_steps=20, beyond=beyond).short_rows != {}


def test_only_the_chosen_rows_count(ms):
    plan = make_plan(ms, [0], 2, 0.01, map_steps=20, only=["map-clip", "mala"])
    assert plan.short_rows == {"mala": 60} and plan.floor_budget == 0.017  # 6000 × 0.017 = 102 ≥ 100
    assert make_plan(ms, [0], 2, 0.01, map_steps=20, only=["map-clip"]).floor_budget is None


def test_metrics_json_and_the_page_carry_the_notice(ms):
    plan = make_plan(ms, [0], 2, 0.002, map_steps=20, only=["map-clip", "mala", "hmc"])
    r = record(ms, plan)
    assert schema_errors(r) == []
    floor = r["settings"]["iteration_floor"]
    assert floor["short_rows"] == {"mala": 12, "hmc": 2} and floor["floor_budget"] == 0.166
    assert floor["notice"] == (
        "These verdicts rest on too few iterations: the MCMC rows mala (12), hmc (2) ran fewer than 100 "
        "iterations per chain, too few for dual averaging's warm-up and for the chains to leave their "
        "starting codes; --budget 0.166 or more (with these settings) gives every MCMC row at least 100."
    )
    blocks = build_document(r)
    notices = [
        b
        for b in blocks
        if isinstance(b, Para) and b.text.startswith("**Note:** These verdicts rest on too few")
    ]
    assert notices == [Para(f"**Note:** {floor['notice']}")]
    assert blocks.index(notices[0]) == 2  # right under the settings, above the verdicts
    assert not any(
        isinstance(b, Para) and "too few iterations" in b.text
        for b in build_document(record(ms, make_plan(ms, [0], 2, 1.0, map_steps=20)))
    )


def test_the_record_must_say_whether_rows_are_short(ms):
    r = record(ms, make_plan(ms, [0], 2, 0.01, map_steps=20))
    r["settings"]["iteration_floor"].pop("notice")
    assert schema_errors(r) == [
        "settings.iteration_floor.notice: expected a string or null, got nothing (the key is missing)"
    ]
