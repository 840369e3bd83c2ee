"""The emulated org refuses what Salesforce refuses (issue 9), through the real sf CLI: each rule is
exercised by a deploy, an assignment or a query, and asserted on the org's state and on the error's
code and text. Unknown platform behaviour is tested both ways."""

from __future__ import annotations

import json
import time

import pytest

from sf_intuser.org import read
from sf_intuser.sf import commands
from sf_intuser.sf.runner import SfError
from tests.e2e import ORG, assigned, mdapi, needs_cli, psl_assigned, sf_env, start_org, user

pytestmark = needs_cli

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
NS = ' xmlns="http://soap.sforce.com/2006/04/metadata"'
API_PROFILE = "Minimum Access - API Only Integrations"


def perm(name: str, enabled: bool = True) -> str:
    return f"<userPermissions><enabled>{str(enabled).lower()}</enabled><name>{name}</name></userPermissions>"


def obj(name: str, **flags: bool) -> str:
    order = ("allowCreate", "allowDelete", "allowEdit", "allowRead", "modifyAllRecords")
    body = "".join(f"<{f}>{str(flags.get(f, False)).lower()}</{f}>" for f in order)
    return (f"<objectPermissions>{body}<object>{name}</object>"
            f"<viewAllRecords>{str(flags.get('viewAllRecords', False)).lower()}</viewAllRecords></objectPermissions>")


def permission_set(label: str, body: str = "", license: str | None = None) -> str:
    lic = f"<license>{license}</license>" if license else ""
    return f"{HEAD}<PermissionSet{NS}><hasActivationRequired>false</hasActivationRequired><label>{label}</label>" \
           f"{lic}{body}</PermissionSet>"


#: a custom object the deploys below refer to (a reference to one the org lacks is refused)
ORDER_SYNC = (f"{HEAD}<CustomObject{NS}><deploymentStatus>Deployed</deploymentStatus><label>Order Sync</label>"
              "<nameField><label>Name</label><type>Text</type></nameField><pluralLabel>Order Syncs</pluralLabel>"
              "<sharingModel>ReadWrite</sharingModel></CustomObject>")


def profile_xml(body: str, license: str | None = None) -> str:
    lic = f"<userLicense>{license}</userLicense>" if license else ""
    return f"{HEAD}<Profile{NS}>{body}{lic}</Profile>"


def deploy(runner, tmp_path, **components):
    """Deploy permission sets (``ps_Name=xml``), custom objects (``obj_Name=xml``) and profiles
    (``profile_Name=xml``; ``_`` for spaces; the Metadata API name: ``profile_Admin`` is System
    Administrator)."""
    files = {}
    for key, body in components.items():
        kind, _, name = key.partition("_")
        if kind == "ps":
            files[("PermissionSet", name, "permissionsets", "permissionset")] = body
        elif kind == "obj":
            files[("CustomObject", name, "objects", "object")] = body
        else:
            files[("Profile", name.replace("_", " "), "profiles", "profile")] = body
    return commands.deploy(runner, mdapi(tmp_path, files), ORG)


def failure(res) -> str:
    assert res.status == "Failed", res
    (f,) = res.failures
    return f.problem


# --- 1. the standard API-only profile -------------------------------------------------------------


def test_api_only_cannot_be_turned_off_on_the_api_only_profile(org, tmp_path):
    emu, runner = org
    before = emu.state.components[("Profile", API_PROFILE)].body
    problem = failure(deploy(runner, tmp_path, **{"profile_Minimum_Access_-_API_Only_Integrations":
                                                  profile_xml(perm("ApiUserOnly", False))}))
    assert problem == "API Only User can't be disabled on a profile of the Salesforce Integration user license"
    assert emu.state.components[("Profile", API_PROFILE)].body == before


def test_no_standard_object_on_a_profile_of_the_integration_license(org, tmp_path):
    emu, runner = org
    std = deploy(runner, tmp_path / "a", **{"profile_Minimum_Access_-_API_Only_Integrations":
                                           profile_xml(obj("Account", allowRead=True))})
    assert failure(std) == "The user license doesn't allow the permission: Read Account"
    custom = deploy(runner, tmp_path / "b", obj_Order_Sync__c=ORDER_SYNC,
                    **{"profile_Minimum_Access_-_API_Only_Integrations": profile_xml(obj("Order_Sync__c", allowRead=True))})
    assert custom.success   # a custom object may be granted on the profile
    assert "<object>Order_Sync__c</object>" in emu.state.components[("Profile", API_PROFILE)].body.decode()


