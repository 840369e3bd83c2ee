"""End to end: the real, pinned sf CLI against the emulated org on 127.0.0.1.

One emulator and one login serve the module; each test gets a freshly seeded org state and no
faults, so tests assert on the org itself and do not leak into each other.
"""

from __future__ import annotations

import time

import pytest

from sf_intuser.emulator import faults
from sf_intuser.metadata import package_xml
from sf_intuser.sf import commands, soql
from sf_intuser.sf.runner import SfAuthError, SfConnectionError, SfError
from tests.e2e import ORG, SHIM, assigned, mdapi, needs_cli, psl_assigned, user

pytestmark = needs_cli


# --- login and query ----------------------------------------------------------------------------


def test_login_display_and_paginated_query(org):
    emu, runner = org
    info = commands.org_display(runner, ORG)
    assert info.username == "admin@acme.emulated" and info.instance_url.startswith(emu.url)
    emu.state.page_size = 4
    rows = commands.query(runner, "SELECT Id, Username, Profile.Name, Profile.UserLicense.Name FROM User "
                          "WHERE IsActive = true ORDER BY Username", ORG)
    names = [r["Username"] for r in rows]
    assert len(names) == 12 and names == sorted(names)
    mw = next(r for r in rows if r["Username"] == "middleware@acme.emulated")
    assert mw["Profile"]["Name"] == "Integration Middleware"
    assert mw["Profile"]["UserLicense"]["Name"] == "Salesforce"
    assert any("/query/01g" in path for _, path in emu.state.requests)  # the CLI followed nextRecordsUrl


def test_quoted_username_cannot_change_the_query(org):
    _, runner = org
    rows = commands.query(runner, f"SELECT Id FROM User WHERE Username = {soql.quote(chr(39) + ' OR Id != ' + chr(39))}",
                          ORG)
    assert rows == []


def test_grouped_login_history_with_date_literal(org):
    _, runner = org
    rows = commands.query(runner, "SELECT UserId, LoginType, COUNT(Id) n FROM LoginHistory "
                          "WHERE LoginTime = LAST_N_DAYS:30 AND UserId IN (SELECT Id FROM User WHERE "
                          "Username LIKE 'raj%') GROUP BY UserId, LoginType ORDER BY LoginType", ORG)
    assert [(r["LoginType"], r["n"] > 0) for r in rows] == [("Application", True), ("Remote Access 2.0", True)]


def test_unsupported_query_fails_loudly(org):
    _, runner = org
    with pytest.raises(SfError) as err:
        commands.query(runner, "SELECT Id, (SELECT Id FROM Assignments) FROM PermissionSet", ORG)
    assert err.value.name == "MALFORMED_QUERY"
    with pytest.raises(SfError) as err:
        commands.query(runner, "SELECT Id FROM User WHERE IsActive = true OR Username = 'a' AND Alias = 'b'", ORG)
    assert err.value.name == "MALFORMED_QUERY"


def test_unknown_field_is_invalid_field(org):
    _, runner = org
    with pytest.raises(SfError) as err:
        commands.query(runner, "SELECT Id, Nope__c FROM User", ORG)
    assert err.value.name == "INVALID_FIELD" and "Nope__c" in err.value.message


def test_revoked_session_is_an_auth_error(org):
    emu, runner = org
    emu.state.token_prefix = "00DREVOKED00000!"
    with pytest.raises(SfAuthError):
        commands.org_display(runner, ORG)


# --- retrieve and deploy ------------------------------------------------------------------------


def test_retrieve_by_manifest_scopes_profile_sections_and_reports_missing(org, tmp_path):
    _, runner = org
    manifest = tmp_path / "package.xml"
    manifest.write_bytes(package_xml.build({"Profile": ["Integration Middleware"], "PermissionSet": ["Sync_Reader"],
                                            "ApexClass": ["OrderSyncService", "NoSuchClass"]}, "62.0"))
    res = commands.retrieve(runner, manifest, ORG, tmp_path / "out")
    names = sorted(p.relative_to(res.root).as_posix() for p in res.files)
    assert names == ["classes/OrderSyncService.cls", "classes/OrderSyncService.cls-meta.xml", "package.xml",
                     "permissionsets/Sync_Reader.permissionset", "profiles/Integration Middleware.profile"]
    assert res.missing == ["Entity of type 'ApexClass' named 'NoSuchClass' cannot be found"]
    profile = (res.root / "profiles" / "Integration Middleware.profile").read_text()
    # sections of the companion types in the request, plus those that always come back (A4)
    assert "<apexClass>OrderSyncService</apexClass>" in profile and "<loginIpRanges>" in profile
    assert "UnusedHelper" not in profile and "<objectPermissions>" not in profile


