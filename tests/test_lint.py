"""The pre-deploy lint."""

from __future__ import annotations

from sf_intuser.hooks.lint import LintInput, lint

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
NS = ' xmlns="http://soap.sforce.com/2006/04/metadata"'


def profile(body: str, license: str = "Salesforce Integration") -> bytes:
    return (HEAD + f"<Profile{NS}><custom>true</custom>{body}<userLicense>{license}</userLicense></Profile>").encode()


def run(*items, committed=None, explicit=()):
    return lint(list(items), committed=committed or (lambda f: None), integration_permsets=explicit)


OBJ = ("<objectPermissions><allowCreate>false</allowCreate><allowDelete>false</allowDelete><allowEdit>false</allowEdit>"
       "<allowRead>{read}</allowRead><modifyAllRecords>false</modifyAllRecords><object>Account</object>"
       "<viewAllRecords>false</viewAllRecords></objectPermissions>")


def test_clean_api_profile_passes():
    assert run(LintInput("p.profile", "Profile", "P", profile(OBJ.format(read="false")))) == []


def test_api_profile_with_object_access_is_an_error_naming_element_and_fix():
    (f,) = run(LintInput("p.profile", "Profile", "P", profile(OBJ.format(read="true"))))
    assert (f.severity, f.rule, f.file) == ("error", "api-profile-objects", "p.profile")
    assert "Account" in f.element and "permission set" in f.fix


def test_api_profile_with_ui_permission_is_an_error():
    body = "<userPermissions><enabled>true</enabled><name>LightningExperienceUser</name></userPermissions>"
    data = profile("").replace(b"</Profile>", body.encode() + b"</Profile>")
    (f,) = run(LintInput("p.profile", "Profile", "P", data))
    assert f.rule == "api-profile-ui" and "LightningExperienceUser" in f.element


def test_full_license_profile_may_hold_objects():
    assert run(LintInput("p.profile", "Profile", "P", profile(OBJ.format(read="true"), "Salesforce"))) == []


def test_license_change_against_committed_version():
    now = profile("", "Salesforce Integration")
    before = profile("", "Salesforce")
    (f,) = run(LintInput("p.profile", "Profile", "P", now), committed=lambda f: before)
    assert f.rule == "profile-license-change" and "'Salesforce'" in f.message
    assert run(LintInput("p.profile", "Profile", "P", now), committed=lambda f: now) == []


def ps(name: str, license: str | None) -> bytes:
    lic = f"<license>{license}</license>" if license else ""
    return (HEAD + f"<PermissionSet{NS}><hasActivationRequired>false</hasActivationRequired>"
            f"<label>{name}</label>{lic}</PermissionSet>").encode()


def test_integration_permission_set_bound_to_full_license():
    (f,) = run(LintInput("a.permissionset", "PermissionSet", "Integration_Access", ps("Integration Access", "Salesforce")))
    assert f.rule == "integration-permset-license" and f.severity == "error"
    # not meant for integration users: fine
    assert run(LintInput("a.permissionset", "PermissionSet", "Sales", ps("Sales", "Salesforce"))) == []
    # named explicitly
    assert run(LintInput("a.permissionset", "PermissionSet", "Sales", ps("Sales", "Salesforce")), explicit=["Sales"])
    assert run(LintInput("a.permissionset", "PermissionSet", "Integration_Access", ps("Integration Access", None))) == []


def test_schema_order_and_unknown_elements():
    data = (HEAD + f"<Profile{NS}><userLicense>Salesforce</userLicense><custom>true</custom><bogus>1</bogus></Profile>").encode()
    found = {(f.severity, f.rule) for f in run(LintInput("p.profile", "Profile", "P", data))}
    assert found == {("warning", "schema-out-of-order"), ("error", "schema-unknown-element")}


def test_hostile_and_malformed_files_are_errors():
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Profile' + NS.encode() + b'>&a;</Profile>'
    (f,) = run(LintInput("bomb.profile", "Profile", "B", bomb))
    assert f.rule == "xml" and "DTD" in f.message
    (g,) = run(LintInput("bad.profile", "Profile", "B", b"<Profile>"))
    assert g.rule == "xml" and g.severity == "error"


def test_the_gate_takes_integration_sets_from_the_newest_plan_and_the_config(tmp_path):
    """Which sets integration users get: the newest plan's assignments (by createdAt, planned users
    only) and sf-intuser.toml's permission-set and keep; an older plan does not count."""
    import json

    from sf_intuser.hooks.gate import integration_sets

    def plan(folder: str, created: str, users: list[dict]) -> None:
        (tmp_path / "intuser-runs" / folder).mkdir(parents=True)
        (tmp_path / "intuser-runs" / folder / "plan.json").write_text(
            json.dumps({"createdAt": created, "users": users}))

    def user(status: str, *sets: str) -> dict:
        return {"status": status, "to": {"assign": [{"permissionSet": s} for s in sets]}}

    plan("old", "2026-01-01T00:00:00Z", [user("planned", "Old_Set")])
    plan("new", "2026-02-01T00:00:00Z", [user("planned", "New_Set", "Kept_Set"), user("blocked", "Blocked_Set")])
    (tmp_path / "sf-intuser.toml").write_text('[[users]]\nusername = "a@x.com"\npermission-set = "Toml_Set"\n'
                                              'keep = ["Toml_Kept"]\n')
    names, sources = integration_sets(tmp_path)
    assert names == {"New_Set", "Kept_Set", "Toml_Set", "Toml_Kept"}
    assert sources == ["intuser-runs/new/plan.json", "sf-intuser.toml"]
    assert integration_sets(None) == (set(), [])
