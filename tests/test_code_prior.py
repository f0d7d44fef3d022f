"""The fitted prior of the `-prior` rows: from real codes where the set has them, else from its bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from repro.errors import BadInput
from repro.evaluate.code_prior import REAL_PER_CLASS, STD_FLOOR, _correlation_factor, fitted_prior
from repro.modelsets import resolve
from repro.samplers import load_bounds
from tests.test_report import write_tiny_set

EMBEDDED = Path(__file__).resolve().parents[1] / "models" / "embedded"


def test_embedded_prior_is_fitted_to_the_codes_of_real_images():
    if not (EMBEDDED / "manifest.json").exists():
        pytest.skip("no embedded set")
    ms = resolve("embedded")
    prior = fitted_prior(ms, 512)
    assert f"fc6 codes of {10 * REAL_PER_CLASS} real images" in prior.source
    bounds = load_bounds(ms.clip_bounds, 512) / 3  # the set's bounds are 3 × the training images' std
    live = bounds > 0.5
    # held-out images, not the training images: the same scale, unit by unit, within sampling error
    ratio = np.median(prior.std[live] / bounds[live])
    assert 0.8 < ratio < 1.25, ratio
    assert np.all(prior.mean >= 0)  # codes after ReLU
    assert prior.std.min() > 0 and f"std floored at {prior.std.min():.3g}" in prior.source  # dead units


def test_embedded_prior_is_the_form_whose_own_draws_look_most_real():
    """Both forms and the paper's N(0, I) are measured on paired draws; the chosen one has the lowest KID,
    and N(0, I)'s grey images are the farthest from real ones (measured: KID 1.23 against 0.26–0.30)."""
    if not (EMBEDDED / "manifest.json").exists():
        pytest.skip("no embedded set")
    ms = resolve("embedded")
    prior = fitted_prior(ms, 512)
    table = {m["prior"]: m for m in prior.realism}
    assert list(table) == ["N(0, I)", "diagonal", "full"]
    chosen = [name for name, m in table.items() if m["chosen"]]
    assert chosen == [prior.form]
    assert table[prior.form]["kid"] == min(table["diagonal"]["kid"], table["full"]["kid"])
    assert table["N(0, I)"]["kid"] > 2 * max(table["diagonal"]["kid"], table["full"]["kid"])
    for m in table.values():
        assert m["draws"] == 256 and m["real_images"] == 640
        assert 0 <= m["precision"] <= 1 and 0 <= m["recall"] <= 1 and 0 <= m["agreement"] <= 1
    # one form asked for by name: the same marginals, with or without the correlations
    diagonal, full = fitted_prior(ms, 512, "diagonal"), fitted_prior(ms, 512, "full")
    assert diagonal.corr_factor is None and full.corr_factor is not None and not diagonal.realism
    np.testing.assert_array_equal(diagonal.std, full.std)
    np.testing.assert_allclose(np.sum(full.corr_factor**2, axis=1), 1.0, rtol=1e-10)
    assert "Ledoit–Wolf" in full.source


def test_the_correlation_factor_is_a_shrunk_correlation_that_predicts_held_out_codes():
    """With fewer codes than units the sample correlation is singular; the shrunk one is positive definite
    with a unit diagonal, and on correlated codes it gives held-out codes a higher likelihood than the
    diagonal form (R = I) does."""
    rng = np.random.default_rng(3)
    d, n = 40, 30
    mixing = rng.standard_normal((d, 4))
    draw = lambda m: rng.standard_normal((m, 4)) @ mixing.T + 0.3 * rng.standard_normal((m, d))  # noqa: E731
    train, test = draw(n), draw(2000)
    mean, std = train.mean(0), train.std(0)
    factor, shrinkage = _correlation_factor((train - mean) / std)
    assert 0 < shrinkage < 1
    corr = factor @ factor.T
    np.testing.assert_allclose(np.diag(corr), 1.0, rtol=1e-12)
    assert np.linalg.eigvalsh(corr).min() > 0

    def held_out(c):
        s = (test - mean) / std
        _, logdet = np.linalg.slogdet(c)
        return np.mean(-0.5 * np.einsum("nd,nd->n", s, np.linalg.solve(c, s.T).T) - 0.5 * logdet)

    assert held_out(corr) > held_out(np.eye(d)) + 1.0


