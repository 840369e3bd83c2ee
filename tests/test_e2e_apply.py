"""apply, verify, rollback and report end to end: the real sf CLI against the emulated org, asserting
on the org's own state. One plan is made per module; each test starts from a fresh copy of the same
org (same ids) and a copy of that run folder."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sf_intuser.emulator import seed
from tests.e2e import ORG, SHIM, holds, intuser, needs_cli, sf_env, start_org

pytestmark = needs_cli

TOKEN_MARK = "EmulatedSessionToken"   # in every token the emulated org issues, and nowhere else


@dataclass
class Bench:
    home: Path
    emu: object
    template: Path
    plan: dict
    #: starting points made once through the real CLI and served again (:func:`from_point`)
    points: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    emu, _ = start_org(home)
    template = tmp_path_factory.mktemp("runs") / "template"
    out = intuser(home, "plan", "--all-candidates", "-o", ORG, "--run-dir", str(template), "--json")
    assert out.returncode == 68, out.stdout + out.stderr      # marketing.sync is blocked (CPQ)
    yield Bench(home, emu, template, json.loads((template / "plan.json").read_text()))
    emu.stop()


def fresh(bench: Bench, tmp_path: Path, **options: str) -> Path:
    state = seed.load()
    for k, v in options.items():
        state.options.set(k, v)
    bench.emu.reset(state)
    run = tmp_path / "run"
    shutil.copytree(bench.template, run)
    return run


def from_point(bench: Bench, tmp_path: Path, key, make, start=None):
    """A run folder and the org as ``make(bench, run)`` left them (a full apply, a kill at one request...),
    with what ``make`` returned. The first test of a module (and xdist worker) to start from ``key`` makes
    it through the real sf CLI; the org's state and the run folder are then kept and every later test
    starting from the same point gets its own copy of both. What a test asserts after that point is
    unchanged; the sf calls that bring every test to the same point are not repeated. ``start``, another
    point's ``(key, make)``, is where ``make`` starts from (else a fresh org and plan)."""
    if key not in bench.points:
        made = from_point(bench, tmp_path / "point", *start)[0] if start else fresh(bench, tmp_path / "point")
        result = make(bench, made)
        bench.emu.faults.clear()
        bench.points[key] = (copy.deepcopy(bench.emu.state), made, result)
    state, made, result = bench.points[key]
    bench.emu.reset(copy.deepcopy(state))
    run = tmp_path / "run"
    shutil.copytree(made, run)
    return run, result


def _full_apply(bench: Bench, run: Path) -> None:
    out = intuser(bench.home, "apply", str(run), "-o", ORG, "--yes")
    assert out.returncode == 0, out.stdout + out.stderr


#: the point "every planned user moved by a whole apply" (:func:`from_point`)
APPLIED = ("applied", _full_apply)
#: tests starting from it run on one xdist worker (``--dist loadgroup``), which makes it once
AFTER_APPLY = pytest.mark.xdist_group("apply-applied")


def writes(emu) -> int:
    """Requests that can change the org: record writes and deploys."""
    return sum(1 for m, label in emu.state.requests
               if (m in ("POST", "PATCH", "DELETE") and "/composite/batch" not in label and "/Soap/" not in label)
               or label.endswith(" deploy"))


def envelope(out: subprocess.CompletedProcess) -> dict:
    return json.loads(out.stdout)


