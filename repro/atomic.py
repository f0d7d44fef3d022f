"""Atomic file output: a crash never leaves a half-written file that looks whole."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from repro.errors import BadInput


def _file_mode() -> int:
    """0666 less the umask, what open() would give; reading the umask means setting it, so do it once."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()  # mkstemp creates files 0600; outputs get the usual permissions instead


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary file lives in the destination folder so the final rename never crosses file systems.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, _FILE_MODE)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as e:  # a full disk or a lost permission: name the file the user asked for
        if e.filename is None or Path(e.filename) == tmp_path:
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def refuse_overwriting_inputs(output: str | os.PathLike, inputs: dict[str, str | os.PathLike]) -> None:
    """An output may never replace one of the command's inputs (same resolved path or same file by inode,
    links included): a typo in -o must not cost a user their weights. `inputs`: role → path."""
    out = Path(output)
    for role, given in inputs.items():
        path = Path(given)
        same = out.resolve() == path.resolve()
        if not same and out.exists() and path.exists():
            same = os.path.samefile(out, path)
        if same:
            raise BadInput(f"output {out} is the {role} {path}: refusing to write over an input")


@contextlib.contextmanager
def exclusive(lock: Path, what: str) -> Iterator[None]:
    """Hold `lock` (a file, created if absent, removed on exit) for the block, or refuse at once: two runs
    writing one output folder would each take the other's checkpoints and cells for their own.

    An advisory flock, so a killed holder never leaves a stale lock. The file is removed while still held;
    a second process that opened it just before then finds its inode gone from the path and tries again,
    so two processes never both believe they hold the same path.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, _FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            who = f"another repro process (pid {holder})" if holder.isdigit() else "another repro process"
            raise BadInput(
                f"{what}: {who} is writing it (it holds {lock}); wait for it to finish, or choose another "
                "folder"
            ) from None
        try:
            current = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)
