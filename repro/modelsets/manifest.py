"""A model set on disk: a folder with `manifest.json`.

A manifest is checked against repro/schemas/manifest.schema.json before anything in it is used, then every
file it names must exist and match the SHA-256 it records (files are hashed once per process), so a bad or
changed set stops with one line naming the manifest, the field and what was expected.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from repro import schemas
from repro.convert.cache import NetFiles
from repro.dcgan import DcganFiles
from repro.digests import sha256_of
from repro.errors import BadInput
from repro.modelsets.fit import check_classifier, check_evaluator
from repro.modelsets.record import ModelSet


def _net_files(root: Path, entry: dict) -> NetFiles:
    blobs = {k: v for k, v in entry.items() if k not in ("prototxt", "caffemodel")}
    return NetFiles(root / entry["prototxt"], root / entry["caffemodel"], blobs)


def _judge_files(root: Path, entry: dict) -> NetFiles | DcganFiles:
    """A manifest's judge: a Caffe net (prototxt, caffemodel, blobs) or {"dcgan": index or folder,
    "preprocess": preset, "file_format": "jpeg" or "png"}."""
    if "dcgan" in entry:
        return DcganFiles(
            root / entry["dcgan"], entry.get("preprocess", "authors"), entry.get("file_format", "jpeg")
        )
    return _net_files(root, entry)


@cache
def _manifest_schema() -> tuple[dict, object]:
    schema = schemas.load("manifest")
    return schema, schemas.validator(schema)


def read_manifest(path: Path) -> dict:
    """manifest.json as a dict that follows repro/schemas/manifest.schema.json, or BadInput in one line."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInput(f"{path}: cannot read the manifest ({e.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadInput(
            f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "a manifest is JSON in UTF-8"
        ) from None
    try:
        m = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: not valid JSON ({e.msg}, line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise BadInput(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(m, dict):
        raise BadInput(
            f"{path}: expected a JSON object {{generator, classifier, crop, class_names, ...}}, "
            f"got {schemas.type_name(m)} {schemas.shown(m)}"
        )
    schema, check = _manifest_schema()
    problem = schemas.first_problem(check, m, schema)
    if problem is not None:
        raise BadInput(f"{path}: {problem}")
    return m


def _named_files(m: dict) -> list[tuple[str, str]]:
    """(field, file name) of every file the manifest names that repro reads, in field order."""
    named = []
    for role in ("generator", "classifier", "judge", "evaluator"):
        entry = m.get(role)
        if not entry:
            continue
        keys = ("dcgan",) if "dcgan" in entry else ("prototxt", "caffemodel")
        named += [(f"{role}.{key}", entry[key]) for key in keys]
    if m.get("clip_bounds"):
        named.append(("clip_bounds", m["clip_bounds"]))
    return named


def check_files(root: Path, m: dict, path: Path | None = None) -> None:
    """Every file the manifest names exists, and each whose SHA-256 it records still has that digest."""
    path = path or root / "manifest.json"
    named = _named_files(m)
    for where, name in named:
        target = root / name
        if not target.exists():
            raise BadInput(f"{path}: {where} names {target}, which does not exist")
        if where != "judge.dcgan" and not target.is_file():
            raise BadInput(f"{path}: {where} names {target}, which is not a file")
    recorded = m.get("sha256") or {}
    dcgan = [os.path.normpath(name) for where, name in named if where == "judge.dcgan"]
    read = {os.path.normpath(name) for _, name in named}
    for name, expected in recorded.items():
        norm = os.path.normpath(name)
        if norm not in read and not any(norm.startswith(d + os.sep) for d in dcgan):
            continue  # descriptive files (previews) are not read, so not checked
        target = root / name
        if not target.is_file():
            raise BadInput(f"{path}: sha256 records {name}, but {target} is not there")
        actual = sha256_of(target)
        if actual != expected.lower():
            raise BadInput(
                f"{target}: sha256 expected {expected.lower()} (recorded in {path}), got {actual}: "
                "the file changed since the manifest was written"
            )


def from_manifest(root: Path) -> ModelSet:
    """The model set a folder's manifest.json describes, its schema and its files checked first. A setting
    the manifest leaves out is left to ModelSet's default."""
    root = Path(root)
    path = root / "manifest.json"
    m = read_manifest(path)
    check_files(root, m, path)
    opt = {key: float(m[key]) for key in ("map_lr", "mala_step", "hmc_step") if key in m}
    if "mean_bgr" in m:
        opt["mean_bgr"] = [float(v) for v in m["mean_bgr"]]
    if m.get("judge"):
        opt["judge"] = _judge_files(root, m["judge"])
    if m.get("evaluator"):
        opt["evaluator"] = _net_files(root, m["evaluator"])
    ms = ModelSet(
        name=m.get("name", root.name),
        root=root,
        generator=_net_files(root, m["generator"]),
        classifier=_net_files(root, m["classifier"]),
        crop_size=m["crop"]["size"],
        crop_offset=m["crop"]["offset"],
        class_names=list(m["class_names"]),
        clip_bounds=root / m["clip_bounds"] if m.get("clip_bounds") else None,
        manifest=m,
        **opt,
    )
    check_classifier(ms, lambda role: f"{path}: classifier.{role}")
    if ms.evaluator is not None:
        check_evaluator(ms, lambda role: f"{path}: evaluator.{role}")
    return ms
