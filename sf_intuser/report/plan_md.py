"""``plan.md``: the plan as a Salesforce admin reviews it (per user: from -> to, kept, rewritten,
dropped with reasons, blockers; then seats and the saving; then what apply will do). Pure. Every
org-controlled string (names, labels, messages quoting them) is escaped for Markdown (escape.md)."""

from __future__ import annotations

from typing import Any

from sf_intuser.report.discovery import money, when
from sf_intuser.report.escape import md, md_code

#: the sections a permission set carries, as an admin reads them
SECTION_WORDS = {"objectPermissions": "object(s)", "fieldPermissions": "field(s)", "classAccesses": "Apex class(es)",
                 "pageAccesses": "Visualforce page(s)", "userPermissions": "user permission(s)",
                 "tabSettings": "tab(s)", "recordTypeVisibilities": "record type(s)",
                 "applicationVisibilities": "app(s)", "customPermissions": "custom permission(s)",
                 "customMetadataTypeAccesses": "custom metadata type(s)", "customSettingAccesses": "custom setting(s)",
                 "externalDataSourceAccesses": "external data source(s)", "flowAccesses": "flow(s)"}


def _code(name: str) -> str:
    return md_code(name)


def _why_profile(u: dict[str, Any], plan: dict[str, Any] | None) -> str | None:
    """Why the user gets a custom API-only profile rather than the standard one: its old profile's login
    IP ranges or hours, which live on the profile and must follow it (shared with any user whose old
    profile has the same ones)."""
    to = u["to"]
    gen = next((g for g in (plan or {}).get("generated", []) if g["type"] == "Profile" and g["name"] == to["profile"]),
               None)
    if gen is None:
        return None
    sources = gen["source"][len("login policy of "):] if gen["source"].startswith("login policy of ") else gen["source"]
    return (f"- Why a custom API-only profile: login IP ranges and hours live on the profile, and those of "
            f"*{md(u['from']['profile'])}* must follow the user; {_code(to['profile'])} carries the login policy of "
            f"{md(sources)}" + (" (users whose profiles have the same ranges and hours share it)" if ", " in sources
                                  else ""))


def _user(u: dict[str, Any], plan: dict[str, Any] | None = None) -> list[str]:
    to = u["to"]
    out = [f"### {md(u['username'])}" + (f" ({md(u['name'])})" if u.get("name") else ""), ""]
    api = u["from"].get("profileApiName")
    shown = md(u["from"]["profile"]) + (f" (Metadata API name {md_code(api)})"
                                        if api and api != u["from"]["profile"] else "")
    out.append(f"**From** {md(u['from']['license'])}, profile *{shown}*  \n"
               f"**To** {md(to['license'])}, profile *{md(to['profile'])}* ({md(to['profileHow'])}), with the "
               f"permission set license {_code(to['permissionSetLicense'])}")
    out.append("")
    ev = u.get("evidence") or {}
    if ev.get("apiLogins"):
        logins = ", ".join(f"{x['count']}× {md(x['type'])}" + (f" ({md(x['application'])})" if x.get("application")
                                                                else "") for x in ev["apiLogins"])
        out.append(f"- Evidence: {logins}; last API login {when(ev.get('lastApiLogin'))}")
    why = _why_profile(u, plan)
    if why:
        out.append(why)
    assigns = to["assign"]
    out.append(f"- Access from the profile moves to {_code(to['permissionSet'])} (license-less, made from it)")
    for c in u.get("carried") or ():
        what = ", ".join(f"{n} {SECTION_WORDS.get(s, s)}" for s, n in c["sections"].items())
        out.append(f"- Kept in {_code(c['into'])} from {md(c['from'])}: {md(what)}")
    for a in assigns[1:]:
        exp = f", expires {a['expires']}" if a.get("expires") else ""
        out.append(f"- Permission set {_code(a['permissionSet'])}: {md(a['why'])}{md(exp)}")
    for g in to["groups"]:
        out.append(f"- Group {_code(g['group'])}: {md(g['why'])}")
    for k in u["kept"]:
        if k["kind"] == "PermissionSetLicense":
            out.append(f"- Kept: permission set license {md(k['name'])} ({md(k['reason'])})")
    for r in u["rewritten"]:
        if r["kind"] != "Profile":
            out.append(f"- Rewritten: {r['kind']} {md(r['name'])} → {_code(r.get('into', '?'))}: {md(r['reason'])}")
    apps = sorted({a["entity"] for a in to.get("access", [])})
    if apps:
        out.append(f"- Connected apps granted again on the new set: {', '.join(md(a) for a in apps)}")
    if u.get("packages"):
        out.append("- Package licenses kept: " + ", ".join(md(p["namespace"]) for p in u["packages"]))
    rec = u.get("userRecord")
    if rec:
        how = rec["how"]
        groups = [m for m in rec["memberships"] if m["type"] != "Queue"]
        queues = [m for m in rec["memberships"] if m["type"] == "Queue"]
        out.append(f"- Role: {md(rec['role']) if rec['role'] else 'none'}" + (f"; {how['role']}" if rec["role"] else ""))
        out.append("- Public groups: " + (", ".join(md(m["name"]) for m in groups) or "none")
                   + "; queues: " + (", ".join(md(m["name"]) for m in queues) or "none")
                   + (f"; {how['memberships']}" if rec["memberships"] else ""))
        feats = [f[len("UserPermissions"):] for f in rec["featureLicenses"]]
        out.append("- Feature licenses: " + (", ".join(feats) + f"; {how['featureLicenses']}" if feats else "none"))
    dropped = u.get("dropped") or []
    if dropped:
        # every one, grouped by where it was and why (an auditor reads what access goes, in full)
        out += ["", f"Dropped ({len(dropped)}):", ""]
        by_why: dict[tuple[str, str], list[str]] = {}
        for d in dropped:
            by_why.setdefault((d.get("from") or "", d["reason"]), []).append(d["name"])
        for (where, reason), names in by_why.items():
            what = ", ".join(md(n) for n in names)
            out.append(f"- {what}" + (f" (from {md(where)})" if where else "") + f": {md(reason)}")
    for w in u.get("warnings", []):
        out.append(f"- Note: {md(w)}")
    out.append("")
    return out


