"""convert and lint through the command line (in process), and the workspace they use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sf_intuser import workspace
from sf_intuser.cli import run
from sf_intuser.metadata import access, xml
from tests.conftest import EXAMPLE


def call(capsys, *argv):
    code = run(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def project(tmp_path) -> Path:
    dest = tmp_path / "acme"
    shutil.copytree(EXAMPLE, dest)
    return dest


def test_convert_project_json(capsys, project, tmp_path):
    out_dir = tmp_path / "out"
    code, out, _ = call(capsys, "convert", str(project), "-d", str(out_dir), "--json")
    assert code == 0
    env = json.loads(out)
    assert env["status"] == 0
    res = env["result"]
    written = sorted(Path(p).relative_to(out_dir).as_posix() for p in res["written"])
    assert written == [
        "permissionsets/Backup_Service_Intuser.permissionset-meta.xml",
        "permissionsets/ETL_Loader_Intuser.permissionset-meta.xml",
        "permissionsets/Integration_Middleware_Intuser.permissionset-meta.xml",
        "permissionsets/Marketing_Sync_Intuser.permissionset-meta.xml",
        "permissionsets/Order_Sync_Access_Intuser.permissionset-meta.xml",
        "profiles/API Only - Backup Service.profile-meta.xml",
        "profiles/API Only - ETL Loader.profile-meta.xml",
    ]
    assert res["profiles"]["Integration Middleware"]["apiOnlyProfile"] == "API Only - ETL Loader"
    assert res["profiles"]["Marketing Sync"]["apiOnlyProfile"] == "Minimum Access - API Only Integrations"
    verdicts = {c["name"]: c["verdict"] for c in res["classifications"]}
    assert verdicts == {"CPQ_Quote_Sync": "blocked", "Order_Sync_Access": "needs-rewrite",
                        "Sync_Reader": "assignable", "Integration_Bundle": "needs-rewrite"}
    assert res["connectedApps"][0]["profiles"] == ["Integration Middleware"]
    # least privilege on the real outputs
    src = xml.parse((project / "force-app/main/default/profiles/Integration Middleware.profile-meta.xml").read_bytes())
    out_ps = xml.parse((out_dir / "permissionsets/Integration_Middleware_Intuser.permissionset-meta.xml").read_bytes())
    assert access.grants(out_ps.root) <= access.grants(src.root)
    # converting the outputs again writes nothing new: all assignable or already integration profiles
    code, out, _ = call(capsys, "convert", str(out_dir), "-d", str(tmp_path / "again"), "--json")
    again = json.loads(out)["result"]
    assert code == 0 and again["written"] == []
    assert {c["verdict"] for c in again["classifications"]} == {"assignable"}


def test_convert_mdapi_writes_package_xml(capsys, project, tmp_path):
    out_dir = tmp_path / "md"
    code, _, _ = call(capsys, "convert", str(project / "force-app/main/default/profiles"), "-d", str(out_dir),
                      "--format", "mdapi")
    assert code == 0
    assert (out_dir / "profiles/API Only - ETL Loader.profile").exists()
    pkg = (out_dir / "package.xml").read_text()
    assert "<name>PermissionSet</name>" in pkg and "<members>API Only - ETL Loader</members>" in pkg


def test_dry_run_writes_nothing(capsys, project, tmp_path):
    code, out, _ = call(capsys, "convert", str(project), "-d", str(tmp_path / "dry"), "--dry-run")
    assert code == 0 and "Would write 7 file(s)" in out
    assert not (tmp_path / "dry").exists()


def test_hostile_input_fails_and_writes_nothing(capsys, project, tmp_path):
    evil = project / "force-app/main/default/profiles/Evil.profile-meta.xml"
    evil.write_bytes(b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                     b'<Profile xmlns="http://soap.sforce.com/2006/04/metadata"><description>&x;</description></Profile>')
    code, out, _ = call(capsys, "convert", str(project), "-d", str(tmp_path / "o"), "--json")
    env = json.loads(out)
    assert code == 1 and env["name"] == "InvalidMetadata" and "Evil.profile-meta.xml" in env["message"]
    assert not (tmp_path / "o").exists()


def test_output_never_overwrites_input(capsys, tmp_path):
    src = tmp_path / "permissionsets"
    src.mkdir()
    bound = (EXAMPLE / "force-app/main/default/permissionsets/Order_Sync_Access.permissionset-meta.xml").read_bytes()
    (src / "Sync.permissionset-meta.xml").write_bytes(bound)
    # an earlier output sits next to its source: converting again into the same folder would clobber it
    earlier = (src / "Sync_Intuser.permissionset-meta.xml")
    earlier.write_bytes(bound.replace(b"<license>Salesforce</license>", b""))
    before = earlier.read_bytes()
    code, _, err = call(capsys, "convert", str(src), "-d", str(tmp_path))
    assert code == 1 and "would overwrite an input file" in err
    assert earlier.read_bytes() == before


def test_missing_path_and_usage_errors(capsys, tmp_path):
    code, out, _ = call(capsys, "convert", str(tmp_path / "nope"), "--json")
    assert code == 1 and json.loads(out)["name"] == "PathNotFound"
    code, _, err = call(capsys, "convert", "--format", "xml", str(tmp_path))
    assert code == 2 and "xml" in err


def test_lint_exit_codes(capsys, project):
    code, out, _ = call(capsys, "lint", str(project), "--json")
    res = json.loads(out)["result"]
    # Order_Sync_Access is not named like an integration set: clean unless named explicitly
    assert code == 0 and res["errors"] == 0
    code, out, _ = call(capsys, "lint", str(project), "--integration-permset", "Order_Sync_Access", "--json")
    env = json.loads(out)
    assert code == 1 and env["status"] == 1
    assert [f["rule"] for f in env["result"]["findings"]] == ["integration-permset-license"]


def test_sf_content_type_env_means_json(capsys, project, monkeypatch):
    monkeypatch.setenv("SF_CONTENT_TYPE", "JSON")
    code, out, _ = call(capsys, "lint", str(project))
    assert code == 0 and json.loads(out)["status"] == 0


def test_write_atomic_leaves_nothing_on_failure(tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls = []
    real_replace = workspace.os.replace

    def failing_replace(a, b):
        calls.append(b)
        raise OSError("disk full")

    monkeypatch.setattr(workspace.os, "replace", failing_replace)
    with pytest.raises(OSError):
        workspace.write_atomic(out, {"a/x.txt": b"1", "b/y.txt": b"2"})
    monkeypatch.setattr(workspace.os, "replace", real_replace)
    assert calls and not any(p.name.startswith(".out.tmp-") for p in tmp_path.iterdir())
    assert not (out / "a/x.txt").exists()


def test_discover_reads_both_formats_and_decodes_names(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/EM%27s%2C CP.profile").write_bytes(b"<Profile/>")
    (tmp_path / "profiles/Plain.profile-meta.xml").write_bytes(b"<Profile/>")
    found = {(f.name, f.format) for f in workspace.discover([tmp_path])}
    assert found == {("EM's, CP", "mdapi"), ("Plain", "source")}
    assert workspace.file_name("Profile", "EM's, CP", "mdapi") == "profiles/EM%27s%2C CP.profile"


@pytest.mark.parametrize("argv,name", [
    (["--option", "profile_change_across_licenses=maybe"], "InvalidOption"),
    (["--fault", "no-count-here"], "InvalidFault"),
])
def test_emulator_serve_refuses_bad_options_and_faults(capsys, argv, name):
    code, out, _ = call(capsys, "emulator", "serve", "--no-login", "--json", *argv)
    env = json.loads(out)
    assert code == 2 and env["name"] == name and env["actions"]