def test_source_format_retrieve_and_deploy_in_a_project(org, tmp_path):
    """In an SFDX project the CLI asks for SourceMember's describe; the exact 404 means no tracking
    (docs/sf-wire.md section 7), and the round trip works in source format."""
    import dataclasses

    emu, runner = org
    (tmp_path / "force-app").mkdir()
    (tmp_path / "sfdx-project.json").write_text('{"packageDirectories":[{"path":"force-app","default":true}],'
                                                '"sourceApiVersion":"62.0"}')
    (tmp_path / "package.xml").write_bytes(package_xml.build({"Profile": ["Backup Service"],
                                                              "ApexClass": ["BackupRestService"]}, "62.0"))
    in_project = dataclasses.replace(runner, cwd=str(tmp_path), calls=[])
    env = in_project.run(["project", "retrieve", "start", "--manifest", "package.xml", "--target-org", ORG])
    assert sorted(f["filePath"].split("default/")[1] for f in env.result["files"]) == [
        "classes/BackupRestService.cls", "classes/BackupRestService.cls-meta.xml",
        "profiles/Backup Service.profile-meta.xml"]
    assert any(p.endswith("/tooling/sobjects/SourceMember/describe") for _, p in emu.state.requests)
    env = in_project.run(["project", "deploy", "start", "--source-dir", "force-app", "--target-org", ORG])
    assert env.result["status"] == "Succeeded" and env.result["numberComponentsDeployed"] == 2


PS_XML = """<?xml version="1.0" encoding="UTF-8"?>
<PermissionSet xmlns="http://soap.sforce.com/2006/04/metadata">
    <label>Sync Reader</label>
    <userPermissions>
        <enabled>true</enabled>
        <name>{perm}</name>
    </userPermissions>
</PermissionSet>
"""

PROFILE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Profile xmlns="http://soap.sforce.com/2006/04/metadata">
    <userLicense>{lic}</userLicense>
    <userPermissions>
        <enabled>true</enabled>
        <name>RunReports</name>
    </userPermissions>