def test_without_real_codes_the_bounds_file_gives_the_prior(tmp_path):
    ms = resolve(str(write_tiny_set(tmp_path / "tiny")))
    bounds = load_bounds(ms.clip_bounds, 16)
    prior = fitted_prior(ms, 16)
    assert "bound / 3" in prior.source and prior.form == "diagonal"
    with pytest.raises(BadInput, match="--prior fitted-full: model set .* has no real codes"):
        fitted_prior(ms, 16, "full")
    floor = STD_FLOOR * np.median(bounds[bounds > 0] / 3)
    np.testing.assert_allclose(prior.mean, bounds / 3)
    np.testing.assert_allclose(prior.std, np.maximum(bounds / 3, floor))


ENCODER = """
name: "tiny_encoder_classifier"
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 1 dim: 3 dim: 12 dim: 12 } } }
layer { name: "scale" type: "Power" bottom: "data" top: "scaled" power_param { scale: 0.01 } }
layer { name: "fc6" type: "InnerProduct" bottom: "scaled" top: "fc6" inner_product_param { num_output: 16 } }
layer { name: "relu6" type: "ReLU" bottom: "fc6" top: "fc6" }
layer { name: "fc8" type: "InnerProduct" bottom: "fc6" top: "fc8" inner_product_param { num_output: 3 } }
"""


def test_a_code_blob_encodes_real_images_from_a_folder(tmp_path):
    """A DGN-style set: real images only from --real-images, the code is the classifier's `code` blob (as
    CaffeNet's fc6 is for dgn-caffenet), so the prior is fitted to the encoded images, not to the bounds."""
    import dataclasses

    from PIL import Image

    from repro import caffe
    from repro.convert import to_onnx
    from repro.convert.cache import NetFiles
    from repro.evaluate.real_images import real_images
    from repro.runtime.ort import make_session

    ms = resolve(str(write_tiny_set(tmp_path / "tiny")))
    net = caffe.parse_net_text(ENCODER, source="encoder")
    caffe.random_weights(net, seed=3)
    caffe.write_net(net, tmp_path / "enc.prototxt", tmp_path / "enc.caffemodel")
    rng = np.random.default_rng(0)
    for k in range(len(ms.class_names)):
        (tmp_path / "real" / str(k)).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "real" / str(k) / f"{i}.png")
    blobs = {"input": "data", "logits": "fc8", "code": "fc6"}
    with_code = dataclasses.replace(
        ms,
        classifier=NetFiles(tmp_path / "enc.prototxt", tmp_path / "enc.caffemodel", blobs),
        real_images=tmp_path / "real",
    )
    prior = fitted_prior(with_code, 16)
    assert "fc6 codes of 9 real images" in prior.source
    # the same images encoded by a separate conversion of the same Caffe files
    session = make_session(
        to_onnx(caffe.load_net(tmp_path / "enc.prototxt", tmp_path / "enc.caffemodel"), ["fc6"])
    )
    o, s = ms.crop_offset, ms.crop_size
    codes = np.concatenate(
        [
            session.run(["fc6"], {"data": np.ascontiguousarray(img[None, :, o : o + s, o : o + s])})[0]
            for k in range(3)
            for img in real_images(with_code, k, REAL_PER_CLASS)
        ]
    )
    np.testing.assert_allclose(prior.mean, codes.mean(0), rtol=1e-5, atol=1e-6)
    # without a code blob the same images cannot be encoded: the bounds rule, and the report says why
    no_code = dataclasses.replace(with_code, classifier=ms.classifier)
    assert "no blob of the generator's 16-unit code" in fitted_prior(no_code, 16).source
