"""The pre-deploy lint."""

from __future__ import annotations

import pytest

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
    # a name alone is no proof: real projects hold Integration_Partner_Access on the Salesforce license for people
    (f,) = run(LintInput("a.permissionset", "PermissionSet", "Integration_Access", ps("Integration Access", "Salesforce")))
    assert f.rule == "integration-permset-name" and f.severity == "warning"
    # given to integration users (--integration-permset, the plan, sf-intuser.toml): an error
    (f,) = run(LintInput("a.permissionset", "PermissionSet", "Integration_Access", ps("Integration Access", "Salesforce")),
               explicit=["Integration_Access"])
    assert f.rule == "integration-permset-license" and f.severity == "error"
    # not meant for integration users: fine
    assert run(LintInput("a.permissionset", "PermissionSet", "Sales", ps("Sales", "Salesforce"))) == []
    # named explicitly
    assert run(LintInput("a.permissionset", "PermissionSet", "Sales", ps("Sales", "Salesforce")), explicit=["Sales"])
    assert run(LintInput("a.permissionset", "PermissionSet", "Integration_Access", ps("Integration Access", None))) == []


def test_a_permission_whose_sources_conflict_is_a_warning_even_for_an_integration_set():
    data = ps("Sync", "SalesforceAPIIntegrationPsl").replace(
        b"</PermissionSet>", b"<userPermissions><enabled>true</enabled><name>FreezeUsers</name></userPermissions>"
                             b"</PermissionSet>")
    (f,) = run(LintInput("s.permissionset", "PermissionSet", "Sync", data), explicit=["Sync"])
    assert (f.severity, f.rule) == ("warning", "integration-permset-refused")
    assert "devops-center issue 290" in f.message and "Epic-ATS/NightlyBackup" in f.message


def test_element_order_is_warned_once_per_file_and_not_on_an_unchanged_file():
    data = (HEAD + f"<Profile{NS}><userLicense>Salesforce</userLicense><custom>true</custom>"
            "<description>d</description></Profile>").encode()
    found = run(LintInput("p.profile", "Profile", "P", data))
    assert [f.rule for f in found] == ["schema-out-of-order"]
    assert run(LintInput("p.profile", "Profile", "P", data), committed=lambda _f: data) == []


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


def test_committed_versions_are_read_in_one_git_call_per_repository(tmp_path):
    import subprocess

    from sf_intuser.hooks.git import committed_many

    repo = tmp_path / "repo"
    (repo / "sub dir").mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(git + ["init", "-q"], check=True)
    (repo / "sub dir" / "A.profile").write_bytes(b"<a/>\n")
    (repo / "B.profile").write_bytes(b"")
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "x"], check=True)
    (repo / "sub dir" / "A.profile").write_bytes(b"<changed/>\n")
    (repo / "New.profile").write_bytes(b"<n/>")
    outside = tmp_path / "Out.profile"
    outside.write_bytes(b"<o/>")
    paths = [str(repo / "sub dir" / "A.profile"), str(repo / "B.profile"), str(repo / "New.profile"), str(outside)]
    assert committed_many(paths) == {paths[0]: b"<a/>\n", paths[1]: b"", paths[2]: None, paths[3]: None}


def test_a_link_leading_out_of_the_folder_is_refused_naming_it(tmp_path):
    from sf_intuser.workspace import WorkspaceError, discover

    outside = tmp_path / "secret.profile-meta.xml"
    outside.write_text("<Profile/>")
    folder = tmp_path / "force-app" / "profiles"
    folder.mkdir(parents=True)
    (folder / "A.profile-meta.xml").symlink_to(outside)
    (folder / "B.profile-meta.xml").write_text("<Profile/>")
    with pytest.raises(WorkspaceError, match="A.profile-meta.xml: a link to .*outside"):
        discover([tmp_path / "force-app"])
    (folder / "A.profile-meta.xml").unlink()
    (folder / "A.profile-meta.xml").symlink_to(folder / "B.profile-meta.xml")   # a link that stays inside: fine
    assert [m.name for m in discover([tmp_path / "force-app"])] == ["B"]


def test_the_gate_learns_what_changed_and_the_committed_license_without_reading_files(tmp_path):
    import subprocess

    from sf_intuser.hooks.git import committed_state
    from sf_intuser.hooks.lint import Committed

    repo = tmp_path / "repo"
    (repo / "p").mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(git + ["init", "-q"], check=True)
    same, changed, new = repo / "p" / "Same.profile", repo / "p" / "Changed Profile.profile", repo / "p" / "New.profile"
    same.write_bytes(profile("", "Salesforce"))
    changed.write_bytes(profile("", "Salesforce"))
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "x"], check=True)
    changed.write_bytes(profile("", "Salesforce Integration"))
    new.write_bytes(profile(""))
    paths = [str(same), str(changed), str(new)]
    assert committed_state(paths, paths) == {str(same): Committed(True, None), str(changed): Committed(False, "Salesforce"),
                                             str(new): None}
    # the lint reads the same answer from it as from the whole committed file
    found = run(LintInput(str(changed), "Profile", "Changed Profile", changed.read_bytes()),
                committed=lambda f: committed_state([f], [f])[f])
    assert [f.rule for f in found] == ["profile-license-change"]