</Profile>
"""


def test_deploy_replaces_permission_sets_and_overlays_profiles(org, tmp_path):
    emu, runner = org
    root = mdapi(tmp_path, {("PermissionSet", "Sync_Reader", "permissionsets", "permissionset"):
                             PS_XML.format(perm="RunReports"),
                             ("Profile", "Marketing Sync", "profiles", "profile"): PROFILE_XML.format(lic="Salesforce")})
    res = commands.deploy(runner, root, ORG)
    assert res.success and not res.failures
    assert sorted(res.deployed) == [("PermissionSet", "Sync_Reader"), ("Profile", "Marketing Sync")]
    ps = emu.state.components[("PermissionSet", "Sync_Reader")].body.decode()
    assert "RunReports" in ps and "Product2" not in ps           # replaced: the old object access is gone
    prof = emu.state.components[("Profile", "Marketing Sync")].body.decode()
    assert "RunReports" in prof and "<object>Lead</object>" in prof  # overlaid: the old entries stay


def test_deploy_component_failure_rolls_back_and_is_parsed(org, tmp_path):
    emu, runner = org
    before = dict(emu.state.components)
    root = mdapi(tmp_path, {("PermissionSet", "Sync_Reader", "permissionsets", "permissionset"):
                             PS_XML.format(perm="RunReports"),
                             ("Profile", "Marketing Sync", "profiles", "profile"):
                             PROFILE_XML.format(lic="Salesforce Integration")})
    res = commands.deploy(runner, root, ORG)
    assert res.status == "Failed" and not res.success
    assert [(f.type, f.name) for f in res.failures] == [("Profile", "Marketing Sync")]
    assert "Cannot change the user license" in res.failures[0].problem
    assert emu.state.components == before   # rollbackOnError: nothing saved


def test_deploy_dry_run_saves_nothing(org, tmp_path):
    emu, runner = org
    before = emu.state.components[("PermissionSet", "Sync_Reader")].body
    root = mdapi(tmp_path, {("PermissionSet", "Sync_Reader", "permissionsets", "permissionset"):
                             PS_XML.format(perm="RunReports")})
    res = commands.deploy(runner, root, ORG, dry_run=True)
    assert res.success and res.check_only
    assert emu.state.components[("PermissionSet", "Sync_Reader")].body == before


def test_validate_reports_component_failures_and_saves_nothing(org, tmp_path):
    emu, runner = org
    before = dict(emu.state.components)
    ok = mdapi(tmp_path / "ok", {("PermissionSet", "Sync_Reader", "permissionsets", "permissionset"):
                                 PS_XML.format(perm="RunReports")})
    res = commands.deploy(runner, ok, ORG, validate=True)
    assert res.success and res.check_only
    bad = mdapi(tmp_path / "bad", {("Profile", "Marketing Sync", "profiles", "profile"):
                                   PROFILE_XML.format(lic="Salesforce Integration")})
    res = commands.deploy(runner, bad, ORG, validate=True)
    assert res.status == "Failed" and [f.name for f in res.failures] == ["Marketing Sync"]
    assert emu.state.components == before


API_PROFILE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Profile xmlns="http://soap.sforce.com/2006/04/metadata">
    <custom>true</custom>
    <userLicense>Salesforce Integration</userLicense>
    <userPermissions>
        <enabled>true</enabled>
        <name>ApiEnabled</name>
    </userPermissions>
    <userPermissions>
        <enabled>true</enabled>
        <name>ApiUserOnly</name>
    </userPermissions>
</Profile>
"""


def test_new_profile_by_deploy_is_behind_a_switch(org, tmp_path):
    emu, runner = org
    files = {("Profile", "API Only - Middleware", "profiles", "profile"): API_PROFILE_XML}
    res = commands.deploy(runner, mdapi(tmp_path / "a", files), ORG)
    assert res.status == "Failed" and "Create it as a Profile record" in res.failures[0].problem
    emu.state.options.new_profile_by_deploy = True
    res = commands.deploy(runner, mdapi(tmp_path / "b", files), ORG)
    assert res.success
    prof = emu.state.one("Profile", Name="API Only - Middleware")
    assert emu.state.get(prof["UserLicenseId"])["Name"] == "Salesforce Integration"


# --- assignments and the license rules ------------------------------------------------------------


def test_assign_permset_then_again_is_already_done(org):
    emu, runner = org
    res = commands.assign_permsets(runner, ["Sync_Reader"], ["jane.doe@acme.emulated"], ORG)
    assert res.ok and res.done == [("jane.doe@acme.emulated", "Sync_Reader")]
    again = commands.assign_permsets(runner, ["Sync_Reader"], ["jane.doe@acme.emulated"], ORG)
    assert again.ok and again.already == [("jane.doe@acme.emulated", "Sync_Reader")] and not again.done
    assert assigned(emu, "jane.doe@acme.emulated") == ["Sync_Reader"]


def test_permset_bound_to_another_user_license_is_refused(org):
    emu, runner = org
    res = commands.assign_permsets(runner, ["Order_Sync_Access"], ["erp.int@acme.emulated"], ORG)
    assert not res.ok and "doesn't match the user's license" in res.failures[0][1]
    assert "Order_Sync_Access" not in assigned(emu, "erp.int@acme.emulated")