def test_the_standard_profile_holds_chatter_internal_user(org):
    _, runner = org
    rows = commands.query(runner, "SELECT PermissionsApiEnabled, PermissionsApiUserOnly, "
                          "PermissionsChatterInternalUser FROM PermissionSet WHERE Profile.Name = "
                          f"'{API_PROFILE}'", ORG)
    assert rows[0]["PermissionsChatterInternalUser"] is True and rows[0]["PermissionsApiUserOnly"] is True


@pytest.mark.parametrize("allowed", [False, True])
def test_ip_ranges_on_the_standard_profile_both_ways(org, tmp_path, allowed):
    emu, runner = org
    emu.state.options.ip_ranges_on_standard_profile = allowed
    body = "<loginIpRanges><endAddress>203.0.113.9</endAddress><startAddress>203.0.113.1</startAddress></loginIpRanges>"
    res = deploy(runner, tmp_path, **{"profile_Minimum_Access_-_API_Only_Integrations": profile_xml(body)})
    has = "<loginIpRanges>" in emu.state.components[("Profile", API_PROFILE)].body.decode()
    if allowed:
        assert res.success and has
    else:
        assert "clone it" in failure(res) and not has


# --- 2. what a license allows -------------------------------------------------------------------------


def _new_integration_user(emu, runner, username: str) -> str:
    api = emu.state.one("Profile", Name=API_PROFILE)["Id"]
    return commands.create_record(runner, "User", {"Username": username, "LastName": "New", "ProfileId": api,
                                                   "Email": username, "Alias": "new", "TimeZoneSidKey": "GMT",
                                                   "LocaleSidKey": "en_US", "EmailEncodingKey": "UTF-8",
                                                   "LanguageLocaleKey": "en_US"}, ORG)


def test_a_license_less_set_must_fit_the_license_plus_the_users_permission_set_licenses(org, tmp_path):
    emu, runner = org
    assert deploy(runner, tmp_path, ps_Setup_Reader=permission_set("Setup Reader", perm("ViewSetup"))).success
    _new_integration_user(emu, runner, "fresh.int@acme.emulated")
    # without the API Integration permission set license, the integration license alone refuses it
    res = commands.assign_permsets(runner, ["Setup_Reader"], ["fresh.int@acme.emulated"], ORG)
    assert res.failures == [("fresh.int@acme.emulated", "Can't assign permission set Setup Reader to user "
                             "fresh.int@acme.emulated. The user license doesn't allow the permission: ViewSetup")]
    assert assigned(emu, "fresh.int@acme.emulated") == []
    # with it, the set fits
    assert commands.assign_permset_licenses(runner, ["SalesforceAPIIntegrationPsl"], ["fresh.int@acme.emulated"],
                                            ORG).ok
    assert commands.assign_permsets(runner, ["Setup_Reader"], ["fresh.int@acme.emulated"], ORG).ok
    assert assigned(emu, "fresh.int@acme.emulated") == ["Setup_Reader"]


def test_a_system_administrators_permissions_do_not_fit_an_integration_user(org, tmp_path):
    emu, runner = org
    admin = emu.state.one("Profile", Name="System Administrator")
    owned = emu.state.one("PermissionSet", ProfileId=admin["Id"])
    perms = sorted(emu.state.enabled_user_permissions(owned))
    assert len(perms) >= 190   # a realistic System Administrator
    body = "".join(perm(p) for p in perms if p not in ("ApiUserOnly",))
    assert deploy(runner, tmp_path, ps_Admin_Copy=permission_set("Admin Copy", body)).success
    res = commands.assign_permsets(runner, ["Admin_Copy"], ["erp.int@acme.emulated"], ORG)
    assert res.failures and "The user license doesn't allow the permission: " in res.failures[0][1]
    refused = [p for p in perms if p not in emu.state.perms.allowed_for(
        "Salesforce Integration", ["SalesforceAPIIntegrationPsl"])]
    assert len(refused) / len(perms) > 0.3   # a realistic share is refused, not one permission
    assert "Admin_Copy" not in assigned(emu, "erp.int@acme.emulated")


