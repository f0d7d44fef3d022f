"""One identity per model set (repro.modelsets.identity), by content, for every use; one file digest
(repro.digests) under it and under the conversion cache's entry names."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from repro import caffe
from repro.convert.cache import entry_key
from repro.modelsets import REPORT_USES, SAMPLE_USES, models_id, resolve
from tests.test_report import EVALUATOR, write_tiny_set


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_set(tmp_path / "tiny")


def _other_evaluator(root):
    net = caffe.parse_net_text(EVALUATOR, source="evaluator")
    caffe.random_weights(net, seed=77)
    caffe.write_net(net, root / "evaluator.prototxt", root / "evaluator.caffemodel")


def test_a_report_depends_on_the_scorers_and_real_images_a_sample_job_does_not(tiny, tmp_path):
    ms = resolve(str(tiny))
    sample, report = models_id(ms, SAMPLE_USES), models_id(ms, REPORT_USES)
    _other_evaluator(tiny)  # other evaluator weights, same file names
    rescored = resolve(str(tiny))
    assert models_id(rescored, SAMPLE_USES) == sample
    assert models_id(rescored, REPORT_USES) != report
    (tmp_path / "real" / "0").mkdir(parents=True)
    shutil.copy(tiny / "evaluator.prototxt", tmp_path / "real" / "0" / "a.png")  # any bytes: by content
    with_real = dataclasses.replace(ms, real_images=tmp_path / "real")
    assert models_id(with_real, SAMPLE_USES) == sample
    assert models_id(with_real, REPORT_USES) != report
    (tmp_path / "real" / "0" / "a.png").write_bytes(b"other")
    assert models_id(with_real, REPORT_USES) != models_id(resolve(str(tiny)), REPORT_USES)


def test_the_posterior_nets_count_for_every_use_and_where_a_set_lies_for_none(tiny, tmp_path):
    ms = resolve(str(tiny))
    copy = tmp_path / "elsewhere"
    shutil.copytree(tiny, copy)
    for uses in (SAMPLE_USES, REPORT_USES):
        assert models_id(resolve(str(copy)), uses) == models_id(ms, uses)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["description"] = "the same nets, described anew"  # describes, changes no number
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert models_id(resolve(str(copy)), REPORT_USES) == models_id(ms, REPORT_USES)
    net = caffe.parse_net_text((copy / "classifier.prototxt").read_text(), source="classifier")
    caffe.random_weights(net, seed=5)
    caffe.write_net(net, copy / "classifier.prototxt", copy / "classifier.caffemodel")
    for uses in (SAMPLE_USES, REPORT_USES):
        assert models_id(resolve(str(copy)), uses) != models_id(ms, uses)
    crop = dataclasses.replace(ms, crop_offset=ms.crop_offset + 1)
    assert models_id(crop, SAMPLE_USES) != models_id(ms, SAMPLE_USES)


def test_an_unknown_use_is_refused(tiny):
    with pytest.raises(ValueError, match="unknown parts \\['encoder'\\]"):
        models_id(resolve(str(tiny)), ("encoder",))


def test_a_cached_conversion_is_named_by_its_files_content(tiny, tmp_path):
    ms = resolve(str(tiny))
    copy = tmp_path / "elsewhere"
    shutil.copytree(tiny, copy)
    moved = resolve(str(copy))
    assert entry_key(moved.classifier) == entry_key(ms.classifier)
    assert entry_key(ms.classifier) != entry_key(ms.generator)
    data = bytearray((copy / "classifier.caffemodel").read_bytes())
    data[-1] ^= 1
    (copy / "classifier.caffemodel").write_bytes(bytes(data))
    assert entry_key(resolve(str(copy)).classifier) != entry_key(ms.classifier)
    assert len(entry_key(ms.classifier)) == 24
