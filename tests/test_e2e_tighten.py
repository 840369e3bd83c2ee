"""``tighten`` end to end through the real sf CLI: two integrations on System Administrator, one that
used three objects (two of them written) and one that read a single object. The evidence comes from
the emulated org's event logs; tighten proposes sets granting exactly that; apply moves the users and
every recorded call is still allowed by the org's access rules while what was not recorded is not;
rollback gives the old access back. Then the cases where the evidence is thin or absent."""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from sf_intuser.emulator import eventlogs, seed
from sf_intuser.emulator.server import EmulatedOrg
from sf_intuser.metadata.xml import parse
from sf_intuser.migrate.tighten import enabled_permissions, object_grants
from sf_intuser.sf.runner import SfRunner
from tests.contracts import check_run_folder
from tests.test_e2e_apply import CHROMIUM, report_overflow
from tests.e2e import ORG, SHIM, holds, intuser, needs_cli, sf_env

pytestmark = needs_cli

SYNC, READER = "crm.sync@acme.emulated", "report.reader@acme.emulated"
API_LOGINS = [{"type": "Remote Access 2.0", "application": "Middleware", "count": 20, "days": 20, "apiType": "REST"}]


def spec(**options: object) -> dict:
    s = json.loads(seed.DEFAULT_SEED.read_text(encoding="utf-8"))
    s["options"] = {**s.get("options", {}), "event_log_file_days": 7, **options}
    s["users"] += [
        {"username": SYNC, "name": "CRM Sync", "profile": "System Administrator", "lastLogin": "-1h",
         "logins": API_LOGINS, "apiUsage": [
             {"object": "Account", "ops": ["read", "create", "edit"], "api": "REST", "app": "Middleware",
              "count": 12, "days": 10},
             {"object": "Contact", "ops": ["read", "edit"], "api": "SOAP", "app": "Middleware", "count": 6, "days": 10},
             {"object": "Opportunity", "ops": ["read"], "api": "REST", "app": "Middleware", "count": 4, "days": 10}]},
        {"username": READER, "name": "Report Reader", "profile": "System Administrator", "lastLogin": "-2h",
         "logins": API_LOGINS, "apiUsage": [
             {"object": "Case", "ops": ["read"], "api": "REST", "app": "Middleware", "count": 8, "days": 10}]},
    ]
    return s


def start(home: Path, **options: object) -> EmulatedOrg:
    emu = EmulatedOrg(seed.build(spec(**options), seed.SEEDS), max_seconds=900).start()
    runner = SfRunner(sf=str(SHIM), env=sf_env(home, emu.access_token()), timeout=120)
    runner.run(["org", "login", "access-token", "--instance-url", emu.url, "--no-prompt", "--alias", ORG])
    return emu