def render(plan: dict[str, Any]) -> str:
    org = plan["org"]
    s = plan["summary"]
    out = [f"# Integration user plan: {md(org.get('name') or org['id'])}", "",
           f"Org {md(org['id'])} ({md(org.get('edition') or 'edition unknown')}) as {md(org['username'])}; planned "
           f"{when(plan['createdAt'])} by sf-intuser {plan['sfIntuser']}. Nothing in the org has changed: this is "
           "the review before anything is applied.", "",
           f"**{s['planned']} user(s) planned, {s['blocked']} blocked; {s['generated']} component(s) to deploy.**", ""]
    seats = plan["seats"]
    for key, label in (("integrationLicense", "Salesforce Integration seats"),
                       ("integrationPsl", "Salesforce API Integration PSL seats")):
        x = seats.get(key)
        out.append(f"- {label}: " + ("the org has none" if x is None else
                                     f"{x['free']} free of {x['total']}; {x['fit']} of {seats['candidates']} fit"
                                     + (f", buy {x['toBuy']}" if x["toBuy"] else "")))
    m = plan["savings"]
    freed = " + ".join(f"{r['seats']} × {r['license']} at {money(r['monthlyPrice'])}" for r in m["freedSeats"])
    out.append(f"- Yearly saving at list prices: {money(m['yearlySaving'])}" + (f" ({freed} a month each"
                                                                             + (f", less {m['integrationSeatsToBuy']} "
                                                                                "Integration seat(s) to buy"
                                                                                if m["integrationSeatsToBuy"] else "")
                                                                             + ")" if freed else ""))
    out += [f"- {m['note']}", ""]
    planned = [u for u in plan["users"] if u["status"] == "planned"]
    blocked = [u for u in plan["users"] if u["status"] == "blocked"]
    if plan.get("tightened"):
        out += tightened(plan["tightened"])
    if planned:
        out += ["## Users to move", ""]
        for u in planned:
            out += _user(u, plan)
    if blocked:
        out += ["## Blocked", ""]
        for u in blocked:
            out.append(f"### {md(u['username'])}")
            out.append("")
            for b in u["blockers"]:
                out.append(f"- **{md(b['problem'])}**. Fix: {md(b['fix'])}")
            out.append("")
    if plan["steps"]:
        out += ["## What apply will do", ""]
        for st in plan["steps"]:
            n = len(st["records"])
            out.append(f"{st['id']}. **{md(st['action'])}**" + (f" ({n} record(s))" if n else "") + f": {md(st['why'])}. "
                       f"Undo: {md(st['inverse']['action'])}.")
        out.append("")
    if plan["generated"]:
        out += ["## Generated metadata (metadata/, Metadata API format)", ""]
        for g in plan["generated"]:
            out.append(f"- {g['type']} {_code(g['name'])} from {md(g['source'])}"
                       + (" (exists in the org: redeployed)" if g["exists"] else " (new)"))
        out.append("")
    if plan["warnings"]:
        out += ["## Warnings", ""] + [f"- {md(w)}" for w in plan["warnings"]] + [""]
    return "\n".join(out)


