"""`repro sample --save-every N [--threshold P]`: every N-th state of each chain on a contact sheet."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from repro.cli import main
from repro.evaluate.image_metrics import softmax
from repro.images import to_display
from repro.modelsets import resolve
from repro.posterior import posterior_model
from repro.runtime import make_backend

STEPS, EVERY, CLASS = 40, 5, 1
PAD = 2  # repro.images.grid's


def _args(out, *extra):
    base = ["sample", "--models", "embedded", "--class", str(CLASS), "--method", "mala", "--chains", "3"]
    return [*base, "--tuning", "dual-averaging", "--steps", str(STEPS), *extra, "-o", str(out)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    assert main(_args(root / "plain")) == 0
    assert main(_args(root / "every", "--save-every", str(EVERY))) == 0
    assert main(_args(root / "kept", "--save-every", str(EVERY), "--threshold", "0.3")) == 0
    return root


def _arrays(folder):
    with np.load(folder / "samples.npz") as f:
        return {k: f[k] for k in f.files}


def test_saving_changes_no_draw(runs):
    plain, every = _arrays(runs / "plain"), _arrays(runs / "every")
    for key in ("z", "logp", "accepted", "images"):
        np.testing.assert_array_equal(plain[key], every[key], err_msg=key)
    np.testing.assert_array_equal(every["samples"], plain["samples"][EVERY - 1 :: EVERY])


def test_every_nth_state_is_on_its_chains_sheet(runs):
    record = json.loads((runs / "every" / "run.json").read_text())
    n = STEPS // EVERY
    assert [(s["chain"], s["step"]) for s in record["saved"]] == [
        (c, (j + 1) * EVERY) for j in range(n) for c in range(3)
    ]
    assert record["settings"]["save"] == {"every": EVERY, "threshold": None}
    samples = _arrays(runs / "every")["samples"]
    backend = make_backend("ort", posterior_model(resolve("embedded"), "log_softmax", 1.0))
    p = np.stack([softmax(backend.logits(z.astype(np.float32)))[:, CLASS] for z in samples])
    np.testing.assert_allclose([s["p_class"] for s in record["saved"]], p.reshape(-1), rtol=1e-6)
    for chain in range(3):
        sheet = np.asarray(Image.open(runs / "every" / f"chain_{chain:03d}_states.png"))
        tiles = [to_display(backend.images(z.astype(np.float32))[chain]) for z in samples]
        h, w = tiles[0].shape[:2]
        scale = sheet.shape[1] // (min(10, n) * (w + PAD) + PAD)
        assert scale == 2 and sheet.shape[0] == scale * (-(-n // 10) * (h + PAD) + PAD)
        for i, tile in enumerate(tiles):
            r, c = divmod(i, 10)
            y, x = scale * (PAD + r * (h + PAD)), scale * (PAD + c * (w + PAD))
            np.testing.assert_array_equal(sheet[y : y + scale * h : scale, x : x + scale * w : scale], tile)


def test_threshold_keeps_the_states_above_it(runs):
    every = json.loads((runs / "every" / "run.json").read_text())["saved"]
    kept = json.loads((runs / "kept" / "run.json").read_text())["saved"]
    assert kept == [s for s in every if s["p_class"] > 0.3]
    assert 0 < len(kept) < len(every)  # the threshold bites and keeps some: the check can fail both ways
    sheets = sorted(p.name for p in (runs / "kept").glob("*_states.png"))
    assert sheets == sorted({s["sheet"] for s in kept})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold", "0.5"], "give --save-every N too"),
        (["--save-every", "5", "--threshold", "1.5"], "expected a probability in [0, 1), got 1.5"),
        (["--save-every", "1", "--steps", "500"], "use --save-every 2 or more"),
    ],
)
def test_bad_saving_exits_2_in_one_line(tmp_path, capsys, extra, message):
    capsys.readouterr()
    assert main(_args(tmp_path / "out", *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_threshold_needs_a_class(tmp_path, capsys):
    argv = ["sample", "--models", "embedded", "--target", "fc6:3", "--method", "map", "--steps", "4"]
    assert main([*argv, "--save-every", "2", "--threshold", "0.5", "-o", str(tmp_path / "out")]) == 2
    assert "give --class K" in capsys.readouterr().err