def test_permission_the_license_does_not_allow_is_refused(org, tmp_path):
    emu, runner = org
    root = mdapi(tmp_path, {("PermissionSet", "Freezer", "permissionsets", "permissionset"):
                             PS_XML.format(perm="EmailMass").replace("Sync Reader", "Freezer")})
    assert commands.deploy(runner, root, ORG).success
    res = commands.assign_permsets(runner, ["Freezer"], ["erp.int@acme.emulated"], ORG)
    assert res.failures == [("erp.int@acme.emulated", "Can't assign permission set Freezer to user "
                             "erp.int@acme.emulated. The user license doesn't allow the permission: EmailMass")]


def test_psl_bound_permset_assigns_its_license_on_the_way(org, tmp_path):
    emu, runner = org
    uid = user(emu, "erp.int@acme.emulated")["Id"]
    for a in emu.state.find("PermissionSetAssignment", AssigneeId=uid):
        if not emu.state.get(a["PermissionSetId"])["IsOwnedByProfile"]:
            emu.state.delete("PermissionSetAssignment", a["Id"])
    for a in emu.state.find("PermissionSetLicenseAssign", AssigneeId=uid):
        emu.state.delete("PermissionSetLicenseAssign", a["Id"])
    res = commands.assign_permsets(runner, ["Api_Integration_Base"], ["erp.int@acme.emulated"], ORG)
    assert res.ok
    assert psl_assigned(emu, "erp.int@acme.emulated") == ["SalesforceAPIIntegrationPsl"]


def test_assign_permset_license_duplicates_seats_and_integration_rule(org):
    emu, runner = org
    # a PSL the user's license does not support: refused, sf's partial success (KB 005385054's wording)
    refused = commands.assign_permset_licenses(runner, ["SalesforceAPIIntegrationPsl"], ["jane.doe@acme.emulated"], ORG)
    assert not refused.ok and "user license doesn't support it" in refused.failures[0][1]
    emu.state.options.integration_psl_any_license = True    # the [U] the other way: then it is assignable
    res = commands.assign_permset_licenses(runner, ["SalesforceAPIIntegrationPsl"], ["jane.doe@acme.emulated"], ORG)
    assert res.ok and res.done == [("jane.doe@acme.emulated", "SalesforceAPIIntegrationPsl")]
    again = commands.assign_permset_licenses(runner, ["SalesforceAPIIntegrationPsl"], ["jane.doe@acme.emulated"], ORG)
    assert again.ok and again.already == [("jane.doe@acme.emulated", "SalesforceAPIIntegrationPsl")]
    emu.state.one("PermissionSetLicense", DeveloperName="SalesforceAPIIntegrationPsl")["TotalLicenses"] = 2
    full = commands.assign_permset_licenses(runner, ["SalesforceAPIIntegrationPsl"], ["lee.wong@acme.emulated"], ORG)
    assert full.failures == [("lee.wong@acme.emulated", "License Limit Exceeded")]
    blocked = commands.assign_permset_licenses(runner, ["SalesforceCPQ_CPQStandardPerm"], ["erp.int@acme.emulated"], ORG)
    assert "Integration User's user license doesn't support it" in blocked.failures[0][1]
    emu.state.options.integration_psl_any_license = False


def test_license_change_strips_assignments(org):
    emu, runner = org
    mw = user(emu, "middleware@acme.emulated")
    assert assigned(emu, "middleware@acme.emulated") == ["Order_Sync_Access", "Sync_Reader"]
    api = emu.state.one("Profile", Name="Minimum Access - API Only Integrations")
    commands.update_record(runner, "User", mw["Id"], {"ProfileId": api["Id"]}, ORG)
    assert mw["ProfileId"] == api["Id"] and assigned(emu, "middleware@acme.emulated") == []
    lic = emu.state.one("UserLicense", Name="Salesforce Integration")
    assert emu.state.view("UserLicense", lic)["UsedLicenses"] == 2


