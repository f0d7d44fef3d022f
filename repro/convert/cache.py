"""A Caffe net given by its files (or a built-in architecture), converted once and cached by content.

Conversion of the full-size nets takes seconds and every command needs it, so the ONNX graph of a pair of
files is kept under the cache folder, named by the hash of the files' bytes: a changed file is a new entry,
never a stale one. Each entry has a sidecar with the sha256 of its bytes; an entry that does not match it
(a truncated write, a damaged disk) or does not parse is discarded and rebuilt with a one-line notice, so a
bad cache never needs clearing by hand. Built-in architectures (seeded random weights, no files) are made
in memory each time.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from repro.atomic import write_text
from repro.digests import combined, sha256_of
from repro.errors import BadInput

# 2: entries named by repro.digests (one digest per file), no longer one over both; 3: entries record where
# each blob rewritten in place was first written (repro.convert.model.FIRST_WRITES)
CACHE_VERSION = "3"
# The form of a cached conversion, in its entry's name: "b" entries declare the batch axis symbolic, so every
# session over a user's net runs at the batch repro feeds it, whatever batch the prototxt declares (BVLC's
# deploy nets say 10). Entries of another form are simply not found, never loaded.
ENTRY_FORM = "b"


@dataclass(frozen=True)
class NetFiles:
    prototxt: Path | None  # None: a built-in architecture made in memory (the `random` set)
    caffemodel: Path | None
    blobs: dict[str, str]  # role → blob name: input, output / logits, features, code
    arch: str | None = None  # built-in architecture name when prototxt is None
    seed: int = 0
    last_scale: float | None = None


def cache_dir() -> Path:
    return Path(os.environ.get("REPRO_CACHE", Path.home() / ".cache" / "repro"))


def load_caffe_net(files: NetFiles, weights: bool = True):
    """The Caffe net of one role, weights attached (from files, or seeded for a built-in architecture).

    `weights=False` reads the prototxt alone: the blob shapes (`Net.shapes`) without the caffemodel's bytes.
    """
    from repro import caffe
    from repro.caffe import architectures

    if files.prototxt is None:
        net = caffe.parse_net_text(getattr(architectures, files.arch)(), source=f"<built-in {files.arch}>")
        if weights:
            caffe.random_weights(net, files.seed, last_scale=files.last_scale)
        return net
    for p in (files.prototxt, files.caffemodel) if weights else (files.prototxt,):
        if not p.exists():
            raise BadInput(f"model file not found: {p}")
    return caffe.load_net(files.prototxt, files.caffemodel if weights else None)


def convert_net(files: NetFiles, use_cache: bool = True) -> onnx.ModelProto:
    """Caffe → ONNX for one role, its batch axis symbolic, cached by the content hash of its input files
    (real files only)."""
    from repro.convert.model import to_onnx
    from repro.convert.save import save_onnx

    cached = None
    if use_cache and files.prototxt is not None:
        cached = cache_dir() / f"{entry_key(files)}.{ENTRY_FORM}.onnx"
        # Without its sidecar an entry is still being written (another process converting the same files
        # writes the entry, then the sidecar): convert too, quietly, rather than call it damaged.
        if cached.exists() and _sidecar(cached).exists():
            model = _load_entry(cached)
            if model is not None:
                return model
            print(
                f"notice: discarded the unreadable cached conversion {cached}; converting again",
                file=sys.stderr,
            )
    model = to_onnx(load_caffe_net(files), dynamic_batch=True)
    if cached is not None:
        try:
            save_onnx(model, cached)
            write_text(_sidecar(cached), _entry_digest(cached))
        except OSError:
            pass  # a read-only cache only costs time
    return model


def entry_key(files: NetFiles) -> str:
    """A cached conversion's name: its files' content digests (repro.digests), versioned (a new
    CACHE_VERSION renames every entry)."""
    return combined(CACHE_VERSION, sha256_of(files.prototxt), sha256_of(files.caffemodel))[:24]


def _sidecar(entry: Path) -> Path:
    return entry.with_name(entry.name + ".sha256")


def _entry_digest(entry: Path) -> str:
    """sha256 of the entry and of its external weights file, if it has one."""
    parts = [p for p in (entry, entry.with_name(entry.name + ".data")) if p.exists()]
    return combined(*(sha256_of(p) for p in parts))


def _load_entry(entry: Path) -> onnx.ModelProto | None:
    """The cached model, or None when it is not exactly what was written."""
    try:
        if _sidecar(entry).read_text().strip() != _entry_digest(entry):
            return None
        return onnx.load(entry)
    except (OSError, DecodeError, ValueError):
        return None