def test_a_psl_bound_set_is_checked_against_its_license_at_deploy(org, tmp_path):
    emu, runner = org
    bad = permission_set("Mailer", perm("EmailMass"), license="SalesforceAPIIntegrationPsl")
    assert failure(deploy(runner, tmp_path / "a", ps_Mailer=bad)) == \
        "The user license doesn't allow the permission: EmailMass"
    assert ("PermissionSet", "Mailer") not in emu.state.components
    good = permission_set("Reader", perm("ViewSetup"), license="SalesforceAPIIntegrationPsl")
    assert deploy(runner, tmp_path / "b", ps_Reader=good).success


def test_maximum_permissions_are_queryable(org):
    _, runner = org
    (row,) = commands.query(runner, "SELECT DeveloperName, MaximumPermissionsModifyAllData, "
                            "MaximumPermissionsFreezeUsers, MaximumPermissionsLightningExperienceUser "
                            "FROM PermissionSetLicense WHERE DeveloperName = 'SalesforceAPIIntegrationPsl'", ORG)
    # FreezeUsers: sources conflict [U]; the emulated org sides with the real org's PSL-bound set that holds it
    assert (row["MaximumPermissionsModifyAllData"], row["MaximumPermissionsFreezeUsers"],
            row["MaximumPermissionsLightningExperienceUser"]) == (True, True, False)


# --- 3, 4. unknown permissions and dependencies ---------------------------------------------------------


def test_an_unknown_user_permission_is_refused_by_name(org, tmp_path):
    emu, runner = org
    res = deploy(runner, tmp_path, ps_Odd=permission_set("Odd", perm("RunReports") + perm("BypassEverything", False)))
    assert failure(res) == "Unknown user permission: BypassEverything"
    assert ("PermissionSet", "Odd") not in emu.state.components


def test_a_broken_dependency_is_refused_naming_what_is_missing(org, tmp_path):
    _, runner = org
    problem = failure(deploy(runner, tmp_path / "a", ps_Mad=permission_set("Mad", perm("ModifyAllData"))))
    assert problem.startswith("Permission ModifyAllData depends on permission(s): ConvertLeads, ")
    assert "ViewAllData" in problem and "ViewSetup" in problem
    problem = failure(deploy(runner, tmp_path / "b", ps_Viewer=permission_set(
        "Viewer", perm("ViewAllData") + perm("ViewPlatformEvents"))))
    assert problem == "Permission ViewAllData depends on permission(s): ViewDataLeakageEvents"
    problem = failure(deploy(runner, tmp_path / "c", obj_Order_Sync__c=ORDER_SYNC, ps_Deleter=permission_set(
        "Deleter", obj("Order_Sync__c", allowRead=True, allowDelete=True))))
    assert problem == "Permission Delete Order_Sync__c depends on permission(s): Edit Order_Sync__c"


def test_a_profile_overlay_is_checked_as_a_whole(org, tmp_path):
    """A profile deploy adds to what is there, so the dependency check sees the result."""
    emu, runner = org
    # System Administrator holds everything ModifyAllData needs: turning ViewSetup off breaks it
    res = deploy(runner, tmp_path, profile_Admin=profile_xml(perm("ViewSetup", False)))
    assert failure(res).startswith("Permission ")
    assert "ViewSetup" in failure(res)


def test_dependencies_are_served_as_permission_dependency_records(org):
    _, runner = org
    rows = commands.query(runner, "SELECT Permission, RequiredPermission FROM PermissionDependency "
                          "WHERE Permission = 'ViewAllData'", ORG, tooling=True)
    assert sorted(r["RequiredPermission"] for r in rows) == ["ViewDataLeakageEvents", "ViewPlatformEvents"]


# --- 5. profile-owned permission sets ----------------------------------------------------------------


