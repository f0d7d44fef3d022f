"""Real starts: `repro encode` (a set's encoder) and `repro sample --init-image / --init-codes`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from repro.cli import main
from repro.evaluate.real_images import read_images, real_images
from repro.images import save_png, to_display
from repro.modelsets import resolve
from repro.posterior import posterior_model
from repro.runtime import make_backend
from repro.samplers.initial import initial_codes
from tests.test_sample_resume import Killed, assert_same, counting, outputs

HELD_OUT_STREAM = 7  # draws of the procedural data set apart from the report's (0, 1) and the prior's (2)


@pytest.fixture(scope="module")
def embedded():
    return resolve("embedded")


@pytest.fixture(scope="module")
def held_out(embedded, tmp_path_factory):
    """Two held-out images of each of four classes, as PNG files."""
    folder = tmp_path_factory.mktemp("held_out")
    files = []
    for k in range(4):
        for i, image in enumerate(real_images(embedded, k, 2, stream=HELD_OUT_STREAM)):
            files.append(folder / f"class{k}_{i}.png")
            save_png(files[-1], to_display(image))
    return files


def test_encode_then_generate_reconstructs_held_out_images(embedded, held_out, tmp_path, capsys):
    out = tmp_path / "codes.npy"
    assert main(["encode", "--models", "embedded", *map(str, held_out), "-o", str(out)]) == 0
    assert f"wrote {out}: {len(held_out)} codes of 512 units" in capsys.readouterr().out
    codes = np.load(out)
    assert codes.shape == (len(held_out), 512) and codes.dtype == np.float32 and (codes >= 0).all()
    backend = make_backend("ort", posterior_model(embedded, "log_softmax", 1.0))
    real = read_images(embedded, held_out)
    prior_codes = initial_codes(0, len(held_out), 512)
    err = {
        name: float(np.sqrt(np.mean((backend.images(z) - real) ** 2)))
        for name, z in {"encoded": codes, "N(0, I)": prior_codes}.items()
    }
    recon = backend.images(codes).reshape(len(codes), -1)
    distance = np.linalg.norm(recon[:, None, :] - real.reshape(len(real), -1)[None], axis=2)
    own = float(np.mean(np.argmin(distance, axis=1) == np.arange(len(real))))
    print(
        f"RMS error against {len(held_out)} held-out images (0-255 scale): {err}; nearest is its own: {own}"
    )
    assert err["encoded"] < 0.75 * err["N(0, I)"]
    assert own >= 0.75  # a reconstruction looks like its own image, not like any image of the data set


def _sample_args(out, *extra, method="mala", chains=2, steps=None):
    return [
        "sample",
        "--models",
        "embedded",
        "--class",
        "2",
        "--method",
        method,
        "--chains",
        str(chains),
        *([] if steps is None else ["--steps", str(steps)]),
        *extra,
        "-o",
        str(out),
    ]


def test_init_image_is_where_every_chain_starts(held_out, tmp_path, capsys):
    codes = tmp_path / "codes.npy"
    assert main(["encode", "--models", "embedded", str(held_out[0]), "-o", str(codes)]) == 0
    out = tmp_path / "map"
    assert main(_sample_args(out, "--init-image", str(held_out[0]), method="map-clip", steps=1)) == 0
    with np.load(out / "samples.npz") as f:
        start = f["z_image"]  # MAP's image is the code at the start of its last (here its only) step
    np.testing.assert_array_equal(start, np.repeat(np.load(codes), 2, axis=0))
    record = json.loads((out / "run.json").read_text())
    assert record["init"]["from"] == f"--init-image {held_out[0].name}"
    from_codes = tmp_path / "from_codes"
    assert main(_sample_args(from_codes, "--init-codes", str(codes), method="map-clip", steps=1)) == 0
    with np.load(from_codes / "samples.npz") as f:
        np.testing.assert_array_equal(f["z_image"], start)
    assert json.loads((from_codes / "run.json").read_text())["init"]["codes"] == record["init"]["codes"]


def test_a_killed_run_from_an_image_continues_bit_for_bit(held_out, tmp_path, monkeypatch):
    start = ["--init-image", str(held_out[3]), "--steps", "60"]  # checkpoints at steps 25 and 50
    calls = counting(monkeypatch)
    assert main(_sample_args(tmp_path / "whole", *start)) == 0
    expected, full_calls = outputs(tmp_path / "whole"), calls.n
    out = tmp_path / "killed"
    counting(monkeypatch, die_after=full_calls * 3 // 5)
    with pytest.raises(Killed):
        main(_sample_args(out, *start))
    calls = counting(monkeypatch)
    assert main(_sample_args(out, *start)) == 0
    assert calls.n < full_calls
    assert_same(outputs(out), expected)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--init-image", "{text}"], "--init-image: {text}: not an image file"),
        (["--init-image", "{missing}"], "--init-image: {missing}: cannot read the image"),
        (["--init-codes", "{text}"], "--init-codes {text}: not a .npy file of numbers"),
        (
            ["--init-codes", "{wrong}"],
            "expected numbers of shape [512], [1, 512] or [2, 512] (--chains 2), got",
        ),
        (["--init-codes", "{nan}"], "holds NaN or inf"),
        (["--init-codes", "{wrong}", "--init-image", "{text}"], "give one of them"),
        (["--models", "random", "--init-image", "{image}"], "model set random has no encoder"),
    ],
)
def test_bad_starts_exit_2_in_one_line(held_out, tmp_path, capsys, extra, message):
    paths = {
        "text": tmp_path / "notes.txt",
        "missing": tmp_path / "nowhere.png",
        "wrong": tmp_path / "wrong.npy",
        "nan": tmp_path / "nan.npy",
        "image": held_out[0],
    }
    paths["text"].write_text("not an image")
    np.save(paths["wrong"], np.zeros((3, 512), np.float32))
    np.save(paths["nan"], np.full(512, np.nan, np.float32))
    fill = {key: str(path) for key, path in paths.items()}
    argv = _sample_args(tmp_path / "out", *[a.format(**fill) for a in extra], steps=2)
    if "--models" in extra:  # the later --models wins: drop the default one
        argv = argv[:1] + argv[3:]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message.format(**fill) in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_encode_refuses_what_it_cannot_write(held_out, tmp_path, capsys):
    assert main(["encode", str(held_out[0]), "-o", str(tmp_path / "codes.txt")]) == 2
    assert "name one ending in .npy" in capsys.readouterr().err
    assert main(["encode", "--models", "random", str(held_out[0]), "-o", str(tmp_path / "c.npy")]) == 2
    assert "model set random has no encoder" in capsys.readouterr().err
    assert not (tmp_path / "c.npy").exists()