def test_license_change_refused_behind_switch_and_seat_limit(org):
    emu, runner = org
    api = emu.state.one("Profile", Name="Minimum Access - API Only Integrations")
    emu.state.options.profile_change_across_licenses = "refuse"
    with pytest.raises(SfError) as err:
        commands.update_record(runner, "User", user(emu, "etl@acme.emulated")["Id"], {"ProfileId": api["Id"]}, ORG)
    assert err.value.name == "FIELD_INTEGRITY_EXCEPTION"
    assert "only reassign this user to a profile of the current license" in err.value.message
    emu.state.options.profile_change_across_licenses = "strip"
    emu.state.one("UserLicense", Name="Salesforce Integration")["TotalLicenses"] = 1
    with pytest.raises(SfError) as err:
        commands.update_record(runner, "User", user(emu, "etl@acme.emulated")["Id"], {"ProfileId": api["Id"]}, ORG)
    assert err.value.name == "LICENSE_LIMIT_EXCEEDED"
    assert assigned(emu, "etl@acme.emulated") == ["Integration_Bundle"]   # nothing lost on a refusal


def test_collections_create_profile_and_assignments_with_per_record_errors(org):
    emu, runner = org
    lic = emu.state.one("UserLicense", Name="Salesforce Integration")
    res = commands.collection(runner, "POST", [{"attributes": {"type": "Profile"}, "Name": "API Only - Backup 'B'",
                                                "UserLicenseId": lic["Id"]}], ORG, "62.0")
    assert res[0].success and emu.state.get(res[0].id)["Name"] == "API Only - Backup 'B'"
    jane = user(emu, "jane.doe@acme.emulated")["Id"]
    sync = emu.state.one("PermissionSet", Name="Sync_Reader")["Id"]
    records = [{"attributes": {"type": "PermissionSetAssignment"}, "AssigneeId": jane, "PermissionSetId": sync}] * 2
    res = commands.collection(runner, "POST", records, ORG, "62.0")
    assert [r.success for r in res] == [True, False] and res[1].code == "DUPLICATE_VALUE"
    res = commands.collection(runner, "DELETE", [{"Id": res[0].id}], ORG, "62.0")
    assert res[0].success and assigned(emu, "jane.doe@acme.emulated") == []
    res = commands.collection(runner, "POST", records, ORG, "62.0", all_or_none=True)
    assert [r.code for r in res] == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "DUPLICATE_VALUE"]
    assert assigned(emu, "jane.doe@acme.emulated") == []


# --- faults -------------------------------------------------------------------------------------


def test_injected_rest_error_becomes_a_typed_error(org):
    emu, runner = org
    emu.inject("PATCH .*/sobjects/User/@1=400:LICENSE_LIMIT_EXCEEDED:License Limit Exceeded")
    with pytest.raises(SfError) as err:
        commands.update_record(runner, "User", user(emu, "etl@acme.emulated")["Id"], {"IsActive": True}, ORG)
    assert (err.value.name, err.value.message) == ("LICENSE_LIMIT_EXCEEDED", "License Limit Exceeded")


def test_gack_exits_20_and_a_single_500_is_retried_by_the_cli(org):
    emu, runner = org
    emu.inject(f"GET .*/query@1=400:UNKNOWN_EXCEPTION:{faults.GACK}")
    with pytest.raises(SfError) as err:
        commands.query(runner, "SELECT Id FROM User", ORG)
    assert err.value.exit_code == 20
    # observed: jsforce retries a 5xx answer, so one server error costs a retry, not the command
    once = emu.inject("GET .*/query\\?q=SELECT%20Id%20FROM%20Organization@1=500:UNKNOWN_EXCEPTION")
    assert len(commands.query(runner, "SELECT Id FROM Organization", ORG)) == 1
    assert once.fired == 1 and once.seen == 3   # the failed try, the retry, then the columns=true call


def test_injected_soap_fault_and_dropped_connections(org, tmp_path):
    emu, runner = org
    root = mdapi(tmp_path, {("PermissionSet", "Sync_Reader", "permissionsets", "permissionset"):
                             PS_XML.format(perm="RunReports")})
    emu.inject(r"Soap/m/.* deploy$@1=500:INVALID_SESSION_ID:Invalid Session ID found in SessionHeader")
    with pytest.raises(SfAuthError):
        commands.deploy(runner, root, ORG)
    emu.inject("PATCH .*/sobjects/User/@1=drop")
    with pytest.raises(SfConnectionError) as err:
        commands.update_record(runner, "User", user(emu, "etl@acme.emulated")["Id"], {"IsActive": True}, ORG)
    assert err.value.exit_code == 10
    emu.inject("/composite/sobjects@1+=drop")
    with pytest.raises(SfConnectionError):
        commands.collection(runner, "DELETE", [{"Id": "0Pa000000000001AAA"}], ORG, "62.0")
    assert emu.state.find("PermissionSetAssignment", Id="0Pa000000000001AAA")   # nothing deleted


