"""The commands as a user first types them: nothing but what the command requires, on the embedded set.

Every other test sets chains, steps or budgets small; the defaults (4 chains, the published step counts,
the quick report's 3 classes × 3 chains) went untested, and the parity gate failed at 4 chains unseen.
"""

from __future__ import annotations

import json

import pytest

from repro.cli import main
from repro.modelsets import REPO_MODELS
from repro.samplers import METHODS

pytestmark = pytest.mark.skipif(
    not (REPO_MODELS / "embedded" / "manifest.json").exists(), reason="the embedded model set is not built"
)


@pytest.mark.parametrize("method", ["map-clip", "mala"])
def test_sample_at_its_defaults(tmp_path, method, capsys):
    out = tmp_path / "out"
    assert main(["sample", "--class", "0", "--method", method, "-o", str(out)]) == 0, capsys.readouterr().err
    record = json.loads((out / "run.json").read_text())
    assert record["models"] == "embedded" and record["chains"] == 4
    assert record["steps"] == METHODS[method].published_steps
    assert all(c["passed"] for c in record["parity"] if c["gates"])
    assert len(list(out.glob("chain_*.png"))) == 4


def test_parity_at_its_defaults(capsys):
    assert main(["parity"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert out.count("PASS") == 7 and "FAIL" not in out


@pytest.mark.slow
def test_the_quick_report_of_the_readme(tmp_path, capsys):
    """The README's first command: `repro report --quick -o report`."""
    out = tmp_path / "report"
    assert main(["report", "--quick", "-o", str(out)]) == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["quick"] is True and len(metrics["settings"]["classes"]) == 3
    assert all(t["ours"]["n"] > 0 for t in metrics["table2"])
    assert (out / "index.html").exists()
    # the -prior rows' prior: both forms and the paper's N(0, I) measured, the lowest-KID form chosen
    priors = metrics["priors"]
    table = {m["prior"]: m for m in priors["realism"]}
    assert list(table) == ["N(0, I)", "diagonal", "full"]
    assert table[priors["form"]]["chosen"] and sum(m["chosen"] for m in table.values()) == 1
    assert table[priors["form"]]["kid"] == min(table["diagonal"]["kid"], table["full"]["kid"])
    prior_rows = [r for r in metrics["rows"] if r["key"].endswith("-prior")]
    assert prior_rows and all(r["prior"]["form"] == priors["form"] for r in prior_rows)
    assert "## Priors: how real their own draws look" in (out / "report.md").read_text()
    # every step dual averaging froze is a tuned one: the rows beyond the paper (300 gradients, warm-up 75)
    # once froze a step of 1 when a mass window closed at warm-up's end, and accepted 0.000–0.003
    rows = [r for r in metrics["rows"] if r["tuning"] == "dual averaging"]
    tuned = {r["key"]: r["metrics"]["acceptance"]["mean"] for r in rows}
    assert len(tuned) > 10 and min(tuned.values()) > 0.3, tuned


def test_the_readme_commands_on_units_starts_and_ppgn(tmp_path, capsys, monkeypatch):
    """The README's "Any unit, any start, chains as they go" commands, as written (4 chains, published
    steps), with a held-out image of the embedded data set as the photo."""
    from repro.evaluate.real_images import real_images
    from repro.images import save_png, to_display
    from repro.modelsets import resolve

    monkeypatch.chdir(tmp_path)
    save_png("photo.png", to_display(real_images(resolve("embedded"), 4, 1, stream=7)[0]))
    commands = [
        "sample --models embedded --target conv3:11@3,3 --method map-clip -o conv3_11",
        "encode --models embedded photo.png -o start.npy",
        "sample --models embedded --class 4 --method mala --tuning dual-averaging --init-codes start.npy "
        "-o from_photo",
        "sample --models embedded --class 4 --method ppgn-released --save-every 20 --threshold 0.9 -o ppgn",
    ]
    for command in commands:
        assert main(command.split()) == 0, (command, capsys.readouterr().err)
    unit = json.loads((tmp_path / "conv3_11" / "run.json").read_text())
    assert unit["target"] == "conv3:11@3,3" and unit["steps"] == 200 and unit["chains"] == 4
    assert (
        json.loads((tmp_path / "from_photo" / "run.json").read_text())["init"]["from"]
        == "--init-codes start.npy"
    )
    ppgn = json.loads((tmp_path / "ppgn" / "run.json").read_text())
    assert ppgn["steps"] == 201 and all(s["p_class"] > 0.9 for s in ppgn["saved"])
    assert sorted({s["sheet"] for s in ppgn["saved"]}) == sorted(
        p.name for p in (tmp_path / "ppgn").glob("*_states.png")
    )