def test_apply_moves_every_planned_user_in_few_calls_and_verify_agrees(bench, tmp_path):
    run = fresh(bench, tmp_path)
    out = intuser(bench.home, "apply", str(run), "-o", ORG, "--yes", "--json")
    body = envelope(out)
    assert out.returncode == 0, out.stdout
    assert holds(bench.emu, bench.plan) == {u["username"]: "target" for u in bench.plan["users"]
                                            if u["status"] == "planned"}
    assert sorted(s["username"] for s in body["result"]["successes"]) == sorted(holds(bench.emu, bench.plan))
    assert body["result"]["failures"] == []
    # the plan took 6 calls; plan + apply + verify stays within 15
    assert body["result"]["sfCalls"] <= 8
    journal = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    steps = [(r["phase"], r["step"]) for r in journal]
    for step in ("create-profiles", "deploy", "switch-profiles", "grant"):
        assert steps.index(("intent", step)) < steps.index(("outcome", step))
    assert journal[-1]["phase"] == "end"
    # the profile-owned sets were never touched: every user holds exactly one, its new profile's
    st = bench.emu.state
    for u in (x for x in bench.plan["users"] if x["status"] == "planned"):
        owned = [a for a in st.find("PermissionSetAssignment", AssigneeId=u["id"])
                 if st.get(a["PermissionSetId"])["IsOwnedByProfile"]]
        assert [st.get(a["PermissionSetId"])["ProfileId"] for a in owned] == [st.get(u["id"])["ProfileId"]]
    v = intuser(bench.home, "verify", str(run), "-o", ORG, "--json")
    assert v.returncode == 0 and envelope(v)["result"]["differ"] == 0, v.stdout
    # without -o, a command on a run folder goes to the org the plan was made for (sf has no default org here)
    v = intuser(bench.home, "verify", str(run), "--json")
    assert v.returncode == 0 and envelope(v)["result"]["differ"] == 0, v.stdout + v.stderr
    # verify sees a change made behind its back, and names it
    etl = st.one("User", Username="etl@acme.emulated")
    psa = next(a for a in st.find("PermissionSetAssignment", AssigneeId=etl["Id"])
               if st.get(a["PermissionSetId"])["Name"] == "ETL_Loader_Intuser")
    del st.records["PermissionSetAssignment"][psa["Id"]]
    v = intuser(bench.home, "verify", str(run), "-o", ORG)
    assert v.returncode == 1
    assert "permission set ETL_Loader_Intuser missing" in v.stdout


@AFTER_APPLY
def test_apply_twice_is_refused_and_rollback_twice_is_harmless(bench, tmp_path):
    run, _ = from_point(bench, tmp_path, *APPLIED)
    n = writes(bench.emu)
    again = intuser(bench.home, "apply", str(run), "-o", ORG, "--yes")
    assert again.returncode == 1 and "AlreadyApplied" in again.stderr
    assert writes(bench.emu) == n
    back = intuser(bench.home, "rollback", str(run), "-o", ORG, "--yes", "--json")
    assert back.returncode == 0, back.stdout
    assert set(holds(bench.emu, bench.plan).values()) == {"snapshot"}
    # the connected-app grants the apply made are gone; the ones that were there stay
    st = bench.emu.state
    for ps in ("Backup_Service_Intuser", "Integration_Middleware_Intuser"):
        rec = st.one("PermissionSet", Name=ps, IsOwnedByProfile=False)
        assert rec is not None and st.find("SetupEntityAccess", ParentId=rec["Id"],
                                           SetupEntityType="ConnectedApplication") == []
    n = writes(bench.emu)
    # sf's own spelling of "don't ask", through the plugin too: -p/--no-prompt
    twice = intuser(bench.home, "rollback", str(run), "-o", ORG, "-p")
    assert twice.returncode == 0 and "Nothing to undo" in twice.stdout
    via_sf = subprocess.run([str(SHIM), "intuser", "rollback", str(run), "-o", ORG, "--no-prompt"],
                            env={**sf_env(bench.home), "SF_INTUSER_SF": str(SHIM)}, capture_output=True, text=True,
                            timeout=300, cwd=str(bench.home))
    assert via_sf.returncode == 0 and "Nothing to undo" in via_sf.stdout, via_sf.stdout + via_sf.stderr
    assert writes(bench.emu) == n
    # a rolled-back run is not applied again
    re_apply = intuser(bench.home, "apply", str(run), "-o", ORG, "--yes")
    assert re_apply.returncode == 1 and "RolledBack" in re_apply.stderr


@AFTER_APPLY
def test_rollback_can_delete_what_the_apply_created(bench, tmp_path):
    run, _ = from_point(bench, tmp_path, *APPLIED)
    out = intuser(bench.home, "rollback", str(run), "-o", ORG, "--yes", "--delete-generated")
    assert out.returncode == 0, out.stdout + out.stderr
    assert set(holds(bench.emu, bench.plan).values()) == {"snapshot"}
    created = [g["name"] for g in bench.plan["generated"] if g["type"] == "PermissionSet" and not g["exists"]]
    assert created and all(bench.emu.state.one("PermissionSet", Name=n, IsOwnedByProfile=False) is None
                           for n in created)


