"""The tree keeps the shape ARCHITECTURE.md describes: every module is listed there, and data flows one way."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "imgenh"

# Modules below may not import modules above them (the run path's direction of flow).
LAYERS = [
    {"cli", "console"},
    {"fit"},
    {"runner"},
    {"executors", "shard"},
    {"cluster"},
    {"worker"},
    {"preview", "stats", "html_report"},
    {"report"},
    {"plan"},
    {"state", "discover", "pipeline_file"},
    {"pipeline_ref", "adaptive"},
    {"pipeline", "quality", "augment", "colour_difference"},
    {"ops"},
    {"pixels", "io", "errors", "yaml_errors", "boost", "cube"},
]


def _modules() -> list[str]:
    names = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        if rel.name not in ("__init__", "__main__"):
            names.append("/".join(rel.parts))
    return sorted(names)


def test_every_module_is_described_in_architecture_md():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    missing = []
    for name in _modules():
        top, _, leaf = name.rpartition("/")
        # Listed as `name.py` on its own line, or under its package's line (ops/, io/).
        if f"{leaf}.py" not in text and not (top and re.search(rf"\b{leaf}\b", text)):
            missing.append(name)
    assert not missing, f"modules not described in ARCHITECTURE.md: {missing}"


def _imports(path: Path) -> set[str]:
    """Package modules imported at run time (imports for type checkers only do not count)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("imgenh."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("imgenh."))
    return found


def test_data_flows_one_way():
    layer_of = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    upward = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        top = rel.parts[0].removesuffix(".py")
        if top not in layer_of:
            continue
        for imported in _imports(path):
            if imported in layer_of and layer_of[imported] < layer_of[top]:
                upward.append(f"{rel} imports imgenh.{imported}")
    assert not upward, upward
