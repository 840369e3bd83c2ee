"""The fault matrix: what the safety model in the README promises, proven against the org's state.

For each mutating step of ``apply`` (create-profiles, validate, deploy, switch-profiles, grant) and of
``rollback`` (remove, add): an API error on that step's call, a dropped connection, or the tool
killed with SIGKILL while the org is still working on the call (the org completes it: the worst case
for a journal). Then ``apply --resume`` or ``rollback``; every user must hold exactly the plan's
target or exactly its snapshot, never a mix, and the journal must say where the run stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.e2e import EXE, ORG, SHIM, holds, intuser, needs_cli, sf_env
from tests.test_e2e_apply import APPLIED, bench, fresh, from_point  # noqa: F401  (the module's plan, fresh org)

pytestmark = [*needs_cli, pytest.mark.faults]

#: (step, the request that carries it, which one of those requests counted from the start of the command)
APPLY_STEPS = [("create-profiles", r"/composite$", 1), ("validate", r" deploy$", 1), ("deploy", r" deploy$", 2),
               ("switch-profiles", r"/composite$", 2), ("grant", r"/composite$", 3)]
ROLLBACK_STEPS = [("restore:remove", r"/composite$", 1), ("restore:add", r"/composite$", 2)]
KINDS = ("error", "drop", "kill")
DELAY = 2.5

SCENARIOS = ([("apply", s, k, then) for s in APPLY_STEPS for k in KINDS for then in ("resume", "rollback")
              if not (s[0] == "validate" and then == "rollback")]
             + [("rollback", s, k, "rollback") for s in ROLLBACK_STEPS for k in KINDS])


def _fault(emu, pattern: str, nth: int, kind: str):
    action = {"error": "500:UNKNOWN_EXCEPTION", "drop": "drop", "kill": f"delay:{DELAY}"}[kind]
    return emu.inject(f"{pattern}@{nth}={action}")


def _run_faulted(home, emu, fault, kind: str, *args: str) -> int:
    if kind != "kill":
        return intuser(home, *args).returncode
    env = {**sf_env(home), "SF_INTUSER_SF": str(SHIM)}
    proc = subprocess.Popen([str(EXE), *args], env=env, cwd=str(home), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while fault.fired == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fault.fired == 1, "the step's request never came"
    os.killpg(proc.pid, signal.SIGKILL)   # the tool and the sf it started, mid-call
    proc.wait()
    assert fault.done.wait(60), "the org never finished the call"   # nobody waits for it any more
    return -9


def _journal(run) -> list[dict]:
    path = run / "journal.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _group(phase: str, step: tuple, kind: str) -> str:
    """Scenarios that start from the same point run on one xdist worker (``--dist loadgroup``), which
    makes that point once (:func:`from_point`): an apply's fault is shared by its two continuations, and
    every rollback fault starts from the same whole apply."""
    return "faults-applied" if phase == "rollback" else f"faults-{phase}-{step[0]}-{kind}"


@pytest.mark.parametrize("phase,step,kind,then", [
    pytest.param(p, s, k, t, id=f"{p}-{s[0]}-{k}-then-{t}", marks=pytest.mark.xdist_group(_group(p, s, k)))
    for p, s, k, t in SCENARIOS])
def test_fault_matrix(bench, tmp_path, phase, step, kind, then):  # noqa: F811
    emu = bench.emu
    name, pattern, nth = step

    def faulted(bench, run):
        # the faulted apply (or rollback after a whole apply) is the same for "then resume" and "then
        # rollback": made once through the real CLI, each continuation starts from a copy (from_point)
        fault = _fault(emu, pattern, nth, kind)
        code = _run_faulted(bench.home, emu, fault, kind, phase, str(run), "-o", ORG, "--yes")
        return code, fault.fired

    run, (code, fired) = from_point(bench, tmp_path, (phase, name, kind), faulted,
                                    start=APPLIED if phase == "rollback" else None)
    assert fired == 1
    assert code != 0
    # the journal says where the run stopped: a stop record naming the step, or (killed) the step's
    # intent with no outcome after it
    journal = _journal(run)
    last = journal[-1]
    if kind == "kill":
        assert last["phase"] == "intent" and last["step"] == name, last
    else:
        assert last["phase"] == "stopped" and last["step"] == name, last
    emu.faults.clear()
    if then == "resume":
        before = len(emu.state.requests)
        out = intuser(bench.home, "apply", str(run), "-o", ORG, "--resume", "--yes")
        want = "target"
        # with the deploy already in the org, the resume writes nothing before the switch, so its first read
        # serves the switch: the org is read twice (before and to verify), else once more after the deploy
        deployed = name in ("switch-profiles", "grant") or (name == "deploy" and kind == "kill")
        reads = sum(1 for _, label in emu.state.requests[before:] if label.endswith("/composite/batch"))
        assert reads == (2 if deployed else 3), (reads, out.stdout, out.stderr)
    else:
        out = intuser(bench.home, "rollback", str(run), "-o", ORG, "--yes")
        want = "snapshot"
    states = holds(emu, bench.plan)
    assert set(states.values()) == {want}, (states, out.stdout, out.stderr)
    assert out.returncode == 0, out.stdout + out.stderr
    # after a resume, nothing was done twice: one assignment per user and set, one grant per set and app
    st = emu.state
    for u in (x for x in bench.plan["users"] if x["status"] == "planned"):
        ids = [a["PermissionSetId"] for a in st.find("PermissionSetAssignment", AssigneeId=u["id"])]
        assert len(ids) == len(set(ids))
    pairs = [(a["ParentId"], a["SetupEntityId"]) for a in st.table("SetupEntityAccess").values()]
    assert len(pairs) == len(set(pairs))
    if want == "snapshot":
        # nothing the apply granted stays: no connected-app access on the sets this plan created, whether
        # or not the journal holds the grant's outcome
        new_sets = {g["name"] for g in bench.plan["generated"] if g["type"] == "PermissionSet" and not g["exists"]}
        for name in new_sets:
            ps = st.one("PermissionSet", Name=name, IsOwnedByProfile=False)
            if ps is not None:
                assert st.find("SetupEntityAccess", ParentId=ps["Id"], SetupEntityType="ConnectedApplication") == []


def test_the_matrix_has_at_least_thirty_scenarios():
    assert len(SCENARIOS) >= 30


def _ctrl_c_during_the_deploy(bench, argv: list[str]) -> tuple[subprocess.Popen, dict, str, object]:
    """Run ``argv`` (an apply), and send SIGINT to its process group, as Ctrl-C in a terminal does,
    while the deploy is in flight; returns the process, its --json envelope, stderr and the fault."""
    fault = _fault(bench.emu, r" deploy$", 2, "kill")          # the real deploy takes DELAY seconds
    env = {**sf_env(bench.home), "SF_INTUSER_SF": str(SHIM)}
    proc = subprocess.Popen(argv, env=env, cwd=str(bench.home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while fault.fired == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fault.fired == 1
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert out.strip(), err
    return proc, json.loads(out), err, fault


def test_ctrl_c_during_apply_names_the_step_and_exits_130_then_resume_finishes(bench, tmp_path):  # noqa: F811
    """SIGINT to the terminal's process group (the tool and the sf it runs) while the deploy is in
    flight: ApplyStopped naming the step, exit 130, the fixes; then --resume moves every user."""
    run = fresh(bench, tmp_path)
    proc, body, err, fault = _ctrl_c_during_the_deploy(bench, [str(EXE), "apply", str(run), "-o", ORG, "--yes", "--json"])
    assert proc.returncode == 130, (body, err)
    assert body["name"] == "ApplyStopped" and body["data"]["step"] == "deploy", body
    assert any("--resume" in a for a in body["actions"]) and any("rollback" in a for a in body["actions"])
    assert fault.done.wait(60)                       # the org finishes the deploy no one waits for
    bench.emu.faults.clear()
    done = intuser(bench.home, "apply", str(run), "-o", ORG, "--resume", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(holds(bench.emu, bench.plan).values()) == {"target"}


def test_ctrl_c_through_sf_intuser_says_the_same(bench, tmp_path):  # noqa: F811
    """The same Ctrl-C through the plugin (`sf intuser apply`): the plugin passes the signal on and
    the tool's answer and exit code come through."""
    run = fresh(bench, tmp_path)
    proc, body, err, fault = _ctrl_c_during_the_deploy(
        bench, [str(SHIM), "intuser", "apply", str(run), "-o", ORG, "--yes", "--json"])
    assert proc.returncode == 130, (body, err)
    assert body["name"] == "ApplyStopped" and body["data"]["step"] == "deploy", body
    assert fault.done.wait(60)                       # the org finishes the deploy no one waits for
    bench.emu.faults.clear()
