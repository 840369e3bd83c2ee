"""The hostile-conditions suite: the tool attacked as an adversary (or bad luck) would, through the real
sf CLI on the emulated org. Every scenario asserts from the org's own records: each planned user is
exactly at its target or exactly at its snapshot (with any change someone else made kept or reported),
nothing is duplicated, and nothing the apply created is left after a rollback.

Groups: changes behind the tool's back before, during and after each write step; lost, cut, edited and
forged journals; SIGKILL at many points, then resume, rollback or a second kill; a full disk; two runs
on one folder at once; hostile names through every output. Hostile projects through the pre-deploy
gate are in test_e2e_plugin.py, config and escaping edge cases in the unit tests."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sf_intuser.emulator import seed
from sf_intuser.emulator.faults import Fault
from sf_intuser.emulator.server import EmulatedOrg
from tests.e2e import EXE, ORG, SHIM, holds, intuser, needs_cli, sf_env
from tests.test_e2e_apply import APPLIED, bench, fresh, from_point  # noqa: F401  (the module's plan, a fresh org)

pytestmark = [*needs_cli, pytest.mark.hostile]


#: tests starting from the same point run on the same xdist worker (``--dist loadgroup``), which makes it once
AFTER_APPLY = pytest.mark.xdist_group("hostile-applied")


def after_kill(pattern: str, nth: int):
    return pytest.mark.xdist_group(f"hostile-killed-{pattern}-{nth}")


# --- what the org holds ---------------------------------------------------------------------------


def sets_of(st, username: str) -> set[str]:
    uid = st.one("User", Username=username)["Id"]
    return {st.get(a["PermissionSetId"])["Name"] for a in st.find("PermissionSetAssignment", AssigneeId=uid)
            if not st.get(a["PermissionSetId"])["IsOwnedByProfile"]}


def groups_of(st, username: str) -> set[str]:
    uid = st.one("User", Username=username)["Id"]
    return {st.get(m["GroupId"])["Name"] for m in st.find("GroupMember", UserOrGroupId=uid)}


def no_duplicates(st) -> None:
    keys = [(a["AssigneeId"], a["PermissionSetId"]) for a in st.table("PermissionSetAssignment").values()]
    assert len(keys) == len(set(keys)), "a permission set assigned twice"
    pairs = [(a["ParentId"], a["SetupEntityId"]) for a in st.table("SetupEntityAccess").values()]
    assert len(pairs) == len(set(pairs)), "an access granted twice"
    psl = [(a["AssigneeId"], a["PermissionSetLicenseId"]) for a in st.table("PermissionSetLicenseAssign").values()]
    assert len(psl) == len(set(psl)), "a permission set license assigned twice"


def nothing_left(st, plan: dict) -> None:
    """After a rollback: no assignment of a generated set or group, no connected-app grant the plan made
    on a set it created."""
    generated = {g["name"] for g in plan["generated"]}
    for u in (x for x in plan["users"] if x["status"] == "planned"):
        left = (sets_of(st, u["username"]) | groups_of_psg(st, u["username"])) & generated
        assert not left, (u["username"], left)
    new_sets = {g["name"] for g in plan["generated"] if g["type"] == "PermissionSet" and not g["exists"]}
    for name in new_sets:
        ps = st.one("PermissionSet", Name=name, IsOwnedByProfile=False)
        if ps is not None:
            assert st.find("SetupEntityAccess", ParentId=ps["Id"], SetupEntityType="ConnectedApplication") == [], name


def groups_of_psg(st, username: str) -> set[str]:
    uid = st.one("User", Username=username)["Id"]
    return {st.get(a["PermissionSetGroupId"])["DeveloperName"] for a in st.find("PermissionSetAssignment",
                                                                                AssigneeId=uid)
            if a.get("PermissionSetGroupId")}


def at(bench, want: str, except_: set[str] = frozenset()) -> None:  # noqa: F811
    states = holds(bench.emu, bench.plan)
    assert {u: s for u, s in states.items() if u not in except_} == \
        {u: want for u in states if u not in except_}, states


def apply(bench, run: Path, *extra: str):  # noqa: F811
    return intuser(bench.home, "apply", str(run), "-o", ORG, "--yes", "--json", *extra)


def rollback(bench, run: Path):  # noqa: F811
    return intuser(bench.home, "rollback", str(run), "-o", ORG, "--yes", "--json")


def body(out) -> dict:
    return json.loads(out.stdout)


# --- changes someone else makes while the tool runs --------------------------------------------------


def assign(username: str, set_name: str):
    def change(st) -> None:
        uid = st.one("User", Username=username)["Id"]
        st.insert("PermissionSetAssignment", {"AssigneeId": uid,
                                              "PermissionSetId": st.one("PermissionSet", Name=set_name,
                                                                        IsOwnedByProfile=False)["Id"]})
    return change


def unassign(username: str, set_name: str):
    def change(st) -> None:
        uid = st.one("User", Username=username)["Id"]
        ps = st.one("PermissionSet", Name=set_name, IsOwnedByProfile=False)
        psa = st.one("PermissionSetAssignment", AssigneeId=uid, PermissionSetId=ps["Id"])
        st.delete("PermissionSetAssignment", psa["Id"])
    return change


def join_queue(username: str, queue: str):
    def change(st) -> None:
        st.insert("GroupMember", {"GroupId": st.one("Group", Name=queue)["Id"],
                                  "UserOrGroupId": st.one("User", Username=username)["Id"]})
    return change


CHANGES = {
    "set assigned": ("backup@acme.emulated", assign("backup@acme.emulated", "Sync_Reader")),
    "set removed": ("middleware@acme.emulated", unassign("middleware@acme.emulated", "Sync_Reader")),
    "queue joined": ("etl@acme.emulated", join_queue("etl@acme.emulated", "Order Exceptions")),
}
#: the write steps before the switch, as the request that carries each (pattern, which one)
BEFORE_SWITCH = {"create-profiles": (r"/composite$", 1), "validate": (r" deploy$", 1), "deploy": (r" deploy$", 2)}


@pytest.mark.parametrize("step", sorted(BEFORE_SWITCH))
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_made_before_the_switch_holds_that_user_back_and_keeps_the_change(bench, tmp_path, step,
                                                                                    change):  # noqa: F811
    run = fresh(bench, tmp_path)
    who, fn = CHANGES[change]
    pattern, nth = BEFORE_SWITCH[step]
    bench.emu.inject(Fault(pattern, nth, action="call", before=fn))
    st = bench.emu.state
    expected_sets = sets_of(st, who)
    expected_groups = groups_of(st, who)
    out = apply(bench, run)
    res = body(out)["result"]
    assert out.returncode == 68, out.stdout
    held = {f["username"]: f for f in res["failures"]}
    assert held[who]["outcome"] == "changed during the run" and "plan -u" in held[who]["fix"]
    at(bench, "target", except_={who})
    # the change is still there: nothing someone else made is lost
    now_sets, now_groups = sets_of(st, who), groups_of(st, who)
    if change == "set assigned":
        assert now_sets == expected_sets | {"Sync_Reader"}
    elif change == "set removed":
        assert now_sets == expected_sets - {"Sync_Reader"}
    else:
        assert now_groups == expected_groups | {"Order Exceptions"}
    assert st.get(st.one("User", Username=who)["ProfileId"])["Name"] not in ("Minimum Access - API Only Integrations",)
    no_duplicates(st)


@pytest.mark.parametrize("change", ["set assigned", "queue joined"])
def test_a_change_made_after_the_switch_is_kept_and_reported(bench, tmp_path, change):  # noqa: F811
    run = fresh(bench, tmp_path)
    who, _ = CHANGES[change]
    # the change lands right before the grant call, after the user has moved
    fn = assign(who, "Sync_Reader") if change == "set assigned" else join_queue(who, "Order Exceptions")
    bench.emu.inject(Fault(r"/composite$", 3, action="call", before=fn))
    out = apply(bench, run)
    res = body(out)["result"]
    st = bench.emu.state
    if change == "set assigned":
        assert out.returncode == 68, out.stdout
        assert [c["username"] for c in res["changedDuringRun"]] == [who]
        assert "Sync_Reader" in sets_of(st, who)
        at(bench, "target", except_={who})
    else:   # a queue joined: the user is at its target and holds the membership too
        assert out.returncode == 0, out.stdout
        assert "Order Exceptions" in groups_of(st, who)
        at(bench, "target")
    no_duplicates(st)


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_made_before_apply_stops_it_before_anything_is_written(bench, tmp_path, change):  # noqa: F811
    run = fresh(bench, tmp_path)
    CHANGES[change][1](bench.emu.state)
    n = len(bench.emu.state.requests)
    out = apply(bench, run)
    assert out.returncode == 1 and body(out)["name"] == "OrgDrifted", out.stdout
    assert "plan -u" in body(out)["actions"][0] and "-o emu" in body(out)["actions"][0]
    assert not [r for r in bench.emu.state.requests[n:] if r[0] in ("PATCH", "DELETE")
                or (r[0] == "POST" and "/composite/batch" not in r[1])]


@AFTER_APPLY
@pytest.mark.parametrize("change", ["set assigned", "queue joined"])
def test_rollback_after_a_change_puts_users_back_and_says_what_it_removed(bench, tmp_path, change):  # noqa: F811
    run, _ = from_point(bench, tmp_path, *APPLIED)
    who, _ = CHANGES[change]
    fn = assign(who, "Sync_Reader") if change == "set assigned" else join_queue(who, "Order Exceptions")
    fn(bench.emu.state)
    out = rollback(bench, run)
    res = body(out)["result"]
    st = bench.emu.state
    assert out.returncode == 0, out.stdout
    at(bench, "snapshot")
    # the snapshot wins, and what someone else gave after the plan is named, never removed in silence
    (removed,) = res["removedNotPlanned"][who]
    if change == "set assigned":
        assert removed == "Sync_Reader"
    else:
        assert removed.startswith("group or queue ") and "Order Exceptions" not in groups_of(st, who)
    nothing_left(st, bench.plan)
    no_duplicates(st)


@AFTER_APPLY
def test_a_change_made_while_rollback_runs_is_reported_and_the_next_rollback_finishes(bench, tmp_path):  # noqa: F811
    """A set assigned after rollback switched the user back (before its second call) stays and is named.
    (One assigned in the very call that switches back is taken by the license change itself: the same
    one-call window as apply's switch, in the README.)"""
    step = 2
    run, _ = from_point(bench, tmp_path, *APPLIED)
    who = "backup@acme.emulated"
    bench.emu.inject(Fault(r"/composite$", step, action="call", before=assign(who, "Sync_Reader")))
    out = rollback(bench, run)
    res = body(out)["result"] if out.returncode in (0, 1) and out.stdout.strip().startswith("{") else {}
    # the change is named, never lost in silence: as a difference from the snapshot
    assert out.returncode == 1, out.stdout
    (failure,) = [f for f in res["failures"] if f["username"] == who]
    assert "permission set Sync_Reader added" in failure["differences"]
    assert "Sync_Reader" in sets_of(bench.emu.state, who)
    again = rollback(bench, run)
    assert again.returncode == 0, again.stdout
    assert body(again)["result"]["removedNotPlanned"] == {who: ["Sync_Reader"]}
    at(bench, "snapshot")
    nothing_left(bench.emu.state, bench.plan)
    no_duplicates(bench.emu.state)


# --- journals lost, cut, edited or forged ------------------------------------------------------------


def _kill_at(bench, run: Path, pattern: str, nth: int, *args: str) -> None:  # noqa: F811
    fault = bench.emu.inject(f"{pattern}@{nth}=delay:2.5")
    env = {**sf_env(bench.home), "SF_INTUSER_SF": str(SHIM)}
    proc = subprocess.Popen([str(EXE), *(args or ("apply", str(run), "-o", ORG, "--yes"))], env=env,
                            cwd=str(bench.home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while fault.fired == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fault.fired == 1, "the request never came"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert fault.done.wait(60), "the org never finished the call"   # no one waits for it any more
    bench.emu.faults.clear()


def killed(pattern: str, nth: int):
    """The point "apply killed while the org works on the ``nth`` request matching ``pattern``", for
    :func:`from_point`: made once through the real CLI, then copied for each test starting there."""
    return ("killed", pattern, nth), lambda bench, run: _kill_at(bench, run, pattern, nth)


def _records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "journal.jsonl").read_text().splitlines()]


def _rewrite(run: Path, records: list[dict]) -> None:
    (run / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


JOURNAL_DAMAGE = ["deleted", "switch lines removed", "outcomes removed", "grant outcomes flipped",
                  "garbage line", "torn last line"]


@pytest.mark.parametrize("damage", JOURNAL_DAMAGE)
@pytest.mark.parametrize("when", [pytest.param("after a full apply", marks=AFTER_APPLY),
                                  pytest.param("after a kill after the switch", marks=after_kill(r"/composite$", 3))])
def test_rollback_works_from_the_snapshot_whatever_the_journal_holds(bench, tmp_path, damage, when):  # noqa: F811
    if when == "after a full apply":
        run, _ = from_point(bench, tmp_path, *APPLIED)
    else:
        run, _ = from_point(bench, tmp_path, *killed(r"/composite$", 3))   # killed while granting: all moved
    recs = _records(run)
    if damage == "deleted":
        (run / "journal.jsonl").unlink()
    elif damage == "switch lines removed":
        _rewrite(run, [r for r in recs if r.get("step") != "switch-profiles"])
    elif damage == "outcomes removed":
        _rewrite(run, [r for r in recs if r["phase"] != "outcome"])
    elif damage == "grant outcomes flipped":
        for r in recs:
            for x in r.get("results", []):
                x["ok"] = False
        _rewrite(run, recs)
    elif damage == "garbage line":
        (run / "journal.jsonl").write_text((run / "journal.jsonl").read_text() + "not json\n{\"seq\": 99}\n")
    else:
        (run / "journal.jsonl").write_bytes((run / "journal.jsonl").read_bytes() + b'{"seq": 99, "run": "app')
    out = rollback(bench, run)
    assert out.returncode == 0, out.stdout + out.stderr
    at(bench, "snapshot")
    nothing_left(bench.emu.state, bench.plan)
    no_duplicates(bench.emu.state)


@after_kill(r"/composite$", 2)
@pytest.mark.parametrize("damage", ["deleted", "torn last line"])
def test_resume_after_a_kill_works_without_a_whole_journal(bench, tmp_path, damage):  # noqa: F811
    run, _ = from_point(bench, tmp_path, *killed(r"/composite$", 2))          # killed while switching
    if damage == "deleted":
        (run / "journal.jsonl").unlink()
    else:
        (run / "journal.jsonl").write_bytes((run / "journal.jsonl").read_bytes() + b'{"seq": 99, "ph')
    out = apply(bench, run, "--resume")
    assert out.returncode == 0, out.stdout + out.stderr
    at(bench, "target")
    no_duplicates(bench.emu.state)


@after_kill(r"/composite$", 3)
@pytest.mark.parametrize("command", ["rollback", "apply --resume"])
def test_a_forged_journal_is_refused_by_name_and_nothing_changes(bench, tmp_path, command):  # noqa: F811
    run, _ = from_point(bench, tmp_path, *killed(r"/composite$", 3))
    recs = _records(run)
    recs.append({"seq": len(recs) + 1, "run": "apply", "phase": "intent", "step": "grant",
                 "records": [{"kind": "set", "userId": "005000000000999AAA", "name": "X"}]})
    _rewrite(run, recs)
    before = {u: holds(bench.emu, bench.plan)[u] for u in holds(bench.emu, bench.plan)}
    n = len(bench.emu.state.requests)
    args = command.split()
    out = intuser(bench.home, *args[:1], str(run), *args[1:], "-o", ORG, "--yes", "--json")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert body(out)["name"] in ("JournalForged", "OrgDrifted"), out.stdout
    assert holds(bench.emu, bench.plan) == before
    assert not [r for r in bench.emu.state.requests[n:] if r[0] in ("PATCH", "DELETE")]


# --- SIGKILL at many points --------------------------------------------------------------------------

#: (request pattern, which one): every write and read of apply, in order
APPLY_POINTS = [(r"/composite/batch", 1), (r"/composite$", 1), (r" deploy$", 1), (r"checkDeployStatus", 1),
                (r" deploy$", 2), (r"/composite/batch", 2), (r"/composite$", 2), (r"/composite$", 3),
                (r"/composite/batch", 3)]


@pytest.mark.parametrize("then", ["resume", "rollback"])
@pytest.mark.parametrize("point", [pytest.param(p, marks=after_kill(*p), id=f"{p[0].strip('/ $')}-{p[1]}")
                                   for p in APPLY_POINTS])
def test_killed_anywhere_the_run_resumes_or_rolls_back_whole(bench, tmp_path, point, then):  # noqa: F811
    run, _ = from_point(bench, tmp_path, *killed(*point))
    out = apply(bench, run, "--resume") if then == "resume" else rollback(bench, run)
    if then == "rollback" and out.returncode == 1:   # killed before it wrote anything: nothing to undo, said so
        assert body(out)["name"] == "NothingToRollBack" and point == APPLY_POINTS[0], out.stdout
    else:
        assert out.returncode == 0, out.stdout + out.stderr
    at(bench, "target" if then == "resume" else "snapshot")
    if then == "rollback":
        nothing_left(bench.emu.state, bench.plan)
    no_duplicates(bench.emu.state)


@after_kill(r"/composite$", 2)
@pytest.mark.parametrize("second", [(r"/composite/batch", 1), (r"/composite$", 1), (r"/composite/batch", 2)])
def test_killed_twice_then_rolled_back(bench, tmp_path, second):  # noqa: F811
    run, _ = from_point(bench, tmp_path, *killed(r"/composite$", 2))         # apply killed while switching
    _kill_at(bench, run, *second, "apply", str(run), "-o", ORG, "--resume", "--yes")   # then its resume
    out = rollback(bench, run)
    assert out.returncode == 0, out.stdout + out.stderr
    at(bench, "snapshot")
    nothing_left(bench.emu.state, bench.plan)
    no_duplicates(bench.emu.state)


@AFTER_APPLY
@pytest.mark.parametrize("point", [(r"/composite$", 1), (r"/composite$", 2), (r"/composite/batch", 2)])
def test_a_rollback_killed_anywhere_is_finished_by_the_next(bench, tmp_path, point):  # noqa: F811
    run, _ = from_point(bench, tmp_path, *APPLIED)
    _kill_at(bench, run, *point, "rollback", str(run), "-o", ORG, "--yes")
    out = rollback(bench, run)
    assert out.returncode == 0, out.stdout + out.stderr
    at(bench, "snapshot")
    nothing_left(bench.emu.state, bench.plan)
    no_duplicates(bench.emu.state)


# --- a full disk, two runs at once --------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("this machine does not allow mounting a small file system")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.parametrize("then", ["resume", "rollback"])
def test_a_full_disk_stops_before_the_step_and_the_run_goes_on_once_there_is_room(bench, tmp_path, small_disk,
                                                                                   then):  # noqa: F811
    src = fresh(bench, tmp_path)
    run = small_disk / "run"
    shutil.copytree(src, run)
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:                                  # fill the disk to the last byte
        for size in (65536, 4096, 512, 64, 1):
            while True:
                try:
                    if os.write(fd, b"\0" * size) < size:
                        break
                except OSError:
                    break
    finally:
        os.close(fd)
    out = apply(bench, run)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert body(out)["name"] in ("JournalWriteFailed", "RunFolderNotWritable"), out.stdout
    at(bench, "snapshot")                         # nothing started without its intent on disk
    filler.unlink()
    out = apply(bench, run, "--resume") if then == "resume" else rollback(bench, run)
    assert out.returncode in (0, 1), out.stdout
    if then == "resume":
        assert out.returncode == 0, out.stdout + out.stderr
        at(bench, "target")
    else:
        at(bench, "snapshot")
    no_duplicates(bench.emu.state)


@pytest.mark.parametrize("command", ["apply", "rollback"])
def test_a_read_only_run_folder_is_refused_before_anything_changes(bench, tmp_path, small_disk,
                                                                   command):  # noqa: F811
    src = fresh(bench, tmp_path)
    run = small_disk / "run"
    shutil.copytree(src, run)
    if subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True).returncode:
        pytest.skip("this machine does not allow remounting read-only")
    n = len(bench.emu.state.requests)
    out = intuser(bench.home, command, str(run), "-o", ORG, "--yes", "--json")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert body(out)["name"] == "RunFolderNotWritable", out.stdout
    assert not [r for r in bench.emu.state.requests[n:] if r[0] in ("PATCH", "DELETE")
                or (r[0] == "POST" and "/composite/batch" not in r[1])]
    at(bench, "snapshot")


@pytest.mark.parametrize("second", ["apply", "rollback"])
def test_a_second_run_on_the_same_folder_is_refused_while_the_first_runs(bench, tmp_path, second):  # noqa: F811
    run = fresh(bench, tmp_path)
    bench.emu.inject(r" deploy$@1=delay:4")         # hold the first apply in its validation
    env = {**sf_env(bench.home), "SF_INTUSER_SF": str(SHIM)}
    first = subprocess.Popen([str(EXE), "apply", str(run), "-o", ORG, "--yes"], env=env, cwd=str(bench.home),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (run / ".lock").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    out = intuser(bench.home, second, str(run), "-o", ORG, "--yes", "--json")
    assert out.returncode == 1 and body(out)["name"] == "RunFolderBusy", out.stdout
    assert "sf-intuser apply (pid" in body(out)["message"]
    assert first.wait(timeout=180) == 0
    at(bench, "target")
    no_duplicates(bench.emu.state)


# --- hostile names through every output -----------------------------------------------------------------

EVIL_NAME = '=HYPERLINK("http://x","y") <script>alert(1)</script>\x1b]0;pwn\x07 | *x*'
EVIL_PROFILE = "Evil\n# Heading <b>x</b> | =1+1"


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    """An org whose integration user and profile carry names made to attack each output."""
    home = tmp_path_factory.mktemp("evil-home")
    spec = json.loads(seed.DEFAULT_SEED.read_text(encoding="utf-8"))
    spec["components"] = [{"type": "Profile", "name": "Evil Profile", "body": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Profile xmlns="http://soap.sforce.com/2006/04/metadata">\n'
        "    <custom>true</custom>\n    <userLicense>Salesforce</userLicense>\n    <userPermissions>\n"
        "        <enabled>true</enabled>\n        <name>ApiEnabled</name>\n    </userPermissions>\n</Profile>\n")}]
    spec["users"].append({"username": "evil@acme.emulated", "name": EVIL_NAME, "profile": "Evil Profile",
                          "lastLogin": "-1d", "logins": [{"type": "Remote Access 2.0", "application": EVIL_NAME,
                                                          "count": 5, "days": 30}]})
    state = seed.build(spec, seed.SEEDS)
    prof = state.profile_by_api_name("Evil Profile")
    prof["Name"] = EVIL_PROFILE                     # a label the Metadata API name does not show
    emu = EmulatedOrg(state, max_seconds=900).start()
    env = {**sf_env(home, emu.access_token())}
    subprocess.run([str(SHIM), "org", "login", "access-token", "--instance-url", emu.url, "--no-prompt",
                    "--alias", ORG], env=env, check=True, capture_output=True)
    run = home / "run"
    out = intuser(home, "plan", "-o", ORG, "-u", "evil@acme.emulated", "--run-dir", str(run), "--json")
    assert out.returncode in (0, 68), out.stdout + out.stderr
    yield home, emu, run
    emu.stop()


def _clean_terminal(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and not any(0x80 <= ord(c) <= 0x9f for c in text)


def test_discover_human_and_csv_outputs_carry_no_formula_or_escape(evil):
    home, _, _ = evil
    out = intuser(home, "discover", "-o", ORG, "--csv", str(home / "c.csv"))
    assert out.returncode == 0, out.stdout + out.stderr
    _clean_terminal(out.stdout + out.stderr)
    rows = list(csv.reader(io.StringIO((home / "c.csv").read_text())))
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows[1:] for cell in row)
    assert any("HYPERLINK" in cell for row in rows for cell in row)
    assert oct((home / "c.csv").stat().st_mode & 0o777) == "0o600"


def test_plan_md_escapes_every_name(evil):
    _, _, run = evil
    md = (run / "plan.md").read_text()
    assert "<script>" not in md and "<b>" not in md and "\n# Heading" not in md
    _clean_terminal(md)


@pytest.mark.parametrize("fmt", ["md", "csv", "html"])
def test_the_report_escapes_every_name(evil, fmt):
    home, _, run = evil
    target = home / f"report.{fmt}"
    out = intuser(home, "report", str(run), "--output", str(target))
    assert out.returncode == 0, out.stdout + out.stderr
    text = target.read_text()
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows[1:] for c in row)
    elif fmt == "md":
        assert "<script>" not in text and "\n# Heading" not in text
    else:
        assert "<script>alert" not in text and "&lt;script&gt;" in text or "evil@acme.emulated" in text
    _clean_terminal(text if fmt != "html" else text.replace("\x1b", ""))


