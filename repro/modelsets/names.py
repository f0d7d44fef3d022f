"""What a `--models` spec names, and the `repro models` listing of every set it can name.

Two sets are built in: `embedded` (trained by tools/, shipped under models/embedded with its manifest.json)
and `random` (repro.modelsets.known); any other folder with a manifest.json is a set, and the DGN sets are
named with the folder that holds their files.
"""

from __future__ import annotations

from pathlib import Path

from repro.dcgan import DcganFiles
from repro.errors import BadInput
from repro.modelsets.known import KNOWN_EXTERNAL, _from_known, _random_set
from repro.modelsets.manifest import from_manifest
from repro.modelsets.record import ModelSet

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


def default_name() -> str:
    return "embedded" if (REPO_MODELS / "embedded" / "manifest.json").exists() else "random"


def resolve(spec: str | None) -> ModelSet:
    """`spec`: a set name (embedded, random), a folder with manifest.json, or `dgn-…=FOLDER`."""
    spec = spec or default_name()
    if spec == "random":
        return _random_set()
    if spec == "embedded":
        root = REPO_MODELS / "embedded"
        if not (root / "manifest.json").exists():
            raise BadInput(f"the embedded model set is missing: no {root / 'manifest.json'}")
        return from_manifest(root)
    name, _, folder = spec.partition("=")
    if name in KNOWN_EXTERNAL:
        if not folder:
            raise BadInput(f"model set {name} needs its folder: --models {name}=DIR (see `repro models`)")
        return _from_known(name, Path(folder))
    root = Path(spec)
    if (root / "manifest.json").exists():
        return from_manifest(root)
    known = ", ".join(["embedded", "random", *[f"{k}=DIR" for k in KNOWN_EXTERNAL]])
    raise BadInput(f"unknown model set {spec!r}: expected one of {known}, or a folder with manifest.json")


def _scorers(ms: ModelSet | None) -> str:
    if ms is None:
        return "judge: --judge DIR (DCGAN files); evaluator: --evaluator PROTOTXT CAFFEMODEL"
    judge = "none" if ms.judge is None else "DCGAN" if isinstance(ms.judge, DcganFiles) else "Caffe net"
    return f"judge: {judge}; evaluator: {'none' if ms.evaluator is None else 'Caffe net'}"


def status() -> list[tuple[str, str, str]]:
    """(name, state, what it expects and has) for `repro models`."""
    rows = []
    emb = REPO_MODELS / "embedded" / "manifest.json"
    emb_set = from_manifest(emb.parent) if emb.exists() else None
    rows.append(("embedded", "ready" if emb_set else "missing", f"{emb.parent}; {_scorers(emb_set)}"))
    rows.append(
        (
            "random",
            "ready",
            "built-in fc6 generator + CaffeNet, seeded random weights (no files); "
            "judge: none; evaluator: none",
        )
    )
    for name, k in KNOWN_EXTERNAL.items():
        rows.append(
            (
                name,
                "needs files",
                f"--models {name}=DIR with " + ", ".join(k["files"]) + f"; {_scorers(None)}",
            )
        )
    return rows