STAGES = (("before", "before the move"), ("moved", "after the move"), ("tightened", "after tightening"))


def window_line(t: dict[str, Any]) -> str:
    """The window the evidence covers, and each source's state, in one line."""
    ev = t["evidence"]
    cov = ev["covers"]
    srcs = "; ".join(f"{md(x['name'])}: {md(x['status'])}" + (f" ({x['rows']} row(s)" + (f", {x['files']} file(s)"
                                                                                   if x["files"] else "") + ")"
                                                             if x["status"] == "used" else "")
                     + (f", {md(x['reason'])}" if x["reason"] else "") for x in ev["sources"])
    covers = f"{cov['from']} to {cov['to']}" if cov.get("from") else "no day with a log"
    return (f"Evidence asked for the last {ev['days']} day(s) ({ev['asked']['from']} to {ev['asked']['to']}); "
            f"it covers {covers}. Sources: {srcs}.")


def tightened(t: dict[str, Any]) -> list[str]:
    """The tightening as a reviewable diff: per user, what each narrowed set keeps and loses, with the
    evidence for each line, and the counts before the move, after it and after tightening."""
    out = ["## Tightened to recorded use", "",
           f"This plan narrows {md(t['from'])}'s generated permission sets to what each user was seen doing. "
           + window_line(t) + " Nothing is granted that the plan did not grant; sets assigned as they are, "
           "groups and connected-app access are unchanged.", ""]
    for u in t["users"]:
        out += [f"### {md(u['username'])}", ""]
        c = u.get("counts") or {}
        if c:
            out += ["| | objects read | objects written | user permissions |", "|---|---:|---:|---:|"]
            for key, label in STAGES:
                x = c.get(key) or {}
                out.append(f"| {label} | {x.get('objectsRead', 0)} | {x.get('objectsWrite', 0)} | "
                           f"{x.get('systemPermissions', 0)} |")
            out.append("")
        for w in u["warnings"]:
            out.append(f"- **Warning:** {md(w)}")
        for st in u["sets"]:
            out += ["", f"{_code(st['from'])} becomes {_code(st['into'])}:", ""]
            for o in st["objects"]:
                before, after = set(o["before"]), set(o["after"])
                word = "keeps" if after == before else "loses" if not after else "narrows to"
                shown = ", ".join(_flag(f) for f in sorted(after)) if after else ", ".join(
                    _flag(f) for f in sorted(before))
                out.append(f"- object {_code(o['object'])} {word} {shown or 'nothing'}"
                           + (f" (was {', '.join(_flag(f) for f in sorted(before))})"
                              if after and after != before else "") + f": {md(o['evidence'])}")
            kept = [p for p in st["permissions"] if p["kept"]]
            lost = [p for p in st["permissions"] if not p["kept"]]
            for p in kept:
                out.append(f"- keeps user permission {_code(p['name'])}: {md(p['why'])}"
                           + (f" ({md(p['source'])})" if p.get("source") else ""))
            if lost:
                groups: dict[str, list[str]] = {}
                for p in lost:
                    groups.setdefault(p["why"], []).append(p["name"])
                for why, names in sorted(groups.items()):
                    out.append(f"- loses {len(names)} user permission(s), {md(why)}: "
                               + ", ".join(_code(n) for n in sorted(names)))
            if st.get("fieldsDropped"):
                out.append(f"- loses {st['fieldsDropped']} field permission(s) of the objects it loses")
            if st.get("keptAsTheyWere"):
                out.append("- keeps as they were (the event logs do not show their use): " + ", ".join(
                    f"{n} {SECTION_WORDS.get(k, k)}" for k, n in sorted(st["keptAsTheyWere"].items())))
        if not u["sets"]:
            out.append("- nothing narrowed")
        out.append("")
    return out


_FLAG_WORDS = {"allowRead": "read", "allowCreate": "create", "allowEdit": "edit", "allowDelete": "delete",
               "viewAllRecords": "view all", "modifyAllRecords": "modify all"}


def _flag(f: str) -> str:
    return _FLAG_WORDS.get(f, f)