def test_json_output_stays_valid_json_whatever_the_names(evil):
    home, _, run = evil
    for args in (("discover", "-o", ORG, "--json"), ("report", str(run), "--json")):
        out = intuser(home, *args)
        assert out.returncode == 0
        json.loads(out.stdout)
        assert not any(0x80 <= ord(c) <= 0x9f for c in out.stdout)


def test_a_profile_name_too_long_for_a_file_blocks_only_its_users(tmp_path):
    """Salesforce allows long profile names; a retrieve of one whose file name would pass 255 bytes fails
    as a whole (ENAMETOOLONG), so the profile is left out: its user is blocked with the reason, and
    discover and plan go on for everyone else."""
    long = "Integration " + "x" * 238                  # 250 characters
    home = tmp_path / "home"
    spec = json.loads(seed.DEFAULT_SEED.read_text(encoding="utf-8"))
    spec["components"] = [{"type": "Profile", "name": long, "body": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Profile xmlns="http://soap.sforce.com/2006/04/metadata">\n'
        "    <custom>true</custom>\n    <userLicense>Salesforce</userLicense>\n</Profile>\n")}]
    spec["users"].append({"username": "long@acme.emulated", "name": "Long Profile", "profile": long,
                          "lastLogin": "-1d", "logins": [{"type": "Remote Access 2.0", "application": "Sync",
                                                          "count": 5, "days": 30}]})
    emu = EmulatedOrg(seed.build(spec, seed.SEEDS), max_seconds=900).start()
    try:
        subprocess.run([str(SHIM), "org", "login", "access-token", "--instance-url", emu.url, "--no-prompt",
                        "--alias", ORG], env=sf_env(home, emu.access_token()), check=True, capture_output=True)
        out = intuser(home, "discover", "-o", ORG, "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        found = {c["username"] for c in body(out)["result"]["candidates"]}
        assert {"long@acme.emulated", "etl@acme.emulated", "middleware@acme.emulated"} <= found
        out = intuser(home, "plan", "--all-candidates", "-o", ORG, "--run-dir", str(tmp_path / "run"), "--json")
        assert out.returncode == 68, out.stdout + out.stderr
        users = {u["username"]: u for u in json.loads((tmp_path / "run" / "plan.json").read_text())["users"]}
        assert users["long@acme.emulated"]["status"] == "blocked"
        assert "255 bytes" in users["long@acme.emulated"]["blockers"][0]["problem"]
        assert users["etl@acme.emulated"]["status"] == "planned"
    finally:
        emu.stop()


def test_the_suite_holds_sixty_scenarios():
    import inspect
    import sys

    mod = sys.modules[__name__]
    count = 0
    for name, fn in inspect.getmembers(mod, inspect.isfunction):
        if not name.startswith("test_") or name == "test_the_suite_holds_sixty_scenarios":
            continue
        n = 1
        for mark in getattr(fn, "pytestmark", []):
            if mark.name == "parametrize":
                n *= len(mark.args[1])
        count += n
    assert count >= 60, count
