"""An output folder written as one unit, with a checkpoint beside it: `repro sample`'s OUT.

Beside OUT (in its parent, so every rename stays on one file system) a job
keeps `.OUT.sample-work/`: `job.json` (the job's settings, repro.sample_job, and the software versions) and
`checkpoint.npz`, the sampler's checkpoint (`repro.samplers.checkpoint.cadence`). The same command again
continues from it bit for bit; a checkpoint whose job.json differs (another run, or other versions) is
refused, naming the first differing key, unless --replace discards it. The finished files are written into a
fresh `.OUT.sample-new-<hex>/` and renamed onto OUT: an absent or empty OUT in one rename, a full one by
renaming it aside to `.OUT.sample-old-<hex>/` first, then removing that; the work folder goes last. A kill
at any point leaves OUT whole (the old run or the new one) or absent, never a mixture, and the checkpoint
survives until the new OUT is in place. A rerun removes the `.OUT.sample-new-<hex>` / `.OUT.sample-old-<hex>`
leftovers of killed runs. A file that is not an output of ours, put into OUT while the job ran, stops the
swap (exit 2): that file stays, and so does the finished checkpoint.
While it runs, a job holds `.OUT.sample-lock` beside OUT (an flock, gone with the process), and a second
job into the same OUT is refused (exit 2) rather than sharing its checkpoint and staging folders.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from repro.atomic import write_text
from repro.errors import BadInput
from repro.versions import versions

# What `repro sample` writes into OUT (and atomic_path's temporaries, which older versions could leave).
_OUTPUT_NAME = re.compile(r"(run\.json|samples\.npz|grid\.png|chain_\d{3,}(_states)?\.png|\..+\.tmp)\Z")


@dataclass(frozen=True)
class Output:
    """OUT and the temporaries beside it, all named `.OUT.sample-…` (see the module docstring)."""

    folder: Path

    @property
    def parent(self) -> Path:
        return self.folder.parent

    @property
    def work(self) -> Path:
        return self.parent / f".{self.folder.name}.sample-work"

    @property
    def checkpoint(self) -> Path:
        return self.work / "checkpoint.npz"

    @property
    def job_record(self) -> Path:
        return self.work / "job.json"

    def _temporary(self, kind: str) -> Path:
        return self.parent / f".{self.folder.name}.sample-{kind}-{uuid.uuid4().hex[:12]}"

    def leftovers(self) -> list[Path]:
        """The staging and set-aside folders of killed runs into this OUT."""
        pattern = re.compile(rf"\.{re.escape(self.folder.name)}\.sample-(new|old)-[0-9a-f]{{12}}\Z")
        if not self.parent.is_dir():
            return []
        return sorted(p for p in self.parent.iterdir() if pattern.match(p.name))

    @property
    def lock(self) -> Path:
        """Held for the whole job, so a second run into OUT is refused instead of taking our files."""
        return self.parent / f".{self.folder.name}.sample-lock"

    @classmethod
    def locate(cls, out_dir: Path) -> Output:
        """OUT as an absolute path, refused when it can never be written; changes nothing but creating
        missing parent folders."""
        folder = Path(os.path.abspath(out_dir))
        if folder.is_symlink():
            folder = folder.resolve()  # replace what the link points to, keep the link
        if not folder.name:
            raise BadInput(f"output folder {folder}: a file-system root cannot be replaced; name a folder")
        out = cls(folder)
        where = f"output folder {folder}"
        if folder.exists() and not folder.is_dir():
            raise BadInput(f"{where}: exists and is not a folder")
        above = next((p for p in folder.parents if p.exists()), None)
        if above is not None and not above.is_dir():
            raise BadInput(f"{where}: {above} is a file, not a folder")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            probe = out._temporary("new")
            probe.mkdir()
            probe.rmdir()
        except OSError as e:
            raise BadInput(f"{where}: cannot write in {out.parent} ({e.strerror})") from None
        return out

    def prepare(self, settings: dict, replace: bool) -> None:
        """Refuse an OUT this job must not write; else remove the leftovers of killed runs. Called with the
        lock held: a running job's staging folder looks like a leftover."""
        folder = self.folder
        where = f"output folder {folder}"
        if folder.is_dir():
            try:
                entries = sorted(folder.iterdir())
            except OSError as e:
                raise BadInput(f"{where}: cannot read it ({e.strerror})") from None
            foreign = _foreign(entries)
            if foreign is not None:
                raise BadInput(
                    f"{where}: holds {foreign}, which repro sample does not write; choose another folder "
                    "(one with other files is never replaced, even with --replace)"
                )
            why = _other_run(folder, settings) if entries and not replace else None
            if why is not None:
                raise BadInput(f"{where}: holds another run ({why}); pass --replace to replace it")
        stale_work = self.work.exists()
        if self.checkpoint.exists():
            why = _other_checkpoint(self.job_record, settings)
            if why is not None and not replace:
                raise BadInput(
                    f"{where}: {self.checkpoint} is the checkpoint of an interrupted run ({why}); run that "
                    "command again to finish it, or pass --replace to discard it"
                )
            stale_work = why is not None
        for path in self.leftovers():
            _remove(path)
        if stale_work:
            _remove(self.work)

    def start(self, settings: dict) -> None:
        """Record whose checkpoint the work folder will hold, before the sampler writes one."""
        self.work.mkdir(exist_ok=True)
        write_text(self.job_record, json.dumps({"settings": settings, "versions": versions()}, indent=2))

    def staging(self) -> Path:
        """A fresh, empty folder beside OUT for the finished files (mkdir: the umask's usual permissions)."""
        path = self._temporary("new")
        path.mkdir()
        return path

    def commit(self, staging: Path) -> None:
        """Put the finished staging folder in OUT's place, then drop the work folder (its checkpoint)."""
        try:
            os.rename(staging, self.folder)  # one atomic step onto an absent or empty OUT
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            self._swap(staging)
        _remove(self.work)

    def _swap(self, staging: Path) -> None:
        """Replace a full OUT: rename it aside, rename staging in, remove the old one."""
        foreign = _foreign(list(self.folder.iterdir()))
        if foreign is not None:  # put there while we sampled: keep it, and the finished checkpoint
            raise BadInput(
                f"output folder {self.folder}: {foreign} appeared in it during the run, so it is not "
                "replaced; move that away and run the command again (it continues from its checkpoint)"
            )
        old = self._temporary("old")
        os.rename(self.folder, old)  # a kill from here to the next rename leaves no OUT, never a mix
        os.rename(staging, self.folder)
        _remove(old)


