"""discover, snapshot, plan and demo end to end: the real sf CLI against the emulated org, with
assertions on what the org holds (plan changes nothing) and on what the tool wrote."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest

from sf_intuser import cli
from sf_intuser.runs import snapshot as snap_files
from sf_intuser.sf import commands
from tests.conftest import ROOT
from tests.e2e import ORG, SHIM, needs_cli, start_org

pytestmark = needs_cli

CANDIDATES = ["backup@acme.emulated", "etl@acme.emulated", "marketing.sync@acme.emulated",
              "middleware@acme.emulated", "reports.api@acme.emulated"]


@pytest.fixture()
def sfi(org, monkeypatch, capsys, tmp_path):
    """Run ``sf-intuser ARGS`` in-process against the module's org, in an empty working folder."""
    emu, runner = org
    monkeypatch.setenv("HOME", runner.env["HOME"])
    monkeypatch.setenv("SF_USE_GENERIC_UNIX_KEYCHAIN", "true")
    monkeypatch.setenv("SF_INTUSER_SF", str(SHIM))
    monkeypatch.delenv("SF_CONTENT_TYPE", raising=False)
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, dict | str, str]:
        capsys.readouterr()
        code = cli.run(list(args))
        out, err = capsys.readouterr()
        if "--json" in args:
            return code, json.loads(out), err
        return code, out, err

    return run


def org_state(emu) -> tuple:
    """Everything the emulated org holds, to compare before and after."""
    return copy.deepcopy(emu.state.records), {k: (c.body, c.meta) for k, c in emu.state.components.items()}


# --- discover ---------------------------------------------------------------------------------------


def test_discover_finds_the_integrations_and_never_a_person(org, sfi):
    code, env, _ = sfi("discover", "-o", ORG, "--json")
    r = env["result"]
    assert code == 0 and env["status"] == 0
    assert [c["username"] for c in r["candidates"]] == CANDIDATES
    assert [d["username"] for d in r["dormant"]] == ["dormant.api@acme.emulated"]
    reasons = {e["username"]: e["reason"] for e in r["excluded"]}
    assert reasons["raj.patel@acme.emulated"].startswith("a person")       # Data Loader and the browser
    assert "Salesforce for iOS" in reasons["lee.wong@acme.emulated"]        # the mobile app is a person's
    assert "no evidence either way" in reasons["new.hire@acme.emulated"]
    assert reasons["erp.int@acme.emulated"] == "already on the Salesforce Integration license"
    cands = {c["username"]: c for c in r["candidates"]}
    assert cands["middleware@acme.emulated"]["sharedBy"] == ["Middleware", "Order Sync"]
    assert cands["etl@acme.emulated"]["evidence"]["runAsOf"] == ["Informatica Cloud"]
    assert cands["backup@acme.emulated"]["loginPolicy"]["loginIpRanges"] == [
        {"startAddress": "198.51.100.10", "endAddress": "198.51.100.20"}]
    assert any("CPQ_Quote_Sync" in b for b in cands["marketing.sync@acme.emulated"]["blockers"])
    assert {"kind": "PackageLicense", "name": "SBQQ", "verdict": "kept",
            "reason": "a managed package license; re-granted after the move if the change removes it"} in \
        cands["marketing.sync@acme.emulated"]["access"]
    # seats and the saving count the 4 candidates with no blocker, as plan does (marketing.sync is blocked)
    assert r["seats"]["integrationLicense"] == {"name": "Salesforce Integration", "total": 5, "used": 1, "free": 4,
                                                "fit": 4, "toBuy": 0}
    assert r["savings"]["yearlySaving"] == 4 * 175 * 12 and r["savings"]["users"] == 4
    assert r["sfCalls"] == 5   # org list auth, list metadata (profile API names) beside round 1, round 2, retrieve


def test_discover_follows_sfs_target_org_and_writes_a_csv(org, sfi, tmp_path):
    emu, runner = org
    runner.run(["config", "set", f"target-org={ORG}", "--global"])
    try:
        code, out, err = sfi("discover", "--csv", "cands.csv", "--verbose")
    finally:
        runner.run(["config", "unset", "target-org", "--global"])
    assert code == 0, err
    assert "Candidates (5)" in out and "sf's configured target-org" in err
    assert "5 sf call(s)" in out and "$8,400 a year" in out
    rows = (tmp_path / "cands.csv").read_text().splitlines()
    assert rows[0].startswith("username,name,license") and len(rows) == 6
    assert any(r.startswith("backup@acme.emulated") and "198.51.100.10-198.51.100.20" in r for r in rows)


