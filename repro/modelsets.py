"""Model sets: which generator, classifier, crop, bounds, judge and evaluator belong together.

A model set on disk is a folder with `manifest.json`. Two sets are built in: `embedded` (trained by tools/,
shipped under models/embedded) and `random` (the full-size built-in architectures with seeded random weights,
made in memory, for parity and speed at full size without anyone's weight files). The DGN sets are known by
the files they expect; repro never downloads them.

A manifest is checked against repro/schemas/manifest.schema.json before anything in it is used, then every
file it names must exist and match the SHA-256 it records (files are hashed once per process), so a bad or
changed set stops with one line naming the manifest, the field and what was expected. The classifier's
logits and the evaluator's blobs must fit the set too (check_classifier, check_evaluator: one score per
class, an image input, one feature vector per image), read from the prototxts' shapes before any model runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from repro import schemas
from repro.caffe import Net
from repro.convert.cache import NetFiles, hash_files, load_caffe_net
from repro.dcgan import DcganFiles
from repro.errors import BadInput
from repro.samplers.methods import Method

REPO_MODELS = Path(__file__).resolve().parents[1] / "models"


@dataclass(frozen=True)
class ModelSet:
    name: str
    root: Path | None
    generator: NetFiles
    classifier: NetFiles
    crop_size: int
    crop_offset: int
    class_names: list[str]
    map_lr: float = 8.0  # DGN-AM's start step size for MAP (2.0 for GoogLeNet)
    mala_step: float = 1e-3  # initial τ of the paper's decaying MALA schedule, per set (code scale differs)
    hmc_step: float = 1e-2  # initial ε of the HMC leapfrog schedule
    clip_bounds: Path | None = None
    judge: NetFiles | DcganFiles | None = None  # a Caffe judge (embedded) or the paper's DCGAN judge
    evaluator: NetFiles | None = None
    mean_bgr: list[float] = field(default_factory=lambda: [104.0, 117.0, 123.0])
    manifest: dict = field(default_factory=dict)
    real_images: Path | None = (
        None  # DIR/<class index>/ image files (`--real-images`), see evaluate.real_images
    )

    def start_step(self, method: Method) -> float:
        """The published run's start step on this set (the field the method's table entry names)."""
        return float(getattr(self, method.start_step))

    def check_classes(self, classes: list[int]) -> None:
        """BadInput naming the first class index this set does not have: the one check of `repro sample`'s
        --class and `repro report`'s --classes (the posterior graph's one-hot has its own, for any caller)."""
        n = len(self.class_names)
        bad = [k for k in classes if not 0 <= k < n]
        if bad:
            raise BadInput(
                f"class index {bad[0]} is outside model set {self.name}'s {n} classes (0..{n - 1})"
            )


KNOWN_EXTERNAL = {
    "dgn-caffenet": {
        "files": [
            "generator.prototxt",
            "generator.caffemodel",
            "caffenet.prototxt",
            "bvlc_reference_caffenet.caffemodel",
            "fc6.txt (act_range/3x, optional)",
        ],
        "generator": ("generator.prototxt", "generator.caffemodel", {"input": "feat", "output": "deconv0"}),
        "classifier": (
            "caffenet.prototxt",
            "bvlc_reference_caffenet.caffemodel",
            {"input": "data", "logits": "fc8", "code": "fc6"},  # fc6: the code the generator inverts
        ),
        "crop": (227, 14),
        "map_lr": 8.0,
    },
    "dgn-googlenet": {
        "files": [
            "generator.prototxt",
            "generator.caffemodel",
            "bvlc_googlenet_updated.prototxt",
            "bvlc_googlenet.caffemodel",
            "fc6.txt (act_range/3x, optional)",
        ],
        "generator": ("generator.prototxt", "generator.caffemodel", {"input": "feat", "output": "deconv0"}),
        "classifier": (
            "bvlc_googlenet_updated.prototxt",
            "bvlc_googlenet.caffemodel",
            {"input": "data", "logits": "loss3/classifier"},
        ),
        "crop": (224, 16),
        "map_lr": 2.0,
    },
    "dgn-places205": {
        "files": [
            "generator.prototxt",
            "generator.caffemodel",
            "places205CNN_deploy_updated.prototxt",
            "places205CNN_iter_300000.caffemodel",
            "fc6.txt (act_range/3x, optional)",
        ],
        "generator": ("generator.prototxt", "generator.caffemodel", {"input": "feat", "output": "deconv0"}),
        "classifier": (
            "places205CNN_deploy_updated.prototxt",
            "places205CNN_iter_300000.caffemodel",
            {"input": "data", "logits": "fc8"},
        ),
        "crop": (227, 14),
        "map_lr": 8.0,
    },
}


def _random_set() -> ModelSet:
    return ModelSet(
        name="random",
        root=None,
        generator=NetFiles(None, None, {"input": "feat", "output": "deconv0"}, arch="fc6_generator", seed=1),
        classifier=NetFiles(
            None, None, {"input": "data", "logits": "fc8"}, arch="caffenet", seed=2, last_scale=0.02
        ),
        crop_size=227,
        crop_offset=14,
        class_names=[f"class {i}" for i in range(1000)],
    )


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


def evaluator_files(
    prototxt: str | os.PathLike, caffemodel: str | os.PathLike, blobs: tuple[str, str] | None = None
) -> NetFiles:
    """An independent Caffe classifier as the evaluator. By default its logits are the top of its last
    InnerProduct layer (the one before the Softmax) and its features that layer's input."""
    from repro.caffe import load_net

    net = load_net(prototxt)
    if blobs is None:
        products = [layer for layer in net.layers if layer.type == "InnerProduct"]
        if not products:
            raise BadInput(
                f"evaluator {prototxt}: no InnerProduct layer to take logits from; name the blobs with "
                "--evaluator-blobs LOGITS,FEATURES"
            )
        blobs = (products[-1].tops[0], products[-1].bottoms[0])
    if not net.inputs:
        raise BadInput(f"evaluator {prototxt}: the net declares no input blob for the images")
    return NetFiles(
        Path(prototxt), Path(caffemodel), {"input": net.inputs[0], "logits": blobs[0], "features": blobs[1]}
    )