def test_delay_is_served_late_but_served(org):
    emu, runner = org
    f = emu.inject("GET .*/query\\?q=SELECT@1=delay:1.5")
    started = time.monotonic()
    rows = commands.query(runner, "SELECT Id FROM Organization", ORG)
    assert len(rows) == 1 and f.fired == 1
    assert time.monotonic() - started >= 1.5   # the answer really was held back


def test_wildcard_retrieve_returns_every_permission_set_as_metadata_xml(org, tmp_path):
    from sf_intuser.metadata import xml

    _, runner = org
    manifest = tmp_path / "package.xml"
    manifest.write_bytes(package_xml.build({"PermissionSet": ["*"]}, "62.0"))
    res = commands.retrieve(runner, manifest, ORG, tmp_path / "out")
    sets = sorted(p for p in res.files if p.suffix == ".permissionset")
    assert [p.name for p in sets] == ["Api_Integration_Base.permissionset", "CPQ_Quote_Sync.permissionset",
                                      "Order_Sync_Access.permissionset", "Sync_Reader.permissionset"]
    assert all(xml.parse(p.read_bytes(), str(p)).type_name == "PermissionSet" for p in sets)


def test_emulator_serve_logs_the_cli_in(tmp_path, monkeypatch):
    """`sf-intuser emulator serve` starts an org, logs sf in under the alias and prints its URL."""
    import json as _json

    from click.testing import CliRunner

    from sf_intuser.cli import main

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SF_USE_GENERIC_UNIX_KEYCHAIN", "true")
    out = CliRunner().invoke(main, ["emulator", "serve", "--alias", "served", "--minutes", "0.15", "--json",
                                    "--sf-path", str(SHIM), "--option", "profile_change_across_licenses=refuse"])
    assert out.exit_code == 0, out.output
    result = _json.loads(out.output)["result"]
    assert result["alias"] == "served" and result["instanceUrl"].startswith("http://127.0.0.1:")
    assert result["options"]["profile_change_across_licenses"] == "refuse"
    # once the org stopped, sf logged out of it: nothing is left in the user's sf home
    aliases = _json.loads((tmp_path / ".sfdx" / "alias.json").read_text())
    assert "served" not in aliases.get("orgs", {})
    assert not (tmp_path / ".sfdx" / "admin@served.emulated.json").exists()
    kept = CliRunner().invoke(main, ["emulator", "serve", "--alias", "kept", "--minutes", "0.15", "--json",
                                     "--sf-path", str(SHIM), "--keep-login"])
    assert kept.exit_code == 0, kept.output
    aliases = _json.loads((tmp_path / ".sfdx" / "alias.json").read_text())
    assert aliases["orgs"]["kept"] == "admin@kept.emulated"   # each alias is an org of its own


def test_doctor_reports_seats(org, monkeypatch):
    emu, runner = org
    from click.testing import CliRunner

    from sf_intuser.cli import main

    monkeypatch.setenv("HOME", runner.env["HOME"])
    monkeypatch.setenv("SF_USE_GENERIC_UNIX_KEYCHAIN", "true")
    emu.state.one("UserLicense", Name="Salesforce Integration")["TotalLicenses"] = 1
    out = CliRunner().invoke(main, ["doctor", "-o", ORG, "--json", "--sf-path", str(SHIM)])
    import json as _json
    env = _json.loads(out.output)
    checks = {c["check"]: c for c in env["result"]["checks"]}
    assert checks["Salesforce Integration seats"]["detail"] == "1 of 1 used, 0 free"
    assert checks["SalesforceAPIIntegrationPsl seats"]["detail"] == "1 of 5 used, 4 free"
    assert any("none free" in w for w in env["warnings"])
