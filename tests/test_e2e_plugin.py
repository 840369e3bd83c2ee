"""``sf intuser ...``: the plugin in plugin-manifest/, linked into the pinned sf CLI by ``make setup``,
driven through the real sf against the emulated org: the same answers as ``sf-intuser``, exit codes
passed through, help from the manifest, signals forwarded, and the pre-deploy gate."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e import EXE, ORG, SHIM, intuser, needs_cli, sf_env, start_org

pytestmark = needs_cli

PLUGIN = ROOT / "plugin-manifest"


def sf(home, *args: str, env: dict | None = None, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real sf CLI (the setup's shim, where the plugin is linked) with ``home`` as the sf home."""
    full = {**sf_env(home), "SF_INTUSER_SF": str(SHIM), **(env or {})}
    return subprocess.run([str(SHIM), *args], env=full, capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or str(home))


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    emu, _ = start_org(home)
    yield home, emu
    emu.stop()


def _same(a: str, b: str, *swap: tuple[str, str]) -> tuple[dict, dict]:
    """Both envelopes, with the run folders each names written as RUN and the clock's stamps as T."""
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?|\d{8}-\d{6}")
    out = []
    for text in (a, b):
        for old, new in swap:
            text = text.replace(old, new)
        out.append(json.loads(stamp.sub("T", text)))
    return out[0], out[1]


def test_every_answer_and_exit_code_is_the_same_through_sf(org, tmp_path):
    home, _ = org
    cases = [
        ("lint", str(ROOT / "sf_intuser/emulator/seeds/acme-org"), "--json"),                    # 0
        ("lint", "--json", str(tmp_path / "nothing-here")),                                      # 1
        ("convert", "--json", "--bogus-flag", "x"),                                              # 2
        ("discover", "-o", ORG, "--json"),                                                       # 0
        ("doctor", "-o", "no-such-org", "--json"),                                               # 1
    ]
    for args in cases:
        direct = intuser(home, *args)
        bridged = sf(home, "intuser", *args)
        assert bridged.returncode == direct.returncode, (args, bridged.stdout, bridged.stderr)
        a, b = _same(direct.stdout, bridged.stdout)
        assert a == b, args
    assert {intuser(home, *c).returncode for c in cases} == {0, 1, 2}
    # 68 (partial success): a plan in which one user is blocked, into two run folders
    direct = intuser(home, "plan", "--all-candidates", "-o", ORG, "--run-dir", str(tmp_path / "a"), "--json")
    bridged = sf(home, "intuser", "plan", "--all-candidates", "-o", ORG, "--run-dir", str(tmp_path / "b"), "--json")
    assert direct.returncode == bridged.returncode == 68, bridged.stdout + bridged.stderr
    a, b = _same(direct.stdout, bridged.stdout, (str(tmp_path / "a"), "RUN"), (str(tmp_path / "b"), "RUN"))
    assert a == b
    # what the two plans wrote is the same too
    pa = json.loads((tmp_path / "a" / "plan.json").read_text())
    pb = json.loads((tmp_path / "b" / "plan.json").read_text())
    assert [u.get("to") for u in pa["users"]] == [u.get("to") for u in pb["users"]]


