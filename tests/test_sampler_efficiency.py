"""tools/sampler_efficiency: every method at equal cost from the same starts, its table paired by seed with
MALA (dual averaging), and bad options refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.sampler_efficiency import (
    N_COMPONENTS,
    REFERENCE,
    REFERENCE_LENGTH,
    STATIONARY_RHAT,
    main,
    markdown,
    principal_directions,
    table,
)

REPO = Path(__file__).resolve().parents[1]


def test_methods_compare_at_equal_cost_and_pair_with_mala(tmp_path, capsys):
    out = tmp_path / "efficiency.json"
    args = ["--gradients", "120", "--seeds", "2", "--chains", "2", "--betas", "1", "--methods"]
    assert main([*args, "hmc-jitter,mala-mass,ghmc,mclmc", "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    assert Image.open(out.with_suffix(".png")).size[0] > 300
    printed = capsys.readouterr().out
    assert {(r["prior"], r["method"]) for r in result["table"]} == {
        (p, m) for p in ("standard", "fitted") for m in ("mala", "hmc-jitter", "mala-mass", "ghmc", "mclmc")
    }
    for r in result["rows"]:
        # warm-up included, the initial gradient too: every iteration of every method costs what it is priced
        assert r["n_grad"] == 121, r
        assert 0 < r["ess_bulk_per_grad"] and r["worst_summary"]
        # HMC's length ε·L̄, GHMC's one step ε: what a gradient moves a chain
        assert (r["trajectory"] is None) == (r["method"] in ("mala", "mala-mass")), r
    for r in result["table"]:
        if r["method"] == "mala":
            assert r["ratio_median"] == r["ratio_min"] == r["ratio_max"] == 1.0
        assert f"| {r['prior']} | {r['method']} |" in printed
    assert {r["worst_summary"] for r in result["rows"]} <= {
        "logp", "sq_norm", "log_likelihood", *(f"projection_{j}" for j in range(3)),
        *(f"principal_{j}" for j in range(3)),
    }  # fmt: skip


def test_beta_zero_is_the_standard_normal_alone_each_kernels_ceiling(tmp_path, capsys, monkeypatch):
    """β 0: the chains run on N(0, I) in closed form (the nets are never built, the fitted prior never
    chosen), with no likelihood to summarise, and the table says what the row is. There mclmc's ESS per
    gradient is about 4× MALA's (4.05–4.70× at these settings, D = 512): the most it reaches on a target
    of this size."""
    import tools.sampler_efficiency as tool

    monkeypatch.setattr(tool, "make_backend", lambda *a, **k: pytest.fail("β 0 built the nets"))
    monkeypatch.setattr(tool, "fitted_prior", lambda *a, **k: pytest.fail("β 0 chose a fitted prior"))
    out = tmp_path / "efficiency.json"
    args = ["--betas", "0", "--gradients", "2000", "--seeds", "2", "--methods", "mclmc", "-o", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert {(r["beta"], r["prior"], r["method"]) for r in result["rows"]} == {
        (0.0, "standard", "mala"), (0.0, "standard", "mclmc")
    }  # fmt: skip
    assert all(r["worst_summary"] != "log_likelihood" for r in result["rows"])
    mclmc = next(r for r in result["table"] if r["method"] == "mclmc")
    assert mclmc["ratio_min"] > 3.0, mclmc
    assert "β 0: N(0, I) alone" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "map-clip"], "--methods: 'map-clip' is not an MCMC method"),
        (["--betas", "1,x"], "--betas: expected comma-separated float values"),
        (["--betas", "-1"], "--betas: expected finite values ≥ 0"),
        (["--betas", "0", "--priors", "fitted"], "--betas 0 runs under the standard prior only"),
        (["--priors", "wide"], "--priors: expected standard and/or fitted"),
        (["--seeds", "1"], "--seeds and --chains: at least 2"),
        (["--class", "99"], "class index 99 is outside"),
        (["-o", "/nonexistent/folder/e.json"], "its folder does not exist"),
        (["-o", "/tmp/e.txt"], "expected a .json file"),
        (["-o", str(REPO / "models" / "embedded" / "manifest.json")], "inside model set embedded's folder"),
    ],
)
def test_bad_options_are_refused_in_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def _row(method: str, prior: str, seed: int, rhat: float) -> dict:
    return {"beta": 10.0, "prior": prior, "method": method, "seed": seed, "rhat_max": rhat,
            "acceptance": 0.6, "step": 0.05, "trajectory": None, "ess_bulk_per_grad": 0.003,
            "ess_tail_per_grad": 0.004, "worst_summary": "principal_0", "ess_per_second": 0.1}  # fmt: skip


def test_a_baseline_not_yet_stationary_is_named_under_the_table_seed_by_seed():
    """Ratios against a MALA that had not converged credit a sampler's faster start as faster mixing (at
    β = 10 under the fitted prior, 3.5–4.8× at 2000 gradients became 1.4–1.5× at 6000): the table names
    each seed whose MALA had not, even where the median R̂ over seeds looks converged (at 6000 gradients
    seed 1's R̂ was 1.262 beside 1.025 and 1.035, and its ratios read 13× and 19×)."""
    rhats = {("standard", "mala"): [1.01, 1.02, 1.03], ("standard", "ghmc"): [1.3, 1.3, 1.3],
             ("fitted", "mala"): [1.025, 1.262, 1.035], ("fitted", "ghmc"): [1.01, 1.01, 1.01]}  # fmt: skip
    rows = [
        _row(method, prior, seed, rhat)
        for (prior, method), values in rhats.items()
        for seed, rhat in enumerate(values)
    ]
    text = markdown({"table": table(rows)})
    warnings = [line for line in text.splitlines() if "had not converged" in line]
    assert len(warnings) == 1, text  # ghmc is not the baseline: not named
    head = f"β 10, fitted prior: mala's max R̂ was above {STATIONARY_RHAT} on seed 1 (1.262)"
    assert warnings[0].startswith(head), text
    assert "more --gradients" in warnings[0]


def test_the_principal_directions_are_a_reference_runs_not_the_compared_runs(tmp_path):
    """A method's row must not depend on which methods it is compared with: the directions come from a run
    of their own (REFERENCE, from a seed no compared run uses), not from the compared runs' draws pooled."""
    rows = {}
    for methods in ("mala", "mala,ghmc"):
        out = tmp_path / f"{methods.replace(',', '_')}.json"
        args = ["--gradients", "120", "--seeds", "2", "--chains", "2", "--betas", "1", "--priors", "standard"]
        assert main([*args, "--methods", methods, "-o", str(out)]) == 0
        result = json.loads(out.read_text())
        assert result["reference"] == {"method": REFERENCE, "gradients": REFERENCE_LENGTH * 120, "seed": 2}
        rows[methods] = [r for r in result["rows"] if r["method"] == "mala"]
    for alone, beside in zip(rows["mala"], rows["mala,ghmc"], strict=True):
        assert alone["ess_bulk_per_grad"] == beside["ess_bulk_per_grad"]
        assert alone["worst_summary"] == beside["worst_summary"]


def test_principal_directions_are_the_covariances_top_eigenvectors():
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    stds = np.array([5.0, 3.0, 2.0, 0.5, 0.3, 0.1])
    draws = (rng.standard_normal((4000, 3, 6)) * stds) @ basis.T + 7.0
    found = principal_directions(draws)
    overlap = np.abs(found.T @ basis[:, :N_COMPONENTS])
    np.testing.assert_allclose(overlap, np.eye(N_COMPONENTS), atol=0.02)
