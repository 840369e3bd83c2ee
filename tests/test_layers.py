"""The dependency rules of the architecture (docs/architecture.md, "Layers"), checked on the imports (AST).

:data:`MAY_IMPORT` is the table: for each layer, the layers of ours it may import. A module belongs to
the most specific layer whose name is a prefix of its own; every module must belong to one. Breaking a
rule (say, ``metadata/`` importing ``sf/``, or the planner importing ``org/inventory``) fails
:func:`test_every_import_follows_the_layer_table` and names the module, the import and the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "sf_intuser"

ROOT_NAMES = {"__version__"}          # `from sf_intuser import __version__` is open to every layer
BASE = {"sf_intuser.errors", "sf_intuser.run_files"}   # the one error type, the run folder's names

#: layer -> the layers of ours it may import (itself always). Read top to bottom: lower layers know less.
MAY_IMPORT: dict[str, set[str]] = {
    # pure: bytes in, bytes and changes out
    "sf_intuser.metadata": set(),
    "sf_intuser.errors": set(),
    "sf_intuser.contracts": set(),
    "sf_intuser.run_files": set(),
    "sf_intuser.tempfiles": set(),
    # the one door to processes (sf, and git through run_process)
    "sf_intuser.sf": {"sf_intuser.tempfiles"},
    # the org as data, and what is computed from it alone
    "sf_intuser.org.model": {"sf_intuser.metadata"},
    "sf_intuser.org.discover": {"sf_intuser.org.model", "sf_intuser.metadata"},
    "sf_intuser.org.usage": set(),
    "sf_intuser.report": {"sf_intuser.metadata"},
    "sf_intuser.migrate.plan": {"sf_intuser.metadata", "sf_intuser.org.model", "sf_intuser.org.discover",
                                "sf_intuser.config"},
    "sf_intuser.migrate.convert": {"sf_intuser.metadata"},
    "sf_intuser.migrate.tighten": {"sf_intuser.metadata", "sf_intuser.org.usage"},
    # files of the project and of the run folder
    "sf_intuser.workspace": {"sf_intuser.metadata"},
    "sf_intuser.config": {"sf_intuser.workspace"},
    # the run folder's files, one owner: the plan, checksums and lock (runs), the snapshot's files, the journal
    "sf_intuser.runs": {"sf_intuser.org", "sf_intuser.workspace"},
    "sf_intuser.runs.journal": set(),
    # reading the org through sf
    "sf_intuser.org": {"sf_intuser.metadata", "sf_intuser.sf", "sf_intuser.workspace", "sf_intuser.tempfiles"},
    # changing it
    "sf_intuser.migrate": {"sf_intuser.metadata", "sf_intuser.org", "sf_intuser.sf", "sf_intuser.runs",
                           "sf_intuser.workspace", "sf_intuser.tempfiles", "sf_intuser.config", "sf_intuser.report"},
    "sf_intuser.hooks": {"sf_intuser.metadata", "sf_intuser.config", "sf_intuser.workspace", "sf_intuser.runs",
                         "sf_intuser.sf.runner"},
    # the commands' logic
    "sf_intuser.workflow": {"sf_intuser.metadata", "sf_intuser.org", "sf_intuser.sf", "sf_intuser.migrate",
                            "sf_intuser.report", "sf_intuser.runs", "sf_intuser.config", "sf_intuser.workspace"},
    # the emulated org: the product's layers never import it; only these two may
    "sf_intuser.emulated": {"sf_intuser.emulator", "sf_intuser.workflow", "sf_intuser.migrate", "sf_intuser.report",
                            "sf_intuser.sf", "sf_intuser.config", "sf_intuser.workspace"},
    "sf_intuser.emulator": {"sf_intuser.metadata"},
    # the command layer: anything
    "sf_intuser.cli": {"*"},
    "sf_intuser.__main__": {"sf_intuser.cli"},
    "sf_intuser": set(),
}

#: modules whose answer depends on their arguments alone: no process, file system, network, clock or terminal
PURE = ("sf_intuser.metadata", "sf_intuser.contracts", "sf_intuser.run_files", "sf_intuser.org.model", "sf_intuser.org.discover",
        "sf_intuser.migrate.plan", "sf_intuser.migrate.convert", "sf_intuser.report", "sf_intuser.org.usage",
        "sf_intuser.migrate.tighten")
IMPURE_STDLIB = {"sh", "subprocess", "os", "socket", "shutil", "tempfile", "time", "datetime", "click", "threading",
                 "pathlib", "urllib.request", "http", "sys"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(name: str) -> bool:
    return (PKG.parent / Path(*name.split(".")) / "__init__.py").exists()


def imports(path: Path) -> set[str]:
    """Every module a file imports (ours resolved to the module, not the name inside it)."""
    tree = ast.parse(path.read_text(), str(path))
    me = module_name(path)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = me.split(".")
                base = base[: len(base) - node.level + (1 if path.name == "__init__.py" else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                # `from sf_intuser import config` imports the module sf_intuser.config
                out.add(sub if mod.startswith("sf_intuser") and (is_package(sub) or
                                                                  (PKG.parent / (sub.replace(".", "/") + ".py")).exists())
                        else mod)
    return out


def layer_of(name: str) -> str:
    best = max((k for k in MAY_IMPORT if name == k or name.startswith(k + ".")), key=len, default=None)
    assert best is not None, f"{name} belongs to no layer: add it to MAY_IMPORT in tests/test_layers.py"
    return best


def violations(sources: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, deps in sorted(sources.items()):
        layer = layer_of(name)
        allowed = MAY_IMPORT[layer]
        for dep in sorted(d for d in deps if d == "sf_intuser" or d.startswith("sf_intuser.")):
            if dep == "sf_intuser" or dep in BASE or "*" in allowed:
                continue
            target = layer_of(dep)
            if target == layer or target.startswith(layer + ".") or any(
                    target == a or target.startswith(a + ".") or dep == a or dep.startswith(a + ".") for a in allowed):
                continue
            bad.append(f"{name} imports {dep} ({layer} may import {sorted(allowed) or 'nothing of ours'})")
    return bad


def all_sources() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in PKG.rglob("*.py")}


def test_every_import_follows_the_layer_table():
    assert violations(all_sources()) == []


def test_the_table_catches_a_broken_rule():
    """The check itself can fail: a metadata module importing sf, the planner reading the org, and the
    product importing the emulator are each named."""
    src = all_sources()
    src["sf_intuser.metadata.xml"] = src["sf_intuser.metadata.xml"] | {"sf_intuser.sf.runner"}
    src["sf_intuser.migrate.plan"] = src["sf_intuser.migrate.plan"] | {"sf_intuser.org.inventory"}
    src["sf_intuser.workflow"] = src["sf_intuser.workflow"] | {"sf_intuser.emulator.server"}
    found = violations(src)
    assert [v.split(" (")[0] for v in found] == ["sf_intuser.metadata.xml imports sf_intuser.sf.runner",
                                                 "sf_intuser.migrate.plan imports sf_intuser.org.inventory",
                                                 "sf_intuser.workflow imports sf_intuser.emulator.server"]


def test_the_pure_layers_touch_no_process_file_clock_or_terminal():
    for p in PKG.rglob("*.py"):
        name = module_name(p)
        if not any(name == x or name.startswith(x + ".") for x in PURE):
            continue
        found = {b for m in imports(p) for b in IMPURE_STDLIB if m == b or m.startswith(b + ".")}
        assert not found, (name, found)


def test_only_the_one_runner_starts_processes():
    """sh is imported by sf/runner.py alone; subprocess only by the command layer (it re-runs itself for
    serve), the emulator (its scripted browser) and the installer that runs before the runner exists."""
    sh_users = [module_name(p) for p in PKG.rglob("*.py") if "sh" in imports(p)]
    assert sh_users == ["sf_intuser.sf.runner"]
    spawners = sorted(module_name(p) for p in PKG.rglob("*.py") if {"subprocess"} & imports(p))
    assert all(s.startswith(("sf_intuser.cli", "sf_intuser.emulator", "sf_intuser.sf.")) for s in spawners), spawners


def test_only_the_command_layer_uses_click_or_prints():
    users = {module_name(p).split(".")[1] for p in PKG.rglob("*.py") if "click" in imports(p)}
    assert users == {"cli"}
    printing = []
    for p in PKG.rglob("*.py"):
        name = module_name(p)
        if name.startswith(("sf_intuser.cli", "sf_intuser.emulator", "sf_intuser.sf.install")):
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                printing.append(f"{name}:{node.lineno}")
            if (isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr")
                    and isinstance(node.value, ast.Name) and node.value.id == "sys"):
                printing.append(f"{name}:{node.lineno}")
    assert printing == []


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