def test_sf_content_type_json_and_flags_dir_reach_python(org, tmp_path):
    home, _ = org
    seeds = str(ROOT / "sf_intuser/emulator/seeds/acme-org")
    out = sf(home, "intuser", "lint", seeds, env={"SF_CONTENT_TYPE": "JSON"})
    assert out.returncode == 0 and json.loads(out.stdout)["result"]["files"] == 5
    flags = tmp_path / "flags"
    flags.mkdir()
    (flags / "json").write_text("")                                  # a boolean: an empty file
    (flags / "target-org").write_text("# the emulated org\n" + ORG + "\n")
    out = sf(home, "intuser", "discover", "--flags-dir", str(flags))
    body = json.loads(out.stdout)
    assert out.returncode == 0 and body["result"]["org"]["alias"] == ORG
    # a flag on the command line wins over its file
    out = sf(home, "intuser", "discover", "--flags-dir", str(flags), "-o", "no-such-org")
    assert out.returncode == 1 and json.loads(out.stdout)["name"] == "NamedOrgNotFoundError"
    # -o left out: sf's configured target-org, as sf does it
    assert sf(home, "config", "set", "target-org", ORG, "--global", "--json").returncode == 0
    try:
        out = sf(home, "intuser", "discover", "--json")
        assert out.returncode == 0 and json.loads(out.stdout)["result"]["org"]["targetOrgFrom"] == \
            "sf config target-org"
    finally:
        sf(home, "config", "unset", "target-org", "--global", "--json")


def test_help_comes_from_the_manifest_without_python(org):
    home, _ = org
    out = sf(home, "intuser", "lint", "--help", env={"SF_INTUSER_PYTHON": "/nonexistent/python"})
    assert out.returncode == 0, out.stderr
    assert "Check metadata before a deploy" in out.stdout
    assert "$ sf intuser lint force-app --integration-permset Order_Sync_Access --json" in out.stdout
    assert "--flags-dir" in out.stdout and "GLOBAL FLAGS" in out.stdout
    topic = sf(home, "intuser", "--help")
    assert "intuser plan" in topic.stdout and "intuser gate" not in topic.stdout   # the gate is hidden
    assert "Warning" not in out.stderr + topic.stderr      # no manifest mismatch, no linked-plugin noise


