"""docs/python_api.md runs as written: its code blocks, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from repro.modelsets import REPO_MODELS

DOC = Path(__file__).resolve().parents[1] / "docs" / "python_api.md"


@pytest.mark.skipif(not (REPO_MODELS / "embedded" / "manifest.json").exists(), reason="no embedded set")
def test_the_python_api_page_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 4
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # the page is ours
    out = capsys.readouterr().out
    assert "conv3:11@3,3 activation:" in out and "PPGN from a photo" in out
