"""The dependency rules of the architecture, checked on the imports (AST)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "sf_intuser"


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def modules(sub: str):
    return sorted((PKG / sub).rglob("*.py"))


def test_only_the_sf_runner_imports_sh():
    users = [p.relative_to(PKG).as_posix() for p in PKG.rglob("*.py") if any(m == "sh" for m in imports(p))]
    assert users == ["sf/runner.py"]


def test_metadata_core_is_pure():
    banned = {"sh", "subprocess", "os", "socket", "shutil", "tempfile", "time", "datetime", "click"}
    for p in modules("metadata"):
        found = {m.split(".")[0] for m in imports(p)} & banned
        assert not found, (p.name, found)
        assert not any(m.startswith(("sf_intuser.sf", "sf_intuser.cli", "sf_intuser.org", "sf_intuser.workspace"))
                       for m in imports(p)), p.name


def test_only_cli_uses_click():
    users = [p.relative_to(PKG).as_posix() for p in PKG.rglob("*.py") if "click" in imports(p)]
    assert users == ["cli.py"]