def with_scorers(
    ms: ModelSet,
    judge: str | os.PathLike | None = None,
    preprocess: str | None = None,
    file_format: str | None = None,
    evaluator: NetFiles | None = None,
) -> ModelSet:
    """The set with the judge and evaluator a user named on the command line in place of its own.

    A DCGAN judge's preset defaults to `authors`, what the paper's scoring did; `preprocess` and
    `file_format` alone change the set's own DCGAN judge."""
    new = {}
    if judge is not None:
        new["judge"] = DcganFiles(Path(judge))
    base = new.get("judge", ms.judge)
    if (preprocess or file_format) and not isinstance(base, DcganFiles):
        raise BadInput(
            f"--judge-preprocess and --judge-file apply to a DCGAN judge; model set {ms.name} has none"
        )
    if isinstance(base, DcganFiles):
        new["judge"] = DcganFiles(base.index, preprocess or base.preprocess, file_format or base.file_format)
    if evaluator is not None:
        new["evaluator"] = evaluator
    ms = dataclasses.replace(ms, **new)
    if evaluator is not None:
        hint = "; name the class scores and the features with --evaluator-blobs LOGITS,FEATURES"
        check_evaluator(ms, lambda role: f"evaluator {evaluator.prototxt}: {role} blob", hint)
    return ms


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


# (resolved path, mtime, size) → hex SHA-256: each file is hashed once per process while it is unchanged.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def sha256_of(path: Path) -> str:
    """The full hex SHA-256 of a file's content, remembered by path, mtime and size."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _DIGESTS:
        _DIGESTS[key] = hash_files(hashlib.sha256(), path).hexdigest()
    return _DIGESTS[key]


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
    """The model set a folder's manifest.json describes, its schema and its files checked first."""
    root = Path(root)
    path = root / "manifest.json"
    m = read_manifest(path)
    check_files(root, m, path)
    opt = {}
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
        map_lr=float(m.get("map_lr", 8.0)),
        mala_step=float(m.get("mala_step", 1e-3)),
        hmc_step=float(m.get("hmc_step", 1e-2)),
        clip_bounds=root / m["clip_bounds"] if m.get("clip_bounds") else None,
        mean_bgr=[float(v) for v in m.get("mean_bgr", [104.0, 117.0, 123.0])],
        manifest=m,
        **opt,
    )
    check_classifier(ms, lambda role: f"{path}: classifier.{role}")
    if ms.evaluator is not None:
        check_evaluator(ms, lambda role: f"{path}: evaluator.{role}")
    return ms