def test_a_refused_license_change_leaves_every_user_whole_and_says_what_to_do(bench, tmp_path):
    run = fresh(bench, tmp_path, profile_change_across_licenses="refuse")
    out = intuser(bench.home, "apply", str(run), "-o", ORG, "--yes", "--json")
    body = envelope(out)
    assert out.returncode == 1, out.stdout        # nobody could move: not even a partial success
    assert set(holds(bench.emu, bench.plan).values()) == {"snapshot"}
    fails = body["result"]["failures"]
    assert {f["outcome"] for f in fails} == {"refused"}
    assert all("Create a new user on the Salesforce Integration license" in f["fix"] for f in fails)


def test_seats_running_out_moves_who_fits_and_reports_who_did_not(bench, tmp_path):
    run = fresh(bench, tmp_path)
    st = bench.emu.state
    lic = st.one("UserLicense", Name="Salesforce Integration")
    lic["TotalLicenses"] = st.used_user_licenses(lic["Id"]) + 2
    out = intuser(bench.home, "apply", str(run), "-o", ORG, "--yes", "--json")
    body = envelope(out)
    assert out.returncode == 68, out.stdout
    states = holds(bench.emu, bench.plan)
    assert sorted(states.values()) == ["snapshot", "snapshot", "target", "target"]
    assert {f["outcome"] for f in body["result"]["failures"]} == {"no seat"}
    assert all("seat" in f["fix"] for f in body["result"]["failures"])
    assert len(body["result"]["successes"]) == 2
    # without --resume a finished apply is not run again; it says how to move the rest
    again = intuser(bench.home, "apply", str(run), "-o", ORG, "--yes")
    assert again.returncode == 1 and "AlreadyApplied" in again.stderr and "--resume" in again.stderr
    # two more seats, and --resume moves the two others without touching the two that moved
    moved = {u for u, s in states.items() if s == "target"}
    stamps = {u: [a["Id"] for a in st.find("PermissionSetAssignment", AssigneeId=user_id(bench, u))] for u in moved}
    # (fetched again: a check-only deploy restores the org's records from a copy)
    lic = st.one("UserLicense", Name="Salesforce Integration")
    lic["TotalLicenses"] += 2
    again = intuser(bench.home, "apply", str(run), "-o", ORG, "--resume", "--yes", "--json")
    assert again.returncode == 0, again.stdout
    assert set(holds(bench.emu, bench.plan).values()) == {"target"}
    assert {u: [a["Id"] for a in st.find("PermissionSetAssignment", AssigneeId=user_id(bench, u))]
            for u in moved} == stamps
    done = intuser(bench.home, "apply", str(run), "-o", ORG, "--resume", "--yes")
    assert done.returncode == 1 and "AlreadyApplied" in done.stderr


def user_id(bench, username):
    return next(u["id"] for u in bench.plan["users"] if u["username"] == username)


