"""The package's imports follow the pipeline: io <- data <- models <- inference / engine <- cli.

Every ``import gliomask...`` in every module, lazy (inside functions) included, is read with ``ast``
and checked against what each layer may use. A new upward import fails here rather than in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gliomask"

# layer -> the layers its modules may import (besides itself). ``errors`` and ``labels`` are leaves
# every layer may use: the error type, and the one home of BraTS label semantics.
BASE = {"errors", "labels"}
ALLOWED = {
    "errors": set(),
    "labels": set(),
    "io": set(),
    "utils": {"io"},
    "config": {"io"},
    "data": {"io", "utils", "config"},
    "models": {"io", "utils", "config", "data"},
    "viz": {"io", "utils"},
    "evaluation": {"io", "utils", "config", "data", "models", "viz"},
    "inference": {"io", "utils", "config", "data", "models", "viz"},
    "engine": {"io", "utils", "config", "data", "models", "viz", "evaluation", "inference"},
    "followup": {"io", "utils", "data", "viz"},  # follow-up analysis takes label maps; a predictor comes from the cli
    "demo": {"io", "utils", "config", "data", "models", "viz", "evaluation", "inference", "engine"},
    "cli": {"io", "utils", "config", "data", "models", "viz", "evaluation", "inference", "engine", "demo", "followup"},
    "__main__": {"cli"},
    "__init__": set(),
}


def layer_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_layers(path: Path) -> list[tuple[int, str]]:
    """(line, layer) of every gliomask import in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names] if node.module == "gliomask" else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "gliomask" and len(parts) > 1:
                out.append((node.lineno, parts[1]))
    return out


MODULES = sorted(SRC.rglob("*.py"))


def test_every_layer_is_known():
    assert {layer_of(p) for p in MODULES} <= set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(SRC)) for p in MODULES])
def test_imports_follow_the_pipeline(path):
    layer = layer_of(path)
    allowed = ALLOWED[layer] | BASE | {layer, "__version__", "__init__"}
    bad = [f"line {line}: imports gliomask.{target}" for line, target in imported_layers(path) if target not in allowed]
    assert not bad, f"{path.relative_to(SRC)} ({layer}) " + "; ".join(bad)


def test_the_rules_the_issue_names_are_in_the_table():
    for layer in ("inference", "viz", "evaluation", "models", "io"):
        assert "engine" not in ALLOWED[layer]
    for layer in ("viz", "evaluation"):
        assert "inference" not in ALLOWED[layer]
    assert ALLOWED["io"] == set()


def test_label_sets_are_spelled_in_one_module():
    spelled = [p.relative_to(SRC).as_posix() for p in MODULES if "1, 2, 4" in p.read_text() or "0, 1, 2, 3" in p.read_text()]
    assert spelled == ["labels.py"]


def test_no_source_file_over_400_lines():
    long = {p.relative_to(SRC).as_posix(): n for p in MODULES if (n := len(p.read_text().splitlines())) > 400}
    assert not long