def _from_known(name: str, root: Path) -> ModelSet:
    k = KNOWN_EXTERNAL[name]
    missing = [f for f in k["files"] if "optional" not in f and not (root / f).exists()]
    if missing:
        raise BadInput(f"model set {name} in {root}: missing {', '.join(missing)}")
    gp, gm, gb = k["generator"]
    cp, cm, cb = k["classifier"]
    bounds = root / "fc6.txt"
    ms = ModelSet(
        name=name,
        root=root,
        generator=NetFiles(root / gp, root / gm, gb),
        classifier=NetFiles(root / cp, root / cm, cb),
        crop_size=k["crop"][0],
        crop_offset=k["crop"][1],
        class_names=[f"class {i}" for i in range(1000 if name != "dgn-places205" else 205)],
        map_lr=k["map_lr"],
        clip_bounds=bounds if bounds.exists() else None,
    )
    check_classifier(ms, lambda role: f"model set {name}: {cp}'s {role} blob")
    return ms


# ---- blobs that fit the set, checked where a set is made (from_manifest, _from_known, with_scorers): from
# Caffe's own shape inference over the prototxt alone, before any weights are read or any model runs. A
# message names the blob by `where(role)` (the manifest field, or the command-line option) and ends in `hint`.

Where = Callable[[str], str]


def layout(files: NetFiles) -> Net:
    """The Caffe net without its weights: its inputs and every blob's shape (`Net.shapes`, batch first), as
    Caffe infers them from the prototxt alone."""
    return load_caffe_net(files, weights=False)


def code_size(ms: ModelSet) -> int:
    """Units of the code z: the generator's input blob, per image."""
    return int(np.prod(layout(ms.generator).shapes[ms.generator.blobs["input"]][1:]))


def _shape(net: Net, files: NetFiles, role: str, where: Where) -> tuple[int, ...]:
    blob = files.blobs[role]
    if blob not in net.shapes:
        raise BadInput(f'{where(role)} "{blob}": {files.prototxt or files.arch} has no blob of that name')
    return net.shapes[blob]


def _shown(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _check_logits(ms: ModelSet, files: NetFiles, net: Net, where: Where, hint: str) -> None:
    """The logits blob holds one score per class of the set for each image."""
    shape = _shape(net, files, "logits", where)
    width, n = int(np.prod(shape[1:])), len(ms.class_names)
    if width != n:
        raise BadInput(
            f'{where("logits")} "{files.blobs["logits"]}" has {width} values per image (shape '
            f"{_shown(shape)}), but model set {ms.name} has {n} classes: the logits must be the class "
            f"scores, one per class{hint}"
        )


def check_classifier(ms: ModelSet, where: Where, hint: str = "") -> None:
    """The classifier's logits are the set's class scores: not a hidden layer, nor another label set."""
    _check_logits(ms, ms.classifier, layout(ms.classifier), where, hint)


def check_evaluator(ms: ModelSet, where: Where, hint: str = "") -> None:
    """The evaluator fits the set: its input an input of the net holding square colour images [N, 3, S, S]
    no larger than the generator's (the images are centre-cropped to S); its logits one score per class of
    the set; its features one vector per image (the input's batch first, as the metrics flatten them)."""
    files = ms.evaluator
    net = layout(files)
    blob = files.blobs["input"]
    image = _shape(net, files, "input", where)
    if blob not in net.inputs:
        inputs = ", ".join(net.inputs) or "none"
        raise BadInput(f'{where("input")} "{blob}" is not an input of the net; its inputs: {inputs}')
    if len(image) != 4 or image[1] != 3 or image[2] != image[3]:
        raise BadInput(
            f'{where("input")} "{blob}" has shape {_shown(image)}; expected square colour images '
            "[N, 3, S, S]: the evaluator scores the generator's images (is this the evaluator's prototxt?)"
        )
    drawn = layout(ms.generator).shapes.get(ms.generator.blobs["output"])
    if drawn is not None and len(drawn) == 4 and image[2] > min(drawn[2:]):
        raise BadInput(
            f'{where("input")} "{blob}" takes {image[2]}×{image[3]} images, larger than the '
            f"{drawn[2]}×{drawn[3]} images model set {ms.name}'s generator draws"
        )
    _check_logits(ms, files, net, where, hint)
    features = _shape(net, files, "features", where)
    if len(features) < 2 or features[0] != image[0]:
        raise BadInput(
            f'{where("features")} "{files.blobs["features"]}" has shape {_shown(features)}; expected one '
            f"feature vector per image, [{image[0]}, ...] as the input's batch{hint}"
        )


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
