"""The pre-deploy gate: what ``sf project deploy start`` is about to send, checked by the lint.

The sf plugin's ``scopedPreDeploy`` hook (plugin-manifest/hooks/predeploy.js) hands over the
deploy's component set as JSON on stdin (``{commandId, orgId, argv, components: [{type,
fullName, xmlPath}]}``); :func:`inputs` picks the profiles and permission sets, and
:func:`integration_sets` says which permission sets integration users get in this project, so
the lint can hold them to the integration license's rules even when their names don't say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sf_intuser import run_files

CHECKED_TYPES = ("Profile", "PermissionSet")
#: the project's run folders and config (runs.DEFAULT_BASE, config.FILE_NAME; a test holds them equal):
#: named here so the gate, which every deploy waits for, does not import the read side to learn them
RUNS_FOLDER = run_files.BASE
CONFIG_FILE = "sf-intuser.toml"


class PayloadError(ValueError):
    pass


class ProjectFileError(ValueError):
    """A project file the gate must read to know which sets integration users get, and can't: the gate
    then blocks (fails closed) rather than pass those sets unchecked. ``file`` names it, ``fix`` says how."""

    def __init__(self, file: str, message: str, fix: str) -> None:
        super().__init__(message)
        self.file = file
        self.fix = fix


@dataclass(frozen=True)
class Component:
    type: str
    full_name: str
    xml_path: str


def read_payload(data: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"the deploy description on stdin is not JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("components"), list):
        raise PayloadError("the deploy description on stdin has no components list")
    return payload


def components(payload: dict[str, Any]) -> list[Component]:
    """The profiles and permission sets of the deploy that have a file (destructive ones have none)."""
    out = []
    for c in payload["components"]:
        if not isinstance(c, dict) or c.get("type") not in CHECKED_TYPES:
            continue
        if c.get("destructive") or not c.get("xmlPath"):
            continue
        out.append(Component(str(c["type"]), str(c.get("fullName") or ""), str(c["xmlPath"])))
    return out


def integration_sets(project: Path | None) -> tuple[set[str], list[str]]:
    """Permission set names integration users get, from the project's newest plan (its
    ``intuser-runs/*/plan.json``: the sets each planned user is assigned) and its
    ``sf-intuser.toml`` (``permission_set`` and ``keep`` of each user), with where they came from."""
    names: set[str] = set()
    sources: list[str] = []
    if project is None:
        return names, sources
    newest: tuple[str, Path, dict[str, Any]] | None = None
    base = project / RUNS_FOLDER
    for plan_file in sorted(base.glob("*/plan.json")) if base.is_dir() else ():
        rel = str(plan_file.relative_to(project))
        try:
            plan = json.loads(plan_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            # a plan that does not parse might be the newest: skipping it would let its sets through
            raise ProjectFileError(rel, f"{rel} can't be read ({exc})",
                                   f"Restore it, or move that run folder out of {RUNS_FOLDER}/") from None
        if not isinstance(plan, dict) or not isinstance(plan.get("users", []), list):
            raise ProjectFileError(rel, f"{rel} is not an sf-intuser plan",
                                   f"Restore it, or move that run folder out of {RUNS_FOLDER}/")
        created = str(plan.get("createdAt") or "")
        if newest is None or created > newest[0]:
            newest = (created, plan_file, plan)
    if newest is not None:
        for u in newest[2].get("users", []):
            if not isinstance(u, dict) or u.get("status") != "planned":
                continue
            for a in (u.get("to") or {}).get("assign", []):
                if a.get("permissionSet"):
                    names.add(a["permissionSet"])
        sources.append(str(newest[1].relative_to(project)))
    cfg_path = project / CONFIG_FILE
    if cfg_path.exists() and not cfg_path.is_file():
        raise ProjectFileError(cfg_path.name, f"{cfg_path.name} is not a file", f"Make {cfg_path.name} a file, or "
                               "remove it")
    if cfg_path.is_file():
        from sf_intuser import config as config_mod   # only when there is one: a deploy waits for this start-up

        # a config that does not load raises ConfigError: the gate can't tell which sets integration
        # users get, so it blocks (fails closed) rather than pass them unchecked
        cfg = config_mod.load(cfg_path)
        for u in cfg.users:
            if u.permission_set:
                names.add(u.permission_set)
            names.update(u.keep or ())
        sources.append(cfg_path.name)
    return names, sources
