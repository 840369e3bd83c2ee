"""The sf verbs the workflow needs, over :class:`SfRunner`. Shapes from shared/spec/sf-wire.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sf_intuser.sf.runner import SfAuthError, SfError, SfRunner, parse_version


@dataclass(frozen=True)
class OrgInfo:
    username: str
    org_id: str
    instance_url: str
    api_version: str
    alias: str | None


def version(runner: SfRunner) -> tuple[int, int, int] | None:
    code, out, err = runner.raw(["--version"], timeout=60)
    if code != 0:
        raise SfError("SfVersionFailed", f"`sf --version` exited {code}: {(err or out).strip()[:300]}", code)
    return parse_version(out)


def org_display(runner: SfRunner, target_org: str | None) -> OrgInfo:
    """The org's identity. ``sf org display`` exits 0 with an expired session, so
    ``connectedStatus`` is checked here (sf-wire.md section 4)."""
    args = ["org", "display"] + (["--target-org", target_org] if target_org else [])
    env = runner.run(args, timeout=120)
    r = env.result or {}
    status = r.get("connectedStatus")
    if status not in (None, "Connected"):
        raise SfAuthError("SessionNotConnected", f"org {r.get('username', target_org)}: {status}", 1,
                          actions=[f"Log in again: sf org login web --alias {target_org or 'ALIAS'}"])
    return OrgInfo(r.get("username", ""), r.get("id", ""), r.get("instanceUrl", ""), r.get("apiVersion", ""),
                   r.get("alias"))


def query(runner: SfRunner, soql: str, target_org: str | None, tooling: bool = False) -> list[dict[str, Any]]:
    """All records of a SOQL query (the CLI follows ``nextRecordsUrl`` itself)."""
    args = ["data", "query", "--query", soql] + (["--target-org", target_org] if target_org else [])
    if tooling:
        args.append("--use-tooling-api")
    env = runner.run(args)
    return list((env.result or {}).get("records") or [])
