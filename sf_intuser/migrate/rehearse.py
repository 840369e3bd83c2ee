"""Rehearse a planned migration on a second org (a sandbox or scratch org) before production.

From the production run folder (its snapshot and plan, checksums checked) it rebuilds, in the
rehearsal org, a stand-in of each planned user:

1. deploys the production versions of the users' profiles, permission sets and permission set
   groups (the snapshot's metadata, as retrieved), so the stand-ins start from production's access;
   a profile the org lacks (a scratch org) is created first as a record on the same user license;
2. creates one look-alike user per planned user: a username of its own (``<local>+rehearsal-<tag>@
   <domain>``: usernames are unique across all of Salesforce), "[sf-intuser rehearsal]" in its name,
   an ``example.invalid`` address (no mail reaches anyone), the same profile, then the same permission
   sets, groups, permission set licenses and package licenses (one Composite-backed write batch);
3. plans those stand-ins with the same planner and the production config's per-user entries
   (mapped to the stand-ins), and compares that plan with production's user by user: a difference
   means the rehearsal would not prove what production will do, and is reported;
4. applies and verifies the rehearsal plan (its own run folder, journal and report), then rolls it
   back and deactivates the stand-ins (Salesforce users can't be deleted), unless ``keep``.

It refuses the snapshot's own org. If it fails after creating the stand-ins, it deactivates them;
``clean_up`` deactivates any left active (a kept rehearsal, a killed run), found by their marker.
What it does not rebuild: the users' login history and OAuth
tokens (the plan's evidence), and anything outside the snapshot (sharing, roles, record data).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from sf_intuser import run_files
from sf_intuser import config as config_mod
from sf_intuser import tempfiles
from sf_intuser.errors import Failure
from sf_intuser.metadata import package_xml
from sf_intuser.migrate import apply as apply_mod
from sf_intuser.org import read
from sf_intuser.org.model import Org
from sf_intuser.sf import commands
from sf_intuser.sf.runner import SfError, SfRunner
from sf_intuser.sf.soql import in_list

MARKER = "[sf-intuser rehearsal]"
FOLDERS = {"profiles": ("Profile", ".profile"), "permissionsets": ("PermissionSet", ".permissionset"),
           "permissionsetgroups": ("PermissionSetGroup", ".permissionsetgroup")}

Progress = Callable[[str], None]


@dataclass
class Rehearsal:
    result: dict[str, Any]
    exit_code: int


def stand_in_username(username: str, tag: str) -> str:
    local, _, domain = username.partition("@")
    return f"{local}+rehearsal-{tag}@{domain or 'example.invalid'}"


def _tag(org_id: str, run_name: str, now: datetime) -> str:
    return hashlib.sha256(f"{org_id}|{run_name}|{now.isoformat()}".encode()).hexdigest()[:6]


def _production_metadata(run_dir: Path, names: dict[str, set[str]], api_version: str, into: Path) -> int:
    """The snapshot's own copies of the named profiles, sets and groups as an mdapi folder."""
    src = run_dir / "snapshot" / "metadata"
    members: dict[str, list[str]] = {}
    for folder, (mtype, suffix) in FOLDERS.items():
        for name in sorted(names.get(mtype, ())):
            f = src / folder / f"{name}{suffix}"
            if not f.is_file():
                continue
            (into / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, into / folder / f.name)
            members.setdefault(mtype, []).append(name)
    (into / "package.xml").write_bytes(package_xml.build(members, api_version))
    return sum(len(v) for v in members.values())


def _ids(runner: SfRunner, on: str, soql: str, key: str) -> dict[str, str]:
    return {r[key]: r["Id"] for r in commands.query(runner, soql, on)}


