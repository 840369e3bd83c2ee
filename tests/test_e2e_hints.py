"""Every hint works as printed: the hint runner. A walk through the situations that end in a "Next:" or
"Try this:" line (apply's next step, AlreadyApplied, RolledBack, ApplyUnfinished, OrgDrifted), each
hint naming a sf-intuser command run as printed, in the same shell setting (PATH, HOME, working folder)
as the command that printed it. A usage error, an unknown command or flag, a run folder or org it can't
find, or a shell that can't find the program fails the test."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from sf_intuser.emulator import seed
from tests.e2e import EXE, ORG, SHIM, intuser, needs_cli, sf_env, start_org

pytestmark = needs_cli

#: a hint's command: the tool as printed (sf-intuser, its full path, or sf intuser) to the end of the
#: line, a closing parenthesis or backquote
COMMAND = re.compile(r"((?:'[^'\n]*sf-intuser'|/[^\s'`()]*/sf-intuser|sf-intuser|sf intuser) [^`()\n]*)")
LOOKUP = ("No default environment found", "command not found", "No such option", "No such command",
          "RunFolderNotFound", "NamedOrgNotFound", "No authorization information", "Usage:", "not found")
LONG_RUNNING = (" emulator serve", " demo")


def hints(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        if not re.search(r"Try this:|Next:|Try it yourself|\bTry:", line) and not line.startswith("  "):
            continue
        for m in COMMAND.finditer(line):
            cmd = m.group(1).strip().rstrip(".,;")
            if not any(x in cmd for x in LONG_RUNNING) and "<" not in cmd:
                out.append(cmd)
    return out


def run_hint(home, cmd: str, cwd) -> str | None:
    """None when the hint ran as a command the tool knows, on things it could find; else the problem."""
    env = {**sf_env(home), "SF_INTUSER_SF": str(SHIM)}
    proc = subprocess.run(["/bin/sh", "-c", cmd], env=env, cwd=str(cwd), capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    if proc.returncode in (2, 126, 127) or any(s in out for s in LOOKUP):
        return f"{cmd!r} exited {proc.returncode}: {out.strip()[-400:]}"
    return None


def printed(out: subprocess.CompletedProcess) -> str:
    return out.stdout + out.stderr


@pytest.fixture()
def walk(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    emu, _ = start_org(home)
    yield home, emu
    emu.stop()


def test_every_hint_of_a_migration_works_when_pasted(walk, tmp_path):
    home, emu = walk
    ran: list[str] = []
    bad: list[str] = []

    def follow(out: subprocess.CompletedProcess) -> None:
        for h in hints(printed(out)):
            ran.append(h)
            problem = run_hint(home, h, home)
            if problem:
                bad.append(problem)

    run = home / "run"
    out = intuser(home, "plan", "--all-candidates", "-o", ORG, "--run-dir", str(run))
    assert out.returncode == 68, printed(out)
    template = tmp_path / "template"
    shutil.copytree(run, template)

    # apply, without -o (the plan's org), then its "Next:"
    applied = intuser(home, "apply", str(run), "--yes")
    assert applied.returncode == 0, printed(applied)
    follow(applied)
    # applied again: AlreadyApplied, with verify, report and rollback to try
    again = intuser(home, "apply", str(run), "--yes")
    assert again.returncode == 1 and "AlreadyApplied" in again.stderr
    follow(again)
    # rolled back, then applied: RolledBack, with a plan to run again
    assert intuser(home, "rollback", str(run), "--yes").returncode == 0
    rolled = intuser(home, "apply", str(run), "--yes")
    assert rolled.returncode == 1 and "RolledBack" in rolled.stderr
    follow(rolled)

    # an apply that did not finish: ApplyUnfinished, with --resume and rollback
    emu.reset(seed.load())
    cut = tmp_path / "cut"
    shutil.copytree(template, cut)
    users = json.loads((cut / "plan.json").read_text())["users"]
    (cut / "journal.jsonl").write_text(json.dumps({"seq": 1, "at": "2026-12-02T10:00:00+00:00", "run": "apply",
                                                   "step": "", "phase": "start", "resume": False,
                                                   "users": [u["id"] for u in users if u["status"] == "planned"]})
                                       + "\n")
    os.chmod(cut / "journal.jsonl", 0o600)
    unfinished = intuser(home, "apply", str(cut), "--yes")
    assert unfinished.returncode == 1 and "ApplyUnfinished" in unfinished.stderr, printed(unfinished)
    follow(unfinished)

    # the org changed since the plan: OrgDrifted, with the plan to run again
    emu.reset(seed.load())
    drift = tmp_path / "drift"
    shutil.copytree(template, drift)
    planned = next(u for u in users if u["status"] == "planned")
    st = emu.state
    extra = next(ps for ps in st.table("PermissionSet").values()
                 if not ps.get("IsOwnedByProfile") and not ps.get("LicenseId")
                 and not st.find("PermissionSetAssignment", AssigneeId=planned["id"], PermissionSetId=ps["Id"]))
    st.insert("PermissionSetAssignment", {"AssigneeId": planned["id"], "PermissionSetId": extra["Id"]})
    drifted = intuser(home, "apply", str(drift), "--yes")
    assert drifted.returncode == 1 and "OrgDrifted" in drifted.stderr, printed(drifted)
    follow(drifted)

    assert len(ran) >= 8, ran
    assert bad == []


def test_the_runner_catches_a_hint_that_fails_as_printed(walk):
    """The runner can fail: a hint with a flag the tool does not have, one naming a run folder that is
    not there, and the bare name when sf-intuser is not on PATH are each reported."""
    home, _ = walk
    assert run_hint(home, f"{EXE} verify {home}/run --no-such-flag", home)
    assert run_hint(home, f"{EXE} verify {home}/no-run -o {ORG}", home)
    env_path = os.environ["PATH"]
    if shutil.which("sf-intuser", path=env_path) is None:
        assert run_hint(home, "sf-intuser doctor", home)


def test_usage_errors_through_the_plugin_name_sf_intuser(walk):
    home, _ = walk
    out = subprocess.run([str(SHIM), "intuser", "plan", "--no-such-flag"], env={**sf_env(home)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "sf intuser plan" in out.stderr and "sf-intuser plan" not in out.stderr, out.stderr