def test_a_permission_the_license_refuses_on_assignment_is_dropped_redeployed_and_retried(bench, tmp_path):
    run = fresh(bench, tmp_path)
    st = bench.emu.state
    # the org turns out stricter than its describe said: QueryAllFiles is not allowed to integration users
    body = (run / "metadata" / "permissionsets" / "Backup_Service_Intuser.permissionset").read_text()
    assert "<name>QueryAllFiles</name>" in body
    allowed = st.perms.license_allowed["Salesforce Integration"]
    assert allowed is not None and "QueryAllFiles" in allowed | st.perms.psl_max["SalesforceAPIIntegrationPsl"]
    st.perms.license_allowed["Salesforce Integration"] = frozenset(allowed - {"QueryAllFiles"})
    for k in list(st.perms.psl_max):
        st.perms.psl_max[k] = frozenset(st.perms.psl_max[k] - {"QueryAllFiles"})
    out = intuser(bench.home, "apply", str(run), "-o", ORG, "--yes", "--json")
    res = envelope(out)["result"]
    assert out.returncode == 0, out.stdout
    assert set(holds(bench.emu, bench.plan).values()) == {"target"}
    dropped = {d["permissionSet"]: d["permissions"] for d in res["dropped"]}
    assert dropped.get("Backup_Service_Intuser") == ["QueryAllFiles"]
    deployed = st.components[("PermissionSet", "Backup_Service_Intuser")].body.decode()
    assert "<name>QueryAllFiles</name>" not in deployed
    # the run folder's plan is as it was written: the drop lives in the journal
    assert "<name>QueryAllFiles</name>" in (run / "metadata" / "permissionsets" /
                                        "Backup_Service_Intuser.permissionset").read_text()
    amends = [json.loads(x) for x in (run / "journal.jsonl").read_text().splitlines() if '"amend"' in x]
    assert [(a["permissionSet"], a["permission"]) for a in amends] == [("Backup_Service_Intuser", "QueryAllFiles")]
    rep = intuser(bench.home, "report", str(run))
    assert "`QueryAllFiles` from `Backup_Service_Intuser`" in rep.stdout


@pytest.mark.parametrize("damage", ["plan", "metadata", "snapshot", "journal"])
def test_a_damaged_run_folder_is_refused_and_nothing_changes(bench, tmp_path, damage):
    run = fresh(bench, tmp_path)
    if damage == "plan":
        p = run / "plan.json"
        p.write_text(p.read_text().replace("API Only - ETL Loader", "System Administrator"))
    elif damage == "metadata":
        p = run / "metadata" / "permissionsets" / "ETL_Loader_Intuser.permissionset"
        p.write_text(p.read_text().replace("</PermissionSet>", "    <userPermissions>\n        <enabled>true</enabled>\n"
                                           "        <name>ModifyAllData</name>\n    </userPermissions>\n</PermissionSet>"))
    elif damage == "snapshot":
        p = run / "snapshot" / "inventory.json"
        p.write_text(p.read_text().replace("Salesforce", "Salesforce Platform", 1))
    else:
        (run / "journal.jsonl").write_text('{"seq": 1, "run": "apply", "phase": "start"}\n{"seq": 2, "run": "ap\n'
                                           '{"seq": 3, "run": "apply", "phase": "end"}\n')
    n = writes(bench.emu)
    out = intuser(bench.home, "apply", str(run), "-o", ORG, "--yes", "--resume")
    assert out.returncode == 1
    name = {"plan": "RunFolderTampered", "metadata": "RunFolderTampered", "snapshot": "SnapshotTampered",
            "journal": "JournalBroken"}[damage]
    assert f"Error ({name})" in out.stderr
    assert {"plan": "plan.json", "metadata": "ETL_Loader_Intuser.permissionset", "snapshot": "inventory.json",
            "journal": "line 2"}[damage] in out.stderr
    assert writes(bench.emu) == n
    assert set(holds(bench.emu, bench.plan).values()) == {"snapshot"}


def test_another_org_drift_and_rollback_before_apply_are_refused(bench, tmp_path):
    run = fresh(bench, tmp_path)
    n = writes(bench.emu)
    back = intuser(bench.home, "rollback", str(run), "-o", ORG, "--yes")
    assert back.returncode == 1 and "NothingToRollBack" in back.stderr
    other, _ = start_org(bench.home, alias="other", instance="other")
    try:
        out = intuser(bench.home, "apply", str(run), "-o", "other", "--yes")
        assert out.returncode == 1 and "WrongOrg" in out.stderr and "-o emu" in out.stderr
        assert writes(other) == 0
    finally:
        other.stop()
    # someone adds a permission set to a user after the plan
    st = bench.emu.state
    etl = st.one("User", Username="etl@acme.emulated")
    st.put("PermissionSetAssignment", {"AssigneeId": etl["Id"], "IsActive": True,
                                       "PermissionSetId": st.one("PermissionSet", Name="Sync_Reader")["Id"]})
    out = intuser(bench.home, "apply", str(run), "-o", ORG, "--yes")
    assert out.returncode == 1 and "OrgDrifted" in out.stderr
    assert "etl@acme.emulated: permission set Sync_Reader added" in out.stderr
    assert writes(bench.emu) == n
    assert not (run / "journal.jsonl").exists()


