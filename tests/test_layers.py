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
    users = {p.relative_to(PKG).parts[0] for p in PKG.rglob("*.py") if "click" in imports(p)}
    assert users == {"cli"}


def test_the_product_and_its_docs_point_at_nothing_outside_the_repository():
    """The facts the code cites are in docs/; only tests and scripts read the shared corpus (and skip
    without it)."""
    root = PKG.parent
    places = [*PKG.rglob("*.py"), *(root / "docs").glob("*.md"), root / "README.md",
              *(p for p in (root / "plugin-manifest").rglob("*.js") if "node_modules" not in p.parts)]
    bad = [p.relative_to(root).as_posix() for p in places
           if any(s in p.read_text(encoding="utf-8") for s in ("shared/spec", "../shared/corpus/", "shared/corpus)"))]
    assert bad == []
    cited = {m for p in PKG.rglob("*.py") for m in ("docs/salesforce-facts.md", "docs/sf-wire.md")
             if m in p.read_text(encoding="utf-8")}
    assert cited and all((root / m).is_file() for m in cited)
