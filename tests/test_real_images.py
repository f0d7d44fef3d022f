"""Real images for the feature-space metrics: the `--real-images DIR/<class index>/` folder read into the
generator's space, and a report that compares each class with them."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from repro.cli import main
from repro.errors import BadInput
from repro.evaluate.real_images import real_images
from repro.modelsets import resolve
from tests.test_report import write_tiny_set


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_set(tmp_path_factory.mktemp("tiny") / "set")


def folder_of(root, classes, per_class=5, seed=0):
    rng = np.random.default_rng(seed)
    for k in classes:
        (root / str(k)).mkdir(parents=True)
        for j in range(per_class):
            pixels = rng.integers(0, 256, size=(30 + j, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / str(k) / f"{j}.png")
    return root


def test_a_uniform_image_becomes_its_colour_minus_the_mean(tiny, tmp_path):
    ms = dataclasses.replace(resolve(str(tiny)), real_images=tmp_path)
    (tmp_path / "1").mkdir()
    Image.new("RGB", (50, 20), (10, 200, 30)).save(tmp_path / "1" / "a.png")
    (tmp_path / "1" / "notes.txt").write_text("not an image, and not read")
    images = real_images(ms, 1, 8)
    size = ms.crop_size + 2 * ms.crop_offset
    assert images.shape == (1, 3, size, size)
    bgr = np.array([30.0, 200.0, 10.0]) - np.asarray(ms.mean_bgr)
    np.testing.assert_allclose(images[0], np.broadcast_to(bgr[:, None, None], images[0].shape), atol=1e-4)
    assert real_images(ms, 0, 8) is None  # no folder for class 0


def test_a_broken_image_file_names_itself(tiny, tmp_path):
    ms = dataclasses.replace(resolve(str(tiny)), real_images=tmp_path)
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(BadInput, match=r"--real-images: .*x\.jpg: not an image file"):
        real_images(ms, 0, 4)


def test_a_report_with_real_images_measures_kid_fd_precision_recall(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    real = folder_of(tmp_path / "real", [0, 1])
    out = tmp_path / "out"
    args = [
        "report",
        "--models",
        str(tiny),
        "--quick",
        "--chains",
        "3",
        "--budget",
        "0.01",
        "--map-steps",
        "20",
    ]
    args += ["--classes", "0,1", "--rows", "map-clip,mala", "--real-images", str(real), "-o", str(out)]
    assert main(args) == 0
    r = json.loads((out / "metrics.json").read_text())
    assert [row["key"] for row in r["rows"]] == ["map-clip", "mala"]
    for row in r["rows"]:
        for key in ("kid", "fd", "precision", "recall"):
            assert row["metrics"][key]["n"] == 2, (row["key"], key)  # one value per class
        assert 0 <= row["metrics"]["precision"]["mean"] <= 1 and row["metrics"]["fd"]["mean"] > 0
    assert r["reference"]["label"] == "real images (the --real-images folder)"
    assert r["reference"]["metrics"]["kid"]["n"] == 0  # the folder's images against themselves: left empty
    # other real images are another model set identity: nothing of the first run is reused
    other = folder_of(tmp_path / "other", [0, 1], seed=1)
    assert main([*args[:-4], "--real-images", str(other), "-o", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["cells"]["reused"] == 0