def test_every_user_holds_its_profiles_own_set_which_moves_with_the_profile(org):
    emu, runner = org
    mw = user(emu, "middleware@acme.emulated")
    q = ("SELECT PermissionSet.Name, PermissionSet.IsOwnedByProfile, PermissionSet.Profile.Name "
         f"FROM PermissionSetAssignment WHERE AssigneeId = '{mw['Id']}' AND PermissionSet.IsOwnedByProfile = true")
    (own,) = commands.query(runner, q, ORG)
    assert own["PermissionSet"]["Profile"]["Name"] == "Integration Middleware"
    with pytest.raises(SfError) as err:   # refused when deleted directly
        commands.delete_record(runner, "PermissionSetAssignment", own["attributes"]["url"].rsplit("/", 1)[1], ORG)
    assert "owned by a profile" in err.value.message
    api = emu.state.one("Profile", Name=API_PROFILE)
    commands.update_record(runner, "User", mw["Id"], {"ProfileId": api["Id"]}, ORG)
    (moved,) = commands.query(runner, q, ORG)
    assert moved["PermissionSet"]["Profile"]["Name"] == API_PROFILE
    assert assigned(emu, "middleware@acme.emulated") == []   # the license change stripped the others


# --- 6, 7. access as records, PermissionSet.License ----------------------------------------------


def test_object_and_field_access_are_records(org):
    _, runner = org
    parent = "(SELECT Id FROM PermissionSet WHERE Profile.Name = 'Integration Middleware')"
    objs = commands.query(runner, f"SELECT SobjectType, PermissionsRead, PermissionsEdit FROM ObjectPermissions "
                          f"WHERE ParentId IN {parent} ORDER BY SobjectType", ORG)
    fields = commands.query(runner, f"SELECT Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
                            f"WHERE ParentId IN {parent} ORDER BY Field", ORG)
    assert [o["SobjectType"] for o in objs] and all(o["PermissionsRead"] for o in objs)
    assert [f["Field"] for f in fields] and all("." in f["Field"] for f in fields)
    from sf_intuser.metadata import xml
    body = xml.parse(_component_body(org, "Integration Middleware")).root
    granted = {xml.text(e, "object") for e in xml.children(body, "objectPermissions")
               if xml.text(e, "allowRead") == "true"}
    assert {o["SobjectType"] for o in objs} == granted


def _component_body(org, profile_name):
    emu, _ = org
    return emu.state.components[("Profile", profile_name)].body


def test_permission_set_license_resolves_for_both_kinds_of_binding(org):
    _, runner = org
    rows = commands.query(runner, "SELECT Name, License.Name FROM PermissionSet WHERE Name IN "
                          "('Api_Integration_Base', 'Order_Sync_Access', 'Sync_Reader') ORDER BY Name", ORG)
    got = {r["Name"]: (r["License"] or {}).get("Name") for r in rows}
    assert got == {"Api_Integration_Base": "Salesforce API Integration", "Order_Sync_Access": "Salesforce",
                   "Sync_Reader": None}


# --- 8. error texts ------------------------------------------------------------------------------


def test_soql_errors_name_the_row_and_column(org):
    _, runner = org
    with pytest.raises(SfError) as err:
        commands.query(runner, "SELECT Id, Nope__c FROM User", ORG)
    assert err.value.name == "INVALID_FIELD"
    assert "SELECT Id, Nope__c FROM User\n           ^\nERROR at Row:1:Column:12\nNo such column 'Nope__c'" in \
        err.value.message
    with pytest.raises(SfError) as err:
        commands.query(runner, "SELECT Id FROM Nothing__c", ORG)
    assert err.value.name == "INVALID_TYPE" and "ERROR at Row:1:Column:16" in err.value.message


# --- 10. two orgs at once ------------------------------------------------------------------------------