def test_a_missing_python_says_how_to_fix_it_and_exits_127(org):
    home, _ = org
    out = sf(home, "intuser", "lint", ".", env={"SF_INTUSER_PYTHON": "/nonexistent/python"})
    assert out.returncode == 127
    assert "SF_INTUSER_PYTHON" in out.stderr and "make setup" in out.stderr
    out = sf(home, "intuser", "lint", ".", "--json", env={"SF_INTUSER_PYTHON": "/nonexistent/python"})
    assert out.returncode == 127 and json.loads(out.stdout)["name"] == "PythonNotFound"


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to find the child")
def test_sigterm_to_sf_ends_the_python_child_too(org):
    home, _ = org
    env = {**sf_env(home), "SF_INTUSER_SF": str(SHIM)}
    proc = subprocess.Popen([str(SHIM), "intuser", "emulator", "serve", "--no-login", "--minutes", "3"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()          # the org is up: Python is running under node
        assert "is up at" in line, line + proc.stderr.read()
        kids = _children(proc.pid)
        assert kids, "no child process under sf"
        proc.send_signal(signal.SIGTERM)     # only sf's pid, as a CI runner or `timeout` does
        assert proc.wait(timeout=30) == 143
        deadline = time.monotonic() + 10
        while any(_alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(k) for k in kids), "the Python child outlived sf"
    finally:
        if proc.poll() is None:
            proc.kill()


# --- the pre-deploy gate ----------------------------------------------------------------------

API_ONLY_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<Profile xmlns="http://soap.sforce.com/2006/04/metadata">
    <custom>true</custom>
    <objectPermissions>
        <allowCreate>false</allowCreate>
        <allowDelete>false</allowDelete>
        <allowEdit>true</allowEdit>
        <allowRead>true</allowRead>
        <modifyAllRecords>false</modifyAllRecords>
        <object>Account</object>
        <viewAllRecords>false</viewAllRecords>
    </objectPermissions>
    <userLicense>Salesforce Integration</userLicense>
</Profile>
"""

BOUND_SET = """<?xml version="1.0" encoding="UTF-8"?>
<PermissionSet xmlns="http://soap.sforce.com/2006/04/metadata">
    <hasActivationRequired>false</hasActivationRequired>
    <label>Order Sync Access</label>
    <license>Salesforce</license>
</PermissionSet>
"""

CLEAN_SET = """<?xml version="1.0" encoding="UTF-8"?>
<PermissionSet xmlns="http://soap.sforce.com/2006/04/metadata">
    <hasActivationRequired>false</hasActivationRequired>
    <label>Order Sync Access</label>
    <objectPermissions>
        <allowCreate>false</allowCreate>
        <allowDelete>false</allowDelete>
        <allowEdit>false</allowEdit>
        <allowRead>true</allowRead>
        <modifyAllRecords>false</modifyAllRecords>
        <object>Account</object>
        <viewAllRecords>false</viewAllRecords>
    </objectPermissions>
</PermissionSet>
"""


def _project(root: Path, files: dict[str, str], toml: str = "") -> Path:
    root.mkdir(parents=True)
    (root / "sfdx-project.json").write_text('{"packageDirectories":[{"path":"force-app","default":true}],'
                                            '"sourceApiVersion":"62.0"}')
    for rel, body in files.items():
        p = root / "force-app/main/default" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
    if toml:
        (root / "sf-intuser.toml").write_text(toml)
    return root


def _deploys(emu) -> int:
    return sum(1 for _, label in emu.state.requests if label.endswith(" deploy"))


def _deploy(home, project, *extra, env=None, verb=("project", "deploy", "start")):
    return sf(home, *verb, "--source-dir", "force-app", "-o", ORG, "--json", *extra, env=env, cwd=str(project))


def test_the_gate_blocks_a_bad_deploy_before_any_request_reaches_the_org(org, tmp_path):
    home, emu = org
    bad_profile = _project(tmp_path / "p1", {"profiles/API Only - Orders.profile-meta.xml": API_ONLY_PROFILE})
    # a set that sf-intuser.toml gives an integration user: held to the license although its name is plain
    bound = _project(tmp_path / "p2", {"permissionsets/Order_Sync_Access.permissionset-meta.xml": BOUND_SET},
                     toml='[[users]]\nusername = "orders@acme.emulated"\npermission-set = "Order_Sync_Access"\n')
    for project, rule in ((bad_profile, "api-profile-objects"), (bound, "integration-permset-license")):
        for verb, extra in ((("project", "deploy", "start"), ()), (("project", "deploy", "start"), ("--dry-run",)),
                            (("project", "deploy", "validate"), ())):
            before = _deploys(emu)
            out = _deploy(home, project, *extra, verb=verb)
            body = json.loads(out.stdout)
            assert out.returncode == 1, (verb, extra, out.stdout)
            assert body["code"] == "IntuserPreDeployBlocked" and "SF_INTUSER_SKIP_PREDEPLOY" in body["message"]
            assert body["name"] == "IntuserPreDeployBlocked", body     # named by its code, not a generic "Error"
            assert _deploys(emu) == before, "a deploy request reached the org"
        lint = intuser(home, "lint", str(project / "force-app"), "--json", cwd=str(project))
        assert rule in {f["rule"] for f in json.loads(lint.stdout)["result"]["findings"]}
    # a config the gate can't read blocks too: it can't tell which sets integration users get
    (bound / "sf-intuser.toml").write_text('[[users]]\nusername = "orders@acme.emulated"\npermission_set = "X"\n')
    out = _deploy(home, bound)
    assert out.returncode == 1 and "sf-intuser.toml" in json.loads(out.stdout)["message"]


def test_a_clean_deploy_goes_through_and_the_bypass_works(org, tmp_path):
    home, emu = org
    clean = _project(tmp_path / "ok", {"permissionsets/Ledger_Read_Access.permissionset-meta.xml": CLEAN_SET})
    before = _deploys(emu)
    out = _deploy(home, clean)
    assert out.returncode == 0, out.stdout
    assert json.loads(out.stdout)["result"]["status"] == "Succeeded" and _deploys(emu) == before + 1
    # a warning (elements out of the schema's order: deploys tolerate it) passes as an sf warning
    unordered = CLEAN_SET.replace("    <hasActivationRequired>false</hasActivationRequired>\n", "").replace(
        "</PermissionSet>", "    <hasActivationRequired>false</hasActivationRequired>\n</PermissionSet>")
    warned = _project(tmp_path / "warn", {"permissionsets/Ledger_Read_Access.permissionset-meta.xml": unordered})
    out = _deploy(home, warned)
    body = json.loads(out.stdout)
    assert out.returncode == 0 and _deploys(emu) == before + 2, out.stdout
    assert any(w.startswith("sf-intuser: ") and "order" in w for w in body["warnings"]), body["warnings"]
    human = sf(home, "project", "deploy", "start", "--source-dir", "force-app", "-o", ORG, cwd=str(warned))
    assert human.returncode == 0 and "Warning: sf-intuser: " in human.stderr + human.stdout
    before = _deploys(emu)
    bad = _project(tmp_path / "bad", {"profiles/API Only - Orders.profile-meta.xml": API_ONLY_PROFILE})
    out = _deploy(home, bad, env={"SF_INTUSER_SKIP_PREDEPLOY": "1"})
    body = json.loads(out.stdout)
    assert _deploys(emu) == before + 1                 # skipped on purpose: the org saw it (and judged it)
    assert any("SF_INTUSER_SKIP_PREDEPLOY" in w for w in body.get("warnings", [])), body


def test_a_broken_gate_blocks(org, tmp_path):
    home, emu = org
    clean = _project(tmp_path / "ok", {"permissionsets/Ledger_Read_Access.permissionset-meta.xml": CLEAN_SET})
    before = _deploys(emu)
    for env in ({"SF_INTUSER_PYTHON": "/nonexistent/python"},          # no Python
                {"SF_INTUSER_PYTHON": str(_fake_python(tmp_path, "exit 3"))},     # a crash
                {"SF_INTUSER_PYTHON": str(_fake_python(tmp_path, "echo not-json; exit 0"))}):  # nonsense
        out = _deploy(home, clean, env=env)
        body = json.loads(out.stdout)
        assert out.returncode == 1 and body["code"] == body["name"] == "IntuserPreDeployFailed", out.stdout
        assert "SF_INTUSER_SKIP_PREDEPLOY" in body["message"]
    out = _deploy(home, clean, env={"SF_INTUSER_PYTHON": str(_fake_python(tmp_path, "sleep 30")),
                                    "SF_INTUSER_PREDEPLOY_TIMEOUT": "2"})
    assert out.returncode == 1 and "SF_INTUSER_PREDEPLOY_TIMEOUT" in json.loads(out.stdout)["message"]
    assert _deploys(emu) == before


def test_a_hostile_project_can_not_turn_the_gate_off(org, tmp_path):
    """The gate runs in the user's project, which a pull request can change: a folder sf_intuser/ that
    answers "no findings" is never imported in place of the tool; a plan that does not parse, an
    sf-intuser.toml that is a folder and a timeout that is not a number of seconds block the deploy,
    naming the file or variable; PYTHONPATH pointing into the project changes nothing."""
    home, emu = org
    bad = {"profiles/API Only - Orders.profile-meta.xml": API_ONLY_PROFILE}
    fake = _project(tmp_path / "fake", bad)
    (fake / "sf_intuser").mkdir()
    (fake / "sf_intuser" / "__init__.py").write_text("")
    (fake / "sf_intuser" / "__main__.py").write_text(
        'import json, sys\nsys.stdin.read()\nprint(json.dumps({"status": 0, "result": {"components": 1, '
        '"errors": 0, "warnings": 0, "findings": []}, "warnings": []}))\n')
    before = _deploys(emu)
    for env in ({}, {"PYTHONPATH": str(fake)}):
        out = _deploy(home, fake, env=env)
        body = json.loads(out.stdout)
        assert out.returncode == 1 and body["code"] == "IntuserPreDeployBlocked", out.stdout
    assert _deploys(emu) == before
    clean = {"permissionsets/Ledger_Read_Access.permissionset-meta.xml": CLEAN_SET}
    broken_plan = _project(tmp_path / "plan", clean)
    (broken_plan / "intuser-runs" / "r1").mkdir(parents=True)
    (broken_plan / "intuser-runs" / "r1" / "plan.json").write_text('{"users": [')
    folder_toml = _project(tmp_path / "toml", clean)
    (folder_toml / "sf-intuser.toml").mkdir()
    for project, named in ((broken_plan, "intuser-runs/r1/plan.json"), (folder_toml, "sf-intuser.toml")):
        out = _deploy(home, project)
        body = json.loads(out.stdout)
        assert out.returncode == 1 and body["code"] == "IntuserPreDeployBlocked", out.stdout
        assert named in body["message"], body["message"]
    ok = _project(tmp_path / "ok", clean)
    for value in ("-5", "0", "soon", "NaN"):
        out = _deploy(home, ok, env={"SF_INTUSER_PREDEPLOY_TIMEOUT": value})
        body = json.loads(out.stdout)
        assert out.returncode == 1 and body["code"] == "IntuserPreDeployFailed", (value, out.stdout)
        assert "SF_INTUSER_PREDEPLOY_TIMEOUT" in body["message"]
    assert _deploys(emu) == before
    assert _deploy(home, ok, env={"SF_INTUSER_PREDEPLOY_TIMEOUT": "60"}).returncode == 0


def _fake_python(tmp_path: Path, body: str) -> Path:
    """A stand-in for the interpreter that ignores its arguments: only to break the gate on purpose."""
    n = len(list(tmp_path.glob("fake-python-*")))
    p = tmp_path / f"fake-python-{n}"
    p.write_text(f"#!/bin/sh\ncat >/dev/null\n{body}\n")
    p.chmod(0o755)
    return p


def test_the_gate_runs_once_when_another_plugin_declares_the_same_hook(org, tmp_path):
    home, emu = org
    data = tmp_path / "sf-data"                 # a plugin list of this test's own
    other = tmp_path / "other-plugin"
    (other / "hooks").mkdir(parents=True)
    (other / "package.json").write_text(json.dumps({
        "name": "other-hook", "version": "1.0.0", "type": "module",
        "oclif": {"hooks": {"scopedPreDeploy": "./hooks/h.js"}}}))
    (other / "hooks" / "h.js").write_text("export default async function () {}\n")
    env = {"SF_DATA_DIR": str(data)}
    for plugin in (PLUGIN, other):
        assert sf(home, "plugins", "link", str(plugin), "--no-install", env=env).returncode == 0
    counter = tmp_path / "gate-runs"
    counting = tmp_path / "counting-python"
    counting.write_text(f"#!/bin/sh\necho run >> {counter}\nexec {ROOT / '.venv/bin/python'} \"$@\"\n")
    counting.chmod(0o755)
    clean = _project(tmp_path / "ok", {"permissionsets/Ledger_Read_Access.permissionset-meta.xml": CLEAN_SET})
    out = _deploy(home, clean, env={**env, "SF_INTUSER_PYTHON": str(counting)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert counter.read_text().count("run") == 1
    listed = json.loads(sf(home, "plugins", "--json", env=env).stdout)
    assert {"sf-intuser", "other-hook"} <= {p["name"] for p in listed}


def test_the_plugin_is_linked_into_the_pinned_cli_only():
    data = ROOT / "tools/sf-cli/data/package.json"
    linked = json.loads(data.read_text())["oclif"]["plugins"]
    assert {"name": "sf-intuser", "root": str(PLUGIN), "type": "link"} in linked
    assert os.access(EXE, os.X_OK)
