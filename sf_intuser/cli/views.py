"""How a command's result reads for a person (the --json result is the same data, as it is)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sf_intuser.report.output import table


def _discovery_human(result: dict[str, Any], csv_path: Path | None, extra: str = "") -> str:
    from sf_intuser.report.discovery import discovery_text

    text = discovery_text(result["org"], result)
    if csv_path is not None:
        text += f"\nWrote {len(result['candidates'])} candidate(s) to {csv_path}"
    return text + extra


def _plan_human(result: dict[str, Any]) -> str:
    from sf_intuser.report.discovery import money

    rows = [(u["username"], u["status"], u.get("to", ""),
             u.get("permissionSet") or u["blockers"][0]["problem"]) for u in result["users"]]
    text = table(rows, ["user", "status", "moves to profile", "access in / blocker"])
    s = result["savings"]
    text += (f"\n\nYearly saving at list prices, for {s.get('counts', 'the planned users')}: "
             f"{money(s['yearlySaving'])}. {s['note']}")
    text += f"\nReview {result['planMd']} (run folder {result['runDir']})."
    for w in result["intoProject"]:
        text += f"\n{w['action'].capitalize()} {w['path']}"
    return text


def _outcome_human(title: str, out: Any) -> str:
    r = out.result
    lines = [title]
    rows = [(s["username"], "moved", s["profile"], ", ".join(s["permissionSets"])) for s in r.get("successes", [])]
    rows += [(f["username"], f["outcome"], f.get("message", ""), f.get("fix", "")) for f in r.get("failures", [])]
    if rows:
        lines += ["", table(rows, ("USER", "OUTCOME", "PROFILE / REASON", "PERMISSION SETS / FIX"))]
    for d in r.get("dropped", []):
        lines.append(f"Dropped from {d['permissionSet']} (the license refuses them): {', '.join(d['permissions'])}")
    if r.get("notAssigned"):
        lines.append("Not assigned (nothing left in them): " + ", ".join(r["notAssigned"]))
    for c in r.get("changedDuringRun", []):
        lines.append(f"Changed during the run: {c['username']}: " + "; ".join(c["changes"]))
    for n in r.get("notKept", []):
        lines.append(f"Not kept: feature license {n['featureLicense']} of {n['username']} (the new license refuses "
                     f"it: {n['reason']}); rollback gives it back")
    lines.append(f"Journal: {r['journal']}")
    return "\n".join(lines)


def _tighten_human(r: dict[str, Any]) -> str:
    from sf_intuser.cli.common import me
    from sf_intuser.report.plan_md import STAGES

    rows = []
    for u in r["users"]:
        c = u["counts"]
        cells = [f"{c[k]['objectsRead']}/{c[k]['objectsWrite']}/{c[k]['systemPermissions']}" for k, _ in STAGES]
        rows.append((u["username"], "narrowed" if u["narrowed"] else "as planned", *cells))
    text = table(rows, ["user", "sets", *[f"{label} (read/write/perms)" for _, label in STAGES]])
    w = r["window"]
    text += (f"\n\nEvidence: the last {w['days']} day(s), covering " + (f"{w['from']} to {w['to']}" if w["from"]
                                                                        else "no day with a log") + "; "
             + "; ".join(f"{s['name']} {s['status']}" for s in r["evidence"]["sources"])
             + f" ({r['evidenceSfCalls']} sf call(s)).")
    text += f"\nReview {r['planMd']}, then apply it: {me()} apply {r['runDir']}"
    return text