def test_two_orgs_run_side_by_side(tmp_path):
    home = tmp_path / "home"
    prod, runner = start_org(home, alias="prod", instance="prod")
    rehearsal, runner2 = start_org(home, alias="rehearsal", instance="rehearsal")
    try:
        assert prod.state.username != rehearsal.state.username and prod.state.org_id != rehearsal.state.org_id
        ids = {alias: commands.query(runner2, "SELECT Id FROM Organization", alias)[0]["Id"]
               for alias in ("prod", "rehearsal")}
        assert ids == {"prod": prod.state.org_id, "rehearsal": rehearsal.state.org_id}
        commands.update_record(runner2, "User", user(rehearsal, "etl@acme.emulated")["Id"], {"IsActive": False},
                               "rehearsal")
        assert user(rehearsal, "etl@acme.emulated")["IsActive"] is False
        assert user(prod, "etl@acme.emulated")["IsActive"] is True   # the first org is untouched
    finally:
        prod.stop()
        rehearsal.stop()


# --- 11. seeds at scale ------------------------------------------------------------------------------


def test_a_scaled_seed_serves_its_generated_users(tmp_path):
    emu, runner = start_org(tmp_path / "home", alias="scaled", instance="scaled", scale=50)
    try:
        rows = commands.query(runner, "SELECT Profile.Name, COUNT(Id) n FROM User WHERE Username LIKE "
                              "'integration.%' GROUP BY Profile.Name", "scaled")
        assert sum(r["n"] for r in rows) == 50 and len(rows) >= 10
        lic, psl = read.seats(runner, "scaled")
        assert lic.total >= 55 and psl.total >= 55
    finally:
        emu.stop()


# --- what a new user met ---------------------------------------------------------------------------


def _cli(args, env):
    import subprocess

    from tests.conftest import ROOT
    exe = ROOT / ".venv" / "bin" / "sf-intuser"
    return subprocess.run([str(exe), *args], env={**env, "PATH": f"{exe.parent}:/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=180, cwd=str(ROOT)) if exe.exists() else \
        pytest.skip("sf-intuser is not installed in .venv")


def test_doctor_follows_the_target_org_and_says_plainly_when_it_is_gone(tmp_path):
    home = tmp_path / "home"
    emu, runner = start_org(home, alias="doc", instance="doc")
    runner.run(["config", "set", "target-org=doc", "--global"])
    env = sf_env(home)
    ok = _cli(["doctor", "--json"], env)
    checks = {c["check"]: c for c in json.loads(ok.stdout)["result"]["checks"]}
    assert ok.returncode == 0 and "sf's configured target-org" in checks["target org"]["detail"]
    assert checks["org connected"]["ok"]
    emu.stop()
    started = time.monotonic()
    gone = _cli(["doctor", "--json"], env)
    took = time.monotonic() - started
    env_out = json.loads(gone.stdout)
    checks = {c["check"]: c for c in env_out["result"]["checks"]}
    assert gone.returncode == 1 and checks["org reachable"]["ok"] is False
    assert "emulator serve --alias doc" in " ".join(env_out["result"]["actions"])
    assert "org login web" not in gone.stdout
    assert took < 8   # sf alone retries a dead instance for half a minute


def test_serve_prints_commands_that_work_as_printed(tmp_path):
    import subprocess
    import shlex

    from tests.conftest import ROOT
    env = {**sf_env(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "sf-intuser"), "emulator", "serve", "--alias", "printed",
                             "--minutes", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any("data query" in ln for ln in lines):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
        cmd = next(ln for ln in lines if "data query" in ln).strip()
        run = subprocess.run(shlex.split(cmd) + ["--json"], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        assert json.loads(run.stdout)["result"]["totalSize"] >= 10
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # stopped (SIGTERM, as by Ctrl-C), it logged sf out of the alias
    aliases = json.loads((tmp_path / "home" / ".sfdx" / "alias.json").read_text())
    assert "printed" not in aliases.get("orgs", {})


@pytest.mark.parametrize("assigns", [False, True])
def test_moving_to_the_api_only_profile_assigns_the_psl_both_ways(org, assigns):
    emu, runner = org
    emu.state.options.api_profile_assigns_psl = assigns
    api = emu.state.one("Profile", Name=API_PROFILE)
    commands.update_record(runner, "User", user(emu, "backup@acme.emulated")["Id"], {"ProfileId": api["Id"]}, ORG)
    assert psl_assigned(emu, "backup@acme.emulated") == (["SalesforceAPIIntegrationPsl"] if assigns else [])
