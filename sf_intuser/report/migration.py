"""The migration report: per user before, after, outcome and saving, from a run folder's plan and
journal (no org is read). Markdown, CSV, or one self-contained HTML file (inline CSS and SVG, no
script, nothing fetched). Pure: data in, text out."""

from __future__ import annotations

import csv
import html
import io
from typing import Any

from sf_intuser.report.discovery import money
from sf_intuser.report.escape import csv_row, md, md_code

OUTCOMES = {
    "moved": "Moved",
    "refused": "Refused by the org",
    "no seat": "No seat left",
    "put back": "Put back",
    "not moved": "Not moved",
    "differs": "Differs from the plan",
    "planned": "Planned, not applied",
    "blocked": "Blocked in the plan",
    "rolled back": "Rolled back",
}


def build(plan: dict[str, Any], journal: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's data: one row per user of the plan, the cost per month before and after, the
    permissions dropped on the way, and where the run stands."""
    applied = next((r for r in reversed(journal) if r["run"] == "apply" and r["step"] == "verify"
                    and r["phase"] == "outcome"), None)
    rolled = next((r for r in reversed(journal) if r["run"] == "rollback" and r["step"] == "verify"
                   and r["phase"] == "outcome"), None)
    outcome = {r["userId"]: r for r in (applied or {}).get("users", [])}
    restored = {r["userId"] for r in (rolled or {}).get("users", []) if r.get("restored")}
    prices = {f["license"]: f["monthlyPrice"] for f in plan["savings"]["freedSeats"]}
    seat_price = plan["savings"].get("integrationSeatPrice") or 0
    free = (plan.get("seats") or {}).get("integrationLicense", {}).get("free", 0)
    tight = {t["username"]: t for t in (plan.get("tightened") or {}).get("users", [])}
    rows = []
    for u in plan["users"]:
        before_price = prices.get(u.get("from", {}).get("license"))
        if u["status"] != "planned":
            state = "blocked"
            reason = "; ".join(b["problem"] for b in u.get("blockers", []))
        elif u["id"] in restored:
            state, reason = "rolled back", "rolled back to the snapshot"
        elif u["id"] in outcome:
            o = outcome[u["id"]]
            state = o["outcome"]
            reason = o.get("reason") or "; ".join(o.get("differences", []))
        else:
            state, reason = "planned", "apply has not run" if not applied else ""
        to = u.get("to") or {}
        rows.append({
            "username": u["username"], "outcome": state, "outcomeLabel": OUTCOMES.get(state, state),
            "reason": reason,
            "before": {"license": u.get("from", {}).get("license"), "profile": u.get("from", {}).get("profile"),
                       "monthly": before_price},
            "after": ({"license": to.get("license"), "profile": to.get("profile"),
                       "permissionSets": [a["permissionSet"] for a in to.get("assign", [])],
                       "groups": [g["group"] for g in to.get("groups", [])]} if state == "moved" else None),
            "monthlySaving": (before_price or 0) if state == "moved" else 0,
            # what the move takes away (by the plan; an auditor must see access was removed)
            "removed": [{"kind": d.get("kind", ""), "name": d["name"], "from": d.get("from") or "",
                         "reason": d.get("reason", "")} for d in u.get("dropped") or []] if state != "blocked" else [],
            # objects read and written, and user permissions, in the sets sf-intuser makes for the user: before
            # the move, after it, after tightening (tightened plans only)
            "access": (tight[u["username"]].get("counts") if u["username"] in tight else None),
        })
    moved = sum(1 for r in rows if r["outcome"] == "moved")
    buy = max(moved - free, 0)
    counted = [r for r in rows if r["outcome"] != "blocked"]
    before = sum(r["before"]["monthly"] or 0 for r in counted)
    after = before - sum(r["monthlySaving"] for r in rows) + buy * seat_price
    dropped = [{"permissionSet": r["permissionSet"], "permission": r["permission"], "reason": r.get("reason", "")}
               for r in journal if r["run"] == "apply" and r["phase"] == "amend"]
    return {"run": plan["run"], "org": plan["org"], "createdAt": plan["createdAt"], "users": rows,
            "cost": {"currency": plan["savings"]["currency"], "monthlyBefore": round(before, 2),
                     "monthlyAfter": round(after, 2), "integrationSeatsBought": buy,
                     "integrationSeatPrice": seat_price, "yearlySaving": round((before - after) * 12, 2),
                     "users": len(counted),
                     "counts": f"the licenses of the {len(counted)} planned user(s); the "
                               f"{len(rows) - len(counted)} blocked one(s) keep theirs and are not counted"},
            "moved": moved, "dropped": dropped, "state": _state(journal),
            "tightened": ({"from": plan["tightened"]["from"], "window": plan["tightened"]["evidence"]["covers"],
                           "days": plan["tightened"]["evidence"]["days"]} if plan.get("tightened") else None),
            "note": plan["savings"]["note"], "prices": plan["savings"]["freedSeats"]}


def _state(journal: list[dict[str, Any]]) -> str:
    if any(r["run"] == "rollback" and r["phase"] == "end" for r in journal):
        return "rolled back"
    if any(r["run"] == "rollback" for r in journal):
        return "rollback unfinished"
    if any(r["run"] == "apply" and r["phase"] == "end" for r in journal):
        return "applied"
    if any(r["run"] == "apply" for r in journal):
        return "apply unfinished"
    return "planned"


def markdown(rep: dict[str, Any]) -> str:
    """The report in Markdown; every org-controlled string escaped for it (escape.md)."""
    c = rep["cost"]
    out = [f"# Migration report: {md(rep['run'])}", "",
           f"Org **{md(rep['org'].get('alias') or rep['org'].get('username'))}** ({md(rep['org']['id'])}), state: "
           f"**{rep['state']}**. {rep['moved']} user(s) moved.", "",
           f"License cost per month of {c['counts']}: {money(c['monthlyBefore'])} before, "
           f"{money(c['monthlyAfter'])} after "
           f"({c['integrationSeatsBought']} Salesforce Integration seat(s) bought); "
           f"{money(c['yearlySaving'])} a year at list prices.", "", f"> {rep['note']}", "",
           "| User | Outcome | Before | After | Saving / month |", "|---|---|---|---|---|"]
    for r in rep["users"]:
        b = f"{md(r['before']['license'])} · {md(r['before']['profile'])}"
        a = (f"{md(r['after']['license'])} · {md(r['after']['profile'])} · "
             + ", ".join(md(x) for x in r["after"]["permissionSets"]) if r["after"] else "unchanged")
        why = f" ({md(r['reason'])})" if r["reason"] else ""
        out.append(f"| {md(r['username'])} | {md(r['outcomeLabel'])}{why} | {b} | {a} | {money(r['monthlySaving'])} |")
    removed = [r for r in rep["users"] if r.get("removed")]
    if removed:
        out += ["", "## Access the move removes", "",
                "What each user's new permission sets leave out, and why (the license refuses it, or "
                "sf-intuser.toml left it out). Rollback gives it back with the old profile.", ""]
        for r in removed:
            out.append(f"### {md(r['username'])} ({len(r['removed'])})")
            out.append("")
            out += [f"- {md(d['kind'])} {md_code(d['name'])}" + (f" (from {md(d['from'])})" if d["from"] else "")
                    + f": {md(d['reason'])}" for d in r["removed"]]
            out.append("")
    if rep.get("tightened"):
        t = rep["tightened"]
        w = t["window"]
        out += ["", "## Access before, after the move and after tightening", "",
                f"Tightened to the use recorded in the last {t['days']} day(s) (covering "
                + (f"{w['from']} to {w['to']}" if w.get("from") else "no day with a log")
                + f"), from {md(t['from'])}. Counts are of the sets sf-intuser makes for each user: objects it may "
                "read / objects it may write / user permissions.", "",
                "| User | Before the move | After the move | After tightening |", "|---|---|---|---|"]
        for r in rep["users"]:
            if r.get("access"):
                out.append(f"| {md(r['username'])} | " + " | ".join(_counts(r["access"][k])
                                                                  for k in ("before", "moved", "tightened")) + " |")
    if rep["dropped"]:
        out += ["", "## Permissions dropped during apply", ""]
        out += [f"- {md_code(d['permission'])} from {md_code(d['permissionSet'])}: {md(d['reason'])}"
                for d in rep["dropped"]]
    return "\n".join(out) + "\n"


def _counts(c: dict[str, Any]) -> str:
    return f"{c['objectsRead']} / {c['objectsWrite']} / {c['systemPermissions']}"


ACCESS_COLUMNS = [f"{stage}_{what}" for stage in ("before", "moved", "tightened")
                  for what in ("objects_read", "objects_write", "system_permissions")]


def csv_text(rep: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["username", "outcome", "reason", "license_before", "profile_before", "license_after",
                "profile_after", "permission_sets_after", "monthly_saving", "removed_count", "removed",
                *ACCESS_COLUMNS])
    for r in rep["users"]:
        a = r["after"] or {}
        removed = r.get("removed") or []
        w.writerow(csv_row([r["username"], r["outcome"], r["reason"], r["before"]["license"], r["before"]["profile"],
                            a.get("license", ""), a.get("profile", ""), " ".join(a.get("permissionSets", [])),
                            r["monthlySaving"], len(removed), " | ".join(f"{d['kind']} {d['name']}" for d in removed),
                            *([r["access"][st][k] for st in ("before", "moved", "tightened")
                               for k in ("objectsRead", "objectsWrite", "systemPermissions")]
                              if r.get("access") else [""] * len(ACCESS_COLUMNS))]))
    return buf.getvalue()


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#181818;margin:0;background:#f3f3f3}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#5c5c5c;margin:0 0 20px}
.cards{display:flex;gap:16px;flex-wrap:wrap}
.card{background:#fff;border-radius:8px;padding:16px 20px;box-shadow:0 1px 2px rgba(0,0,0,.12);flex:1;min-width:200px}
.card b{display:block;font-size:24px;margin-top:4px}
.chart{background:#fff;border-radius:8px;padding:16px;box-shadow:0 1px 2px rgba(0,0,0,.12);margin-top:16px}
table{border-collapse:collapse;width:100%;background:#fff;border-radius:8px;overflow:hidden;
box-shadow:0 1px 2px rgba(0,0,0,.12)}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid #e5e5e5;vertical-align:top}
th{background:#fafafa;font-weight:600;color:#444}
td.num{text-align:right;white-space:nowrap}
.tag{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600}
.moved{background:#d9f2e0;color:#1b5e20}.refused,.no-seat,.put-back,.not-moved,.differs{background:#fde2e1;color:#8c1c13}
.planned,.rolled-back{background:#e8eefc;color:#1a3e8f}.blocked{background:#fff1d6;color:#7a4b00}
.reason{color:#5c5c5c;font-size:12px;margin-top:2px}
.note{color:#5c5c5c;font-size:12px;margin-top:16px}
.scroll{overflow-x:auto;border-radius:8px}
td{overflow-wrap:break-word}
details{margin-top:4px;font-size:12px;color:#5c5c5c}details ul{margin:4px 0 0;padding-left:18px}
code{font-size:12px;overflow-wrap:anywhere}
@media (max-width:600px){main{padding:12px}.card{min-width:0;flex-basis:100%}.card b{font-size:20px}
h1{font-size:19px}
/* on a phone each user is a card: its cells one under the other, each named */
table,tbody,tr,td{display:block;width:auto}thead{display:none}
tr{border-bottom:1px solid #e5e5e5;padding:6px 0}td{border:0;padding:3px 12px}
td::before{content:attr(data-label);display:block;font-size:11px;color:#5c5c5c;text-transform:uppercase}
td.num{text-align:left}}
"""


def _bar_chart(before: float, after: float, currency: str) -> str:
    top = max(before, after, 1.0)
    width, height, base = 520, 200, 170
    bars = []
    for i, (label, value, colour) in enumerate((("Before", before, "#0b5cab"), ("After", after, "#2e844a"))):
        h = round((value / top) * 140)
        x = 90 + i * 200
        bars.append(f'<rect x="{x}" y="{base - h}" width="120" height="{h}" fill="{colour}" rx="4"/>'
                    f'<text x="{x + 60}" y="{base - h - 8}" text-anchor="middle" font-size="14" '
                    f'font-weight="600">{html.escape(money(value))}</text>'
                    f'<text x="{x + 60}" y="{base + 20}" text-anchor="middle" font-size="13">{label}</text>')
    return (f'<svg role="img" aria-label="License cost per month, before {html.escape(money(before))} and after '
            f'{html.escape(money(after))} ({currency})" width="100%" style="max-width:{width}px;height:auto" '
            f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui,sans-serif">'
            f'<line x1="60" y1="{base}" x2="{width - 20}" y2="{base}" stroke="#c9c9c9"/>' + "".join(bars) + "</svg>")


def html_page(rep: dict[str, Any]) -> str:
    c = rep["cost"]
    e = html.escape
    rows = []
    for r in rep["users"]:
        a = r["after"]
        after = (f"{e(a['license'])}<div class=reason>{e(a['profile'])}<br>{e(', '.join(a['permissionSets']))}</div>"
                 if a else "unchanged")
        cls = r["outcome"].replace(" ", "-")
        removed = r.get("removed") or []
        gone = (f"<details><summary>{len(removed)} removed</summary><ul>"
                + "".join(f"<li>{e(d['kind'])} <code>{e(d['name'])}</code>"
                          + (f" (from {e(d['from'])})" if d["from"] else "") + f": {e(d['reason'])}</li>" for d in removed)
                + "</ul></details>") if removed else ""
        rows.append(f"<tr><td data-label=User>{e(r['username'])}{gone}</td><td data-label=Outcome>"
                    f"<span class='tag {cls}'>{e(r['outcomeLabel'])}</span>"
                    + (f"<div class=reason>{e(r['reason'])}</div>" if r["reason"] else "") + "</td>"
                    f"<td data-label=Before>{e(str(r['before']['license']))}<div class=reason>"
                    f"{e(str(r['before']['profile']))}</div></td>"
                    f"<td data-label=After>{after}</td><td class=num data-label='Saving / month'>"
                    f"{e(money(r['monthlySaving']))}</td></tr>")
    access_rows = "".join(
        f"<tr><td data-label=User>{e(r['username'])}</td>" + "".join(
            f"<td class=num data-label='{label}'>{e(_counts(r['access'][k]))}</td>"
            for k, label in (("before", "Before the move"), ("moved", "After the move"),
                             ("tightened", "After tightening"))) + "</tr>"
        for r in rep["users"] if r.get("access"))
    t = rep.get("tightened")
    access = (f"<h2>Access before, after the move and after tightening</h2><p class=sub>Objects it may read / "
              f"objects it may write / user permissions, in the sets sf-intuser makes for the user. Tightened to "
              f"the use recorded in the last {t['days']} day(s)"
              + (f", covering {e(t['window']['from'])} to {e(t['window']['to'])}" if t["window"].get("from") else "")
              + f".</p><div class=scroll><table><thead><tr><th>User</th><th style='text-align:right'>Before the move"
              f"</th><th style='text-align:right'>After the move</th><th style='text-align:right'>After tightening"
              f"</th></tr></thead><tbody>{access_rows}</tbody></table></div>") if t and access_rows else ""
    dropped = "".join(f"<li><code>{e(d['permission'])}</code> from <code>{e(d['permissionSet'])}</code>: "
                      f"{e(d['reason'])}</li>" for d in rep["dropped"])
    org = rep["org"].get("alias") or rep["org"].get("username") or rep["org"]["id"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>sf-intuser report: {e(rep['run'])}</title><style>{CSS}</style></head>
<body><main>
<h1>Salesforce Integration license migration</h1>
<p class=sub>{e(org)} ({e(rep['org']['id'])}) · run {e(rep['run'])} · state: <b>{e(rep['state'])}</b></p>
<div class=cards>
<div class=card>Users moved<b>{rep['moved']} of {len(rep['users'])}</b></div>
<div class=card>License cost per month, {c['users']} planned user(s)<b>{e(money(c['monthlyBefore']))} → {e(money(c['monthlyAfter']))}</b></div>
<div class=card>Saving per year (list prices)<b>{e(money(c['yearlySaving']))}</b></div>
</div>
<div class=chart><h2 style="margin-top:0">License cost per month, before and after</h2>
<p class=sub>{e(c['counts'])}.</p>
{_bar_chart(c['monthlyBefore'], c['monthlyAfter'], c['currency'])}</div>
<h2>Per user</h2>
<div class=scroll><table><thead><tr><th>User</th><th>Outcome</th><th>Before</th><th>After</th><th style="text-align:right">Saving / month</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table></div>
<p class=note>{sum(len(r.get("removed") or []) for r in rep["users"])} permission(s) and assignment(s) the move
removes are listed under each user (the license refuses them, or sf-intuser.toml left them out); rollback gives
them back.</p>
{access}
{f'<h2>Permissions dropped during apply</h2><ul>{dropped}</ul>' if dropped else ''}
<p class=note>{e(rep['note'])} {c['integrationSeatsBought']} Salesforce Integration seat(s) bought at
{e(money(c['integrationSeatPrice']))} a month. Prices: {e('; '.join(f"{p['license']} {money(p['monthlyPrice'])}/month ({p['source']})" for p in rep['prices']))}.</p>
</main></body></html>
"""


def render(rep: dict[str, Any], fmt: str) -> str:
    return {"md": markdown, "csv": csv_text, "html": html_page}[fmt](rep)


def summary(rep: dict[str, Any]) -> dict[str, Any]:
    return {"moved": rep["moved"], "users": len(rep["users"]), "state": rep["state"], "cost": rep["cost"]}
