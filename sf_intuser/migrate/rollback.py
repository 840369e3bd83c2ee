"""Rollback and verify: every user the journal says an apply touched put back as the snapshot says, and
the org compared with the plan's target. They share the run folder, the journal, the org reads and the
restore with :mod:`.apply` (which puts a user back itself when its access can't be given back).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from datetime import datetime, timezone
from typing import Callable

from sf_intuser import runs, tempfiles
from sf_intuser.errors import Failure
from sf_intuser.metadata import package_xml
from sf_intuser.report.output import exit_code
from sf_intuser.migrate.apply import (
    APPLY,
    ROLLBACK,
    OrgNow,
    Outcome,
    Progress,
    Run,
    _empty_sets,
    _id15,
    _interrupted,
    _locked,
    _noop,
    _read,
    _refuse_forged,
    _restore,
    _Stop,
    _stopped,
    differences_from_snapshot,
    differences_from_target,
    open_run,
)
from sf_intuser.sf import commands
from sf_intuser.sf.runner import SfError, SfRunner
from sf_intuser.sf.soql import chunks, in_list


def rollback(runner: SfRunner, folder: Path, target_org: str | None, *, delete_generated: bool = False,
             confirm: Callable[[list[str]], bool] | None = None, progress: Progress = _noop) -> Outcome:
    try:
        open_run(folder)
    except Failure as exc:
        if exc.name != "JournalBroken":
            raise
    with _locked(folder, "rollback"):
        return _rollback_locked(runner, folder, target_org, delete_generated=delete_generated, confirm=confirm,
                                progress=progress)


def _open_for_rollback(folder: Path) -> tuple[Run, str | None]:
    """The run folder for a rollback. A journal that can't be read does not stop it (the snapshot is
    enough): it is set aside as ``journal.jsonl.broken-<time>``, kept for whoever looks into it, and the
    rollback journals into a new one. Returns the run and a note saying so."""
    try:
        return open_run(folder), None
    except Failure as exc:
        if exc.name != "JournalBroken":
            raise
        aside = folder / f"{runs.JOURNAL}.broken-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"
        os.replace(folder / runs.JOURNAL, aside)
        return open_run(folder), (f"The journal could not be read ({exc.message.split(':')[0]}); it was set aside as "
                                  f"{aside.name} and the users are compared with the snapshot alone")


def _rollback_locked(runner: SfRunner, folder: Path, target_org: str | None, *, delete_generated: bool,
                     confirm: Callable[[list[str]], bool] | None, progress: Progress) -> Outcome:
    """Every planned user not exactly as the snapshot says is put back, whatever the journal holds or
    lacks: the snapshot is the truth, the journal only makes the work precise (which grants the apply
    made on sets that existed before). Connected-app access on the sets this plan created is found in
    the org itself, so a grant whose outcome was never journaled does not stay behind."""
    run, note = _open_for_rollback(folder)
    j = run.journal
    planned = sorted(run.before)
    _refuse_forged(run)
    api = run.plan["org"]["apiVersion"]
    progress(f"Reading {len(planned)} planned user(s) in the org")
    now = _read(runner, run, target_org, planned)
    names = {u["id"]: u["username"] for u in run.users}
    todo = [uid for uid in planned if differences_from_snapshot(now.users.get(uid), run.before[uid])]
    revoke = _leftover_access(run, now)
    applied = bool(j.of(APPLY))
    if not applied and not note and not todo and not revoke and not delete_generated:
        raise Failure("NothingToRollBack", f"{folder} was never applied (its journal holds no apply) and every "
                      "planned user is as the snapshot says: nothing to roll back, and nothing was changed",
                      actions=[f"Apply it first: sf-intuser apply {folder} -o {run.label()}"])
    lines = [f"Roll back {folder} in {run.label()} ({now.org_id})"] + ([f"  {note}"] if note else [])
    if not applied and not note:
        lines.append("  The journal holds no apply: the users are compared with the snapshot alone")
    lines += [f"  {len(todo)} of {len(planned)} user(s) go back to the snapshot: " +
              (", ".join(names.get(u, u) for u in todo) or "none"),
              f"  {len(revoke)} connected-app access grant(s) the apply made are revoked"]
    # what neither the snapshot nor the plan holds was given by someone else after the plan: the snapshot
    # wins, but it is said, never removed in silence
    foreign = {}
    by_id = {u["id"]: u for u in run.users}
    for uid in todo:
        cur, b, to = now.users.get(uid), run.before[uid], by_id.get(uid, {}).get("to", {})
        if cur is None:
            continue
        ours = {a["permissionSet"] for a in to.get("assign", [])} | {g["group"] for g in to.get("groups", [])}
        mine = {p["name"] for p in b["permissionSets"]} | {g["name"] for g in b["groups"]}
        extra = sorted((set(cur.sets) | set(cur.groups)) - ours - mine)
        if "memberships" in b:
            was_m = {_id15(m["groupId"]) for m in b["memberships"]}
            extra += sorted(f"group or queue {k}" for k in set(cur.memberships) - was_m)
        if extra:
            foreign[names.get(uid, uid)] = extra
            lines.append(f"  {names.get(uid, uid)}: {', '.join(extra)} (given after the plan, not by sf-intuser) is "
                         "removed with the rest, as the snapshot says")
    if not todo and not revoke and not delete_generated:
        return Outcome({"runDir": str(folder), "restored": [], "alreadyRestored": [names.get(u, u) for u in planned],
                        "failures": [], "sfCalls": len(runner.calls)}, exit_code(),
                       lines + ["Nothing to undo: every user is as the snapshot says."])
    if confirm is not None and not confirm(lines):
        raise Failure("Cancelled", "Nothing was changed", actions=["Run again and answer y, or pass --yes"])
    j.append(ROLLBACK, "start", users=todo)
    try:
        problems = _restore(runner, run, target_org, api, now, todo, ROLLBACK, "restore", delete_generated,
                            revoke=revoke)
    except _Stop as stop:
        raise _stopped(run, ROLLBACK, stop, len(runner.calls)) from None
    except KeyboardInterrupt:
        raise _interrupted(run, ROLLBACK, len(runner.calls)) from None
    try:
        after = _read(runner, run, target_org, planned)
    except Failure as exc:
        raise _stopped(run, ROLLBACK, _Stop("verify", SfError(exc.name, exc.message)), len(runner.calls)) from None
    report = []
    for uid in planned:
        diffs = differences_from_snapshot(after.users.get(uid), run.before[uid])
        report.append({"userId": uid, "username": names.get(uid, uid), "restored": not diffs, "differences": diffs,
                       "problems": problems.get(uid, [])})
    left = _leftover_access(run, after)
    j.append(ROLLBACK, "outcome", "verify", users=report, leftoverAccess=sorted(left))
    removed: dict[str, list[dict[str, str]]] = {"deleted": [], "kept": []}
    if delete_generated:
        progress("Deleting the generated profiles and groups no one uses (a destructive deploy)")
        removed = _delete_unused(runner, run, target_org, after)
        for r in j.of(ROLLBACK, "outcome", "restore:add"):      # the sets, deleted by REST with the restore
            for x in r.get("results", []):
                if x.get("kind") == "delete-permission-set":
                    (removed["deleted"] if x.get("ok") else removed["kept"]).append(
                        {"type": "PermissionSet", "name": x["name"],
                         **({} if x.get("ok") else {"reason": x.get("message") or x.get("code") or "refused"})})
    j.append(ROLLBACK, "end", complete=all(r["restored"] for r in report) and not left)
    failed = [r for r in report if not r["restored"]]
    result = {"runDir": str(folder), "restored": [r["username"] for r in report if r["restored"] and r["userId"] in todo],
              "alreadyRestored": [r["username"] for r in report if r["restored"] and r["userId"] not in todo],
              "failures": [{"username": r["username"], "message": "; ".join(r["problems"] or r["differences"]),
                            "differences": r["differences"]} for r in failed],
              "leftoverAccess": sorted(left), "removedNotPlanned": foreign,
              **({"note": note} if note else {}),
              **({"deleted": removed["deleted"], "kept": removed["kept"]} if delete_generated else {}),
              "journal": str(folder / runs.JOURNAL), "sfCalls": len(runner.calls)}
    return Outcome(result, exit_code(failed=bool(failed or left)), lines)


def _delete_unused(runner: SfRunner, run: Run, target_org: str | None, now: OrgNow) -> dict[str, list[dict[str, str]]]:
    """rollback --delete-generated, for what a REST delete can't remove: the API-only profiles and the
    rebuilt groups the plan generated, when no user holds them any more, in one destructive deploy
    (destructiveChanges.xml beside an empty package.xml: Metadata API Developer Guide, "Deleting
    Components from an Organization"). Returns what was deleted and what was kept, with why."""
    j = run.journal
    gen = [g for g in run.plan["generated"] if g["type"] in ("Profile", "PermissionSetGroup")]
    ids = {(g["type"], g["name"]): (now.profiles.get(g["name"].lower()) if g["type"] == "Profile"
                                     else now.groups.get(g["name"])) for g in gen}
    kept = [{"type": t, "name": n, "reason": "not in the org"} for (t, n), i in ids.items() if not i]
    present = {k: i for k, i in ids.items() if i}
    prof = [i for (t, _), i in present.items() if t == "Profile"]
    grp = [i for (t, _), i in present.items() if t == "PermissionSetGroup"]
    used: set[str] = set()
    try:
        for chunk in chunks(prof, 200):
            used |= {_id15(r["ProfileId"]) for r in commands.query(
                runner, f"SELECT ProfileId FROM User WHERE ProfileId IN {in_list(chunk)}", target_org)}
        for chunk in chunks(grp, 200):
            used |= {_id15(r["PermissionSetGroupId"]) for r in commands.query(
                runner, "SELECT PermissionSetGroupId FROM PermissionSetAssignment WHERE PermissionSetGroupId IN "
                f"{in_list(chunk)}", target_org)}
    except SfError as exc:
        raise _stopped(run, ROLLBACK, _Stop("delete-generated", exc), len(runner.calls)) from None
    kept += [{"type": t, "name": n, "reason": "still assigned" if t == "PermissionSetGroup" else "users still have it"}
             for (t, n), i in present.items() if _id15(i) in used]
    doomed = sorted((t, n) for (t, n), i in present.items() if _id15(i) not in used)
    if not doomed:
        return {"deleted": [], "kept": kept}
    members: dict[str, list[str]] = {}
    for t, n in doomed:
        members.setdefault(t, []).append(n)
    version = run.plan["org"]["apiVersion"]
    j.append(ROLLBACK, "intent", "delete-generated", records=[{"type": t, "name": n} for t, n in doomed])
    with tempfile.TemporaryDirectory(prefix=f"destroy-{os.getpid()}-", dir=tempfiles.private_dir()) as tmp:
        folder = Path(tmp) / "destroy"
        folder.mkdir()
        (folder / "package.xml").write_bytes(package_xml.build({}, version))
        (folder / "destructiveChanges.xml").write_bytes(package_xml.build(members, version))
        try:
            res = commands.deploy(runner, folder, target_org)
        except SfError as exc:
            raise _stopped(run, ROLLBACK, _Stop("delete-generated", exc), len(runner.calls)) from None
    failed = {(f.type, f.name): f.problem for f in res.failures}
    # rollbackOnError (sf's default): one refusal keeps them all
    deleted = [{"type": t, "name": n} for t, n in doomed if res.success and (t, n) not in failed]
    kept += [{"type": t, "name": n, "reason": failed.get((t, n)) or "the destructive deploy failed, so nothing "
              "was deleted"} for t, n in doomed if not res.success or (t, n) in failed]
    j.append(ROLLBACK, "outcome", "delete-generated", ok=res.success, id=res.id, deleted=deleted, kept=kept)
    return {"deleted": deleted, "kept": kept}


def _leftover_access(run: Run, now: OrgNow) -> list[str]:
    """SetupEntityAccess rows the apply made: those its journal names, and those on the permission sets
    this plan generated that did not exist at plan time (any grant there is the apply's) for the
    entities the plan grants on them."""
    created = set(run.journal.created_access())
    out = {rid for rid in now.access.values() if rid in created}
    new_sets = {g["name"] for g in run.plan["generated"] if g["type"] == "PermissionSet" and not g["exists"]}
    for u in run.users:
        for a in u.get("to", {}).get("access", []):
            ps = now.sets.get(a["permissionSet"])
            if a["permissionSet"] in new_sets and ps is not None:
                rid = now.access.get((_id15(ps["Id"]), _id15(a["entityId"])))
                if rid:
                    out.add(rid)
    return sorted(out)


# --- verify -------------------------------------------------------------------------------------


def verify(runner: SfRunner, folder: Path, target_org: str | None, progress: Progress = _noop) -> Outcome:
    run = open_run(folder)
    users = run.users
    progress(f"Reading {len(users)} user(s), their access and the generated sets in the org")
    now = _read(runner, run, target_org, [u["id"] for u in users])
    empty = _empty_sets(run)
    report = []
    for u in users:
        diffs = differences_from_target(now.users.get(u["id"]), u, now, empty, run.before.get(u["id"]))
        report.append({"username": u["username"], "reached": not diffs, "differences": diffs})
    result = {"runDir": str(folder), "users": report, "reached": sum(r["reached"] for r in report),
              "differ": sum(not r["reached"] for r in report), "sfCalls": len(runner.calls)}
    return Outcome(result, exit_code(failed=not all(r["reached"] for r in report)))
