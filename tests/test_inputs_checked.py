"""Every input a command reads is checked before its first sampler call, and the scorers must fit the set.

Each case exits 2 with one line naming the file, field or option, the expected and the actual, and samples
nothing (`repro.samplers.sample` fails the test if called); a real-image folder that is only partly usable is
used, with a notice on stderr and in metrics.json naming the classes it lacks.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repro import caffe
from repro.cli import main
from tests.test_manifest_schema import edit
from tests.test_report import EVALUATOR, _conv_net, write_tiny_set

QUICK = ["--chains", "2", "--budget", "0.002", "--map-steps", "20"]


@pytest.fixture(scope="module")
def tiny_original(tmp_path_factory):
    return write_tiny_set(tmp_path_factory.mktemp("tiny") / "set")


@pytest.fixture
def tiny(tiny_original, tmp_path, monkeypatch):
    """A fresh copy of the tiny set, free to break; its conversions cached apart from the user's."""
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    return Path(shutil.copytree(tiny_original, tmp_path / "set"))


@pytest.fixture
def no_sampling(monkeypatch):
    def sample(*args, **kwargs):
        raise AssertionError("a sampler ran before the inputs were checked")

    monkeypatch.setattr("repro.samplers.sample", sample)


def refused(capsys, args: list[str]) -> str:
    """The command exits 2 within seconds with one line on stderr, no traceback; returns that line."""
    started = time.perf_counter()
    assert main(args) == 2
    assert time.perf_counter() - started < 30
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def report(tiny: Path, out: Path, *extra: str) -> list[str]:
    return ["report", "--models", str(tiny), "--classes", "0,1", *QUICK, *extra, "-o", str(out)]


def sample_args(tiny: Path, out: Path, *extra: str) -> list[str]:
    args = ["sample", "--models", str(tiny), "--class", "0", "--method", "map", "--chains", "2"]
    return [*args, "--steps", "3", *extra, "-o", str(out)]


