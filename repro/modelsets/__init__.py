"""Model sets: which generator, classifier, crop, bounds, judge and evaluator belong together.

One module per job, so each can be read and changed alone: record.py is the set itself and its defaults,
manifest.py reads and checks a folder's manifest.json, known.py the sets known by name without one, fit.py
checks that the nets' blobs fit the set, names.py turns a `--models` spec into a set and lists them all,
scorers.py puts the command line's judge and evaluator in place of a set's own, and identity.py is the one
rule by which a result depends on a set.
"""

from repro.modelsets.identity import REPORT_USES, SAMPLE_USES, models_id, stand_in
from repro.modelsets.manifest import check_files, from_manifest, read_manifest
from repro.modelsets.names import REPO_MODELS, resolve, status
from repro.modelsets.record import ModelSet, code_size
from repro.modelsets.scorers import evaluator_files, with_scorers

__all__ = [
    "REPORT_USES",
    "REPO_MODELS",
    "SAMPLE_USES",
    "ModelSet",
    "check_files",
    "code_size",
    "evaluator_files",
    "from_manifest",
    "read_manifest",
    "models_id",
    "resolve",
    "stand_in",
    "status",
    "with_scorers",
]
