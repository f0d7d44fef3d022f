"""The content digest of a file: the one rule by which a file counts in any identity.

A model set's identity (repro.modelsets), a cached conversion's name (repro.convert.cache), a report's cell
keys and a sample job's settings all name files by the SHA-256 of their bytes, computed here, so the same
file can never count one way in one place and another way in the next. The full-size caffemodels are
hundreds of MB and a report asks for their digests once per cell key and per conversion, so a digest is
remembered by the file's path, modification time and size: an edited file is read again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_DIGESTS: dict[tuple[str, int, int], str] = {}


def sha256_of(path: Path) -> str:
    """The full hex SHA-256 of a file's content."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def combined(*parts: str) -> str:
    """One hex SHA-256 of several digests or labels, in order (a group of files, a versioned key)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