def _compare(prod: dict[str, Any], rehearsal: dict[str, Any], mapping: dict[str, str]) -> list[str]:
    """What the rehearsal plan does differently from production's, user by user."""
    def shape(u: dict[str, Any]) -> dict[str, Any]:
        to = u.get("to") or {}
        return {"status": u["status"], "profile": to.get("profile"), "permissionSet": to.get("permissionSet"),
                "assign": sorted(a["permissionSet"] for a in to.get("assign", [])),
                "groups": sorted(g["group"] for g in to.get("groups", [])),
                "access": sorted(f"{a['entityType']}:{a['entity']}" for a in to.get("access", [])),
                "dropped": sorted(str(d.get("name") or d) for d in u.get("dropped", []))}

    by_name = {u["username"]: u for u in rehearsal["users"]}
    out = []
    for u in prod["users"]:
        stand_in = mapping.get(u["username"])
        if stand_in is None:
            continue
        other = by_name.get(stand_in)
        if other is None:
            out.append(f"{u['username']}: the rehearsal plan has no stand-in {stand_in}")
            continue
        a, b = shape(u), shape(other)
        for k in a:
            if a[k] != b[k]:
                out.append(f"{u['username']}: {k} is {a[k]!r} in production's plan, {b[k]!r} in the rehearsal's")
    return out