def test_the_number_of_sf_calls_does_not_grow_with_the_users(tmp_path, monkeypatch):
    counts = {}
    for n in (1, 40):
        home = tmp_path / f"home{n}"
        emu, runner = start_org(home, alias=f"scale{n}", instance=f"scale{n}", scale=n)
        try:
            monkeypatch.setenv("HOME", str(home))
            monkeypatch.setenv("SF_INTUSER_SF", str(SHIM))
            monkeypatch.chdir(tmp_path)
            out = subprocess.run([str(ROOT / ".venv" / "bin" / "sf-intuser"), "discover", "-o", f"scale{n}",
                                  "--json"], capture_output=True, text=True, env={**os.environ}, timeout=300)
            disc = json.loads(out.stdout)["result"]
            out = subprocess.run([str(ROOT / ".venv" / "bin" / "sf-intuser"), "plan", "-o", f"scale{n}",
                                  "--all-candidates", "--json", "--run-dir", str(tmp_path / f"run{n}")],
                                 capture_output=True, text=True, env={**os.environ}, timeout=300)
            planned = json.loads(out.stdout)
            assert out.returncode in (0, 68), out.stdout + out.stderr
            counts[n] = (disc["sfCalls"], planned["result"]["sfCalls"], len(disc["candidates"]),
                         planned["result"]["summary"]["planned"])
        finally:
            emu.stop()
    assert counts[1][:2] == counts[40][:2], counts
    assert (counts[1][2], counts[40][2]) == (5 + 1, 5 + 40) and counts[40][3] > counts[1][3]


# --- plan -------------------------------------------------------------------------------------------


def test_plan_writes_the_run_folder_and_changes_nothing_in_the_org(org, sfi, tmp_path):
    emu, runner = org
    before = org_state(emu)
    code, env, _ = sfi("plan", "-o", ORG, "-u", "middleware@acme.emulated", "-u", "etl@acme.emulated", "--json")
    assert code == 0, env
    assert org_state(emu) == before
    r = env["result"]
    run = tmp_path / r["runDir"]
    assert run.parent.name == "intuser-runs" and run.name.startswith(f"{ORG}-")
    snap = snap_files.load(run)           # every checksum holds
    assert sorted(snap.users) == ["etl@acme.emulated", "middleware@acme.emulated"]
    assert set(snap.metadata["Profile"]) == {"ETL Loader", "Integration Middleware"}
    assert set(snap.metadata["PermissionSet"]) == {"Order_Sync_Access", "Sync_Reader"}
    assert snap.meta["sf"] == "2.146.3" and snap.meta["org"]["id"] == emu.state.org_id
    plan = json.loads((run / "plan.json").read_text())
    assert plan["schema"] == "sf-intuser/plan" and plan["summary"]["planned"] == 2
    mw = next(u for u in plan["users"] if u["username"] == "middleware@acme.emulated")
    assert mw["to"]["profile"] == "API Only - ETL Loader" and mw["to"]["permissionSet"] == \
        "Integration_Middleware_Intuser"
    assert [a["entity"] for a in mw["to"]["access"]] == ["Middleware"]
    assert any(d["name"] == "FreezeUsers" and d["rule"] == "license-conflict" for d in mw["dropped"])
    pkg = (run / "metadata" / "package.xml").read_text()
    assert "Integration_Bundle_Intuser" in pkg and "<version>60.0</version>" in pkg
    md = (run / "plan.md").read_text()
    assert "### middleware@acme.emulated" in md and "## What apply will do" in md


def test_the_plans_metadata_deploys_once_its_profiles_exist(org, sfi, tmp_path):
    emu, runner = org
    code, env, _ = sfi("plan", "-o", ORG, "--all-candidates", "--json")
    assert code == 68 and env["status"] == 68
    plan = json.loads((tmp_path / env["result"]["planJson"]).read_text())
    blocked = {u["username"]: u["blockers"] for u in plan["users"] if u["status"] == "blocked"}
    assert list(blocked) == ["marketing.sync@acme.emulated"]
    create = next(s for s in plan["steps"] if s["action"] == "create-profiles")
    made = commands.collection(runner, "POST", [{"attributes": {"type": "Profile"}, "Name": rec["Name"],
                                                 "UserLicenseId": rec["UserLicenseId"]} for rec in create["records"]],
                               ORG, "60.0")
    assert [m.success for m in made] == [True, True]
    res = commands.deploy(runner, tmp_path / env["result"]["metadata"], ORG, validate=True)
    assert res.success, res.failures
    assert {n for _, n in res.deployed} >= {"Backup_Service_Intuser", "Order_Sync_Access_Intuser",
                                            "Integration_Bundle_Intuser", "API Only - ETL Loader"}


