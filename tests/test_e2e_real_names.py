"""A real org's names and what a license change can take away, end to end through the real sf CLI:
integration users on System Administrator (``Admin`` to the Metadata API), Standard User (``Standard``)
and a custom profile ``Custom: Integration Sync`` (``Custom%3A Integration Sync``), read by an admin
whose language is French, with roles, public groups, queues and feature licenses, under each way the
org may treat them on a change of license ([U]: kept, cleared, refused)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sf_intuser.emulator import seed
from sf_intuser.emulator.server import EmulatedOrg
from sf_intuser.metadata import package_xml
from sf_intuser.sf.runner import SfRunner
from tests.e2e import ORG, SHIM, holds, intuser, needs_cli, sf_env

pytestmark = needs_cli

USERS = ["admin.int@acme.emulated", "std.int@acme.emulated", "custom.int@acme.emulated"]
CUSTOM = "Custom: Integration Sync"
CUSTOM_API = "Custom%3A Integration Sync"

CUSTOM_BODY = """<?xml version="1.0" encoding="UTF-8"?>
<Profile xmlns="http://soap.sforce.com/2006/04/metadata">
    <custom>true</custom>
    <loginIpRanges>
        <endAddress>198.51.100.60</endAddress>
        <startAddress>198.51.100.50</startAddress>
    </loginIpRanges>
    <objectPermissions>
        <allowCreate>true</allowCreate>
        <allowDelete>false</allowDelete>
        <allowEdit>true</allowEdit>
        <allowRead>true</allowRead>
        <modifyAllRecords>false</modifyAllRecords>
        <object>Account</object>
        <viewAllRecords>false</viewAllRecords>
    </objectPermissions>
    <userLicense>Salesforce</userLicense>
    <userPermissions>
        <enabled>true</enabled>
        <name>ApiEnabled</name>
    </userPermissions>
</Profile>
"""


def spec(**options: object) -> dict:
    s = json.loads(seed.DEFAULT_SEED.read_text(encoding="utf-8"))
    s["options"] = {**s.get("options", {}), **options}
    s["components"] = [{"type": "Profile", "name": CUSTOM_API, "body": CUSTOM_BODY}]
    api = [{"type": "Remote Access 2.0", "application": "Sync Engine", "count": 12, "days": 30}]
    s["users"] += [
        {"username": USERS[0], "name": "Admin Integration", "profile": "System Administrator", "lastLogin": "-1d",
         "role": "Integrations", "groups": ["All Integrations", "Order Exceptions"],
         "featureLicenses": ["MarketingUser", "KnowledgeUser"], "logins": api},
        {"username": USERS[1], "name": "Standard Integration", "profile": "Standard User", "lastLogin": "-1d",
         "groups": ["Order Exceptions"], "featureLicenses": ["InteractionUser"], "logins": api},
        {"username": USERS[2], "name": "Custom Integration", "profile": CUSTOM, "lastLogin": "-1d",
         "role": "Sales Rep", "logins": api},
    ]
    return s


def start(home: Path, **options: object) -> tuple[EmulatedOrg, SfRunner]:
    emu = EmulatedOrg(seed.build(spec(**options), seed.SEEDS), max_seconds=900).start()
    runner = SfRunner(sf=str(SHIM), env=sf_env(home, emu.access_token()), timeout=120)
    runner.run(["org", "login", "access-token", "--instance-url", emu.url, "--no-prompt", "--alias", ORG])
    return emu, runner


def record(emu: EmulatedOrg, username: str) -> tuple:
    """A user's whole state in the org: profile, sets, licenses, role, groups, feature licenses."""
    st = emu.state
    u = st.one("User", Username=username)
    sets = sorted(st.get(a["PermissionSetId"])["Name"] for a in st.find("PermissionSetAssignment", AssigneeId=u["Id"])
                  if not st.get(a["PermissionSetId"])["IsOwnedByProfile"])
    psls = sorted(st.get(a["PermissionSetLicenseId"])["DeveloperName"]
                  for a in st.find("PermissionSetLicenseAssign", AssigneeId=u["Id"]))
    groups = sorted(st.get(m["GroupId"])["Name"] for m in st.find("GroupMember", UserOrGroupId=u["Id"]))
    features = sorted(k for k, v in u.items() if k.startswith("UserPermissions") and v)
    return u["ProfileId"], sets, psls, u.get("UserRoleId"), groups, features