def rehearse(runner: SfRunner, run_dir: Path, on: str, *, cfg: config_mod.Config, now: datetime,
             keep: bool = False, rehearsal_dir: Path | None = None, progress: Progress = lambda _m: None,
             plan_fn: Callable[..., Any]) -> Rehearsal:
    from sf_intuser.report import migration
    from sf_intuser.workspace import write_synced

    run = apply_mod.open_run(run_dir)
    prod = run.plan
    org = _rehearsal_org(runner, prod, on, run_dir)
    before = {b["userId"]: b for b in prod["rollback"]["users"]}
    planned = [u for u in prod["users"] if u["status"] == "planned"]
    if not planned:
        raise Failure("NothingToRehearse", f"The plan in {run_dir} moves no user", actions=[
            "Plan users that can move: sf-intuser plan --all-candidates"])
    api = prod["org"].get("apiVersion") or "62.0"
    tag = _tag(org.id, run_dir.name, now)
    mapping = {u["username"]: stand_in_username(u["username"], tag) for u in planned}

    # 1. production's profiles, sets and groups
    names: dict[str, set[str]] = {"Profile": set(), "PermissionSet": set(), "PermissionSetGroup": set()}
    labels: dict[str, str] = {}      # profile API name -> production's label
    for u in planned:
        b = before[u["id"]]
        labels[b.get("profileApiName") or b["profile"]] = b["profile"]
        names["Profile"].add(b.get("profileApiName") or b["profile"])
        names["PermissionSet"].update(p["name"] for p in b["permissionSets"])
        names["PermissionSetGroup"].update(g["name"] for g in b["groups"])
    profiles = _create_missing_profiles(runner, run_dir, on, api, labels, progress)
    with tempfile.TemporaryDirectory(prefix=f"rehearse-{os.getpid()}-", dir=tempfiles.private_dir()) as tmp:
        n = _production_metadata(run_dir, names, api, Path(tmp))
        progress(f"Deploying production's {n} profile(s), permission set(s) and group(s) to {on}")
        if n:
            dep = commands.deploy(runner, Path(tmp), on)
            if not dep.success:
                raise Failure("RehearsalDeployFailed", f"{on} refused production's metadata: " + "; ".join(
                    f"{f.type} {f.name}: {f.problem}" for f in dep.failures[:5]), actions=[
                    "Rehearse in a sandbox copied from production (its profiles and licenses exist there)",
                    "In a scratch org (it starts blank), deploy the project first (Apex classes, pages, "
                    "objects the profiles name), then run rehearse again"])

    # 2. the stand-ins, on the same profiles, with the same assignments and licenses
    # every id the stand-ins need, in one Composite Batch call
    psl_names = {p["name"] for u in planned for p in before[u["id"]]["permissionSetLicenses"]}
    namespaces = {p["namespace"] for u in planned for p in before[u["id"]]["packageLicenses"] if p.get("namespace")}
    found = commands.query_all(runner, {
        "sets": "SELECT Id, Name FROM PermissionSet WHERE IsOwnedByProfile = false AND Name IN "
                + in_list(names["PermissionSet"] or {"-"}),
        "groups": "SELECT Id, DeveloperName FROM PermissionSetGroup WHERE DeveloperName IN "
                  + in_list(names["PermissionSetGroup"] or {"-"}),
        "psls": "SELECT Id, DeveloperName FROM PermissionSetLicense WHERE DeveloperName IN "
                + in_list(psl_names or {"-"}),
        "packages": "SELECT Id, NamespacePrefix FROM PackageLicense WHERE NamespacePrefix IN "
                    + in_list(namespaces or {"-"}),
    }, on, api)

    def by(key: str, field: str) -> dict[str, str]:
        return {r[field]: r["Id"] for r in found[key]}

    sets, groups = by("sets", "Name"), by("groups", "DeveloperName")
    psls, packages = by("psls", "DeveloperName"), by("packages", "NamespacePrefix")
    missing = sorted(set(names["Profile"]) - set(profiles))
    if missing:
        raise Failure("RehearsalProfileMissing", f"{on} has no profile {', '.join(missing)} after the deploy",
                      actions=["Rehearse in a sandbox copied from production"])
    users = [{"Username": mapping[u["username"]], "FirstName": "Stand-in",
              "LastName": f"{u.get('name') or u['username']} {MARKER}"[:80],
              "Email": f"rehearsal-{tag}@example.invalid", "Alias": f"rh{tag}",
              "TimeZoneSidKey": "GMT", "LocaleSidKey": "en_US", "EmailEncodingKey": "UTF-8",
              "LanguageLocaleKey": "en_US",
              "ProfileId": profiles[before[u["id"]].get("profileApiName") or before[u["id"]]["profile"]]}
             for u in planned]
    progress(f"Creating {len(users)} stand-in user(s) in {on}")
    created = commands.writes(runner, [commands.Write("users", "POST", "User", users)], on, api)["users"]
    failed = [f"{r['Username']}: {c.code} {c.message}" for r, c in zip(users, created) if not c.success]
    standins = {u["username"]: c.id for u, c in zip(planned, created) if c.success and c.id}
    if failed:
        _deactivate(runner, on, api, list(standins.values()))
        raise Failure("StandInRefused", f"{on} refused {len(failed)} stand-in user(s): " + "; ".join(failed),
                      actions=["Free seats of the users' license in the rehearsal org, then run rehearse again"])
    psa, psla, upl, gaps = [], [], [], []
    for u in planned:
        b, uid = before[u["id"]], standins[u["username"]]
        for p in b["permissionSetLicenses"]:
            (psla.append({"AssigneeId": uid, "PermissionSetLicenseId": psls[p["name"]]}) if p["name"] in psls
             else gaps.append(f"permission set license {p['name']}"))
        for p in b["permissionSets"]:
            (psa.append({"AssigneeId": uid, "PermissionSetId": sets[p["name"]], **_expiry(p)}) if p["name"] in sets
             else gaps.append(f"permission set {p['name']}"))
        for g in b["groups"]:
            (psa.append({"AssigneeId": uid, "PermissionSetGroupId": groups[g["name"]], **_expiry(g)})
             if g["name"] in groups else gaps.append(f"permission set group {g['name']}"))
        for p in b["packageLicenses"]:
            (upl.append({"UserId": uid, "PackageLicenseId": packages[p["namespace"]]})
             if p.get("namespace") in packages else gaps.append(f"package license {p.get('namespace')}"))
    ops = [commands.Write(k, "POST", obj, recs) for k, obj, recs in (
        ("psla", "PermissionSetLicenseAssign", psla), ("psa", "PermissionSetAssignment", psa),
        ("upl", "UserPackageLicense", upl)) if recs]
    refused = []
    if ops:
        progress(f"Giving the stand-ins production's access ({len(psa)} assignment(s), {len(psla) + len(upl)} "
                 "license(s))")
        for op, results in commands.writes(runner, ops, on, api).items():
            refused += [f"{op}: {c.code} {c.message}" for c in results if not c.success]
    if gaps or refused:
        _deactivate(runner, on, api, list(standins.values()))
        raise Failure("StandInIncomplete", "The stand-ins could not get production's access in "
                      f"{on}: " + "; ".join(sorted(set(gaps)) + refused), actions=[
                          "Rehearse in a sandbox copied from production, where the licenses and sets exist"])

    # 3. plan the stand-ins as production was planned, and compare
    entries = {u.username: u for u in cfg.users}
    mapped = dataclasses.replace(cfg, users=[
        dataclasses.replace(entries[p], username=s) if p in entries else config_mod.UserConfig(username=s)
        for p, s in mapping.items()])
    folder = rehearsal_dir or run_dir.parent / f"{run_dir.name}-rehearsal-{tag}"
    try:
        out = plan_fn(lambda: runner, on, list(mapping.values()), False, mapped, folder, progress=progress,
                      now=now)
        differences = _compare(prod, out.plan, mapping)
        # 4. apply (verifies), report, and roll back unless kept
        done = apply_mod.apply(runner, folder, on, progress=progress)
    except (Failure, SfError) as exc:
        # nothing of the rehearsal's migration happened, or the journal says what did: the stand-ins
        # are taken out of the way either way (a started apply is undone with rollback of its folder)
        _deactivate(runner, on, api, list(standins.values()))
        err = exc if isinstance(exc, Failure) else Failure(exc.name, exc.message, 1, exc.actions)
        raise Failure(err.name, f"{err.message} (the rehearsal's stand-ins in {on} were deactivated)",
                      err.exit_code, [*err.actions, *([f"sf-intuser rollback {folder} -o {on}"]
                                                      if (folder / run_files.JOURNAL).exists() else [])]) from None
    rehearsed = apply_mod.open_run(folder)
    rep = migration.build(rehearsed.plan, rehearsed.journal.records)
    write_synced(folder / run_files.REPORT_HTML, migration.html_page(rep).encode("utf-8"))
    write_synced(folder / "report.md", migration.markdown(rep).encode("utf-8"))
    rolled = None
    if not keep:
        progress("Rolling the rehearsal back and deactivating the stand-ins")
        from sf_intuser.migrate import rollback as rollback_mod

        rolled = rollback_mod.rollback(runner, folder, on, delete_generated=True, progress=progress)
        _deactivate(runner, on, api, list(standins.values()))
    result = {
        "productionRun": str(run_dir), "rehearsalRun": str(folder), "report": str(folder / run_files.REPORT_HTML),
        "org": {"alias": on, "id": org.id, "username": org.username},
        "standIns": [{"production": p, "standIn": s, "id": standins[p]} for p, s in mapping.items()],
        "differences": differences, "apply": done.result,
        "rolledBack": None if rolled is None else rolled.exit_code == 0, "kept": keep,
    }
    code = done.exit_code or (rolled.exit_code if rolled else 0)
    return Rehearsal(result, code)


