"""A realistic SFDX project of our own (tests/projects/field-service: objects, fields, record types,
tabs, apps, Apex, Lightning components, flows, layouts, a Lightning page, labels, a static resource,
a report in a folder, permission sets using a wide spread of real permission names, profiles under
their Metadata API names) deployed to the emulated org with the real sf CLI: every member of the
manifest is accounted for, the types the org does not model are named in a warning, references to
what the org lacks are refused in Salesforce's words, and a retrieve returns what was deployed."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from sf_intuser.metadata import package_xml
from tests.conftest import ROOT
from tests.e2e import ORG, SHIM, needs_cli, sf_env, start_org

pytestmark = needs_cli
PROJECT = ROOT / "tests" / "projects" / "field-service"


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    emu, runner = start_org(home)
    yield emu, home
    emu.stop()


def sf(home, *args, cwd):
    out = subprocess.run([str(SHIM), *args, "--json"], env=sf_env(home), cwd=cwd, capture_output=True, text=True,
                         timeout=300)
    return out.returncode, json.loads(out.stdout)


def _project(tmp_path):
    dest = tmp_path / "field-service"
    shutil.copytree(PROJECT, dest)
    return dest


def _members(project, home) -> dict[str, list[str]]:
    """The manifest sf builds for the project (what it deploys)."""
    code, _ = sf(home, "project", "generate", "manifest", "--source-dir", "force-app", "--output-dir", ".",
                 cwd=project)
    assert code == 0
    return package_xml.read((project / "package.xml").read_bytes())


def test_the_project_deploys_with_every_member_accounted_for_and_retrieves_back(org, tmp_path):
    emu, home = org
    project = _project(tmp_path)
    manifest = _members(project, home)
    n_members = sum(len(v) for v in manifest.values())
    code, out = sf(home, "project", "deploy", "start", "--source-dir", "force-app", "-o", ORG, "--wait", "10",
                   cwd=project)
    res = out["result"]
    assert code == 0, out
    assert res["status"] == "Succeeded"
    assert res["numberComponentsTotal"] == n_members == res["numberComponentsDeployed"]
    shown = {(f["type"], f["fullName"]) for f in res["files"] if f["state"] in ("Created", "Changed")}
    for mtype, members in manifest.items():
        for m in members:
            if mtype == "Report" and m.endswith("/"):
                assert ("ReportFolder", m.rstrip("/")) in shown
            else:
                assert (mtype, m) in shown, (mtype, m)
    # the types the emulated org stores without checking are named, once
    (warning,) = emu.state.deploy_warnings
    for t in ("Flow", "FlexiPage", "LightningComponentBundle", "AuraDefinitionBundle", "Layout", "ApexTrigger",
              "StaticResource", "Report"):
        assert t in warning
    for t in ("Profile", "PermissionSet", "CustomObject"):
        assert f" {t}," not in warning and not warning.endswith(t)
    # profiles under their API names: the standard ones updated, the custom ones created
    assert emu.state.profile_by_api_name("Admin")["Name"] == "System Administrator"
    assert emu.state.profile_by_api_name("Custom%3A Field Dispatcher")["Name"] == "Custom: Field Dispatcher"
    # a retrieve returns what was deployed
    code, out = sf(home, "project", "retrieve", "start", "--manifest", "package.xml", "-o", ORG,
                   "--target-metadata-dir", "back", "--unzip", "--wait", "10", cwd=project)
    assert code == 0, out
    back = next((project / "back").rglob("package.xml")).parent
    for rel in ("lwc/workOrderCard/workOrderCard.js", "aura/WorkOrderSummary/WorkOrderSummary.cmp",
                "flows/Close_Work_Order.flow", "reports/Field_Service_Reports/Open_Work_Orders.report",
                "staticresources/brand.resource", "triggers/WorkOrderTrigger.trigger"):
        assert (back / rel).exists(), rel
    src = project / "force-app/main/default"
    assert (back / "lwc/workOrderCard/workOrderCard.js").read_bytes() == \
        (src / "lwc/workOrderCard/workOrderCard.js").read_bytes()
    obj = (back / "objects/Work_Order__c.object").read_text()
    assert all(f in obj for f in ("Status__c", "Technician__c", "Installation", "Closed_Needs_Technician"))


def test_a_reference_to_what_the_org_lacks_is_refused_in_salesforces_words(org, tmp_path):
    emu, home = org
    project = _project(tmp_path)
    ps = project / "force-app/main/default/permissionsets/Field_Technician.permissionset-meta.xml"
    ps.write_text(ps.read_text().replace("<field>Work_Order__c.Status__c</field>",
                                         "<field>No_Such_Object__c.No_Such_Field__c</field>"))
    code, out = sf(home, "project", "deploy", "start", "--source-dir", "force-app", "-o", ORG, "--wait", "10",
                   cwd=project)
    assert code == 1
    problems = [f.get("error") for f in out["result"]["files"] if f["state"] == "Failed"]
    assert any(p.startswith("In field: field - no CustomObject named No_Such_Object__c found") for p in problems), problems


def test_sfs_own_user_commands_work_against_an_emulated_scratch_org(tmp_path):
    """`sf org create scratch` through an emulated Dev Hub from a definition holding `settings` (sf
    deploys them, then resets the Tooling SourceMember rows they made), a tracked deploy of the
    project (sf polls SourceMember for every component, bundles file by file), then `sf org create
    user` (SCIM, the new user's own refresh token), `sf org generate password` (Partner API
    setPassword), `sf org display user`, `sf org list users`, a user definition file with permission
    sets, a role and generatePassword, `sf org assign permset` and `permsetlicense` with
    `--on-behalf-of` (a PSL the user's license does not support: partial success, exit 68), and `sf
    org delete scratch` through the hub (ActiveScratchOrg)."""
    home = tmp_path / "home"
    home.mkdir()
    hub, _ = start_org(home, alias="hub", instance="user-hub", dev_hub=True)
    try:
        project = _project(tmp_path)
        code, out = sf(home, "org", "create", "scratch", "-f", "config/project-scratch-def.json", "-v", "hub",
                       "-a", "scr", "--wait", "5", cwd=project)
        assert code == 0, out
        (scratch,) = hub.scratch_orgs
        settings = scratch.state.find("SourceMember", MemberType="Settings")
        assert settings and all(r["RevisionCounter"] == 0 for r in settings)   # reset by sf after the deploy
        code, out = sf(home, "project", "deploy", "start", "-o", "scr", "--wait", "5", cwd=project)
        assert code == 0 and not out.get("warnings"), out.get("warnings")      # no SourceMember missing
        assert scratch.state.one("SourceMember", MemberType="LightningComponentResource",
                                 MemberName="workOrderCard/workOrderCard.js")
        code, out = sf(home, "project", "deploy", "preview", "-o", "scr", cwd=project)
        assert code == 0 and not out["result"]["toDeploy"] and not out["result"]["toRetrieve"]
        code, out = sf(home, "org", "create", "user", "-o", "scr", "--set-alias", "tech", "username=tech@fs.emulated",
                       "email=tech@example.com", "lastName=Tech", cwd=project)
        assert code == 0, out
        new = scratch.state.one("User", Username="tech@fs.emulated")
        assert new and out["result"]["fields"]["id"] == new["Id"]
        assert scratch.state.get(new["ProfileId"])["Name"] == "Standard User"   # sf's default profile
        code, out = sf(home, "org", "generate", "password", "-o", "scr", "--on-behalf-of", "tech@fs.emulated",
                       cwd=project)
        assert code == 0, out
        assert new["Id"] in scratch.passwords_set and len(out["result"]["password"]) >= 8
        code, out = sf(home, "org", "display", "user", "-o", "tech", cwd=project)
        assert code == 0 and out["result"]["id"] == new["Id"] and out["result"]["profileName"] == "Standard User"
        code, out = sf(home, "org", "list", "users", "-o", "scr", cwd=project)
        assert code == 0 and {u["username"] for u in out["result"]} >= {"tech@fs.emulated", scratch.state.username}
        # a definition file with permission sets, a role and generatePassword (a Developer Edition has
        # two Salesforce seats, both taken now: this user is on the Salesforce Platform license)
        role = scratch.state.one("UserRole")
        (project / "config/user-def.json").write_text(json.dumps({
            "Username": "disp@fs.emulated", "LastName": "Dispatcher", "Email": "disp@example.com",
            "profileName": "Standard Platform User", "permsets": ["Dispatcher"], "generatePassword": True,
            "UserRoleId": role["Id"]}))
        code, out = sf(home, "org", "create", "user", "-o", "scr", "--definition-file", "config/user-def.json",
                       cwd=project)
        assert code == 0, out
        disp = scratch.state.one("User", Username="disp@fs.emulated")
        assert disp["UserRoleId"] == role["Id"] and disp["Id"] in scratch.passwords_set
        assert out["result"]["permissionSetAssignments"] == ["Dispatcher"]
        code, out = sf(home, "org", "assign", "permset", "-o", "scr", "--name", "Field_Technician",
                       "--on-behalf-of", "disp@fs.emulated", cwd=project)
        assert code == 0 and out["result"]["successes"] == [{"name": "disp@fs.emulated", "value": "Field_Technician"}]
        # a PSL the user's license supports and one it does not: sf's partial success
        code, out = sf(home, "org", "assign", "permsetlicense", "-o", "scr", "--name", "SalesConsoleUser", "--name",
                       "SalesforceAPIIntegrationPsl", "--on-behalf-of", "disp@fs.emulated", cwd=project)
        assert code == 68
        assert out["result"]["successes"] == [{"name": "disp@fs.emulated", "value": "SalesConsoleUser"}]
        assert "user license doesn't support it" in out["result"]["failures"][0]["message"]
        # and the scratch org deleted through the hub, as sf does it
        code, out = sf(home, "org", "delete", "scratch", "-o", "scr", "--no-prompt", cwd=project)
        assert code == 0, out
        assert not hub.state.find("ActiveScratchOrg") and scratch.stopped.wait(5)
    finally:
        hub.stop()


def test_an_emulated_dev_hub_is_logged_in_with_a_refresh_token_that_outlives_its_sessions(tmp_path, monkeypatch):
    """`sf-intuser emulator serve --option dev_hub=true` logs sf in through `sf org login web` (the OAuth
    web server flow; the emulated org's browser follows the redirects), so the hub holds a refresh
    token as a developer's does: when every session expires, sf gets a new one by itself and `sf org
    create scratch` goes on; `sf org auth show-sfdx-auth-url` gives a URL other tools can reuse."""
    from click.testing import CliRunner

    from sf_intuser.cli import main
    from sf_intuser.emulator import server

    import threading
    import time

    started: list = []
    real_start = server.EmulatedOrg.start
    monkeypatch.setattr(server.EmulatedOrg, "start", lambda self: (started.append(self), real_start(self))[1])
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SF_USE_GENERIC_UNIX_KEYCHAIN", "true")
    served: list = []
    serving = threading.Thread(target=lambda: served.append(CliRunner().invoke(main, [
        "emulator", "serve", "--alias", "hub", "--minutes", "5", "--json", "--sf-path", str(SHIM), "--option",
        "dev_hub=true"])), daemon=True)
    serving.start()          # serve stays up until the org stops
    aliases = tmp_path / ".sfdx" / "alias.json"
    deadline = time.time() + 120
    while time.time() < deadline and not (aliases.exists() and '"hub"' in aliases.read_text()):
        time.sleep(0.5)
    hub = started[0]
    try:
        code, url = sf(tmp_path, "org", "auth", "show-sfdx-auth-url", "-o", "hub", cwd=tmp_path)
        assert code == 0 and url["result"]["sfdxAuthUrl"].startswith(f"force://PlatformCLI::{hub.refresh_token}@")
        hub.expire_sessions()
        project = _project(tmp_path)
        (project / "config/plain-scratch-def.json").write_text('{"orgName": "After expiry", "edition": "Developer"}')
        code, out = sf(tmp_path, "org", "create", "scratch", "-f", "config/plain-scratch-def.json", "-v", "hub",
                       "-a", "scr", "--wait", "5", cwd=project)
        assert code == 0, out
        assert len(hub.scratch_orgs) == 1
        hub.stop()
        serving.join(30)
        assert served and served[0].exit_code == 0, served
        assert json.loads(served[0].output)["result"]["login"] == "refresh token"
    finally:
        hub.stop()


def test_a_big_deploy_within_salesforces_limits_goes_through(org, tmp_path):
    """The Metadata API's own limits (600 MB unzipped, 10,000 files), not an invented one: a 70 MiB
    static resource (it compresses well) deploys through sf."""
    emu, home = org
    project = _project(tmp_path)
    res = project / "force-app/main/default/staticresources"
    (res / "big.bin").write_bytes(b"\0" * (70 * 1024 * 1024))
    (res / "big.resource-meta.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<StaticResource xmlns="http://soap.sforce.com/2006/04/metadata">'
        "<cacheControl>Private</cacheControl><contentType>application/octet-stream</contentType></StaticResource>\n")
    code, out = sf(home, "project", "deploy", "start", "--metadata", "StaticResource:big", "-o", ORG, "--wait", "10",
                   cwd=project)
    assert code == 0, out
    stored = emu.state.components[("StaticResource", "big")].files
    assert len(stored["staticresources/big.resource"]) == 70 * 1024 * 1024


def test_where_the_tool_could_be_fooled_the_org_answers_as_salesforce_does(org, tmp_path):
    """Through sf: at most two semi-joins per WHERE clause; SetupEntityAccess.SetupEntityType is not
    creatable; an sObject Collection mixing setup and non-setup objects is refused (the [U] default)."""
    emu, home = org
    three = ("SELECT Id FROM User WHERE Id IN (SELECT AssigneeId FROM PermissionSetAssignment) AND ProfileId IN "
             "(SELECT Id FROM Profile) AND Id NOT IN (SELECT UserId FROM LoginHistory)")
    code, out = sf(home, "data", "query", "-q", three, "-o", ORG, cwd=tmp_path)
    assert code == 1 and "Maximum 2 semi join sub-selects are allowed" in out["message"]
    ps = emu.state.one("PermissionSet", Name="Sync_Reader")["Id"]
    cls = next(iter(emu.state.records["ApexClass"]))
    code, out = sf(home, "data", "create", "record", "-s", "SetupEntityAccess", "-v",
                   f"ParentId={ps} SetupEntityId={cls} SetupEntityType=ApexClass", "-o", ORG, cwd=tmp_path)
    assert code == 1 and "SetupEntityType" in out["message"]
    emu.state.options.dev_hub = True
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "ScratchOrgInfo"}, "Edition": "Developer"},
        {"attributes": {"type": "PermissionSetAssignment"}, "AssigneeId": emu.state.admin_id, "PermissionSetId": ps}]}
    (tmp_path / "body.json").write_text(json.dumps(body))
    done = subprocess.run([str(SHIM), "api", "request", "rest", "/services/data/v62.0/composite/sobjects", "--method",
                           "POST", "--body", "@body.json", "-o", ORG], env=sf_env(home), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)   # prints the response body as it is
    emu.state.options.dev_hub = False
    assert [r["errors"][0]["statusCode"] for r in json.loads(done.stdout)] == ["MIXED_DML_OPERATION"] * 2