def planned(home: Path) -> tuple[Path, dict]:
    out = intuser(home, "plan", "-u", SYNC, "-u", READER, "-o", ORG, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    run = home / json.loads(out.stdout)["result"]["runDir"]
    return run, json.loads((run / "plan.json").read_text())


@dataclass
class Bench:
    home: Path
    emu: EmulatedOrg
    template: Path
    plan: dict


@pytest.fixture(scope="module")
def tb(tmp_path_factory):
    """One emulated org and one plan of both users per module (worker): the plan reads no event log, so
    each test serves the org again with its own event log options and starts from a copy of that plan."""
    home = tmp_path_factory.mktemp("home")
    emu = start(home)
    run, plan = planned(home)
    yield Bench(home, emu, run, plan)
    emu.stop()


def fresh(tb: Bench, tmp_path: Path, **options: object) -> tuple[Path, dict]:
    """The module's org afresh (same ids), seeded with ``options``, and a copy of the plan's run folder."""
    tb.emu.reset(seed.build(spec(**options), seed.SEEDS))
    run = tmp_path / "run"
    shutil.copytree(tb.template, run)
    return run, json.loads((run / "plan.json").read_text())


def tightened_sets(run: Path, plan: dict) -> dict[str, tuple[dict, set]]:
    """Per user: the tightened set's object flags and user permissions, read from its file."""
    out = {}
    for u in (x for x in plan["users"] if x["status"] == "planned"):
        name = u["to"]["permissionSet"]
        root = parse((run / "metadata" / "permissionsets" / f"{name}.permissionset").read_bytes(), name).root
        out[u["username"]] = ({o: f for o, f in object_grants(root).items()}, enabled_permissions(root))
    return out


def test_tighten_narrows_to_recorded_use_apply_keeps_every_call_and_rollback_restores(tb, tmp_path):
    home, emu = tb.home, tb.emu
    run, plan = fresh(tb, tmp_path)
    out = intuser(home, "tighten", str(run), "-o", ORG, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    r = json.loads(out.stdout)["result"]
    tight = home / r["runDir"]
    assert tight.parent == run and tight.name.startswith("tightened-")
    # the original plan is untouched; the new one is a whole, checksummed run folder
    assert json.loads((run / "plan.json").read_text()) == plan
    assert not check_run_folder(tight)
    new = json.loads((tight / "plan.json").read_text())
    assert r["evidenceSfCalls"] == 2 + sum(s["files"] for s in r["evidence"]["sources"])
    assert [s["status"] for s in r["evidence"]["sources"]] == ["used", "used"], r["evidence"]
    sets = tightened_sets(tight, new)
    objs, perms = sets[SYNC]
    read_only = {"allowRead", "viewAllRecords"}
    assert set(objs) == {"Account", "Contact", "Opportunity"}
    assert {o: f - {"viewAllRecords", "modifyAllRecords"} for o, f in objs.items()} == {
        "Account": {"allowRead", "allowCreate", "allowEdit"}, "Contact": {"allowRead", "allowEdit"},
        "Opportunity": {"allowRead"}}
    assert objs["Opportunity"] <= read_only
    objs2, perms2 = sets[READER]
    assert set(objs2) == {"Case"} and objs2["Case"] <= read_only
    # system permissions: API Enabled and what it needs, nothing of an administrator's
    for p in (perms, perms2):
        assert "ApiEnabled" in p
        assert not p & {"ViewAllData", "ModifyAllData", "ManageUsers", "CustomizeApplication", "AuthorApex"}
    # plan.md shows the diff with the window and the evidence
    md = (tight / "plan.md").read_text()
    assert "## Tightened to recorded use" in md and "covers" in md
    assert "`Opportunity` narrows to read, view all" in md and "read x4" in md
    counts = {u["username"]: u["counts"] for u in r["users"]}
    assert counts[READER]["tightened"] == {"objectsRead": 1, "objectsWrite": 0,
                                           "systemPermissions": len(perms2)}
    assert counts[SYNC]["tightened"]["objectsWrite"] == 2
    assert counts[SYNC]["moved"]["objectsWrite"] > 2 and counts[SYNC]["before"]["systemPermissions"] > len(perms)

    done = intuser(home, "apply", str(tight), "-o", ORG, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(holds(emu, new).values()) == {"target"}
    st = emu.state
    ids = {u: st.one("User", Username=u)["Id"] for u in (SYNC, READER)}
    # every recorded call would still succeed; what was not recorded is refused
    for e in eventlogs.events(st):
        if e["user"] in ids.values():
            assert eventlogs.allowed(st, e["user"], e["object"], e["op"]), e
    assert not eventlogs.allowed(st, ids[SYNC], "Account", "delete")
    assert not eventlogs.allowed(st, ids[SYNC], "Lead", "read")
    assert not eventlogs.allowed(st, ids[READER], "Case", "edit")
    assert not eventlogs.allowed(st, ids[READER], "Account", "read")
    # the migration report shows, per user, access before, after the move and after tightening
    md_rep = intuser(home, "report", str(tight))
    assert md_rep.returncode == 0, md_rep.stderr
    assert "## Access before, after the move and after tightening" in md_rep.stdout
    assert "1 / 0 / " in md_rep.stdout and "3 / 2 / " in md_rep.stdout
    rows = list(csv.DictReader(io.StringIO(intuser(home, "report", str(tight), "--format", "csv").stdout)))
    sync = next(x for x in rows if x["username"] == SYNC)
    assert (sync["tightened_objects_read"], sync["tightened_objects_write"]) == ("3", "2")
    assert int(sync["before_system_permissions"]) > int(sync["tightened_system_permissions"])
    assert intuser(home, "report", str(tight), "--format", "html").returncode == 0
    page = (tight / "report.html").read_text()
    assert "After tightening" in page and "3 / 2 / " in page
    if CHROMIUM:     # the new table fits a phone's width and a desktop's, as the rest of the report
        for width in (420, 1280):
            assert report_overflow(tight / "report.html", width, tmp_path) == {
                "page": width, "table": 0, "chart": 0}, width

    back = intuser(home, "rollback", str(tight), "-o", ORG, "--yes")
    assert back.returncode == 0, back.stdout + back.stderr
    assert set(holds(emu, new).values()) == {"snapshot"}
    assert eventlogs.allowed(st, ids[READER], "Account", "edit")      # System Administrator again


@pytest.mark.parametrize("options, sources, narrowed", [
    # the log object alone (no file types), and the files alone (no object): either is evidence
    ({"event_log_files": "none"}, ["used", "absent"], True),
    ({"event_log_object": "none", "event_log_files": "API,RestApi"}, ["absent", "used"], True),
    # the object refused (no View Event Log Object Data) and files kept for one day only: a short
    # window, said so; a user with no call on that day is left as planned, and says why
    ({"event_log_object": "refused", "event_log_file_days": 1}, ["unreadable", "used"], None),
])
def test_each_source_on_its_own(tb, tmp_path, options, sources, narrowed):
    home = tb.home
    run, _plan = fresh(tb, tmp_path, **options)
    out = intuser(home, "tighten", str(run), "-o", ORG, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    r = json.loads(out.stdout)["result"]
    assert [s["status"] for s in r["evidence"]["sources"]] == sources
    if narrowed is not None:
        assert all(u["narrowed"] == narrowed for u in r["users"]), r["users"]
    for u in r["users"]:
        assert u["narrowed"] or any("no recorded call in the window" in w for w in u["warnings"]), u
    if options.get("event_log_file_days") == 1:
        assert any("the evidence covers 1 day(s)" in w for w in r["warnings"]), r["warnings"]
    if options.get("event_log_object") == "refused":
        assert "View Event Log Object Data" in r["evidence"]["sources"][0]["reason"]


def test_no_evidence_writes_nothing_and_says_why(tb, tmp_path):
    home = tb.home
    run, _plan = fresh(tb, tmp_path, event_log_object="none", event_log_files="none")
    out = intuser(home, "tighten", str(run), "-o", ORG, "--json")
    body = json.loads(out.stdout)
    assert out.returncode == 1 and body["name"] == "NoEvidence", out.stdout
    assert "ApiTotalUsageEventLog: absent" in body["message"] and "EventLogFile: absent" in body["message"]
    assert not [p for p in run.iterdir() if p.name.startswith("tightened-")]
    # a plan already applied is not tightened
    assert intuser(home, "apply", str(run), "-o", ORG, "--yes").returncode == 0
    again = intuser(home, "tighten", str(run), "-o", ORG)
    assert again.returncode == 1 and "RunAlreadyApplied" in again.stderr, again.stderr


def test_a_name_another_set_holds_is_never_taken(tb, tmp_path):
    """The org already has a set, not sf-intuser's, under the name tighten would give a narrowed set:
    another name is chosen, and apply leaves that set as it was."""
    from sf_intuser.migrate.tighten import _new_name

    home, emu = tb.home, tb.emu
    run, plan = fresh(tb, tmp_path)
    mine = next(u for u in plan["users"] if u["username"] == READER)["to"]["permissionSet"]
    wanted = _new_name(mine, READER, set())
    emu.state.put("PermissionSet", {"Name": wanted, "Label": "Someone else's", "Description": "not ours",
                                    "IsOwnedByProfile": False, "IsCustom": True, "Type": "Regular"})
    out = intuser(home, "tighten", str(run), "-o", ORG, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    got = next(u for u in json.loads(out.stdout)["result"]["users"] if u["username"] == READER)
    assert got["sets"] and got["sets"][0]["into"] != wanted
    tight = home / json.loads(out.stdout)["result"]["runDir"]
    assert intuser(home, "apply", str(tight), "-o", ORG, "--yes").returncode == 0
    other = emu.state.one("PermissionSet", Name=wanted, IsOwnedByProfile=False)
    assert other["Description"] == "not ours" and other["Label"] == "Someone else's"