def test_a_snapshot_taken_first_is_planned_without_reading_the_org(org, sfi, tmp_path):
    emu, _ = org
    code, env, _ = sfi("snapshot", "-o", ORG, "-u", "backup@acme.emulated", "-u", "nobody@acme.emulated", "--json")
    assert code == 0 and env["result"]["notFound"] == ["nobody@acme.emulated"]
    assert any("nobody@acme.emulated" in w for w in env["warnings"])
    run = env["result"]["runDir"]
    asked = len(emu.state.requests)
    code, env, _ = sfi("plan", "--run-dir", run, "--json")
    assert code == 0 and env["result"]["sfCalls"] == 0 and len(emu.state.requests) == asked
    assert [u["username"] for u in env["result"]["users"]] == ["backup@acme.emulated"]
    code, env, _ = sfi("plan", "--run-dir", run, "--json")
    assert code == 1 and env["name"] == "RunFolderExists"


def test_into_project_writes_source_files_and_never_over_a_different_one(org, sfi, tmp_path):
    (tmp_path / "sfdx-project.json").write_text(json.dumps({"packageDirectories": [{"path": "force-app",
                                                                                     "default": True}]}))
    code, env, _ = sfi("plan", "-o", ORG, "-u", "backup@acme.emulated", "--into-project", "--json")
    assert code == 0, env
    written = {w["name"]: w for w in env["result"]["intoProject"]}
    ps = tmp_path / "force-app/main/default/permissionsets/Backup_Service_Intuser.permissionset-meta.xml"
    assert written["Backup_Service_Intuser"]["action"] == "written" and ps.exists()
    assert (tmp_path / "force-app/main/default/profiles/API Only - Backup Service.profile-meta.xml").exists()
    ps.write_text(ps.read_text().replace("</label>", " edited</label>"))
    code, env, _ = sfi("plan", "-o", ORG, "-u", "backup@acme.emulated", "--into-project", "--json")
    assert code == 1 and env["name"] == "ProjectFileDiffers" and "edited" in ps.read_text()
    code, env, _ = sfi("plan", "-o", ORG, "-u", "backup@acme.emulated", "--into-project", "--force", "--json")
    assert code == 0 and "edited" not in ps.read_text()


def test_a_retrieve_that_holds_less_than_the_org_stops_the_plan(org, sfi, tmp_path):
    emu, _ = org
    prof = emu.state.one("Profile", Name="Backup Service")
    own = emu.state.one("PermissionSet", ProfileId=prof["Id"], IsOwnedByProfile=True)
    # a row the metadata does not carry, as when a retrieve leaves an object out
    emu.state.put("ObjectPermissions", {"ParentId": own["Id"], "SobjectType": "Invoice__c", "PermissionsRead": True})
    code, env, _ = sfi("plan", "-o", ORG, "-u", "backup@acme.emulated", "--json")
    assert code == 1 and env["name"] == "SnapshotIncomplete"
    assert "Profile Backup Service lacks object access on Invoice__c (1 of 1)" in env["message"]
    assert not (tmp_path / "intuser-runs").exists()


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("args,name,text", [
    (["-u", "nobody@acme.emulated"], "NothingToPlan", "no user 'nobody@acme.emulated'"),
    (["-u", "x' OR Username != '"], "NothingToPlan", "no user \"x' OR Username != '\""),
    (["-u", "erp.int@acme.emulated"], "NothingToPlan", "already on the Salesforce Integration license"),
    (["-u", "old.sync@acme.emulated"], "NothingToPlan", "inactive"),
    (["-u", "jane.doe@acme.emulated"], "NothingToPlan", "a UI login inside the window"),
])
def test_users_that_cannot_move_are_refused_and_nothing_is_written(org, sfi, tmp_path, args, name, text):
    code, env, _ = sfi("plan", "-o", ORG, *args, "--json")
    assert code == 1 and env["name"] == name and text in env["message"], env
    assert env["actions"] and not (tmp_path / "intuser-runs").exists()


def test_seats_exhausted_block_with_how_many_to_buy(org, sfi, tmp_path):
    emu, _ = org
    lic = emu.state.one("UserLicense", Name="Salesforce Integration")
    lic["TotalLicenses"] = 1
    code, env, _ = sfi("plan", "-o", ORG, "-u", "backup@acme.emulated", "-u", "reports.api@acme.emulated", "--json")
    assert code == 1 and "no free Salesforce Integration seat" in env["message"]
    assert any("Buy 2 more Salesforce Integration seat(s)" in a for a in env["actions"])


