"""``sf-intuser rehearse``: the real sf CLI against two emulated orgs at once, production (where the
plan was made) and a rehearsal org (a sandbox-like copy with an org id of its own)."""

from __future__ import annotations

import json

import pytest

from sf_intuser.emulator import seed
from sf_intuser.migrate.rehearse import MARKER
from tests.e2e import ORG, intuser, needs_cli, start_org

pytestmark = needs_cli
UAT = "uat"


@pytest.fixture(scope="module")
def orgs(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    prod, _ = start_org(home)
    uat, _ = start_org(home, alias=UAT, instance=UAT)
    run = tmp_path_factory.mktemp("runs") / "prod"
    out = intuser(home, "plan", "--all-candidates", "-o", ORG, "--run-dir", str(run), "--json")
    assert out.returncode == 68, out.stdout + out.stderr     # one user is blocked (CPQ): not rehearsed
    yield home, prod, uat, run, json.loads((run / "plan.json").read_text())
    prod.stop()
    uat.stop()


def _stand_ins(uat):
    return [u for u in uat.state.records["User"].values() if MARKER in (u.get("LastName") or "")]


def test_rehearsal_moves_stand_ins_in_the_other_org_then_rolls_back(orgs, tmp_path):
    home, prod, uat, run, plan = orgs
    refused = intuser(home, "rehearse", str(run), "--on", ORG, "--json")
    assert refused.returncode == 1 and json.loads(refused.stdout)["name"] == "RehearsalOnProduction"
    # an API error after the stand-ins exist (the retrieve of the rehearsal's plan): they are deactivated
    fault = uat.inject(" retrieve@1=500:UNKNOWN_EXCEPTION:An unexpected error occurred")
    out = intuser(home, "rehearse", str(run), "--on", UAT, "--run-dir", str(tmp_path / "failed"), "--json")
    assert out.returncode != 0 and "stand-ins in uat were deactivated" in json.loads(out.stdout)["message"]
    assert _stand_ins(uat) and not any(u["IsActive"] for u in _stand_ins(uat))
    uat.faults.remove(fault)
    earlier = {u["Id"] for u in _stand_ins(uat)}
    prod_requests = len(prod.state.requests)
    out = intuser(home, "rehearse", str(run), "--on", UAT, "--run-dir", str(tmp_path / "r"), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    body = json.loads(out.stdout)["result"]
    planned = sorted(u["username"] for u in plan["users"] if u["status"] == "planned")
    assert sorted(s["production"] for s in body["standIns"]) == planned
    assert body["differences"] == [] and body["rolledBack"] is True
    assert sorted(x["username"] for x in body["apply"]["successes"]) == sorted(s["standIn"] for s in body["standIns"])
    # production was not even read: the rehearsal works from the run folder alone
    assert len(prod.state.requests) == prod_requests
    # in the rehearsal org: each stand-in back on its production profile, deactivated, marked
    st = uat.state
    stand_ins = {u["Username"]: u for u in _stand_ins(uat) if u["Id"] not in earlier}
    assert sorted(stand_ins) == sorted(s["standIn"] for s in body["standIns"])
    before = {b["user"]: b for b in plan["rollback"]["users"]}
    for s in body["standIns"]:
        u = stand_ins[s["standIn"]]
        assert not u["IsActive"] and "@example.invalid" in u["Email"]
        assert st.get(u["ProfileId"])["Name"] == before[s["production"]]["profile"]
    # the generated sets were deleted by the rollback; the rehearsal's report is there
    assert not any(st.one("PermissionSet", Name=g["name"]) for g in plan["generated"]
                   if g.get("type") == "PermissionSet")
    assert (tmp_path / "r" / "report.html").is_file()


def test_keep_leaves_the_rehearsal_in_place_and_differences_are_reported(orgs, tmp_path):
    home, _prod, uat, run, plan = orgs
    uat.reset(seed.load(instance=UAT))        # a fresh copy of the rehearsal org (same org id)
    # in this rehearsal org the Backup Service profile does not give the Backup Connector app: the
    # rehearsal's plan can't carry that access, and says so
    st = uat.state
    profile = st.one("Profile", Name="Backup Service")
    owned = st.one("PermissionSet", ProfileId=profile["Id"], IsOwnedByProfile=True)
    for sea in st.find("SetupEntityAccess", ParentId=owned["Id"]):
        del st.records["SetupEntityAccess"][sea["Id"]]
    out = intuser(home, "rehearse", str(run), "--on", UAT, "--keep", "--run-dir", str(tmp_path / "k"), "--json")
    body = json.loads(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert any("backup@acme.emulated: access" in d for d in body["result"]["differences"])
    assert any(w.startswith("plan differs: backup@acme.emulated") for w in body["warnings"])
    assert body["result"]["kept"] is True and body["result"]["rolledBack"] is None
    by_standin = {s["standIn"]: s["production"] for s in body["result"]["standIns"]}
    targets = {u["username"]: u["to"]["profile"] for u in plan["users"] if u["status"] == "planned"}
    for u in (x for x in _stand_ins(uat) if x["Username"] in by_standin):
        assert u["IsActive"] and st.get(u["ProfileId"])["Name"] == targets[by_standin[u["Username"]]]
    # the kept rehearsal is an ordinary run folder: rollback undoes it
    back = intuser(home, "rollback", str(tmp_path / "k"), "-o", UAT, "--yes", "--json")
    assert back.returncode == 0, back.stdout
    before = {b["user"]: b["profile"] for b in plan["rollback"]["users"]}
    for u in (x for x in _stand_ins(uat) if x["Username"] in by_standin):
        assert st.get(u["ProfileId"])["Name"] == before[by_standin[u["Username"]]]
    # rolled back but still active: --clean-up deactivates every stand-in left active, and only those
    people = {u["Id"] for u in st.records["User"].values() if u["IsActive"] and MARKER not in u["LastName"]}
    out = intuser(home, "rehearse", str(run), "--on", UAT, "--clean-up", "--json")
    assert out.returncode == 0, out.stdout
    assert sorted(json.loads(out.stdout)["result"]["deactivated"]) == sorted(by_standin)
    assert not any(u["IsActive"] for u in _stand_ins(uat))
    assert people == {u["Id"] for u in st.records["User"].values() if u["IsActive"] and MARKER not in u["LastName"]}
    refused = intuser(home, "rehearse", str(run), "--on", ORG, "--clean-up", "--json")
    assert refused.returncode == 1 and json.loads(refused.stdout)["name"] == "RehearsalOnProduction"


def test_the_scratch_script_creates_a_scratch_org_from_a_dev_hub_and_rehearses_there(orgs, tmp_path):
    """`sf org create scratch` against an emulated Dev Hub (ScratchOrgInfo, its polling, the auth code
    exchange at the new org's LoginUrl), driven by scripts/rehearse-on-scratch.sh. The scratch org
    starts blank: no custom profiles, Apex classes, pages, connected apps or users."""
    import subprocess

    from tests.conftest import ROOT
    from tests.e2e import SHIM, sf_env

    home, _prod, _uat, run, plan = orgs
    hub, _ = start_org(home, alias="hub", instance="devhub", dev_hub=True)
    try:
        # a project holding the code production's profiles name (source format)
        proj = tmp_path / "proj"
        (proj / "force-app/main/default").mkdir(parents=True)
        (proj / "sfdx-project.json").write_text('{"packageDirectories":[{"path":"force-app","default":true}],'
                                                '"sourceApiVersion":"62.0"}')
        for folder, suffix in (("classes", ".cls"), ("pages", ".page")):
            (proj / "force-app/main/default" / folder).mkdir()
            for f in [*(ROOT / "sf_intuser/emulator/seeds/acme-org" / folder).glob("*" + suffix),
                      *(ROOT / "sf_intuser/examples/acme/force-app/main/default" / folder).glob("*" + suffix)]:
                for part in (f, f.with_name(f.name + "-meta.xml")):
                    (proj / "force-app/main/default" / folder / part.name).write_bytes(part.read_bytes())
        # and the objects, fields, record types and tabs production's profiles grant
        import shutil

        for folder in ("objects", "tabs"):
            shutil.copytree(ROOT / "sf_intuser/examples/acme/force-app/main/default" / folder,
                            proj / "force-app/main/default" / folder)
        env = {**sf_env(home), "SF_INTUSER_SF": str(SHIM), "SF_INTUSER": str(ROOT / ".venv/bin/sf-intuser")}
        script = [str(ROOT / "scripts/rehearse-on-scratch.sh"), str(run), "scr"]

        def go(*extra):
            out = subprocess.run([*script, *extra, "--json"], env=env, capture_output=True, text=True,
                                 timeout=600, cwd=str(proj))
            return out, json.loads(out.stdout) if out.stdout.strip() else {}

        # created from config/project-scratch-def.json; without the code and objects, Salesforce refuses the
        # profiles
        out, body = go("--create", "--dev-hub", "hub")
        assert len(hub.scratch_orgs) == 1, out.stderr
        scratch = hub.scratch_orgs[0]
        info = next(iter(hub.state.records["ScratchOrgInfo"].values()))
        assert info["Edition"] == "Enterprise" and info["Status"] == "Active" and info["AuthCode"]
        assert scratch.auth_code is None                      # the code was exchanged once
        assert out.returncode == 1 and body.get("name") == "RehearsalDeployFailed", out.stdout[-3000:] + out.stderr[-3000:]
        assert "no ApexClass named" in body["message"] and not _stand_ins(scratch)
        # the project's code first (as a team does in a scratch org), then the rehearsal goes through
        out, body = go("--deploy", "force-app")
        assert out.returncode == 0, out.stdout + out.stderr
        planned = [u for u in plan["users"] if u["status"] == "planned"]
        assert len(body["result"]["standIns"]) == len(planned) and body["result"]["rolledBack"] is True
        assert body["result"]["org"]["id"][:15] == info["ScratchOrg"]
        # the connected apps are not in a scratch org: the rehearsal says what it could not prove
        with_apps = {u["username"] for u in planned if u["to"]["access"]}
        assert {d.split(":")[0] for d in body["result"]["differences"]} == with_apps
        assert _stand_ins(scratch) and all(not u["IsActive"] for u in _stand_ins(scratch))
    finally:
        hub.stop()