def test_no_access_token_in_the_run_folder_the_output_or_the_errors(bench, tmp_path):
    run = fresh(bench, tmp_path)
    bench.emu.inject("/composite$@2=500:UNKNOWN_EXCEPTION")
    outs = [intuser(bench.home, "apply", str(run), "-o", ORG, "--yes", "--verbose"),
            intuser(bench.home, "apply", str(run), "-o", ORG, "--resume", "--yes", "--json"),
            intuser(bench.home, "verify", str(run), "-o", ORG, "--json"),
            intuser(bench.home, "report", str(run), "--format", "html"),
            intuser(bench.home, "rollback", str(run), "-o", ORG, "--yes", "--verbose")]
    assert outs[0].returncode == 1 and "ApplyStopped" in outs[0].stderr
    assert [o.returncode for o in outs[1:]] == [0, 0, 0, 0]
    assert TOKEN_MARK in bench.emu.access_token()       # the mark is really in the token
    for o in outs:
        assert TOKEN_MARK not in o.stdout + o.stderr
    files = [p for p in run.rglob("*") if p.is_file()]
    assert any(p.name == "journal.jsonl" for p in files) and any(p.name == "report.html" for p in files)
    for p in files:
        assert TOKEN_MARK.encode() not in p.read_bytes(), p


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@AFTER_APPLY
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_html_report_is_self_contained_and_renders_in_chromium(bench, tmp_path):
    run, _ = from_point(bench, tmp_path, *APPLIED)
    out = intuser(bench.home, "report", str(run), "--format", "html", "--json")
    assert out.returncode == 0, out.stderr
    page = run / "report.html"
    body = page.read_text()
    # one file: no script, nothing fetched (the only URL is the SVG namespace, which is never fetched)
    assert "<script" not in body.lower()
    assert [u for u in __import__("re").findall(r"https?://[^\s\"'<>)]+", body)] == ["http://www.w3.org/2000/svg"]
    shot = tmp_path / "report.png"
    args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--window-size=1200,1000"]
    subprocess.run([*args, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000     # a blank page compresses to a few KB
    planned = [u["username"] for u in bench.plan["users"] if u["status"] == "planned"]
    for name in planned:
        assert name in dom
    assert dom.count("class=\"tag moved\"") == len(planned)
    assert "<rect" in dom             # the chart is drawn
    assert "removed</summary>" in dom  # the access the move removes is listed, per user
    keep = os.environ.get("SF_INTUSER_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "report.png")
    # at a phone's width and a desktop's, nothing is wider than the window: page, chart or table
    for width in (420, 1280):
        assert report_overflow(page, width, tmp_path) == {"page": width, "table": 0, "chart": 0}, width
        narrow = tmp_path / f"report-{width}.png"
        subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={width},1400", f"--screenshot={narrow}", page.as_uri()],
                       capture_output=True, timeout=120, check=True)
        assert narrow.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if keep:
            shutil.copy(narrow, Path(keep) / narrow.name)


def report_overflow(page: Path, width: int, tmp_path: Path) -> dict:
    """Laid out by Chromium at ``width`` px: the page's scroll width, and by how many px the widest table
    and the chart are wider than their boxes. The report runs no script (its CSP), so a page beside it frames
    it and measures (file pages share an origin with --allow-file-access-from-files)."""
    probe = tmp_path / f"probe-{width}.html"
    probe.write_text(f"""<!doctype html><html><body style="margin:0">
<iframe id=f src="{page.as_uri()}" style="width:{width}px;height:1400px;border:0"></iframe>
<pre id=out>pending</pre><script>
document.getElementById('f').onload = function () {{
  var d = this.contentDocument, c = d.querySelector('svg'), over = 0;
  d.querySelectorAll('.scroll').forEach(function (s) {{ over = Math.max(over, s.scrollWidth - s.clientWidth); }});
  document.getElementById('out').textContent = JSON.stringify({{
    page: d.documentElement.scrollWidth,
    table: Math.max(0, over),
    chart: Math.max(0, Math.round(c.getBoundingClientRect().right - d.documentElement.clientWidth))}});
}};
</script></body></html>""")
    dom = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          "--allow-file-access-from-files", "--virtual-time-budget=5000",
                          f"--window-size={width + 40},1500", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    assert found and found.group(1) != "pending", dom[-500:]
    return json.loads(found.group(1).replace("&quot;", '"'))


def test_json_alone_changes_nothing_and_dry_run_validates_without_a_change(bench, tmp_path):
    """sf's convention: --json asks nothing, so a change needs -p/--no-prompt; without it apply and
    rollback do nothing (ConfirmationRequired, with what they would do). apply --dry-run makes the
    checks and validates the deploy check-only: the org gets no write and the run folder no journal."""
    run = fresh(bench, tmp_path)
    before = writes(bench.emu)
    asked = intuser(bench.home, "apply", str(run), "--json")
    body = envelope(asked)
    assert asked.returncode == 1 and body["name"] == "ConfirmationRequired", body
    assert any("--no-prompt" in a for a in body["actions"]) and body["data"]["wouldDo"]
    assert writes(bench.emu) == before and not (run / "journal.jsonl").exists()
    dry = intuser(bench.home, "apply", str(run), "--dry-run", "--json")
    d = envelope(dry)["result"]
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert d["dryRun"] is True and d["deploy"]["success"] and d["deploy"]["components"] > 0
    assert set(d["users"]) == {u["username"] for u in bench.plan["users"] if u["status"] == "planned"}
    assert [label for _, label in bench.emu.state.requests if label.endswith(" deploy")], "validated by a deploy"
    new_sets = [g["name"] for g in bench.plan["generated"] if g["type"] == "PermissionSet" and not g["exists"]]
    assert new_sets and not any(bench.emu.state.one("PermissionSet", Name=n, IsOwnedByProfile=False)
                                for n in new_sets)      # check only: nothing was saved
    assert not (run / "journal.jsonl").exists()
    assert set(holds(bench.emu, bench.plan).values()) == {"snapshot"}     # nobody moved
    human = intuser(bench.home, "apply", str(run), "--dry-run")
    assert human.returncode == 0 and "Nothing was changed" in human.stdout and "validates" in human.stdout
    moved = intuser(bench.home, "apply", str(run), "-p", "--json")
    assert moved.returncode == 0, moved.stdout
    assert set(holds(bench.emu, bench.plan).values()) == {"target"}


def test_delete_generated_removes_unused_profiles_and_groups_and_keeps_what_is_in_use(bench, tmp_path):
    """rollback --delete-generated: the API-only profiles and rebuilt groups the plan generated go in one
    destructive deploy when no one holds them; a group someone else was given since is kept, and named."""
    run = fresh(bench, tmp_path)
    assert intuser(bench.home, "apply", str(run), "--yes").returncode == 0
    st = bench.emu.state
    profiles = sorted(g["name"] for g in bench.plan["generated"] if g["type"] == "Profile")
    groups = sorted(g["name"] for g in bench.plan["generated"] if g["type"] == "PermissionSetGroup")
    assert profiles and groups
    other = st.one("User", Username="dormant.api@acme.emulated")
    grp = st.one("PermissionSetGroup", DeveloperName=groups[0])
    st.insert("PermissionSetAssignment", {"AssigneeId": other["Id"], "PermissionSetGroupId": grp["Id"]})
    out = intuser(bench.home, "rollback", str(run), "--yes", "--delete-generated", "--json")
    r = envelope(out)["result"]
    assert out.returncode == 0, out.stdout + out.stderr
    assert set(holds(bench.emu, bench.plan).values()) == {"snapshot"}
    deleted = {(d["type"], d["name"]) for d in r["deleted"]}
    assert {("Profile", p) for p in profiles} <= deleted
    assert {(k["type"], k["name"]) for k in r["kept"]} == {("PermissionSetGroup", groups[0])}
    assert all(st.profile_by_api_name(p) is None for p in profiles)
    assert st.one("PermissionSetGroup", DeveloperName=groups[0]) is not None
    human = intuser(bench.home, "rollback", str(run), "--yes", "--delete-generated")
    assert human.returncode == 0 and f"Kept: PermissionSetGroup {groups[0]} (still assigned)" in human.stdout


def test_a_second_plan_after_a_rollback_reuses_the_api_only_profile_it_made(bench, tmp_path):
    """apply -> rollback -> plan -> apply: the API-only profile made the first time carries sf-intuser's
    marker (its description), so the second plan finds and reuses it rather than making "... (ee6b)"."""
    run = fresh(bench, tmp_path)
    assert intuser(bench.home, "apply", str(run), "--yes").returncode == 0
    assert intuser(bench.home, "rollback", str(run), "--yes").returncode == 0
    again = tmp_path / "again"
    out = intuser(bench.home, "plan", "--all-candidates", "-o", ORG, "--run-dir", str(again), "--json")
    assert out.returncode == 68, out.stdout
    plan = json.loads((again / "plan.json").read_text())
    first = sorted(g["name"] for g in bench.plan["generated"] if g["type"] == "Profile")
    second = sorted(g["name"] for g in plan["generated"] if g["type"] == "Profile")
    assert second == first and all(g["exists"] for g in plan["generated"] if g["type"] == "Profile")
    assert not any("already exists in the org" in w for w in plan["warnings"])
    assert intuser(bench.home, "apply", str(again), "--yes").returncode == 0
    api = [p["Name"] for p in bench.emu.state.table("Profile").values() if p["Name"].startswith("API Only - ")]
    assert sorted(api) == first


def test_sf_intuser_toml_names_a_users_api_only_profile(bench, tmp_path):
    """[[users]] api-only-profile: the user moves to that existing profile of the integration license; a
    name the org lacks blocks the user with the fix."""
    fresh(bench, tmp_path)
    project = tmp_path / "proj"
    project.mkdir()
    (project / "sf-intuser.toml").write_text('[[users]]\nusername = "etl@acme.emulated"\n'
                                             'api-only-profile = "Minimum Access - API Only Integrations"\n'
                                             '[[users]]\nusername = "backup@acme.emulated"\n'
                                             'api-only-profile = "No Such Profile"\n')
    run = tmp_path / "named"
    out = intuser(bench.home, "plan", "-o", ORG, "--run-dir", str(run), "--json", cwd=project)
    assert out.returncode == 68, out.stdout + out.stderr
    users = {u["username"]: u for u in json.loads((run / "plan.json").read_text())["users"]}
    etl = users["etl@acme.emulated"]
    assert etl["to"]["profile"] == "Minimum Access - API Only Integrations" and etl["to"]["profileId"]
    assert any("takes those of 'Minimum Access - API Only Integrations'" in w for w in etl["warnings"])
    assert "No Such Profile" in users["backup@acme.emulated"]["blockers"][0]["problem"]
    assert intuser(bench.home, "apply", str(run), "--yes").returncode == 0
    moved = bench.emu.state.one("User", Username="etl@acme.emulated")
    assert bench.emu.state.get(moved["ProfileId"])["Name"] == "Minimum Access - API Only Integrations"


def test_plan_md_says_why_lists_every_dropped_permission_and_what_is_kept(bench):
    """The review: why a user gets a custom API-only profile (its login ranges and hours), every permission
    that is dropped (not the first dozen), and what each new set keeps."""
    from sf_intuser.report.escape import md

    text = (bench.template / "plan.md").read_text()
    custom = [u for u in bench.plan["users"] if u["status"] == "planned"
              and u["to"]["profile"] != "Minimum Access - API Only Integrations"]
    assert custom and text.count("Why a custom API-only profile") == len(custom)
    for u in (u for u in bench.plan["users"] if u["status"] == "planned"):
        section = text.split(f"### {u['username']}")[1].split("\n### ")[0]
        for d in u["dropped"]:
            assert md(d["name"]) in section, (u["username"], d["name"])
        assert "Kept in " in section
    many = max(len(u["dropped"]) for u in bench.plan["users"] if u["status"] == "planned")
    assert many > 12                     # a System Administrator source drops far more than a dozen
