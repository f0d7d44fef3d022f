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


@pytest.mark.skipif(not (REPO_MODELS / "embedded" / "manifest.json").exists(), reason="no embedded set")
def test_hidden_units_sheet(tmp_path, capsys):
    """tools/hidden_units.py: a sheet of one unit under MAP+clip, its activations raised, and -o checked."""
    import json

    from PIL import Image

    from tools.hidden_units import main

    out = tmp_path / "units.png"
    assert main(["--target", "fc6:300", "--methods", "map-clip", "--chains", "2", "-o", str(out)]) == 0
    scores = json.loads(out.with_suffix(".json").read_text())["scores"]["fc6:300"]["map-clip"]
    assert min(scores["end"]) > max(scores["start"]) + 10  # DGN-AM's ascent raises the unit
    assert Image.open(out).size[0] > 2 * 2 * 64  # two tiles of 64 pixels, drawn at twice their size
    assert main(["--target", "fc6:300", "-o", str(tmp_path / "units.jpg")]) == 2
    assert main(["--target", "fc6:9999", "--methods", "map-clip", "-o", str(out)]) == 2
    assert "unit 9999 is outside fc6's 512 values" in capsys.readouterr().err