def _create_missing_profiles(runner: SfRunner, run_dir: Path, on: str, api: str, wanted: dict[str, str],
                             progress: Progress) -> dict[str, str]:
    """Profiles production has and the rehearsal org lacks (a scratch org has only the standard
    ones) are created as Profile records on the same user license first: whether a deploy alone
    creates a profile is unknown (docs/salesforce-facts.md A4 [U]), a record works either way. ``wanted``
    maps production's API names to their labels; the profiles are matched by API name, which does not
    depend on the language of either org (docs/salesforce-facts.md A8). Returns API name -> id."""
    from sf_intuser.metadata.xml import MetadataXmlError, parse, text

    listed = {str(x.get("fullName")): str(x.get("id")) for x in commands.list_metadata(runner, "Profile", on, api)}
    have = {n: listed[n] for n in wanted if n in listed}
    licenses: dict[str, str] = {}
    for name in sorted(set(wanted) - set(have)):
        f = run_dir / "snapshot" / "metadata" / "profiles" / f"{name}.profile"
        try:
            lic = text(parse(f.read_bytes(), str(f)).root, "userLicense")
        except (OSError, MetadataXmlError):
            lic = None
        if not lic:
            raise Failure("RehearsalProfileMissing", f"{on} has no profile {name!r} and the snapshot does not say "
                          "its user license", actions=["Create the profile in the rehearsal org, then run rehearse "
                                                       "again"])
        licenses[name] = lic
    if not licenses:
        return have
    ids = _ids(runner, on, f"SELECT Id, Name FROM UserLicense WHERE Name IN {in_list(set(licenses.values()))}",
               "Name")
    lacking = sorted({lic for lic in licenses.values() if lic not in ids})
    if lacking:
        raise Failure("RehearsalLicenseMissing", f"{on} has no {', '.join(lacking)} user license, which "
                      f"production's profiles need", actions=["Rehearse in an org with the same user licenses "
                                                              "(a sandbox copied from production)"])
    progress(f"Creating {len(licenses)} profile(s) {on} does not have: {', '.join(sorted(licenses))}")
    res = commands.writes(runner, [commands.Write("p", "POST", "Profile", [
        {"Name": wanted[n], "UserLicenseId": ids[lic]} for n, lic in sorted(licenses.items())])], on, api)["p"]
    bad = [f"{wanted[n]}: {r.code} {r.message}" for n, r in zip(sorted(licenses), res) if not r.success]
    if bad:
        raise Failure("RehearsalProfileMissing", f"{on} refused the profile(s): " + "; ".join(bad),
                      actions=["Create them in the rehearsal org by hand, then run rehearse again"])
    return {**have, **{n: str(r.id) for n, r in zip(sorted(licenses), res)}}


