"""The shipped embedded model set: intact files, and nets that still do their jobs when read by repro.

Every net goes through the normal path (repro.caffe → repro.convert → ONNX Runtime; the judge through
repro.dcgan and repro.evaluate.judges, the paper's judge's path) and is measured on a FRESH procedural set (a
seed the training never used), so the manifest's numbers are re-checked, not trusted.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from repro import caffe
from repro.convert import to_onnx
from repro.data.procedural import CLASS_NAMES, make_dataset, to_caffe_input
from repro.dcgan import DcganFiles, judge_files, load_judge
from repro.evaluate.judges import make_judge
from repro.modelsets import from_manifest
from repro.runtime.ort import make_session
from tools.embedded.quality import detail_ratio

ROOT = Path(__file__).resolve().parents[1] / "models" / "embedded"
FRESH_SEED = 20240607
CAFFE_NETS = ("generator", "classifier", "evaluator")
# floors on the fresh set, below what the shipped set measures there (0.953, 0.567, 1.0); the set before the
# DeePSiM rebuild measured 0.72 and 0.11 on its held-out images, so it would fail the first two
RECOGNISED, DETAIL, REAL_OVER_NOISE = 0.9, 0.45, 0.95


@pytest.fixture(scope="module")
def manifest():
    return json.loads((ROOT / "manifest.json").read_text())


@pytest.fixture(scope="module")
def nets(manifest):
    """name → (ORT session, manifest entry); converted with a free batch dimension."""
    out = {}
    for name in CAFFE_NETS:
        entry = manifest[name]
        net = caffe.load_net(ROOT / entry["prototxt"], ROOT / entry["caffemodel"])
        model = to_onnx(
            net,
            dynamic_batch=True,
            outputs=sorted({v for k, v in entry.items() if k in ("output", "logits", "features")}),
        )
        onnx.checker.check_model(model)
        out[name] = (make_session(model, threads=2), entry)
    return out


@pytest.fixture(scope="module")
def fresh_rgb():
    return make_dataset(30, seed=FRESH_SEED)


@pytest.fixture(scope="module")
def fresh(manifest, fresh_rgb):
    images, labels = fresh_rgb
    return to_caffe_input(images, manifest["mean_bgr"]), labels


def run(nets, name, blob, x):
    session, entry = nets[name]
    return session.run([entry[blob]], {entry["input"]: np.ascontiguousarray(x, np.float32)})[0]


def crop(manifest, x):
    s, o = manifest["crop"]["size"], manifest["crop"]["offset"]
    return x[:, :, o : o + s, o : o + s]


def test_manifest_hashes_match_the_files(manifest):
    assert manifest["sha256"], "the manifest lists no files"
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256((ROOT / name).read_bytes()).hexdigest() == digest, name
    for name in CAFFE_NETS:
        for key in ("prototxt", "caffemodel"):
            assert manifest[name][key] in manifest["sha256"]
    judge = judge_files(ROOT / manifest["judge"]["dcgan"])
    assert len(judge) == 18  # the .jl index and the 17 parameter files it names
    for path in judge:
        assert path.relative_to(ROOT).as_posix() in manifest["sha256"]
    assert manifest["clip_bounds"] in manifest["sha256"]
    total = sum((ROOT / name).stat().st_size for name in manifest["sha256"])
    assert total < 20 * 2**20


def test_manifest_describes_the_set(manifest, nets):
    assert manifest["class_names"] == CLASS_NAMES
    assert manifest["crop"]["size"] + 2 * manifest["crop"]["offset"] == manifest["image_size"]
    gen_in = nets["generator"][0].get_inputs()[0]
    assert gen_in.name == "feat" and gen_in.shape[1] == manifest["generator"]["code_size"]
    bounds = np.loadtxt(ROOT / manifest["clip_bounds"])
    assert bounds.shape == (manifest["generator"]["code_size"],) and (bounds >= 0).all()
    ms = from_manifest(ROOT)  # the reader the rest of repro uses
    assert ms.generator.blobs["output"] == "deconv0" and ms.classifier.blobs["logits"] == "fc8"
    assert ms.judge is not None and ms.evaluator is not None and ms.clip_bounds.exists()
    assert (ms.crop_size, ms.crop_offset, ms.mean_bgr) == (56, 4, manifest["mean_bgr"])


def test_classifier_and_evaluator_recognise_fresh_images(manifest, nets, fresh):
    x, labels = fresh
    for name in ("classifier", "evaluator"):
        accuracy = (run(nets, name, "logits", crop(manifest, x)).argmax(1) == labels).mean()
        assert accuracy >= 0.9, f"{name}: accuracy {accuracy:.3f} on a fresh set"


def test_clip_bounds_are_three_standard_deviations_of_fc6(manifest, nets, fresh):
    x, _ = fresh
    codes = run(nets, "classifier", "features", crop(manifest, x))
    assert codes.min() >= 0  # post-ReLU code, the space the generator reads
    bounds = np.loadtxt(ROOT / manifest["clip_bounds"])
    live = bounds > 0.5
    ratio = 3 * codes.std(0)[live] / bounds[live]
    assert 0.7 < np.median(ratio) < 1.3


def test_generator_reconstructs_fresh_images(manifest, nets, fresh):
    x, _ = fresh
    codes = run(nets, "classifier", "features", crop(manifest, x))
    recon = run(nets, "generator", "output", codes)
    assert recon.shape == x.shape
    mse = float(np.mean((recon - x) ** 2))
    relative = mse / float(np.mean(x.var(axis=0)))
    recorded = manifest["metrics"]["generator_reconstruction_mse"]
    assert mse < 1.25 * recorded, f"reconstruction MSE {mse:.1f} vs {recorded:.1f} recorded"
    assert relative < 0.5, f"relative reconstruction error {relative:.3f}"
    # the code carries the class: the independent evaluator recognises the reconstructions, drawn sharp
    _, labels = fresh
    recognised = (run(nets, "evaluator", "logits", crop(manifest, recon)).argmax(1) == labels).mean()
    assert recognised >= RECOGNISED, f"evaluator recognises {recognised:.3f} of the reconstructions"
    detail = detail_ratio(recon, x)
    assert detail >= DETAIL, f"reconstructions keep {detail:.3f} of the real images' Laplacian detail"


def test_judge_is_the_papers_design_in_its_format():
    """Read by the paper's judge reader, scored with its preprocessing: same code path, other widths."""
    judge = from_manifest(ROOT).judge
    assert isinstance(judge, DcganFiles) and (judge.preprocess, judge.file_format) == ("authors", "jpeg")
    assert load_judge(judge.index).widths == (32, 32, 64, 64, 128, 128)  # the paper's 128…512, quartered


def test_judge_prefers_real_images(manifest, nets, fresh, fresh_rgb):
    """Scored as the report scores: real pictures as files, generator outputs through DGN-AM's save path,
    one image per batch, the `authors` preprocessing (top-left crop, transposed, unscaled)."""
    judge = make_judge(from_manifest(ROOT).judge)
    images, _ = fresh_rgb
    rng = np.random.default_rng(0)
    noise = np.clip(128 + rng.standard_normal(images.shape) * 60, 0, 255).astype(np.uint8)
    codes = run(nets, "classifier", "features", crop(manifest, fresh[0]))
    recon = run(nets, "generator", "output", codes)
    real, fake = judge.score_rgb(list(images)), judge.score_rgb(list(noise))
    assert np.mean(real[:, None] > fake[None, :]) > REAL_OVER_NOISE  # as a ranking
    p_recon = np.exp(judge.log_p_real(recon))
    assert abs(p_recon.mean() - manifest["metrics"]["judge_mean_p_real"]["reconstructions"]) < 0.15
