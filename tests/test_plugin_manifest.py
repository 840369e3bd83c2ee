"""The sf plugin's files: the manifest oclif renders --help from is the click tree's, and its
version is package.json's (a mismatch makes sf warn on every run and ignore the manifest);
sf's --flags-dir as sf's preparse hook reads it."""

from __future__ import annotations

import json
import runpy

from sf_intuser import __version__
from sf_intuser.cli import expand_flags_dir
from tests.conftest import ROOT

PLUGIN = ROOT / "plugin-manifest"
gen = runpy.run_path(str(ROOT / "scripts" / "gen_manifest.py"))


def test_the_manifest_is_the_click_tree_and_not_stale():
    on_disk = (PLUGIN / "oclif.manifest.json").read_text(encoding="utf-8")
    assert on_disk == gen["rendered"](), "stale: run python scripts/gen_manifest.py"
    assert gen["main"](["--check"]) == 0


def test_versions_agree_across_the_manifest_package_json_and_python():
    manifest = json.loads((PLUGIN / "oclif.manifest.json").read_text())
    package = json.loads((PLUGIN / "package.json").read_text())
    assert manifest["version"] == package["version"] == __version__


def test_every_command_is_there_with_sf_flag_shapes():
    from sf_intuser.cli import main

    commands = json.loads((PLUGIN / "oclif.manifest.json").read_text())["commands"]
    assert set(commands) == {"intuser:" + n for n in main.commands if n != "emulator"} | {"intuser:emulator:serve"}
    apply = commands["intuser:apply"]
    assert apply["flags"]["target-org"]["char"] == "o" and apply["flags"]["json"]["helpGroup"] == "GLOBAL"
    assert apply["flags"]["flags-dir"]["helpGroup"] == "GLOBAL"
    assert all(e.startswith("<%= config.bin %> intuser apply ") for e in apply["examples"])
    assert commands["intuser:gate"]["hidden"] is True and not commands["intuser:plan"]["hidden"]
    assert json.loads((PLUGIN / "package.json").read_text()).get("dependencies") == {}


def test_flags_dir_adds_what_the_command_line_does_not_say(tmp_path):
    (tmp_path / "target-org").write_text("# comment\nacme\n")
    (tmp_path / "json").write_text("")
    (tmp_path / "user").write_text("a@x.com\n// another comment\nb@x.com\n")
    argv = expand_flags_dir(["snapshot", "--flags-dir", str(tmp_path)])
    assert argv[:1] == ["snapshot"] and "--flags-dir" not in argv
    assert argv[1:] == ["--json", "--target-org", "acme", "--user", "a@x.com", "--user", "b@x.com"]
    # given on the command line: the file is not read (short form too); multiple-value flags get both
    argv = expand_flags_dir(["snapshot", "-o", "other", "--user", "c@x.com", "--flags-dir", str(tmp_path)])
    assert argv.count("--target-org") == 0 and argv[:2] == ["snapshot", "-o"]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--user"] == ["c@x.com", "a@x.com", "b@x.com"]
    # a folder that is not there adds nothing, as in sf
    assert expand_flags_dir(["lint", "x", "--flags-dir", str(tmp_path / "none")]) == ["lint", "x"]


def test_the_pre_commit_hook_runs_lint_on_the_files_it_matches(tmp_path):
    """.pre-commit-hooks.yaml: its entry is the lint command, its file pattern takes profiles and
    permission sets in both formats and nothing else, and lint takes files one by one as pre-commit
    passes them."""
    import re
    import subprocess

    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    fields = dict(re.findall(r"^  (\w+): (.+)$", text, re.M))
    assert fields["entry"] == "sf-intuser lint" and fields["language"] == "python"
    pattern = re.compile(fields["files"].strip("'"))
    assert all(pattern.search(f) for f in ("profiles/Admin.profile-meta.xml", "profiles/Admin.profile",
                                           "permissionsets/X.permissionset-meta.xml", "permissionsets/X.permissionset"))
    assert not any(pattern.search(f) for f in ("classes/A.cls", "profiles/README.md", "x.profile.bak"))
    good = ROOT / "sf_intuser/emulator/seeds/acme-org/permissionsets/Api_Integration_Base.permissionset"
    bad = tmp_path / "Bad_Intuser.permissionset-meta.xml"
    bad.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<PermissionSet xmlns="http://soap.sforce.com/2006/'
                   '04/metadata">\n    <label>Bad Intuser</label>\n    <license>Salesforce</license>\n'
                   '</PermissionSet>\n')
    exe = ROOT / ".venv" / "bin" / "sf-intuser"
    assert subprocess.run([str(exe), "lint", str(good)], capture_output=True).returncode == 0
    assert subprocess.run([str(exe), "lint", str(good), str(bad)], capture_output=True).returncode == 1