def test_org_and_cli_problems_name_the_fix(org, sfi, tmp_path):
    emu, _ = org
    code, env, _ = sfi("discover", "-o", "no-such-org", "--json")
    assert code == 1 and env["name"] == "NamedOrgNotFoundError"
    assert any("sf org login" in a for a in env["actions"])
    code, env, _ = sfi("discover", "-o", ORG, "--sf-path", str(tmp_path / "no-sf"), "--json")
    assert code == 127 and env["name"] == "SfNotFound"
    real = emu.state.token_prefix
    emu.state.token_prefix = "00DREVOKED00000!"
    try:
        code, env, _ = sfi("plan", "-o", ORG, "-u", "backup@acme.emulated", "--json")
    finally:
        emu.state.token_prefix = real
    assert code == 1 and env["name"] == "INVALID_SESSION_ID"
    assert any("log in again" in a.lower() for a in env["actions"])
    assert not (tmp_path / "intuser-runs").exists()


def test_a_hand_edited_snapshot_and_a_bad_config_are_refused(org, sfi, tmp_path):
    code, env, _ = sfi("snapshot", "-o", ORG, "-u", "backup@acme.emulated", "--run-dir", "r", "--json")
    assert code == 0
    inv = tmp_path / "r" / "snapshot" / "inventory.json"
    inv.write_text(inv.read_text().replace("Backup Service", "System Administrator"))
    code, env, _ = sfi("plan", "--run-dir", "r", "--json")
    assert code == 1 and env["name"] == "SnapshotTampered" and "inventory.json does not match" in env["message"]
    assert not (tmp_path / "r" / "plan.json").exists()
    (tmp_path / "sf-intuser.toml").write_text('[[users]]\nusername = "backup@acme.emulated"\nkeeps = ["x"]\n')
    code, env, _ = sfi("plan", "-o", ORG, "--json")
    assert code == 1 and env["name"] == "InvalidConfig" and "line 3: users[0].keeps: unknown key" in env["message"]
    code, env, _ = sfi("plan", "-o", ORG, "--config", "missing.toml", "--json")
    assert code == 1 and "missing.toml: no such file" in env["message"]


def test_plan_needs_to_know_which_users(org, sfi):
    code, env, _ = sfi("plan", "-o", ORG, "--json")
    assert code == 2 and env["name"] == "UsageError" and "--all-candidates" in env["message"]


def test_the_config_names_users_and_their_overrides(org, sfi, tmp_path):
    (tmp_path / "sf-intuser.toml").write_text(
        '[[users]]\nusername = "middleware@acme.emulated"\npermission-set = "Middleware_Access"\n'
        'drop = ["Order_Sync_Access"]\nadd-ip-ranges = ["192.0.2.77"]\n')
    code, env, _ = sfi("plan", "-o", ORG, "--json")
    assert code == 0, env
    plan = json.loads((tmp_path / env["result"]["planJson"]).read_text())
    mw = plan["users"][0]
    assert mw["to"]["permissionSet"] == "Middleware_Access"
    assert [a["permissionSet"] for a in mw["to"]["assign"]] == ["Middleware_Access", "Sync_Reader"]
    prof = (tmp_path / env["result"]["metadata"] / "profiles" / f"{mw['to']['profile']}.profile").read_text()
    assert "<startAddress>192.0.2.77</startAddress>" in prof and "<startAddress>203.0.113.0</startAddress>" in prof


# --- demo -------------------------------------------------------------------------------------------


def test_demo_runs_the_whole_job_on_the_bundled_org(tmp_path):
    exe = ROOT / ".venv" / "bin" / "sf-intuser"
    env = {"HOME": str(tmp_path / "home"), "PATH": f"{exe.parent}:/usr/bin:/bin", "TMPDIR": str(tmp_path)}
    (tmp_path / "home").mkdir()
    out = subprocess.run([str(exe), "demo", "--json", "-d", str(tmp_path / "runs")], env=env, capture_output=True,
                         text=True, timeout=300, cwd=str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    r = json.loads(out.stdout)["result"]
    assert [c["username"] for c in r["discover"]["candidates"]] == CANDIDATES
    run = tmp_path / r["plan"]["runDir"]
    assert run.parent == tmp_path / "runs" and (run / "plan.md").exists() and (run / "metadata/package.xml").exists()
    # the whole job: apply moved and verified the planned users, the report is written
    assert sorted(m["username"] for m in r["migrated"]) == sorted(
        u["username"] for u in r["plan"]["users"] if u["status"] == "planned")
    assert [b["username"] for b in r["blocked"]] == ["marketing.sync@acme.emulated"]
    assert Path(r["report"]) == run / "report.html" and "<svg" in (run / "report.html").read_text()
    assert r["yearlySaving"] == r["plan"]["savings"]["yearlySaving"]
    assert not list((tmp_path / "home").iterdir())           # the user's own sf home is untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("sf-intuser-demo-home-")]