def test_retrieve_by_label_answers_as_salesforce_and_by_api_name_returns_the_file(tmp_path):
    emu, runner = start(tmp_path / "home", language="fr")
    try:
        listed = {x["fullName"]: x for x in runner.run(["org", "list", "metadata", "-m", "Profile", "-o", ORG]).result}
        assert {"Admin", "Standard", CUSTOM_API, "Minimum Access - API Only Integrations"} <= set(listed)
        assert listed[CUSTOM_API]["fileName"] == f"profiles/{CUSTOM_API}.profile"
        # SOQL shows the French admin the label in French; the API name stays
        names = {r["Id"]: r["Name"] for r in runner.run(["data", "query", "-q", "SELECT Id, Name FROM Profile",
                                                         "-o", ORG]).result["records"]}
        assert names[listed["Admin"]["id"]] == "Administrateur système"
        assert names[listed[CUSTOM_API]["id"]] == CUSTOM
        for members, found, problem in (
                (["System Administrator"], [], "Entity of type 'Profile' named 'System Administrator' cannot be found"),
                (["Admin", CUSTOM_API], ["Admin.profile", f"{CUSTOM_API}.profile"], None)):
            d = tmp_path / ("r" + str(len(members)))
            d.mkdir()
            (d / "package.xml").write_bytes(package_xml.build({"Profile": members}, "62.0"))
            r = runner.run(["project", "retrieve", "start", "--manifest", str(d / "package.xml"),
                            "--target-metadata-dir", str(d / "out"), "--unzip", "-o", ORG]).result
            assert sorted(p.name for p in (d / "out").rglob("*.profile")) == sorted(found)
            msgs = r.get("messages") or []
            msgs = [msgs] if isinstance(msgs, dict) else msgs
            assert [m["problem"] for m in msgs] == ([problem] if problem else [])
        # a deploy of Admin.profile updates System Administrator
        d = tmp_path / "deploy" / "profiles"
        d.mkdir(parents=True)
        (d / "Admin.profile").write_text(CUSTOM_BODY.replace("<custom>true</custom>", "<custom>false</custom>")
                                         .replace("<loginIpRanges>", "<description>changed</description>\n"
                                                  "    <loginIpRanges>"))
        (d.parent / "package.xml").write_bytes(package_xml.build({"Profile": ["Admin"]}, "62.0"))
        dep = runner.run(["project", "deploy", "start", "--metadata-dir", str(d.parent), "-o", ORG]).result
        assert dep["status"] == "Succeeded"
        assert b"changed" in emu.state.components[("Profile", "Admin")].body
    finally:
        emu.stop()


#: each way a change of license may treat the user record ([U]), and what the user ends with after apply
WAYS = {
    "kept": dict(integration_feature_licenses=True),
    "cleared": dict(license_change_clears_role=True, license_change_clears_groups=True),
    "refused": dict(license_change_clears_role=True, license_change_clears_groups=True,
                    feature_licenses_on_license_change="refuse"),
}


@pytest.mark.parametrize("way", sorted(WAYS))
def test_real_names_in_french_through_plan_apply_verify_and_rollback(tmp_path, way):
    home = tmp_path / "home"
    emu, _ = start(home, language="fr", **WAYS[way])
    try:
        before = {u: record(emu, u) for u in USERS}
        run = tmp_path / "run"
        args = ["plan", "-o", ORG, "--run-dir", str(run), "--json"]
        for u in USERS:
            args += ["-u", u]
        out = intuser(home, *args)
        body = json.loads(out.stdout)
        assert out.returncode == 0, out.stdout + out.stderr
        assert body["result"]["sfCalls"] <= 7
        plan = json.loads((run / "plan.json").read_text())
        by = {u["username"]: u for u in plan["users"]}
        assert [by[u]["status"] for u in USERS] == ["planned"] * 3
        # the run folder holds the profiles under their API names, people see the labels
        files = sorted(p.name for p in (run / "snapshot" / "metadata" / "profiles").iterdir())
        assert files == ["Admin.profile", f"{CUSTOM_API}.profile", "Standard.profile"]
        assert by[USERS[0]]["from"]["profile"] == "Administrateur système"
        assert by[USERS[0]]["from"]["profileApiName"] == "Admin"
        md = (run / "plan.md").read_text()
        assert "Administrateur système (Metadata API name `Admin`)" in md
        assert "Role: Integrations" in md and "queues: Order Exceptions" in md
        assert "Feature licenses: KnowledgeUser, MarketingUser" in md
        # the custom profile's login range goes to a custom API-only profile whose name needs no encoding
        target = by[USERS[2]]["to"]["profile"]
        assert target == "API Only - Custom Integration Sync", target
        assert by[USERS[0]]["to"]["profile"] == "Minimum Access - API Only Integrations"

        out = intuser(home, "apply", str(run), "-o", ORG, "--yes", "--json")
        res = json.loads(out.stdout)["result"]
        assert out.returncode == 0, out.stdout + out.stderr
        assert set(holds(emu, plan).values()) == {"target"}, holds(emu, plan)
        after = {u: record(emu, u) for u in USERS}
        for u in USERS:   # role, groups and queues as before the move, whatever the org did to them
            assert after[u][3:5] == before[u][3:5], (u, after[u], before[u])
        not_kept = sorted((n["username"], n["featureLicense"]) for n in res["notKept"])
        if way == "kept":
            assert not_kept == [] and [after[u][5] for u in USERS] == [before[u][5] for u in USERS]
        else:   # the license refuses them: said plainly, and nothing else lost
            assert not_kept == [(USERS[0], "KnowledgeUser"), (USERS[0], "MarketingUser"),
                                (USERS[1], "InteractionUser")]
            assert all(after[u][5] == [] for u in USERS)
        out = intuser(home, "verify", str(run), "-o", ORG, "--json")
        assert out.returncode == 0, out.stdout

        out = intuser(home, "rollback", str(run), "-o", ORG, "--yes", "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        assert {u: record(emu, u) for u in USERS} == before
        assert set(holds(emu, plan).values()) == {"snapshot"}
    finally:
        emu.stop()
