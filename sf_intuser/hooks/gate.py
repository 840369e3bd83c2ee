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

CHECKED_TYPES = ("Profile", "PermissionSet")


class PayloadError(ValueError):
    pass


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
    from sf_intuser import config as config_mod
    from sf_intuser import runs

    names: set[str] = set()
    sources: list[str] = []
    if project is None:
        return names, sources
    newest: tuple[str, Path, dict] | None = None
    base = project / runs.DEFAULT_BASE
    for plan_file in base.glob("*/plan.json") if base.is_dir() else ():
        try:
            plan = json.loads(plan_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        created = str(plan.get("createdAt") or "")
        if newest is None or created > newest[0]:
            newest = (created, plan_file, plan)
    if newest is not None:
        for u in newest[2].get("users", []):
            if u.get("status") != "planned":
                continue
            for a in (u.get("to") or {}).get("assign", []):
                if a.get("permissionSet"):
                    names.add(a["permissionSet"])
        sources.append(str(newest[1].relative_to(project)))
    cfg_path = project / config_mod.FILE_NAME
    if cfg_path.is_file():
        # a config that does not load raises ConfigError: the gate can't tell which sets integration
        # users get, so it blocks (fails closed) rather than pass them unchecked
        cfg = config_mod.load(cfg_path)
        for u in cfg.users:
            if u.permission_set:
                names.add(u.permission_set)
            names.update(u.keep or ())
        sources.append(cfg_path.name)
    return names, sources
