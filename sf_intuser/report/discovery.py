"""What ``discover`` prints for a person, and its CSV. Pure formatting."""

from __future__ import annotations

import csv
import io
from typing import Any

from sf_intuser.report.output import WIDTH, table

#: below this many columns, discover lists candidates as blocks rather than an eight-column table
WIDE_TABLE = 160


def money(value: float | None) -> str:
    if value is None:
        return "?"
    return f"${value:,.0f}" if float(value).is_integer() else f"${value:,.2f}"


def when(value: str | None) -> str:
    """A Salesforce datetime shortened to minutes (``2026-11-23 10:15 UTC``)."""
    if not value:
        return ""
    return value[:10] + " " + value[11:16] + " UTC" if len(value) >= 16 else value


def evidence_text(ev: dict[str, Any]) -> str:
    parts = []
    for x in ev.get("apiLogins", []):
        parts.append(f"{x['count']}× {x['type']}" + (f" ({x['application']})" if x.get("application") else ""))
    if ev.get("apiOnlyUser"):
        parts.append(f"API Only User ({ev['apiOnlyUser']})")
    if ev.get("runAsOf"):
        parts.append("runs " + ", ".join(ev["runAsOf"]))
    return "; ".join(parts)


def access_text(access: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for g in access:
        if g["kind"] in ("PermissionSet", "PermissionSetGroup"):
            counts[g["verdict"]] = counts.get(g["verdict"], 0) + 1
    if not counts:
        return "profile only"
    words = {"assignable": "as is", "needs-rewrite": "to copy", "blocked": "blocked"}
    return ", ".join(f"{n} {words.get(v, v)}" for v, n in sorted(counts.items(), key=lambda kv: list(words).index(kv[0])
                                                                   if kv[0] in words else 9))


def policy_text(policy: dict[str, Any] | None) -> str:
    if policy is None:
        return "?"
    ranges = policy.get("loginIpRanges") or []
    hours = policy.get("loginHours") or {}
    out = []
    if ranges:
        out.append(f"{len(ranges)} IP range(s)")
    if hours:
        out.append("login hours")
    return ", ".join(out) or "none"


def discovery_text(org: dict[str, Any], result: dict[str, Any]) -> str:
    lines = [f"Org {org.get('name') or org.get('id')} ({org.get('id')}, {org.get('edition') or 'edition unknown'}) "
             f"as {org.get('username')}; logins of the last {result.get('days')} days."]
    cands = result["candidates"]
    if cands:
        rows = []
        for c in cands:
            notes = []
            if c["sharedBy"]:
                notes.append("shared by " + ", ".join(c["sharedBy"]))
            if c["blockers"]:
                notes.append(f"{len(c['blockers'])} blocker(s)")
            rows.append((c["username"], c["license"], c["profile"], evidence_text(c["evidence"]),
                         when(c["evidence"].get("lastApiLogin")), policy_text(c["loginPolicy"]),
                         access_text(c["access"]), "; ".join(notes)))
        lines += ["", f"Candidates ({len(cands)})"]
        if WIDTH[0] is not None and WIDTH[0] < WIDE_TABLE:
            # eight columns don't fit a terminal of usual width: one block a candidate (--wide: the table)
            for r in rows:
                lines += [f"{r[0]}  ({r[1]}, profile {r[2]})", f"  evidence: {r[3]}; last API login {r[4]}",
                          f"  login policy: {r[5]}; permission sets: {r[6]}" + (f"; {r[7]}" if r[7] else "")]
        else:
            lines.append(table(rows, ["username", "license", "profile", "evidence", "last API login", "login policy",
                                      "permission sets", "notes"]))
        blocked = [(c["username"], b) for c in cands for b in c["blockers"]]
        if blocked:
            lines += ["", "Blockers", table(blocked, ["username", "blocker"])]
        shared = [c for c in cands if c["sharedBy"]]
        if shared:
            lines += ["", "Shared users: one user serves several integrations ("
                      + "; ".join(f"{c['username']}: {', '.join(c['sharedBy'])}" for c in shared)
                      + "). With free integration seats, give each integration its own user."]
    else:
        lines += ["", "No candidates: no active user on another license logs in over the API only."]
    if result["dormant"]:
        lines += ["", f"Dormant ({len(result['dormant'])}): API-only users without a login in the window; "
                      "deactivating them frees their seats too",
                  table([(d["username"], d["license"], d["profile"], d["reason"]) for d in result["dormant"]],
                        ["username", "license", "profile", "why"])]
    if result["excluded"]:
        kinds: dict[str, int] = {}
        for e in result["excluded"]:
            key = e["reason"].split(":")[0]
            kinds[key] = kinds.get(key, 0) + 1
        lines += ["", f"Not proposed ({len(result['excluded'])}): "
                  + "; ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
                  + " (--json lists each with the reason)"]
    seats = result["seats"]
    seat_rows: list[tuple[Any, ...]] = []
    for key, label in (("integrationLicense", "Salesforce Integration seats"),
                       ("integrationPsl", "Salesforce API Integration PSL seats")):
        s = seats.get(key)
        if s is None:
            seat_rows.append((label, "-", "-", "-", "the org has none"))
        else:
            seat_rows.append((label, s["total"], s["used"], s["free"],
                         f"{s['fit']} of {seats['candidates']} fit" + (f"; buy {s['toBuy']}" if s["toBuy"] else "")))
    lines += ["", table(seat_rows, ["seats", "total", "used", "free", "for the candidates with no blocker"])]
    m = result["savings"]
    parts = [f"{r['seats']} × {r['license']} at {money(r['monthlyPrice'])}/month" for r in m["freedSeats"]]
    line = (f"Yearly saving at list prices, for {m['counts']}: " if m.get("counts") else
            "Yearly saving at list prices: ") + (" + ".join(parts) or "nothing freed")
    if m["integrationSeatsToBuy"]:
        line += (f", less {m['integrationSeatsToBuy']} Salesforce Integration seat(s) to buy at "
                 f"{money(m['integrationSeatPrice'])}/month")
    line += f" = {money(m['yearlySaving'])} a year."
    lines += ["", line]
    if m["unpricedLicenses"]:
        lines.append("Not priced: " + ", ".join(m["unpricedLicenses"]) + " (set them in sf-intuser.toml [prices]).")
    lines.append(m["note"])
    return "\n".join(lines)


#: snake_case, as the migration report's CSV (one style for every CSV the tool writes)
CSV_COLUMNS = ("username", "name", "license", "profile", "evidence", "last_api_login", "login_ip_ranges", "login_hours",
               "permission_sets", "blockers", "shared_by", "monthly_price")


def candidates_csv(result: dict[str, Any]) -> str:
    """The candidates as CSV; org-controlled cells can't run as spreadsheet formulas (escape.csv_cell)."""
    from sf_intuser.report.escape import csv_row

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for c in result["candidates"]:
        pol: dict[str, Any] = c["loginPolicy"] or {}
        w.writerow(csv_row([c["username"], c["name"], c["license"], c["profile"], evidence_text(c["evidence"]),
                    c["evidence"].get("lastApiLogin") or "",
                    " ".join(f"{r['startAddress']}-{r['endAddress']}" for r in pol.get("loginIpRanges", [])),
                    " ".join(f"{k}={v}" for k, v in (pol.get("loginHours") or {}).items()),
                    " ".join(f"{g['name']}:{g['verdict']}" for g in c["access"]
                             if g["kind"] in ("PermissionSet", "PermissionSetGroup")),
                    " | ".join(c["blockers"]), " ".join(c["sharedBy"]),
                    "" if c["monthlyPrice"] is None else c["monthlyPrice"]]))
    return out.getvalue()