def clean_up(runner: SfRunner, run_dir: Path, on: str, progress: Progress = lambda _m: None) -> Rehearsal:
    """Deactivate every active stand-in (the marker in its name) in the rehearsal org: what a kept
    rehearsal, or one killed before it could clean up, leaves behind. Never in the plan's own org."""
    run = apply_mod.open_run(run_dir)
    org = _rehearsal_org(runner, run.plan, on, run_dir)
    api = run.plan["org"].get("apiVersion") or "62.0"
    rows = commands.query(runner, "SELECT Id, Username FROM User WHERE IsActive = true AND LastName LIKE "
                          f"'%{MARKER}%'", on)
    progress(f"Deactivating {len(rows)} stand-in(s) in {on}")
    _deactivate(runner, on, api, [r["Id"] for r in rows])
    return Rehearsal({"org": {"alias": on, "id": org.id}, "deactivated": sorted(r["Username"] for r in rows)}, 0)


def _rehearsal_org(runner: SfRunner, prod: dict[str, Any], on: str, run_dir: Path) -> Org:
    try:
        org = read.connect(runner, on)
    except SfError as exc:
        raise Failure(exc.name, exc.message, 1, exc.actions) from None
    if org.id[:15] == str(prod["org"]["id"])[:15]:
        # what to do with production itself depends on where its run stands (apply refuses a rolled-back run)
        j = apply_mod.open_run(run_dir).journal
        label = prod["org"].get("alias") or prod["org"].get("username") or on
        if j.of(apply_mod.ROLLBACK):
            users = " ".join(f"-u {u['username']}" for u in prod["users"] if u.get("status") == "planned")
            own = f"To migrate production itself, plan again (this run was rolled back): sf-intuser plan {users} -o {label}"
        elif j.finished(apply_mod.APPLY) is not None:
            own = f"Production was migrated by this run: sf-intuser verify {run_dir} -o {label}"
        else:
            own = f"To migrate production itself: sf-intuser apply {run_dir} -o {label}"
        raise Failure("RehearsalOnProduction",
                      f"{on} is the org the plan was made in ({prod['org']['name']}, {org.id}): a rehearsal "
                      "runs in another org", actions=["Pass a sandbox or scratch org with --on", own])
    return org


def _expiry(assignment: dict[str, Any]) -> dict[str, Any]:
    return {"ExpirationDate": assignment["expires"]} if assignment.get("expires") else {}


def _deactivate(runner: SfRunner, on: str, api: str, user_ids: list[str]) -> None:
    """Users can't be deleted in Salesforce: stand-ins are deactivated, which frees their seats."""
    if user_ids:
        commands.writes(runner, [commands.Write("off", "PATCH", "User",
                                                [{"Id": i, "IsActive": False} for i in user_ids])], on, api)