def _foreign(entries: list[Path]) -> str | None:
    """The name of the first entry `repro sample` does not write, or None."""
    return next((p.name for p in entries if p.is_dir() or not _OUTPUT_NAME.match(p.name)), None)


def _other_run(folder: Path, settings: dict) -> str | None:
    """Why the files in folder are not this run's; None when they are."""
    run_json = folder / "run.json"
    if not run_json.exists():
        return "without a run.json"
    saved = _read_settings(run_json, "settings")
    if not saved:
        return "its run.json records no settings"
    diff = _difference(saved, settings)
    return None if diff is None else f"its run.json has {_show(*diff)}"


def _other_checkpoint(job_record: Path, settings: dict) -> str | None:
    """Why a checkpoint is not this run's (other settings or other versions); None when it is."""
    saved = _read_settings(job_record, None)
    if not isinstance(saved.get("settings"), dict):
        return f"{job_record} is missing or unreadable"
    diff = _difference(saved["settings"], settings) or _difference(
        saved.get("versions") or {}, versions(), "versions."
    )
    return None if diff is None else f"written with {_show(*diff)}"


def _read_settings(path: Path, key: str | None) -> dict:
    """The JSON object at path (its `key` entry when given); {} when missing, unreadable or not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if key is not None:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def _remove(path: Path) -> None:
    """Best effort: a leftover that cannot be removed costs disk space, never a wrong result."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _difference(saved: dict, now: dict, prefix: str = "") -> tuple[str, object, object] | None:
    """The first key (dotted into nested objects) whose value differs, with both values; None: they agree."""
    for key in [*now, *(k for k in saved if k not in now)]:
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _difference(a, b, f"{prefix}{key}.")
            if inner is not None:
                return inner
        elif a != b:
            return f"{prefix}{key}", a, b
    return None


def _show(key: str, saved: object, now: object) -> str:
    """'seed=0, this run seed=1'."""
    return f"{key}={_short(saved)}, this run {key}={_short(now)}"


def _short(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
