#!/usr/bin/env python3
"""sf calls and wall time of a whole migration, sf-intuser against the manual way, on emulated orgs
seeded with N generated integration users (the bundled Acme org plus ``--scale N``), through the
real sf CLI.

Usage: python scripts/bench_migrate.py [N ...] [--manual-up-to M]
       (default: N = 1 10 50 200, the manual way for N <= 50; needs `make setup`)

sf-intuser: ``plan --all-candidates`` then ``apply`` (which ends by reading the org again and
verifying every user). The manual way, on a fresh copy of the same org, migrates the same users as a
person following the migration checklist types it, one user after the other: query the user; query
its assignments; retrieve its profile with its companions and its license-bound sets; deploy the
license-less permission set(s) built from them; switch ProfileId; assign the PSL (after the switch,
which strips it); re-assign the sets in one ``sf org assign permset``; groups and connected-app
access as records; verify with two queries. The custom API-only profiles are made once, before the
first user (one record each, one deploy of their login ranges). The time a person spends editing XML
is not counted: the manual way deploys the files sf-intuser generated, which favours it.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sf_intuser import config, workflow  # noqa: E402
from sf_intuser.emulator import seed  # noqa: E402
from sf_intuser.emulator.server import EmulatedOrg  # noqa: E402
from sf_intuser.metadata import package_xml  # noqa: E402
from sf_intuser.migrate import apply as apply_mod  # noqa: E402
from sf_intuser.sf import commands  # noqa: E402
from sf_intuser.sf.runner import SfRunner  # noqa: E402

SF = str(ROOT / ".venv" / "bin" / "sf")


def _org(n: int, home: Path, alias: str) -> tuple[EmulatedOrg, dict]:
    emu = EmulatedOrg(seed.load(instance=alias, scale=n), max_seconds=7200).start()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "SF_USE_GENERIC_UNIX_KEYCHAIN": "true"}
    SfRunner(sf=SF, env={**env, "SF_ACCESS_TOKEN": emu.access_token()}, timeout=300).run(
        ["org", "login", "access-token", "--instance-url", emu.url, "--no-prompt", "--alias", alias])
    return emu, env


def tool(n: int, work: Path) -> dict:
    alias = f"tool{n}"
    home = work / f"toolhome{n}"
    home.mkdir()
    emu, env = _org(n, home, alias)
    try:
        runner = SfRunner(sf=SF, env=env, timeout=600)
        t0 = time.perf_counter()
        out = workflow.plan(lambda: runner, alias, (), True, config.Config(), work / f"run{n}",
                            now=datetime.now(timezone.utc))
        t_plan = time.perf_counter() - t0
        plan_calls = len(runner.calls)
        t0 = time.perf_counter()
        res = apply_mod.apply(runner, work / f"run{n}", alias)
        t_apply = time.perf_counter() - t0
    finally:
        emu.stop()
    return {"users": out.result["summary"]["planned"], "calls": len(runner.calls), "planCalls": plan_calls,
            "seconds": t_plan + t_apply, "moved": len(res.result["successes"]), "exit": res.exit_code,
            "plan": out.plan}


def manual(n: int, work: Path, plan: dict) -> dict:
    """The per-user sequence of sf commands, as typed, on a fresh copy of the same org."""
    alias = f"manual{n}"
    home = work / f"manualhome{n}"
    home.mkdir()
    emu, env = _org(n, home, alias)
    runner = SfRunner(sf=SF, env=env, timeout=600)
    meta = work / f"run{n}" / "metadata"
    api = plan["org"]["apiVersion"]
    gen = {(g["type"], g["name"]): g for g in plan["generated"]}
    snap_sets = {u["userId"]: u for u in plan["rollback"]["users"]}
    t0 = time.perf_counter()
    moved = 0
    try:
        # the custom API-only profiles, once: a record each, then their login ranges and hours
        step = next((s for s in plan["steps"] if s["action"] == "create-profiles"), None)
        profiles = [g for g in plan["generated"] if g["type"] == "Profile"]
        for r in (step or {}).get("records", []):
            commands.create_record(runner, "Profile", {"Name": r["Name"], "UserLicenseId": r["UserLicenseId"]}, alias)
        if profiles:
            res = commands.deploy(runner, _folder(work / "profiles", meta, profiles, api), alias)
            assert res.success, res.failures
        ids = {}
        for u in (x for x in plan["users"] if x["status"] == "planned"):
            uid = u["id"]
            commands.query(runner, f"SELECT Id, Username, ProfileId, Profile.Name FROM User WHERE Id = '{uid}'", alias)
            commands.query(runner, "SELECT Id, PermissionSet.Name, PermissionSetGroupId, ExpirationDate FROM "
                           f"PermissionSetAssignment WHERE AssigneeId = '{uid}'", alias)
            # the profile, its companions and the user's license-bound sets, in one retrieve
            names = [p["name"] for p in snap_sets[uid]["permissionSets"]]
            manifest = work / f"package-{uid}.xml"
            manifest.write_bytes(package_xml.build({"Profile": [u["from"]["profile"]],
                                                    **({"PermissionSet": names} if names else {}),
                                                    "CustomObject": ["Account", "Contact"]}, api))
            out = work / f"retrieved-{uid}"
            commands.retrieve(runner, manifest, alias, out)
            shutil.rmtree(out, ignore_errors=True)
            # deploy the license-less set(s) built from them (and a rebuilt group, if any)
            mine = [gen[("PermissionSet", a["permissionSet"])] for a in u["to"]["assign"]
                    if ("PermissionSet", a["permissionSet"]) in gen]
            for g in u["to"]["groups"]:
                if ("PermissionSetGroup", g["group"]) in gen:
                    grp = gen[("PermissionSetGroup", g["group"])]
                    body = (meta / grp["file"][len("metadata/"):]).read_text()
                    mine += [gen[("PermissionSet", n)] for n in re.findall(r"<permissionSets>([^<]+)<", body)
                             if ("PermissionSet", n) in gen and gen[("PermissionSet", n)] not in mine]
                    mine.append(grp)
            if mine:
                res = commands.deploy(runner, _folder(work / f"deploy-{uid}", meta, mine, api), alias)
                assert res.success, res.failures
            prof = ids.get(u["to"]["profile"])
            if prof is None:
                prof = commands.query(runner, f"SELECT Id FROM Profile WHERE Name = '{u['to']['profile']}'",
                                      alias)[0]["Id"]
                ids[u["to"]["profile"]] = prof
            commands.update_record(runner, "User", uid, {"ProfileId": prof}, alias)
            commands.assign_permset_licenses(runner, ["SalesforceAPIIntegrationPsl"], [u["username"]], alias)
            commands.assign_permsets(runner, [a["permissionSet"] for a in u["to"]["assign"]], [u["username"]], alias)
            for g in u["to"]["groups"]:
                gid = commands.query(runner, "SELECT Id FROM PermissionSetGroup WHERE DeveloperName = "
                                     f"'{g['group']}'", alias)[0]["Id"]
                commands.create_record(runner, "PermissionSetAssignment",
                                       {"AssigneeId": uid, "PermissionSetGroupId": gid}, alias)
            for a in u["to"]["access"]:
                ps = commands.query(runner, f"SELECT Id FROM PermissionSet WHERE Name = '{a['permissionSet']}'",
                                    alias)[0]["Id"]
                if not commands.query(runner, f"SELECT Id FROM SetupEntityAccess WHERE ParentId = '{ps}' AND "
                                      f"SetupEntityId = '{a['entityId']}'", alias):
                    commands.create_record(runner, "SetupEntityAccess", {"ParentId": ps,
                                                                         "SetupEntityId": a["entityId"]}, alias)
            # verify: two queries
            commands.query(runner, f"SELECT Profile.Name, Profile.UserLicense.Name FROM User WHERE Id = '{uid}'",
                           alias)
            commands.query(runner, "SELECT PermissionSet.Name FROM PermissionSetAssignment WHERE AssigneeId = "
                           f"'{uid}'", alias)
            moved += 1
    finally:
        emu.stop()
    return {"calls": len(runner.calls), "seconds": time.perf_counter() - t0, "moved": moved}


def _folder(root: Path, meta: Path, comps: list[dict], api: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    members: dict[str, list[str]] = {}
    for g in comps:
        rel = g["file"][len("metadata/"):]
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(meta / rel, root / rel)
        members.setdefault(g["type"], []).append(g["name"])
    (root / "package.xml").write_bytes(package_xml.build(members, api))
    return root


def main() -> None:
    args = sys.argv[1:]
    upto = 50
    if "--manual-up-to" in args:
        i = args.index("--manual-up-to")
        upto = int(args[i + 1])
        del args[i:i + 2]
    sizes = [int(a) for a in args] or [1, 10, 50, 200]
    print(f"{'N':>4}  {'users':>5}  {'tool calls':>10}  {'tool s':>7}  {'manual calls':>12}  {'manual s':>8}  "
          f"{'calls ×':>7}  {'wall ×':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            work = Path(tmp) / f"n{n}"
            work.mkdir()
            t = tool(n, work)
            assert t["exit"] == 0 and t["moved"] == t["users"], t
            line = f"{n:>4}  {t['users']:>5}  {t['calls']:>10}  {t['seconds']:>7.1f}"
            if n <= upto:
                m = manual(n, work, t["plan"])
                line += (f"  {m['calls']:>12}  {m['seconds']:>8.1f}  {m['calls'] / t['calls']:>7.1f}  "
                         f"{m['seconds'] / t['seconds']:>6.1f}")
            else:
                line += f"  {'(not run)':>12}"
            print(line + f"   (plan {t['planCalls']} + apply {t['calls'] - t['planCalls']} calls)", flush=True)


if __name__ == "__main__":
    main()
