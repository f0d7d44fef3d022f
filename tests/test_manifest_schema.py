"""manifest.json and metrics.json follow their JSON Schemas (repro/schemas/): a bad manifest stops with one
line naming the manifest, the field and what was expected and found (exit 2, no traceback); a file the
manifest names must exist and match the SHA-256 it records; the shipped embedded set passes; a broken
metrics.json record is refused with readable messages.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest

from repro import schemas
from repro.cli import main
from repro.dcgan import PRESETS, judge_files
from repro.digests import sha256_of
from repro.errors import BadInput
from repro.images import FILE_FORMATS
from repro.modelsets import check_files, from_manifest, read_manifest, resolve
from repro.report.metrics import METRICS
from repro.report.results import SCHEMA, schema_errors
from tests.test_report import write_tiny_set

EMBEDDED = Path(__file__).resolve().parents[1] / "models" / "embedded"


@pytest.fixture(scope="module")
def tiny_original(tmp_path_factory):
    return write_tiny_set(tmp_path_factory.mktemp("tiny") / "set")


@pytest.fixture
def tiny(tiny_original, tmp_path):
    """A fresh copy of the tiny set, free to break."""
    return Path(shutil.copytree(tiny_original, tmp_path / "set"))


def edit(root: Path, change) -> Path:
    path = root / "manifest.json"
    m = json.loads(path.read_text())
    change(m)
    path.write_text(json.dumps(m))
    return path


def one_line(capsys, root: Path) -> str:
    """`repro parity --models ROOT` exits 2 with one line on stderr, quickly and without a traceback."""
    started = time.perf_counter()
    assert main(["parity", "--models", str(root)]) == 2
    assert time.perf_counter() - started < 30
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert captured.out == ""
    return err.removeprefix("error: ")


def test_the_schemas_are_valid_draft_2020_12():
    for name in ("manifest", "metrics"):
        schema = schemas.load(name)
        assert schema["$schema"] == schemas.DRAFT
        schemas.validator(schema)  # checks the schema against the meta-schema


def test_the_metrics_schema_names_the_record_version():
    assert schemas.load("metrics")["properties"]["schema"] == {"const": SCHEMA}


def test_judge_choices_in_the_schema_are_the_code_tables():
    judge = schemas.load("manifest")["$defs"]["dcgan_judge"]["properties"]
    assert judge["preprocess"]["enum"] == list(PRESETS)
    assert judge["file_format"]["enum"] == list(FILE_FORMATS)


# --- not JSON at all ---------------------------------------------------------------------------------


def test_a_manifest_that_is_a_json_number(tiny, capsys):
    path = tiny / "manifest.json"
    path.write_text("3")
    assert one_line(capsys, tiny) == (
        f"{path}: expected a JSON object {{generator, classifier, crop, class_names, ...}}, got an integer 3"
    )


def test_a_manifest_that_is_not_utf8(tiny, capsys):
    path = tiny / "manifest.json"
    path.write_bytes('{"name": "caf\xe9"}'.encode("latin-1"))
    assert one_line(capsys, tiny) == (
        f"{path}: not UTF-8 text (byte 0xe9 at offset 13); a manifest is JSON in UTF-8"
    )


def test_a_manifest_that_is_not_json(tiny, capsys):
    path = tiny / "manifest.json"
    path.write_text('{"name": ')
    assert one_line(capsys, tiny) == f"{path}: not valid JSON (Expecting value, line 1 column 10)"


# --- fields of the wrong kind: FIELD: expected WHAT, got WHAT -----------------------------------------

CROP = "an object {size, offset} (the classifier's crop of the generator's image, in pixels)"
GENERATOR = "an object {prototxt, caffemodel, input, output} (the generator's files and blobs)"
JUDGE = (
    "an object {prototxt, caffemodel, input, output} (a Caffe judge) or {dcgan, preprocess, file_format} "
    "(the DCGAN judge) or null"
)

CASES = {
    "crop is a string": (
        lambda m: m.update(crop="big"),
        f'crop: expected {CROP}, got a string "big"',
    ),
    "crop.size is a string": (
        lambda m: m["crop"].update(size="big"),
        'crop.size: expected a positive integer (pixels), got a string "big"',
    ),
    "crop.size is zero": (
        lambda m: m["crop"].update(size=0),
        "crop.size: expected a positive integer (pixels), got 0",
    ),
    "crop.size is 12.0": (
        lambda m: m["crop"].update(size=12.0),
        "crop.size: expected a positive integer (pixels), got a number 12.0",
    ),
    "crop.offset is negative": (
        lambda m: m["crop"].update(offset=-1),
        "crop.offset: expected a non-negative integer (pixels), got -1",
    ),
    "crop is missing": (
        lambda m: m.pop("crop"),
        f"crop: expected {CROP}, got nothing (the key is missing)",
    ),
    "generator is a string": (
        lambda m: m.update(generator="generator.prototxt"),
        f'generator: expected {GENERATOR}, got a string "generator.prototxt"',
    ),
    "generator has no output blob": (
        lambda m: m["generator"].pop("output"),
        "generator.output: expected a blob name (a non-empty string), got nothing (the key is missing)",
    ),
    "classifier.caffemodel is a number": (
        lambda m: m["classifier"].update(caffemodel=7),
        "classifier.caffemodel: expected a file name relative to the manifest's folder, got an integer 7",
    ),
    "map_lr is a string": (
        lambda m: m.update(map_lr="fast"),
        'map_lr: expected a finite number > 0, got a string "fast"',
    ),
    "mala_step is NaN": (
        lambda m: m.update(mala_step=float("nan")),
        "mala_step: expected a finite number > 0, got a non-finite number NaN",
    ),
    "hmc_step is zero": (
        lambda m: m.update(hmc_step=0),
        "hmc_step: expected a finite number > 0, got 0",
    ),
    "map_lr is a boolean": (
        lambda m: m.update(map_lr=True),
        "map_lr: expected a finite number > 0, got a boolean true",
    ),
    "class_names is empty": (
        lambda m: m.update(class_names=[]),
        "class_names: expected a non-empty array of strings (one name per classifier output), got []",
    ),
    "a class name is a number": (
        lambda m: m.update(class_names=["a", 3, "c"]),
        "class_names[1]: expected a string (a class name), got an integer 3",
    ),
    "mean_bgr has two numbers": (
        lambda m: m.update(mean_bgr=[104, 117]),
        "mean_bgr: expected an array of 3 finite numbers (the B, G, R mean), got [104, 117]",
    ),
    "clip_bounds is a list": (
        lambda m: m.update(clip_bounds=["bounds.txt"]),
        "clip_bounds: expected a file name relative to the manifest's folder (the code's clip bounds) or "
        'null, got an array ["bounds.txt"]',
    ),
    "name is a number": (
        lambda m: m.update(name=5),
        "name: expected a non-empty string (the set's name), got an integer 5",
    ),
    "judge is a string": (
        lambda m: m.update(judge="judge.prototxt"),
        f'judge: expected {JUDGE}, got a string "judge.prototxt"',
    ),
    "a DCGAN judge's preset is unknown": (
        lambda m: m.update(judge={"dcgan": "dcgan/", "preprocess": "fancy"}),
        'judge.preprocess: expected one of "authors", "standard", got "fancy"',
    ),
    "a DCGAN judge's file format is unknown": (
        lambda m: m.update(judge={"dcgan": "dcgan/", "file_format": "gif"}),
        'judge.file_format: expected one of "jpeg", "png", got "gif"',
    ),
    "evaluator has no features blob": (
        lambda m: m["evaluator"].pop("features"),
        "evaluator.features: expected a blob name (a non-empty string), got nothing (the key is missing)",
    ),
    "a recorded digest is not a SHA-256": (
        lambda m: m.update(sha256={"generator.caffemodel": "abc"}),
        'sha256["generator.caffemodel"]: expected a SHA-256 of 64 hex digits, got "abc"',
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_field_of_the_wrong_kind_is_one_line(tiny, capsys, case):
    change, message = CASES[case]
    path = edit(tiny, change)
    assert one_line(capsys, tiny) == f"{path}: {message}"
    with pytest.raises(BadInput) as caught:  # the same line reaches API users
        from_manifest(tiny)
    assert str(caught.value) == f"{path}: {message}"


# --- a key the schema does not define: refused, naming it, where it is, and the closest known key -------

UNKNOWN = {
    "a misspelt step at the top level": (
        lambda m: m.update(mala_stp=0.1),
        'unknown field "mala_stp" at the top level; did you mean "mala_step"?',
    ),
    "a misspelt key whose case differs": (
        lambda m: m.update(Map_LR=4.0),
        'unknown field "Map_LR" at the top level; did you mean "map_lr"?',
    ),
    "a misspelt required key of crop (also a missing one)": (
        lambda m: m["crop"].update(sise=m["crop"].pop("size")),
        'unknown field "sise" in crop; did you mean "size"?',
    ),
    "a key of crop like no other": (
        lambda m: m["crop"].update(scale=2),
        'unknown field "scale" in crop; known fields: size, offset',
    ),
    "a misspelt blob of the classifier": (
        lambda m: m["classifier"].update(feature="fc6"),
        'unknown field "feature" in classifier; did you mean "features"?',
    ),
    "a misspelt blob of the evaluator": (
        lambda m: m["evaluator"].update(Logits="logits"),
        'unknown field "Logits" in evaluator; did you mean "logits"?',
    ),
    "two unknown keys of the generator": (
        lambda m: m["generator"].update(outptu="deconv0", scale=1),
        'unknown field "outptu" in generator; did you mean "output"? (also unknown: "scale")',
    ),
    "a Caffe judge's misspelt file": (
        lambda m: m["judge"].update(protottxt=m["judge"].pop("prototxt")),
        'unknown field "protottxt" in judge; did you mean "prototxt"?',
    ),
    "a Caffe judge given a DCGAN judge's preset": (
        lambda m: m["judge"].update(preprocess="authors"),
        'unknown field "preprocess" in judge; known fields: prototxt, caffemodel, input, output',
    ),
    "a DCGAN judge's misspelt folder": (
        lambda m: m.update(judge={"dcgn": "dcgan/", "preprocess": "authors", "file_format": "jpeg"}),
        'unknown field "dcgn" in judge; did you mean "dcgan"?',
    ),
    "a DCGAN judge's misspelt preset": (
        lambda m: m.update(judge={"dcgan": "dcgan/", "preproces": "standard"}),
        'unknown field "preproces" in judge; did you mean "preprocess"?',
    ),
}


@pytest.mark.parametrize("case", list(UNKNOWN))
def test_an_unknown_key_is_one_line_with_the_closest_known_key(tiny, capsys, case):
    change, message = UNKNOWN[case]
    path = edit(tiny, change)
    assert one_line(capsys, tiny) == f"{path}: {message}"
    with pytest.raises(BadInput) as caught:
        from_manifest(tiny)
    assert str(caught.value) == f"{path}: {message}"


def test_an_unknown_key_like_no_known_one_lists_the_known_keys(tiny):
    path = edit(tiny, lambda m: m.update(zzz=1))
    with pytest.raises(BadInput) as caught:
        read_manifest(path)
    top = schemas.load("manifest")["properties"]
    read = [k for k, v in top.items() if v.get("$ref") != schemas.DESCRIPTIVE]
    described = [k for k, v in top.items() if v.get("$ref") == schemas.DESCRIPTIVE]
    assert "mala_step" in read and "training" in described
    assert str(caught.value) == (
        f'{path}: unknown field "zzz" at the top level; known fields: {", ".join(read)} '
        f"(descriptive: {', '.join(described)})"
    )


def _schema_keys() -> dict[str, set[str]]:
    """Where → the keys manifest.schema.json defines there."""
    schema = schemas.load("manifest")
    top = schema["properties"]
    return {
        "top": set(top),
        "generator": set(top["generator"]["properties"]),
        "classifier": set(top["classifier"]["properties"]),
        "evaluator": set(top["evaluator"]["else"]["properties"]),
        "judge": set(schema["$defs"]["dcgan_judge"]["properties"]),
    }


def _dict_keys(node) -> set[str]:
    import ast

    return (
        {k.value for k in node.keys if isinstance(k, ast.Constant)} if isinstance(node, ast.Dict) else set()
    )


def test_every_key_the_tools_write_is_defined():
    """tools/embedded/export.py writes the embedded manifest and tools/tune_steps.py adds its steps: every key
    they write (read from their source, so a key added there fails here first) is one the schema defines."""
    import ast

    tools = Path(__file__).resolve().parents[1] / "tools"
    tree = ast.parse((tools / "embedded" / "export.py").read_text())
    written: dict[str, set[str]] = {"top": set(), "judge": {"dcgan"}}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name == "manifest":
                written["top"] |= _dict_keys(node.value)
            elif name == "JUDGE_ENTRY":
                written["judge"] |= _dict_keys(node.value)
            elif name == "entries":
                for role, entry in zip(node.value.keys, node.value.values, strict=True):
                    written["top"].add(role.value)
                    written[role.value] = {"prototxt", "caffemodel"} | _dict_keys(entry)
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"
        ):
            if isinstance(node.func.value, ast.Name) and node.func.value.id == "manifest":
                written["top"] |= _dict_keys(node.args[0])
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "manifest"
        ):
            if isinstance(node.slice, ast.Constant) and isinstance(node.ctx, ast.Store):
                written["top"].add(node.slice.value)
    tune = ast.parse((tools / "tune_steps.py").read_text())
    for node in ast.walk(tune):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "manifest"
        ):
            if isinstance(node.slice, ast.Constant) and isinstance(node.ctx, ast.Store):
                written["top"].add(node.slice.value)
    assert {"generator", "classifier", "evaluator", "judge", "training", "step_tuning"} <= written["top"]
    assert {"code_size"} <= written["generator"] and {"prob", "input_size"} <= written["classifier"]
    defined = _schema_keys()
    for where, keys in written.items():
        assert keys <= defined[where], (where, sorted(keys - defined[where]))


def test_the_manifests_tests_write_validate(tmp_path):
    from tests.test_posterior import write_tiny_set as write_posterior_set

    (tmp_path / "posterior").mkdir()
    for root in (write_tiny_set(tmp_path / "report"), write_posterior_set(tmp_path / "posterior")):
        assert read_manifest(root / "manifest.json")["name"] == "tiny"


def test_descriptive_keys_are_free_and_null_scorers_mean_none(tiny):
    edit(
        tiny,
        lambda m: m.update(
            description="anything",
            training={"epochs": 3},
            generator={**m["generator"], "code_size": 16},
            judge=None,
            evaluator=None,
            clip_bounds=None,
        ),
    )
    ms = from_manifest(tiny)
    assert ms.judge is None and ms.evaluator is None and ms.clip_bounds is None
    assert (ms.crop_size, ms.crop_offset, ms.map_lr) == (12, 2, 2.0)


# --- files: present, and unchanged where the manifest records their digest ---------------------------


def test_a_missing_file_names_the_field_and_the_file(tiny, capsys):
    path = tiny / "manifest.json"
    (tiny / "classifier.caffemodel").unlink()
    assert one_line(capsys, tiny) == (
        f"{path}: classifier.caffemodel names {tiny / 'classifier.caffemodel'}, which does not exist"
    )


def test_a_missing_dcgan_judge_names_the_field(tiny, capsys):
    path = edit(tiny, lambda m: m.update(judge={"dcgan": "dcgan"}))
    assert one_line(capsys, tiny) == f"{path}: judge.dcgan names {tiny / 'dcgan'}, which does not exist"


def test_a_folder_where_a_file_is_expected(tiny, capsys):
    path = edit(tiny, lambda m: m.update(clip_bounds="."))
    assert one_line(capsys, tiny) == f"{path}: clip_bounds names {tiny / '.'}, which is not a file"


def record_digests(root: Path, names: list[str]) -> Path:
    digests = {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in names}
    return edit(root, lambda m: m.update(sha256=digests))


def test_a_flipped_byte_in_a_caffemodel_is_refused(tiny, capsys):
    path = record_digests(tiny, ["generator.prototxt", "generator.caffemodel", "bounds.txt"])
    assert from_manifest(tiny).name == "tiny"  # intact: accepted
    model = tiny / "generator.caffemodel"
    expected = hashlib.sha256(model.read_bytes()).hexdigest()
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()
    assert one_line(capsys, tiny) == (
        f"{model}: sha256 expected {expected} (recorded in {path}), got {actual}: "
        "the file changed since the manifest was written"
    )


def test_a_changed_clip_bounds_file_is_refused(tiny):
    record_digests(tiny, ["bounds.txt"])
    (tiny / "bounds.txt").write_text("1 2 3\n")
    with pytest.raises(
        BadInput, match=r"bounds\.txt: sha256 expected [0-9a-f]{64} .* got [0-9a-f]{64}: the file"
    ):
        from_manifest(tiny)


def test_files_of_a_dcgan_judge_folder_are_checked_where_recorded(tiny):
    from repro.dcgan import random_judge, write_judge

    index = write_judge(tiny / "dcgan", random_judge(0))
    npy = sorted((tiny / "dcgan").glob("*.npy"))[0]
    names = [f"dcgan/{index.name}", f"./dcgan/{npy.name}"]  # any spelling of the same relative path
    record_digests(tiny, names)
    edit(tiny, lambda m: m.update(judge={"dcgan": "dcgan/", "preprocess": "standard", "file_format": "png"}))
    ms = from_manifest(tiny)
    assert (ms.judge.index, ms.judge.preprocess, ms.judge.file_format) == (tiny / "dcgan", "standard", "png")
    data = bytearray(npy.read_bytes())
    data[-1] ^= 0x01
    npy.write_bytes(bytes(data))
    with pytest.raises(BadInput, match=f"{npy.name}: sha256 expected .* the file changed since the manifest"):
        from_manifest(tiny)


def test_digests_of_files_repro_does_not_read_are_not_checked(tiny):
    edit(tiny, lambda m: m.update(sha256={"preview.png": "0" * 64}))  # a descriptive file, not shipped
    assert from_manifest(tiny).name == "tiny"


def test_each_file_is_hashed_once_while_unchanged(tiny, monkeypatch):
    import repro.digests as digests

    record_digests(tiny, ["generator.caffemodel", "classifier.caffemodel"])
    calls = []
    real = digests.hashlib.sha256

    class Counting:
        @staticmethod
        def sha256(*args):
            calls.append(args)
            return real(*args)

    monkeypatch.setattr(digests, "hashlib", Counting)
    for _ in range(3):
        resolve(str(tiny))
    assert len(calls) == 2
    model = tiny / "classifier.caffemodel"
    model.write_bytes(model.read_bytes())  # same content, new mtime: hashed again, and still matches
    resolve(str(tiny))
    assert len(calls) == 3


def test_sha256_of_is_the_full_hex_digest(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"repro")
    assert sha256_of(f) == hashlib.sha256(b"repro").hexdigest()


# --- the shipped set -----------------------------------------------------------------------------------


@pytest.mark.skipif(not (EMBEDDED / "manifest.json").exists(), reason="models/embedded is not built")
def test_the_embedded_manifest_validates_and_its_files_match():
    m = read_manifest(EMBEDDED / "manifest.json")
    check_files(EMBEDDED, m)
    for role in ("generator", "classifier", "evaluator"):
        for key in ("prototxt", "caffemodel"):
            name = m[role][key]
            assert sha256_of(EMBEDDED / name) == m["sha256"][name], name  # every file it reads is recorded
    for path in judge_files(EMBEDDED / m["judge"]["dcgan"]):  # the DCGAN judge: its index and 17 arrays
        name = path.relative_to(EMBEDDED).as_posix()
        assert sha256_of(path) == m["sha256"][name], name
    assert sha256_of(EMBEDDED / m["clip_bounds"]) == m["sha256"][m["clip_bounds"]]
    ms = resolve("embedded")
    assert ms.name == "embedded" and ms.judge is not None and ms.evaluator is not None


# --- metrics.json --------------------------------------------------------------------------------------


def stat(mean=0.5, se=0.1, n=4) -> dict:
    return {"mean": mean, "se": se, "n": n}


def record() -> dict:
    """A small metrics.json record that follows the schema."""
    keys = list(METRICS)
    return {
        "schema": SCHEMA,
        "models": {"name": "tiny", "id": "abc123", "n_classes": 3, "judge": None, "evaluator": None},
        "settings": {
            "classes": [0],
            "class_names": ["alpha"],
            "chains": 2,
            "budget": 0.01,
            "seed": 0,
            "map_steps": 20,
            "backend": "ort",
            "device": "cpu",
            "quick": True,
            "iteration_floor": {
                "floor": 100,
                "short_rows": {"mala": 60},
                "floor_budget": 0.017,
                "notice": "n",
            },
        },
        "sampler_variant": "as written",
        "metric_definitions": {
            k: {"label": METRICS[k].label, "unit": METRICS[k].unit, "higher_is_better": None} for k in keys
        },
        "rows": [
            {
                "key": "mala",
                "label": "MALA",
                "method": "mala",
                "tuning": "paper",
                "paper_key": "MALA",
                "steps": 60,
                "step_size": 0.01,
                "options": {},
                "clip": False,
                "guidance": 1.0,
                "exact": None,
                "vs_exact": {
                    "reference": "exact",
                    "differences": {"code_sq_norm": {"difference": 0.1, "se": 0.2, "z": 0.5, "classes": 1}},
                    "reached": None,
                },
                "metrics": {k: stat() for k in keys},
                "nonfinite": {"chains": 0, "cells": []},
                "per_class": [
                    {
                        "class_index": 0,
                        "class_name": "alpha",
                        "metrics": {k: 0.5 for k in keys},
                        "nonfinite_chains": 0,
                    }
                ],
            }
        ],
        "reference": None,
        "table2": [{"method": "MALA", "row": "mala", "paper": -9.79, "ours": stat()}],
        "claims": [
            {
                "number": 1,
                "claim": "c",
                "rule": "r",
                "verdict": "reproduced",
                "reproduced": True,
                "evidence": "e",
                "numbers": {"mala - map": stat()},
                "verdicts": {"paper": {"verdict": "reproduced", "evidence": "e"}},
            }
        ],
        "priors": {
            "kind": "fitted Gaussian",
            "form": "full",
            "source": "s",
            "mean_of_means": 1.0,
            "mean_of_stds": 2.0,
            "realism": [
                {
                    "prior": "full",
                    "draws": 256,
                    "real_images": 640,
                    "kid": 0.26,
                    "precision": 0.34,
                    "recall": 0.35,
                    "agreement": 0.54,
                    "chosen": True,
                }
            ],
        },
        "figures": {"figure2": "figure2.png"},
        "cells": {"total": 1, "run": 1, "reused": 0},
        "wall_seconds": 1.5,
        "versions": {"repro": "0.1.0"},
    }


def test_a_valid_metrics_record_has_no_schema_errors():
    assert schema_errors(record()) == []


def broken(change) -> list[str]:
    r = record()
    change(r)
    return schema_errors(r)


def test_a_stat_without_n_is_refused():
    errors = broken(lambda r: r["rows"][0]["metrics"]["acceptance"].pop("n"))
    assert errors == [
        "rows[0].metrics.acceptance.n: expected a count (an integer >= 0), got nothing (the key is missing)"
    ]


def test_a_claim_verdict_maybe_is_refused():
    errors = broken(lambda r: r["claims"][0].update(verdict="maybe"))
    assert errors == [
        'claims[0].verdict: expected one of "reproduced", "not reproduced", "not tested", got "maybe"'
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r["claims"][0].update(reproduced=None),
            "claims[0].reproduced: expected true, got null",
        ),
        (
            lambda r: r["rows"][0]["metrics"].pop("rhat"),
            "rows[0].metrics.rhat: expected a stat {mean: number or null, se: number or null, n: count}, "
            "got nothing (the key is missing)",
        ),
        (
            lambda r: r["rows"][0]["metrics"]["seconds"].update(mean=float("inf")),
            "rows[0].metrics.seconds.mean: expected a finite number or null, "
            "got a non-finite number Infinity",
        ),
        (
            lambda r: r["rows"][0]["metrics"]["seconds"].update(n=True),
            "rows[0].metrics.seconds.n: expected a count (an integer >= 0), got a boolean true",
        ),
        (
            lambda r: r["rows"][0]["metrics"]["seconds"].update(extra=1),
            'unknown field "extra" in rows[0].metrics.seconds; known fields: mean, se, n',
        ),
        (
            lambda r: r["table2"][0].update(ours=None),
            "table2[0].ours: expected a stat {mean: number or null, se: number or null, n: count}, got null",
        ),
        (
            lambda r: r.update(schema="repro.report/0"),
            'schema: expected "repro.report/1", got "repro.report/0"',
        ),
        (
            lambda r: r.pop("reference"),
            "reference: expected an object or null, got nothing (the key is missing)",
        ),
        (lambda r: r.update(wall_seconds="slow"), 'wall_seconds: expected a number, got a string "slow"'),
        (
            lambda r: r["priors"]["realism"][0].update(recall=1.5),
            "priors.realism[0].recall: expected a number <= 1, got 1.5",
        ),
        (lambda r: r["rows"][0].update(steps=1.5), "rows[0].steps: expected an integer, got a number 1.5"),
        (
            lambda r: r["metric_definitions"].pop("rhat"),
            "metric_definitions.rhat: expected an object, got nothing (the key is missing)",
        ),
        (
            lambda r: r.update(extra=1),
            'unknown field "extra" at the top level; known fields: schema, models, settings, '
            "sampler_variant, metric_definitions, rows, priors, reference, table2, claims, figures, cells, "
            "wall_seconds, versions",
        ),
        (
            lambda r: r["rows"][0]["metrics"]["seconds"].update(maen=1.0),
            'unknown field "maen" in rows[0].metrics.seconds; did you mean "mean"?',
        ),
    ],
)
def test_metrics_schema_errors_name_the_field(change, message):
    assert broken(change) == [message]


def test_a_metric_key_that_is_not_in_the_table_is_refused():
    errors = broken(lambda r: r["rows"][0]["metrics"].update(fidelity=stat()))
    assert len(errors) == 1 and errors[0].startswith("rows[0].metrics: expected keys that are metric keys (")
    assert errors[0].endswith('got the key "fidelity"')


def test_every_problem_is_listed_in_field_order():
    def change(r):
        r["claims"][0]["verdict"] = "maybe"
        r["rows"][0]["metrics"]["acceptance"].pop("n")
        r["cells"]["run"] = -1

    assert broken(change) == [
        "cells.run: expected an integer >= 0, got -1",
        'claims[0].verdict: expected one of "reproduced", "not reproduced", "not tested", got "maybe"',
        "rows[0].metrics.acceptance.n: expected a count (an integer >= 0), got nothing (the key is missing)",
    ]