def images(folder: Path, n: int, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for j in range(n):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(folder / f"{j}.png")
    return folder


def write_net(root: Path, name: str, text: str) -> list[str]:
    net = caffe.parse_net_text(text, source=name)
    caffe.random_weights(net, seed=5)
    caffe.write_net(net, root / f"{name}.prototxt", root / f"{name}.caffemodel")
    return [str(root / f"{name}.prototxt"), str(root / f"{name}.caffemodel")]


# --- 3. real images, clip bounds, judge and evaluator: read before the first sampler call ------------------


def test_a_non_image_file_in_a_class_folder_is_named(tiny, tmp_path, capsys, no_sampling):
    real = tmp_path / "real"
    images(real / "0", 2)
    images(real / "1", 2)
    (real / "1" / "notes.txt").write_text("not an image")
    err = refused(capsys, report(tiny, tmp_path / "out", "--real-images", str(real)))
    assert err == (
        f"error: --real-images: {real / '1' / 'notes.txt'}: not a .jpg, .jpeg or .png image file; a class "
        f"folder {real}/<class index>/ may hold only images"
    )
    assert not (tmp_path / "out").exists()


def test_a_broken_image_is_named(tiny, tmp_path, capsys, no_sampling):
    real = tmp_path / "real"
    images(real / "0", 2)
    images(real / "1", 2)
    (real / "1" / "2.jpg").write_bytes(b"not a jpeg")
    err = refused(capsys, report(tiny, tmp_path / "out", "--real-images", str(real)))
    assert err.startswith(f"error: --real-images: {real / '1' / '2.jpg'}: not an image file (")
    assert not (tmp_path / "out").exists()


def test_a_folder_without_class_subfolders_is_refused(tiny, tmp_path, capsys, no_sampling):
    real = tmp_path / "real"
    images(real / "cats", 2)
    (real / "README.txt").write_text("ImageNet val, by synset")
    err = refused(capsys, report(tiny, tmp_path / "out", "--real-images", str(real)))
    assert err == (
        f"error: --real-images {real}: no <class index>/ subfolder for any of the report's classes 0, 1 (it "
        f"holds README.txt, cats/); put each class's images in {real}/<class index>/"
    )
    assert not (tmp_path / "out").exists()


def test_a_folder_without_images_is_refused(tiny, tmp_path, capsys, no_sampling):
    real = tmp_path / "real"
    (real / "0").mkdir(parents=True)
    (real / "1").mkdir()
    images(real / "2", 2)  # not a class of this report
    err = refused(capsys, report(tiny, tmp_path / "out", "--real-images", str(real)))
    assert err == (
        f"error: --real-images {real}: no .jpg, .jpeg or .png images in the subfolders of the report's "
        "classes 0, 1"
    )
    assert not (tmp_path / "out").exists()


def test_a_partly_usable_folder_is_used_with_a_notice(tiny, tmp_path, capsys):
    real = tmp_path / "real"
    images(real / "0", 3)
    (real / "0" / ".DS_Store").write_bytes(b"\0")  # hidden: skipped
    out = tmp_path / "out"
    started = time.perf_counter()
    assert main(report(tiny, out, "--rows", "map-clip", "--real-images", str(real))) == 0
    assert time.perf_counter() - started < 60
    err = capsys.readouterr().err
    notice = (
        f"--real-images {real} has no images of class 1 (beta): the real-image row leaves it out, and its "
        "KID, FD, precision and recall are empty"
    )
    assert f"notice: {notice}\n" in err and "Traceback" not in err
    r = json.loads((out / "metrics.json").read_text())
    ref = r["reference"]
    assert ref["notice"] == notice
    assert ref["images_found"] == {"0": 3, "1": 0}
    assert ref["images_per_class"] == 3  # found: 3 of the 4 asked for
    assert ref["metrics"]["target_confidence"]["n"] == 3  # class 0's three images only
    (row,) = r["rows"]
    per_class = {c["class_index"]: c["metrics"] for c in row["per_class"]}
    assert per_class[0]["kid"] is not None and per_class[1]["kid"] is None
    assert notice in (out / "report.md").read_text()


def test_bad_clip_bounds_stop_a_report_before_sampling(tiny, tmp_path, capsys, no_sampling):
    (tiny / "bounds.txt").write_text("1 2 3\n")
    # mala does not clip: the bounds were read only to measure the first cell's codes, after its sampling
    err = refused(capsys, report(tiny, tmp_path / "out", "--rows", "mala"))
    assert err == f"error: bounds file {tiny / 'bounds.txt'}: expected 16 numbers (one per unit), got 3"
    assert not (tmp_path / "out").exists()


def test_bad_clip_bounds_stop_a_sample_before_any_model_is_converted(tiny, tmp_path, capsys, monkeypatch):
    bounds = tmp_path / "bounds.txt"
    bounds.write_text("1 2 -3 " + "1 " * 13 + "\n")

    def convert(*args, **kwargs):
        raise AssertionError("a model was converted before the bounds were read")

    monkeypatch.setattr("repro.sample_job.posterior_model", convert)
    args = sample_args(tiny, tmp_path / "out", "--clip-bounds", str(bounds))
    args[args.index("map")] = "map-clip"
    err = refused(capsys, args)
    assert err == (
        f"error: bounds file {bounds}: expected finite upper bounds >= 0 (the lower bound is 0), got -3.0 at "
        "unit 2"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["report", "sample"])
def test_a_broken_judge_stops_before_sampling(tiny, tmp_path, capsys, no_sampling, command):
    judge = tmp_path / "judge"
    judge.mkdir()
    make = report if command == "report" else sample_args
    err = refused(capsys, make(tiny, tmp_path / "out", "--judge", str(judge)))
    assert str(judge) in err
    assert not (tmp_path / "out").exists()


# --- 4. the scorers fit the set ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["report", "sample"])
def test_the_generator_given_as_evaluator_is_refused(tiny, tmp_path, capsys, no_sampling, command):
    make = report if command == "report" else sample_args
    files = [str(tiny / "generator.prototxt"), str(tiny / "generator.caffemodel")]
    err = refused(capsys, make(tiny, tmp_path / "out", "--evaluator", *files))
    assert err == (
        f'error: evaluator {files[0]}: input blob "feat" has shape [1, 16]; expected square colour images '
        "[N, 3, S, S]: the evaluator scores the generator's images (is this the evaluator's prototxt?)"
    )
    assert not (tmp_path / "out").exists()


def test_an_evaluator_as_wide_as_another_label_set_is_refused(tiny, tmp_path, capsys, no_sampling):
    files = [str(tiny / "evaluator.prototxt"), str(tiny / "evaluator.caffemodel")]
    args = report(tiny, tmp_path / "out", "--evaluator", *files, "--evaluator-blobs", "feat,conv")
    err = refused(capsys, args)
    assert err == (
        f'error: evaluator {files[0]}: logits blob "feat" has 8 values per image (shape [1, 8]), but model '
        "set tiny has 3 classes: the logits must be the class scores, one per class; name the class scores "
        "and the features with --evaluator-blobs LOGITS,FEATURES"
    )


def test_a_manifest_evaluator_of_the_wrong_width_is_refused(tiny, tmp_path, capsys, no_sampling):
    path = edit(tiny, lambda m: m["evaluator"].update(logits="feat"))
    err = refused(capsys, report(tiny, tmp_path / "out"))
    assert err == (
        f'error: {path}: evaluator.logits "feat" has 8 values per image (shape [1, 8]), but model set tiny '
        "has 3 classes: the logits must be the class scores, one per class"
    )


def test_a_manifest_classifier_naming_a_hidden_blob_is_refused(tiny, tmp_path, capsys, no_sampling):
    path = edit(tiny, lambda m: m["classifier"].update(logits="conv"))
    err = refused(capsys, sample_args(tiny, tmp_path / "out"))
    assert err == (
        f'error: {path}: classifier.logits "conv" has 150 values per image (shape [1, 6, 5, 5]), but model '
        "set tiny has 3 classes: the logits must be the class scores, one per class"
    )
    assert not (tmp_path / "out").exists()


def test_an_evaluator_whose_features_are_not_one_vector_per_image_is_refused(
    tiny, tmp_path, capsys, no_sampling
):
    flat = (
        'layer { name: "flat" type: "Reshape" bottom: "feat" top: "flat" '
        "reshape_param { shape { dim: -1 } } }"
    )
    files = write_net(tmp_path, "flat_evaluator", EVALUATOR + flat)
    err = refused(
        capsys, report(tiny, tmp_path / "out", "--evaluator", *files, "--evaluator-blobs", "logits,flat")
    )
    assert err == (
        f'error: evaluator {files[0]}: features blob "flat" has shape [8]; expected one feature vector per '
        "image, [1, ...] as the input's batch; name the class scores and the features with --evaluator-blobs "
        "LOGITS,FEATURES"
    )


def test_an_evaluator_larger_than_the_generated_images_is_refused(tiny, tmp_path, capsys, no_sampling):
    head = (
        'layer { name: "logits" type: "InnerProduct" bottom: "conv" top: "logits" '
        "inner_product_param { num_output: 3 } }"
    )
    files = write_net(tmp_path, "big_evaluator", _conv_net("big", 20, head))
    err = refused(capsys, sample_args(tiny, tmp_path / "out", "--evaluator", *files))
    assert err == (
        f'error: evaluator {files[0]}: input blob "data" takes 20×20 images, larger than the 16×16 images '
        "model set tiny's generator draws"
    )


def test_sample_scores_its_images_with_the_evaluator(tiny, tmp_path):
    from repro.evaluate.image_metrics import ImageMetrics, as_saved, softmax
    from repro.modelsets import resolve

    files = [str(tiny / "classifier.prototxt"), str(tiny / "classifier.caffemodel")]
    out = tmp_path / "out"
    assert main(sample_args(tiny, out, "--no-parity-check", "--evaluator", *files)) == 0
    record = json.loads((out / "run.json").read_text())["evaluator"]
    assert (record["prototxt"], record["logits"], record["features"]) == (files[0], "fc8", "conv")
    with np.load(out / "samples.npz") as f:
        generated = f["images"]
    ms = resolve(str(tiny))
    from repro.modelsets import evaluator_files, with_scorers

    logits = ImageMetrics(with_scorers(ms, evaluator=evaluator_files(*files))).evaluator_outputs(
        as_saved(generated)
    )[0]
    assert record["prediction"] == np.argmax(logits, axis=1).tolist()
    assert record["accuracy"] == np.mean(np.argmax(logits, axis=1) == 0)
    np.testing.assert_allclose(record["p_class"], softmax(logits)[:, 0], rtol=1e-6)
    # the set's own evaluator is used the same way when none is given
    own = tmp_path / "own"
    assert main(sample_args(tiny, own, "--no-parity-check")) == 0
    assert json.loads((own / "run.json").read_text())["evaluator"]["logits"] == "logits"
