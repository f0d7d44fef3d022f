"""A model set's identity: what a result computed from it depends on, by content.

One rule for every use, so that two uses can never disagree about whether a set changed: the set's fields,
each file by its content digest (repro.digests), a folder by its files' names and digests, a built-in net
by its architecture, seed and scale. Where a set came from (its root, its manifest, whose content is in the
other fields, including descriptive entries that change no number) does not count. `uses` names the
optional parts a use depends on: a report scores with the judge and the evaluator, measures codes against
the clip bounds and compares with real images (REPORT_USES); `repro sample` depends on none of them
(SAMPLE_USES): its clip bounds count by content in the options of the methods that clip, and the scores
it records are recomputed from the same samples whatever scorer a rerun names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from repro.dcgan import DcganFiles, judge_files
from repro.digests import sha256_of
from repro.modelsets.record import ModelSet

OPTIONAL = ("judge", "evaluator", "clip_bounds", "real_images")
REPORT_USES = OPTIONAL
SAMPLE_USES: tuple[str, ...] = ()
_WHERE_FROM = ("root", "manifest")


def models_id(ms: ModelSet, uses: Iterable[str]) -> str:
    """A short hex digest of the model set as `uses` depends on it (see the module docstring)."""
    uses = set(uses)
    if uses - set(OPTIONAL):
        unknown = sorted(uses - set(OPTIONAL))
        raise ValueError(f"models_id: unknown parts {unknown}; expected some of {OPTIONAL}")
    h = hashlib.sha256()
    for f in dataclasses.fields(ms):
        if f.name in _WHERE_FROM or (f.name in OPTIONAL and f.name not in uses):
            continue
        h.update(json.dumps([f.name, stand_in(getattr(ms, f.name))], sort_keys=True).encode())
    return h.hexdigest()[:16]


def stand_in(value: object) -> object:
    """A JSON-able stand-in for a setting: files by content, folders by their files, arrays by their
    bytes, records by their fields."""
    if isinstance(value, DcganFiles):  # its index names the parameter files it reads
        return {
            "dcgan": [sha256_of(p) for p in judge_files(value.index)],
            "preprocess": value.preprocess,
            "file_format": value.file_format,
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: stand_in(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        if value.is_dir():
            files = sorted(p for p in value.rglob("*") if p.is_file())
            return {"folder": [[str(p.relative_to(value)), sha256_of(p)] for p in files]}
        return {"file_sha256": sha256_of(value)}
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        return {
            "array_sha256": hashlib.sha256(a.tobytes()).hexdigest(),
            "dtype": str(a.dtype),
            "shape": list(a.shape),
        }
    if isinstance(value, dict):
        return {str(k): stand_in(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [stand_in(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
