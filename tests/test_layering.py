"""The layering of docs/architecture.md holds: no module imports one above it, lazily or not.

Ranks run from the bottom of the data flow to the top; a module may import its own rank and those below.
Every top-level module or package must have a rank, so a new one is placed deliberately.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "repro"

RANKS = [
    {"__init__", "errors", "registry", "atomic", "digests", "output_folder", "images", "data"}
    | {"onnx_attrs", "onnx_versions", "versions", "schemas", "target"},
    {"caffe", "dcgan"},
    {"convert", "grad", "posterior"},
    {"runtime", "samplers"},
    {"modelsets", "evaluate", "kinks", "parity", "bench", "eager_port", "resources"},
    {"sample_job", "saved_states", "api"},
    {"report"},
    {"cli"},
]
RANK = {name: i for i, names in enumerate(RANKS) for name in names}


def top_level(module: str) -> str:
    """repro.samplers.run → samplers; repro → __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a repro module in the file, including those inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "repro"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "repro":
            if node.module == "repro":  # `from repro import samplers` imports the submodules named
                found += [(node.lineno, f"repro.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def own_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(rel.parts)


def test_every_module_has_a_rank():
    unranked = sorted({top_level(own_name(p)) for p in modules()} - set(RANK))
    assert unranked == [], f"give these a rank in RANKS (and in docs/architecture.md): {unranked}"


def test_no_module_imports_one_above_it():
    upward = []
    for path in modules():
        mine = RANK[top_level(own_name(path))]
        for line, module in imports_of(path):
            theirs = RANK.get(top_level(module))
            if theirs is not None and theirs > mine:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert upward == [], "imports that run up the layers:\n" + "\n".join(upward)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from repro.report.plan import Row\n", [(1, "repro.report.plan")]),
        ("def f():\n    from repro import samplers\n", [(2, "repro.samplers")]),
        ("import repro.cli\nimport numpy\n", [(1, "repro.cli")]),
    ],
)
def test_import_finder_sees_lazy_and_package_imports(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert imports_of(path) == expected
