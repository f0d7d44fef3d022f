"""Model sets: which generator, classifier, crop, bounds, judge and evaluator belong together.

One module per job, so each can be read and changed alone: record.py is the set itself and its defaults,
manifest.py reads and checks a folder's manifest.json, known.py the sets known by name without one, fit.py
checks that the nets' blobs fit the set, names.py turns a `--models` spec into a set and lists them all, and
scorers.py puts the command line's judge and evaluator in place of a set's own.
"""

from repro.modelsets.manifest import check_files, from_manifest, read_manifest, sha256_of
from repro.modelsets.names import REPO_MODELS, resolve, status
from repro.modelsets.record import ModelSet, code_size
from repro.modelsets.scorers import evaluator_files, with_scorers

__all__ = [
    "REPO_MODELS",
    "ModelSet",
    "check_files",
    "code_size",
    "evaluator_files",
    "from_manifest",
    "read_manifest",
    "resolve",
    "sha256_of",
    "status",
    "with_scorers",
]
