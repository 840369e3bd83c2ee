"""The write side: ``apply`` a run folder's plan, ``verify`` it, ``rollback`` to its snapshot.

Every step reads the org first and does only what is missing, so a step cut off by a crash is
checked against the org before it is done again (the journal says which steps were cut off), and
running a command twice is harmless. The number of sf calls does not grow with the users: one
Composite Batch reads the state of up to 300 users, and writes go as sObject Collections of 200
records, five to a Composite call (:func:`sf_intuser.sf.commands.writes`).

apply: read (1 call) → create API-only profiles (1, when any) → validate the deploy (1) → deploy
(1) → switch profiles, and so licenses (1 per 1,000 users) → permission set license, sets,
groups, connected-app access, package licenses (1 per five collections) → read and verify (1). The
users are read again right before the switch when apply created or deployed anything since its first
read; a resume that finds the deploy in the org goes from its first read to the switch.

A user the org refuses to move (a license change refused, no seat left) is reported with the way
forward and the others go on; a user that moved but whose access can't be given back is put back
as the snapshot says, so no user is left between the two. A permission the license refuses on
assignment ("The user license doesn't allow the permission: Z") is dropped from the generated set,
recorded in the journal, redeployed and the assignment retried, up to ``MAX_AMEND_ROUNDS`` times.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sf_intuser import runs, tempfiles
from sf_intuser.errors import Failure
from sf_intuser.metadata import license_rules as rules
from sf_intuser.metadata import package_xml
from sf_intuser.report.output import exit_code
from sf_intuser.metadata.xml import children, local, parse, serialize, text
from sf_intuser.runs.journal import Journal
from sf_intuser.org import snapshot as snapshot_mod
from sf_intuser.runs import snapshot as snapshot_files
from sf_intuser.sf import commands
from sf_intuser.sf.runner import SfError, SfRunner
from sf_intuser.sf.soql import chunks, in_list, quote
from sf_intuser.sf.soql import field_path as _rel

APPLY, ROLLBACK = "apply", "rollback"
MAX_AMEND_ROUNDS = 3
#: seconds after which apply reads the users again before switching them, though it wrote nothing since
#: its first read (a confirmation prompt, say, stood in between)
REREAD_AFTER = 2.0
IDS_PER_QUERY = 300
#: the org's answer when an assignment needs a permission the user's licenses don't allow
#: (Veeva KB 115003888654; docs/salesforce-facts.md A2)
REFUSED_PERMISSION = re.compile(r"doesn't allow the permission:?\s*([A-Za-z0-9_]+)")
#: KB 000386999 (docs/salesforce-facts.md A3): a profile change across licenses refused
REFUSED_LICENSE_CHANGE = "profile of the current license"
NEW_USER_FIX = ("Create a new user on the Salesforce Integration license with the profile {profile} and the "
                "permission sets {sets}, move the integration's credentials (connected app, named credential or "
                "run-as user) to it, then deactivate {user} to free its seat")

Progress = Callable[[str], None]


def _noop(_message: str) -> None:
    return None


def _id15(value: Any) -> str:
    return str(value or "")[:15]


def _assignment(user_id: str, field: str, target_id: str, expires: str | None) -> dict[str, Any]:
    """A PermissionSetAssignment record: ``field`` is PermissionSetId or PermissionSetGroupId."""
    rec = {"AssigneeId": user_id, field: target_id}
    if expires:
        rec["ExpirationDate"] = expires
    return rec


# --- the run folder ----------------------------------------------------------------------------


@dataclass
class Run:
    folder: Path
    plan: dict[str, Any]
    journal: Journal

    @property
    def users(self) -> list[dict[str, Any]]:
        return [u for u in self.plan["users"] if u["status"] == "planned"]

    @property
    def before(self) -> dict[str, dict[str, Any]]:
        return {u["userId"]: u for u in self.plan["rollback"]["users"]}

    def step(self, action: str) -> dict[str, Any] | None:
        return next((s for s in self.plan["steps"] if s["action"] == action), None)

    def label(self) -> str:
        org = self.plan["org"]
        return str(org.get("alias") or org.get("username") or org["id"])


def open_run(folder: Path) -> Run:
    """A planned run folder after checking the plan's and the snapshot's checksums and reading the
    journal whole. Raises :class:`Failure` naming the file and the fix."""
    try:
        plan = runs.check(folder)
        snapshot_files.load(folder)
        journal = Journal.load(folder)
    except runs.RunError as exc:
        raise Failure(exc.name, exc.message + "; nothing was changed", actions=exc.actions) from None
    except snapshot_mod.SnapshotError as exc:
        raise Failure(exc.name, exc.message + "; nothing was changed", actions=exc.actions) from None
    return Run(folder, plan, journal)


# --- the org as it is now ----------------------------------------------------------------------


@dataclass
class UserNow:
    id: str
    username: str
    active: bool
    profile_id: str
    profile: str
    license: str
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)      # name -> {id, psId, expires}
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)    # developer name -> {id, groupId, expires}
    psls: dict[str, dict[str, Any]] = field(default_factory=dict)      # PSL id[:15] -> {id, name}
    packages: dict[str, str] = field(default_factory=dict)   # PackageLicense id[:15] -> UPL id
    role_id: str | None = None
    features: set[str] = field(default_factory=set)          # UserPermissions<X> fields set
    memberships: dict[str, str] = field(default_factory=dict)  # Group id[:15] -> GroupMember id


@dataclass
class OrgNow:
    org_id: str
    users: dict[str, UserNow]
    profiles: dict[str, str]          # name lower -> id
    sets: dict[str, dict[str, Any]]             # name -> {Id, LicenseId}
    groups: dict[str, str]            # developer name -> id
    psl_id: str | None
    access: dict[tuple[str, str], str]   # (parent id[:15], entity id[:15]) -> SetupEntityAccess id


def read_now(runner: SfRunner, target_org: str | None, api_version: str, user_ids: Iterable[str],
             profiles: Iterable[str], sets: Iterable[str], groups: Iterable[str],
             features: Iterable[str] = ()) -> OrgNow:
    """One Composite Batch (for up to 300 users; one more per 300): the users (with their role and the
    feature license fields ``features``, which the snapshot found in the org's User describe), their
    assignments of every kind and group memberships, the profiles, permission sets and groups by name,
    the integration PSL, and the SetupEntityAccess rows of the named sets."""
    ids = sorted(set(user_ids))
    q: dict[str, str] = {"org": "SELECT Id FROM Organization"}
    extra = "".join(", " + f for f in sorted(set(features)))
    for i, g in enumerate(chunks(ids, IDS_PER_QUERY)):
        u = in_list(g)
        q[f"users{i}"] = f"SELECT Id, Username, IsActive, ProfileId, Profile.Name, Profile.UserLicense.Name, " \
                         f"UserRoleId{extra} FROM User WHERE Id IN {u}"
        q[f"members{i}"] = f"SELECT Id, GroupId, UserOrGroupId FROM GroupMember WHERE UserOrGroupId IN {u}"
        q[f"psa{i}"] = ("SELECT Id, AssigneeId, PermissionSetId, PermissionSet.Name, PermissionSet.IsOwnedByProfile, "
                        "PermissionSetGroupId, PermissionSetGroup.DeveloperName, ExpirationDate FROM "
                        f"PermissionSetAssignment WHERE AssigneeId IN {u}")
        q[f"psla{i}"] = ("SELECT Id, AssigneeId, PermissionSetLicenseId, PermissionSetLicense.DeveloperName FROM "
                         f"PermissionSetLicenseAssign WHERE AssigneeId IN {u}")
        q[f"upl{i}"] = f"SELECT Id, UserId, PackageLicenseId FROM UserPackageLicense WHERE UserId IN {u}"
    names = sorted(set(sets))
    for i, g in enumerate(chunks(sorted(set(profiles)), IDS_PER_QUERY)):
        q[f"profiles{i}"] = f"SELECT Id, Name FROM Profile WHERE Name IN {in_list(g)}"
    for i, g in enumerate(chunks(names, IDS_PER_QUERY)):
        q[f"sets{i}"] = ("SELECT Id, Name, LicenseId FROM PermissionSet WHERE IsOwnedByProfile = false AND Name IN "
                         f"{in_list(g)}")
        q[f"access{i}"] = ("SELECT Id, ParentId, SetupEntityId FROM SetupEntityAccess WHERE ParentId IN (SELECT Id "
                           f"FROM PermissionSet WHERE Name IN {in_list(g)})")
    for i, g in enumerate(chunks(sorted(set(groups)), IDS_PER_QUERY)):
        q[f"groups{i}"] = f"SELECT Id, DeveloperName FROM PermissionSetGroup WHERE DeveloperName IN {in_list(g)}"
    q["psl"] = f"SELECT Id FROM PermissionSetLicense WHERE DeveloperName = {quote(rules.INTEGRATION_PSL)}"
    r = commands.query_all(runner, q, target_org, api_version)

    def rows(prefix: str) -> list[dict[str, Any]]:
        return [x for k in sorted(r) if k.startswith(prefix) and k[len(prefix):].isdigit() for x in r[k]]

    users = {x["Id"]: UserNow(x["Id"], str(x.get("Username")), bool(x.get("IsActive")), str(x.get("ProfileId")),
                              str(_rel(x, "Profile.Name")), str(_rel(x, "Profile.UserLicense.Name")),
                              role_id=x.get("UserRoleId"), features={f for f in features if x.get(f)})
             for x in rows("users")}
    for x in rows("members"):
        if x.get("UserOrGroupId") in users:
            users[x["UserOrGroupId"]].memberships[_id15(x.get("GroupId"))] = x["Id"]
    for x in rows("psa"):
        who = users.get(x.get("AssigneeId"))
        if who is None or _rel(x, "PermissionSet.IsOwnedByProfile"):
            continue   # a profile's own set is never an assignment of ours (KB 000394118)
        if x.get("PermissionSetGroupId"):
            who.groups[str(_rel(x, "PermissionSetGroup.DeveloperName"))] = {
                "id": x["Id"], "groupId": x["PermissionSetGroupId"], "expires": x.get("ExpirationDate")}
        else:
            who.sets[str(_rel(x, "PermissionSet.Name"))] = {"id": x["Id"], "psId": x.get("PermissionSetId"),
                                                          "expires": x.get("ExpirationDate")}
    for x in rows("psla"):
        if x.get("AssigneeId") in users:
            users[x["AssigneeId"]].psls[_id15(x.get("PermissionSetLicenseId"))] = {
                "id": x["Id"], "name": _rel(x, "PermissionSetLicense.DeveloperName")}
    for x in rows("upl"):
        if x.get("UserId") in users:
            users[x["UserId"]].packages[_id15(x.get("PackageLicenseId"))] = x["Id"]
    orgs = r.get("org") or [{}]
    psl = r.get("psl") or []
    return OrgNow(str(orgs[0].get("Id", "")), users,
                  {str(x["Name"]).lower(): x["Id"] for x in rows("profiles")},
                  {str(x["Name"]): {"Id": x["Id"], "LicenseId": x.get("LicenseId")} for x in rows("sets")},
                  {str(x["DeveloperName"]): x["Id"] for x in rows("groups")},
                  psl[0]["Id"] if psl else None,
                  {(_id15(x.get("ParentId")), _id15(x.get("SetupEntityId"))): x["Id"] for x in rows("access")})


def _names(run: Run) -> tuple[set[str], set[str], set[str]]:
    """Profiles, permission sets and groups a read must resolve: the snapshot's and the plan's."""
    profiles, sets, groups = set(), set(), set()
    for u in run.users:
        profiles.add(u["to"]["profile"])
        sets |= {a["permissionSet"] for a in u["to"]["assign"]}
        groups |= {g["group"] for g in u["to"]["groups"]}
    for b in run.plan["rollback"]["users"]:
        profiles.add(b["profile"])
        sets |= {p["name"] for p in b["permissionSets"]}
        groups |= {g["name"] for g in b["groups"]}
    sets |= {g["name"] for g in run.plan["generated"] if g["type"] == "PermissionSet"}
    groups |= {g["name"] for g in run.plan["generated"] if g["type"] == "PermissionSetGroup"}
    return profiles, sets, groups


def _features(run: Run) -> set[str]:
    """The feature license fields the snapshot's users hold (fields the org's User describe listed)."""
    return {f for b in run.plan["rollback"]["users"] for f in b.get("featureLicenses") or ()}


def _read(runner: SfRunner, run: Run, target_org: str | None, user_ids: Iterable[str]) -> OrgNow:
    profiles, sets, groups = _names(run)
    try:
        now = read_now(runner, target_org, run.plan["org"]["apiVersion"], user_ids, profiles, sets, groups,
                       _features(run))
    except SfError as exc:
        raise Failure(exc.name, f"The org could not be read: {exc.message}; nothing was changed",
                      exc.exit_code or 1, exc.actions) from None
    if _id15(now.org_id) != _id15(run.plan["org"]["id"]):
        raise Failure("WrongOrg", f"{run.folder} was planned for the org {run.label()} ({run.plan['org']['id']}), but "
                      f"{target_org or 'the default org'} is {now.org_id}: nothing was changed",
                      actions=[f"Name the planned org: -o {run.label()}",
                               "Or plan for this org: sf-intuser plan -o " + (target_org or "ALIAS")])
    return now


# --- comparisons -------------------------------------------------------------------------------


def differences_from_snapshot(now: UserNow | None, before: dict[str, Any]) -> list[str]:
    """What differs between a user in the org and the same user in the snapshot."""
    if now is None:
        return ["the user no longer exists"]
    out = []
    if _id15(now.profile_id) != _id15(before["profileId"]):
        out.append(f"profile {before['profile']} → {now.profile}")
    was = {p["name"] for p in before["permissionSets"]}
    out += [f"permission set {n} removed" for n in sorted(was - set(now.sets))]
    out += [f"permission set {n} added" for n in sorted(set(now.sets) - was)]
    was_g = {g["name"] for g in before["groups"]}
    out += [f"group {n} removed" for n in sorted(was_g - set(now.groups))]
    out += [f"group {n} added" for n in sorted(set(now.groups) - was_g)]
    was_l = {_id15(p["permissionSetLicenseId"]): p["name"] for p in before["permissionSetLicenses"]}
    out += [f"permission set license {was_l[k]} removed" for k in sorted(set(was_l) - set(now.psls))]
    out += [f"permission set license {now.psls[k]['name']} added" for k in sorted(set(now.psls) - set(was_l))]
    was_p = {_id15(p["packageLicenseId"]): p["namespace"] for p in before["packageLicenses"]}
    out += [f"package license {was_p[k]} removed" for k in sorted(set(was_p) - set(now.packages))]
    out += [f"package license {k} added" for k in sorted(set(now.packages) - set(was_p))]
    return out + _record_differences(now, before, exact=True)


def _record_differences(now: UserNow, before: dict[str, Any], exact: bool) -> list[str]:
    """Role, public group and queue memberships, and (``exact``) feature licenses against the snapshot.
    A snapshot taken before these were read has none of the keys, and nothing is compared."""
    out = []
    if "roleId" in before and _id15(now.role_id) != _id15(before["roleId"]):
        out.append(f"role {before.get('role') or 'none'} is now {now.role_id or 'none'}")
    was_m = {_id15(m["groupId"]): m["name"] for m in before.get("memberships") or ()}
    out += [f"member of {was_m[k]} no more" for k in sorted(set(was_m) - set(now.memberships))]
    if exact:   # a group or queue joined since the snapshot: a change too (a license change may take it away)
        out += [f"member of group {k} added" for k in sorted(set(now.memberships) - set(was_m))]
    if exact and "featureLicenses" in before:
        was_f = set(before["featureLicenses"])
        out += [f"feature license {f[len('UserPermissions'):]} removed" for f in sorted(was_f - now.features)]
        out += [f"feature license {f[len('UserPermissions'):]} added" for f in sorted(now.features - was_f)]
    return out


def differences_from_target(now: UserNow | None, user: dict[str, Any], org: OrgNow, empty: set[str],
                            before: dict[str, Any] | None = None) -> list[str]:
    """What differs between a user in the org and the plan's target for it (``empty``: generated sets
    left unassigned because nothing remained in them)."""
    if now is None:
        return ["the user no longer exists"]
    to = user["to"]
    out = []
    if (_id15(now.profile_id) != _id15(to["profileId"])) if to.get("profileId") else \
            now.profile.lower() != to["profile"].lower():
        out.append(f"profile is {now.profile}, planned {to['profile']}")
    if now.license != to["license"]:
        out.append(f"license is {now.license}, planned {to['license']}")
    if org.psl_id is None or _id15(org.psl_id) not in now.psls:
        out.append(f"permission set license {rules.INTEGRATION_PSL} missing")
    want = {a["permissionSet"] for a in to["assign"]} - empty
    out += [f"permission set {n} missing" for n in sorted(want - set(now.sets))]
    out += [f"permission set {n} not planned" for n in sorted(set(now.sets) - want)]
    want_g = {g["group"] for g in to["groups"]}
    out += [f"group {n} missing" for n in sorted(want_g - set(now.groups))]
    out += [f"group {n} not planned" for n in sorted(set(now.groups) - want_g)]
    for a in to["access"]:
        ps = org.sets.get(a["permissionSet"])
        if a["permissionSet"] not in empty and (ps is None or (_id15(ps["Id"]), _id15(a["entityId"])) not in org.access):
            out.append(f"access to {a['entity']} missing on {a['permissionSet']}")
    for p in user.get("packages", []):
        if _id15(p["packageLicenseId"]) not in now.packages:
            out.append(f"package license {p['namespace']} missing")
    # role and memberships as before the move; feature licenses the license refuses are reported, not a difference
    return out + (_record_differences(now, before, exact=False) if before else [])


# --- metadata with the journal's amendments ----------------------------------------------------


META_ONLY = {"description", "hasActivationRequired", "label", "license", "userLicense"}


def grants_anything(data: bytes, name: str) -> bool:
    """Whether a permission set still grants something (any entry with a true flag)."""
    root = parse(data, f"PermissionSet {name}").root
    for entry in children(root):
        if local(entry) in META_ONLY:
            continue
        if any((el.text or "").strip() == "true" for el in entry.iter() if isinstance(el.tag, str)):
            return True
    return False


def amended(data: bytes, name: str, drop: set[str]) -> bytes:
    """A generated permission set without the user permissions in ``drop``."""
    root = parse(data, f"PermissionSet {name}").root
    for entry in list(children(root, "userPermissions")):
        if text(entry, "name") in drop:
            root.remove(entry)
    return serialize(root)


def deploy_folder(run: Run, into: Path) -> tuple[Path, set[str]]:
    """The run's metadata/ copied into ``into`` with the journal's amendments made; returns the folder
    and the generated sets that no longer grant anything."""
    src = run.folder / runs.METADATA
    dst = into / "metadata"
    shutil.copytree(src, dst)
    empty: set[str] = set()
    for name, drop in run.journal.amendments().items():
        g = next((x for x in run.plan["generated"] if x["type"] == "PermissionSet" and x["name"] == name), None)
        if g is None:
            continue
        path = dst / g["file"][len(runs.METADATA) + 1:]
        data = amended(path.read_bytes(), name, drop)
        path.write_bytes(data)
        if not grants_anything(data, name):
            empty.add(name)
    return dst, empty


def _empty_sets(run: Run) -> set[str]:
    with tempfile.TemporaryDirectory(prefix=f"deploy-{os.getpid()}-", dir=tempfiles.private_dir()) as tmp:
        return deploy_folder(run, Path(tmp))[1]


# --- outcome ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    result: dict[str, Any]
    exit_code: int
    lines: list[str] = field(default_factory=list)


class _Stop(Exception):
    """A whole call failed: the run stops, the journal says where."""

    def __init__(self, step: str, exc: SfError) -> None:
        super().__init__(exc.message)
        self.step = step
        self.exc = exc


def _stopped(run: Run, kind: str, stop: _Stop, calls: int) -> Failure:
    run.journal.append(kind, "stopped", stop.step, error={"name": stop.exc.name, "message": stop.exc.message})
    verb = "apply" if kind == APPLY else "rollback"
    actions = [f"Continue: sf-intuser {verb} {run.folder}" + (" --resume" if kind == APPLY else ""),
               *(["Or put every user back: sf-intuser rollback " + str(run.folder)] if kind == APPLY else []),
               *stop.exc.actions]
    return Failure("ApplyStopped" if kind == APPLY else "RollbackStopped",
                   f"{verb} stopped at the step {stop.step}: {stop.exc.message}. The journal "
                   f"({run.folder / runs.JOURNAL}) says what was done", stop.exc.exit_code or 1, actions,
                   data={"step": stop.step, "sfCalls": calls})


#: 128 + SIGINT, as a shell reports a command Ctrl-C stopped
EXIT_INTERRUPTED = 130


def _interrupted(run: Run, kind: str, calls: int) -> Failure:
    """Ctrl-C during apply or rollback: said as any stopped run is, naming the step. The step it cut
    off keeps its open intent in the journal (no "stopped" record), so going on checks it against the
    org first, as after a crash."""
    open_steps = [r["step"] for r in run.journal.cut_off(kind)]
    step = open_steps[-1] if open_steps else "between two steps"
    verb = "apply" if kind == APPLY else "rollback"
    org = f" -o {run.label()}"
    actions = [f"Continue: sf-intuser {verb} {run.folder}" + (" --resume" if kind == APPLY else "") + org,
               *([f"Or put every user back: sf-intuser rollback {run.folder}{org}"] if kind == APPLY else [])]
    return Failure("ApplyStopped" if kind == APPLY else "RollbackStopped",
                   f"{verb} stopped (Ctrl-C) at the step {step}. The journal ({run.folder / runs.JOURNAL}) says "
                   "what was done; the step it cut off is checked against the org when you go on",
                   EXIT_INTERRUPTED, actions, data={"step": step, "sfCalls": calls, "interrupted": True})


def _writes(runner: SfRunner, step: str, ops: list[commands.Write], target_org: str | None,
            api: str) -> dict[str, list[commands.RecordResult]]:
    try:
        return commands.writes(runner, [o for o in ops if o.records], target_org, api) | \
            {o.key: [] for o in ops if not o.records}
    except SfError as exc:
        raise _Stop(step, exc) from None


def _ok(r: commands.RecordResult) -> bool:
    # an assignment that is already there is what was wanted (docs/sf-wire.md section 8: DUPLICATE_VALUE)
    return r.success or r.code == "DUPLICATE_VALUE"


# --- apply --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(folder: Path, command: str) -> Iterator[None]:
    """The run folder's lock (:class:`runs.RunLock`) for the whole of ``command``."""
    try:
        lock = runs.RunLock(folder, command).__enter__()
    except runs.RunError as exc:
        raise Failure(exc.name, exc.message, actions=exc.actions) from None
    try:
        yield
    finally:
        lock.__exit__()


def apply(runner: SfRunner, folder: Path, target_org: str | None, *, resume: bool = False,
          confirm: Callable[[list[str]], bool] | None = None, progress: Progress = _noop,
          dry_run: bool = False) -> Outcome:
    """Carry out the run's plan. ``dry_run``: every check apply makes before it changes anything (the run
    folder, the org, drift since the plan), then the deploy validated check-only; nothing is changed in
    the org or written to the run folder."""
    open_run(folder)   # a folder that is no run folder is named as such before anything is written to it
    with _locked(folder, "apply"):
        return _apply_locked(runner, folder, target_org, resume=resume, confirm=None if dry_run else confirm,
                             progress=progress, dry_run=dry_run)


def _plan_again(run: Run) -> str:
    """The command that plans the run's users again, as a hint prints it (runnable as it stands)."""
    return "sf-intuser plan " + " ".join(f"-u {u['username']}" for u in run.users) + f" -o {run.label()}"


def _apply_locked(runner: SfRunner, folder: Path, target_org: str | None, *, resume: bool,
                  confirm: Callable[[list[str]], bool] | None, progress: Progress, dry_run: bool = False) -> Outcome:
    run = open_run(folder)
    j = run.journal
    _refuse_forged(run)
    if j.of(ROLLBACK):
        raise Failure("RolledBack", f"{folder} was rolled back: a rolled-back run is not applied again; nothing was "
                      "changed", actions=[f"Plan again into a new run folder: {_plan_again(run)}"])
    finished = j.finished(APPLY)
    retry = _retryable(j) if finished is not None else set()
    if finished is not None and not (resume and retry):
        raise Failure("AlreadyApplied", f"{folder} was applied at {finished['at']}: nothing was changed",
                      actions=[f"Check it: sf-intuser verify {folder} -o {run.label()}",
                               f"Read it: sf-intuser report {folder}",
                               f"Undo it: sf-intuser rollback {folder} -o {run.label()}"]
                      + ([f"Move the users who had no seat or could not move: sf-intuser apply {folder} --resume "
                            f"-o {run.label()}"]
                         if retry else []))
    started = bool(j.of(APPLY, "start"))
    if started and not resume:
        raise Failure("ApplyUnfinished", f"{folder} holds an apply that did not finish; nothing was changed",
                      actions=[f"Continue it: sf-intuser apply {folder} --resume -o {run.label()}",
                               f"Or undo it: sf-intuser rollback {folder} -o {run.label()}"])
    api = run.plan["org"]["apiVersion"]
    users = run.users
    progress(f"Reading {len(users)} user(s) in the org")
    now = _read(runner, run, target_org, [u["id"] for u in users])
    read_at = time.monotonic()
    # a user the journal does not show moving (or cut off while moving) must still be as the snapshot says;
    # one already on its planned profile was moved by this plan (its journal lost or cut): it is resumed
    touched = j.moving_users() | _on_target(run, now)
    drift = {u["username"]: d for u in users if u["id"] not in touched
             for d in [differences_from_snapshot(now.users.get(u["id"]), run.before[u["id"]])] if d}
    if drift:
        raise Failure("OrgDrifted", "The org changed since the plan: " + "; ".join(
            f"{k}: {', '.join(v)}" for k, v in sorted(drift.items())) + ". Nothing was changed",
            actions=["Plan again so the plan starts from the org as it is: sf-intuser plan -u " +
                     " -u ".join(sorted(drift)) + f" -o {run.label()}"], data={"drift": drift})
    cut = j.cut_off(APPLY)
    lines = [f"Apply {folder} to {run.label()} ({now.org_id})" + (" (resuming)" if started else ""),
             f"  {len(users)} user(s) move to the Salesforce Integration license: " +
             ", ".join(u["username"] for u in users),
             f"  {len(run.plan['generated'])} component(s) deployed from metadata/"]
    if cut:
        lines.append("  cut off last time (checked against the org first): " + ", ".join(r["step"] for r in cut))
    if dry_run:
        return _dry_run(runner, run, target_org, now, progress, lines)
    if confirm is not None and not confirm(lines):
        raise Failure("Cancelled", "Nothing was changed", actions=["Run again and answer y, or pass --yes"])
    j.append(APPLY, "start", resume=started, users=[u["id"] for u in users])
    try:
        return _apply(runner, run, target_org, api, now, progress, lines, read_at)
    except _Stop as stop:
        raise _stopped(run, APPLY, stop, len(runner.calls)) from None
    except KeyboardInterrupt:
        raise _interrupted(run, APPLY, len(runner.calls)) from None


def _apply(runner: SfRunner, run: Run, target_org: str | None, api: str, now: OrgNow, progress: Progress,
           lines: list[str], read_at: float) -> Outcome:
    j = run.journal
    users = run.users
    by_id = {u["id"]: u for u in users}

    # 1. API-only profiles as records (their login ranges and hours come with the deploy)
    step = run.step("create-profiles")
    missing = [r for r in (step["records"] if step else []) if r["Name"].lower() not in now.profiles]
    if missing:
        progress(f"Creating {len(missing)} API-only profile(s)")
        j.append(APPLY, "intent", "create-profiles", records=[{"Name": r["Name"]} for r in missing])
        # with the description that marks it as sf-intuser's (Profile.Description is createable: Object
        # Reference, Profile), so a later plan reuses it rather than making another
        res = _writes(runner, "create-profiles", [commands.Write("p", "POST", "Profile", [
            {"Name": r["Name"], "UserLicenseId": r["UserLicenseId"],
             **({"Description": r["Description"]} if r.get("Description") else {})} for r in missing])],
            target_org, api)["p"]
        j.append(APPLY, "outcome", "create-profiles", results=[
            {"name": r["Name"], "ok": x.success, "id": x.id, "code": x.code, "message": x.message}
            for r, x in zip(missing, res)])
        bad = [(r, x) for r, x in zip(missing, res) if not x.success]
        if bad:
            raise _Stop("create-profiles", SfError(bad[0][1].code or "ProfileNotCreated",
                                                   f"profile {bad[0][0]['Name']}: {bad[0][1].message}"))
        now.profiles.update({r["Name"].lower(): x.id for r, x in zip(missing, res) if x.id})

    # 2. validate, then deploy (rollback on error: all or nothing)
    done_deploy = _deploy_done(run, now)
    if not done_deploy:
        _deploy(runner, run, target_org, now, progress, validate=True)
    wrote = bool(missing) or not done_deploy    # anything written since ``now`` was read

    # every moving user read again right before the switch (one call for all): a change made while the
    # apply ran (a permission set assigned during the deploy, say) would be stripped by the license change
    # and lost, so such a user is held back unmoved and reported; the others go on. A resume that had
    # nothing to create or deploy read the org a moment ago (no prompt in between): that read serves
    fresh = now if not wrote and time.monotonic() - read_at < REREAD_AFTER else \
        _read(runner, run, target_org, [u["id"] for u in users])
    now.sets.update(fresh.sets)
    now.groups.update(fresh.groups)
    now.access.update(fresh.access)
    moving = j.moving_users() | _on_target(run, fresh)
    changed: dict[str, list[str]] = {}
    for u in users:
        if fresh.users.get(u["id"]) is not None:
            now.users[u["id"]] = fresh.users[u["id"]]
        if u["id"] not in moving:
            diffs = differences_from_snapshot(fresh.users.get(u["id"]), run.before[u["id"]])
            if diffs:
                changed[u["id"]] = diffs

    # 3. switch profiles, and so licenses
    targets = {}
    for u in users:
        pid = u["to"].get("profileId") or now.profiles.get(u["to"]["profile"].lower())
        if pid is None:
            raise _Stop("switch-profiles", SfError("ProfileNotFound", f"profile {u['to']['profile']} is not in the "
                                                   "org after the deploy"))
        targets[u["id"]] = pid
    failures: dict[str, dict[str, Any]] = {uid: {
        "username": by_id[uid]["username"], "outcome": "changed during the run",
        "reason": "its access changed while apply ran (" + "; ".join(d) + "); moving it now would lose that",
        "fix": f"Plan again for this user so the plan includes the change: sf-intuser plan -u {by_id[uid]['username']}"
               f" -o {run.label()}"} for uid, d in changed.items()}
    # every set and group a user gets must be in the org by id before the user moves
    for u in users:
        lost = [a["permissionSet"] for a in u["to"]["assign"] if a["permissionSet"] not in now.sets] + \
            [g["group"] for g in u["to"]["groups"] if g["group"] not in now.groups]
        if lost and u["id"] not in failures:
            failures[u["id"]] = {"username": u["username"], "outcome": "not moved",
                                 "reason": f"{', '.join(lost)} is not in the org after the deploy",
                                 "fix": "Deploy metadata/ of the run folder by hand to see why, then plan again"}
    to_switch = [u for u in users if now.users.get(u["id"]) is not None and u["id"] not in failures
                 and _id15(now.users[u["id"]].profile_id) != _id15(targets[u["id"]])]
    switched: set[str] = set()
    if to_switch:
        progress(f"Moving {len(to_switch)} user(s) to their API-only profile")
        j.append(APPLY, "intent", "switch-profiles", records=[
            {"userId": u["id"], "user": u["username"], "profileId": targets[u["id"]]} for u in to_switch])
        # feature licenses go with the switch (a license that can't hold them may clear them or refuse the
        # switch: [U]); the grant step sets them again where the new license allows
        res = _writes(runner, "switch-profiles", [commands.Write("u", "PATCH", "User", [
            {"Id": u["id"], "ProfileId": targets[u["id"]],
             **{f: False for f in sorted(now.users[u["id"]].features)}} for u in to_switch])], target_org, api)["u"]
        j.append(APPLY, "outcome", "switch-profiles", results=[
            {"userId": u["id"], "ok": x.success, "code": x.code, "message": x.message} for u, x in zip(to_switch, res)])
        for u, x in zip(to_switch, res):
            if x.success:
                switched.add(u["id"])
                now.users[u["id"]].features = set()
            else:
                failures[u["id"]] = _switch_failure(u, x)
    moved = [u for u in users if u["id"] not in failures and now.users.get(u["id"]) is not None]

    # 4. access again: PSL, sets, groups, connected apps, package licenses
    empty = _empty_sets(run)
    not_kept: dict[str, dict[str, Any]] = {}    # user id -> {feature: why}: feature licenses the new license refused
    for round_ in range(MAX_AMEND_ROUNDS + 1):
        ids = _component_ids(run, now)
        ops, meta = _grant_ops(run, now, moved, switched, ids, empty, not_kept)
        if not any(o.records for o in ops):
            break
        progress(f"Giving access back to {len({m['userId'] for m in meta if m.get('userId')})} user(s)")
        j.append(APPLY, "intent", "grant", records=meta)
        granted = _writes(runner, "grant", ops, target_org, api)
        flat = [x for o in ops for x in granted[o.key]]
        j.append(APPLY, "outcome", "grant", results=[
            {**{k: m[k] for k in ("kind", "userId", "name") if k in m}, "ok": _ok(x), "id": x.id, "code": x.code,
             "message": x.message} for m, x in zip(meta, flat)])
        _record_grants(now, meta, flat, ids)
        drops: dict[str, set[str]] = {}
        retry_role = False
        for m, x in zip(meta, flat):
            if _ok(x):
                continue
            if m["kind"] == "user-record":
                # refused for its feature licenses (the only part a license can refuse): those are not kept,
                # and a role in the same record goes again on its own in the next round
                not_kept[m["userId"]] = {f: x.message or x.code for f in m["fields"]}
                retry_role = retry_role or bool(m.get("roleId") and m["fields"])
                continue
            hit = REFUSED_PERMISSION.search(x.message)
            generated = {g["name"] for g in run.plan["generated"] if g["type"] == "PermissionSet"}
            if m["kind"] == "set" and hit and m["name"] in generated and round_ < MAX_AMEND_ROUNDS:
                drops.setdefault(m["name"], set()).add(hit.group(1))
            elif m.get("userId"):
                failures.setdefault(m["userId"], {
                    "username": by_id[m["userId"]]["username"], "outcome": "put back",
                    "reason": f"{m['kind']} {m['name']}: {x.message or x.code}",
                    "fix": "See the reason; fix it in the org or the plan, then plan again for this user"})
        if not drops:
            if retry_role and round_ < MAX_AMEND_ROUNDS:
                continue
            break
        for name, perms in sorted(drops.items()):
            for p in sorted(perms):
                j.append(APPLY, "amend", "grant", permissionSet=name, permission=p,
                         reason=f"The user license doesn't allow the permission: {p}")
        progress("Dropping " + "; ".join(f"{', '.join(sorted(v))} from {k}" for k, v in sorted(drops.items())) +
                 " and deploying again")
        _deploy(runner, run, target_org, now, progress, validate=False)
        empty = _empty_sets(run)

    # a user that moved but could not get its access back is put back as the snapshot says
    put_back = [by_id[uid] for uid, f in failures.items() if f["outcome"] == "put back"]
    if put_back:
        progress(f"Putting {len(put_back)} user(s) back as the snapshot says")
        _restore(runner, run, target_org, api, now, [u["id"] for u in put_back], APPLY, "put-back",
                 delete_generated=False)

    # 5. verify
    progress("Reading the org again to verify")
    after = _read(runner, run, target_org, [u["id"] for u in users])
    report = []
    for u in users:
        f = failures.get(u["id"])
        if f is not None:
            # held back because someone changed it: the change is its state now, not a failure of ours
            diffs = [] if f["outcome"] == "changed during the run" else \
                differences_from_snapshot(after.users.get(u["id"]), run.before[u["id"]])
            report.append({"userId": u["id"], "username": u["username"], "outcome": f["outcome"],
                           "reason": f["reason"], "fix": f["fix"], "differences": diffs})
        else:
            diffs = differences_from_target(after.users.get(u["id"]), u, after, empty, run.before.get(u["id"]))
            # a set or group neither planned nor ours came while the user moved (someone assigned it after the
            # switch): kept, never removed, and reported
            extra = [d for d in diffs if d.endswith(" not planned")]
            real = [d for d in diffs if d not in extra]
            report.append({"userId": u["id"], "username": u["username"], "outcome": "moved" if not real else
                           "differs", "differences": real,
                           **({"changedDuringRun": [d[: -len(" not planned")] + " was added by someone else during "
                                                    "the run and kept" for d in extra]} if extra else {})})
    j.append(APPLY, "outcome", "verify", users=report, emptySets=sorted(empty))
    j.append(APPLY, "end", complete=True)
    successes = [r for r in report if r["outcome"] == "moved"]
    failed = [r for r in report if r["outcome"] != "moved"]
    differs = [r for r in report if r["outcome"] == "differs" or (r["outcome"] != "moved" and r["differences"])]
    changed_rows = [r for r in report if r.get("changedDuringRun")]
    # sf's exit codes: 68 is a partial success; when no user could move, the run failed
    code = exit_code(failed=bool(differs) or not successes, partial=bool(failed or changed_rows))
    result = {"runDir": str(run.folder), "org": now.org_id,
              "successes": [{"username": r["username"], "profile": by_id[r["userId"]]["to"]["profile"],
                             "permissionSets": [a["permissionSet"] for a in by_id[r["userId"]]["to"]["assign"]
                                                if a["permissionSet"] not in empty]} for r in successes],
              "failures": [{"username": r["username"], "outcome": r["outcome"],
                            "message": r.get("reason") or "; ".join(r["differences"]),
                            **({"fix": r["fix"]} if r.get("fix") else {}),
                            **({"differences": r["differences"]} if r["differences"] else {})} for r in failed],
              "dropped": [{"permissionSet": k, "permissions": sorted(v)} for k, v in sorted(j.amendments().items())],
              "notKept": [{"username": by_id[uid]["username"], "featureLicense": f[len("UserPermissions"):],
                           "reason": why} for uid, fs in sorted(not_kept.items()) for f, why in sorted(fs.items())],
              "changedDuringRun": [{"username": r["username"], "changes": r["changedDuringRun"]} for r in changed_rows],
              "notAssigned": sorted(empty), "journal": str(run.folder / runs.JOURNAL),
              "sfCalls": len(runner.calls)}
    return Outcome(result, code, lines)


def _on_target(run: Run, now: OrgNow) -> set[str]:
    """Users the org shows on the profile this plan moves them to (found by id, or by name for a profile
    the plan creates): moved by this plan, whatever the journal says."""
    out = set()
    for u in run.users:
        cur = now.users.get(u["id"])
        target = u["to"].get("profileId") or now.profiles.get(u["to"]["profile"].lower())
        if cur is not None and target and _id15(cur.profile_id) == _id15(target) \
                and _id15(target) != _id15(run.before[u["id"]]["profileId"]):
            out.add(u["id"])
    return out


def _retryable(j: Journal) -> set[str]:
    """Users the last finished apply could not move for a reason that may pass (no seat, an error)."""
    last = next((r for r in reversed(j.of(APPLY, "outcome", "verify"))), None)
    return {r["userId"] for r in (last or {}).get("users", []) if r.get("outcome") in ("no seat", "not moved")}


def _switch_failure(u: dict[str, Any], x: commands.RecordResult) -> dict[str, Any]:
    if REFUSED_LICENSE_CHANGE in x.message:
        sets = ", ".join(a["permissionSet"] for a in u["to"]["assign"])
        return {"username": u["username"], "outcome": "refused",
                "reason": f"the org refuses to change the license with the profile ({x.message})",
                "fix": NEW_USER_FIX.format(profile=u["to"]["profile"], sets=sets, user=u["username"])}
    if x.code == "LICENSE_LIMIT_EXCEEDED":
        return {"username": u["username"], "outcome": "no seat",
                "reason": "no Salesforce Integration seat was left (LICENSE_LIMIT_EXCEEDED)",
                "fix": "Free or buy a Salesforce Integration seat, then run apply --resume"}
    return {"username": u["username"], "outcome": "not moved", "reason": f"{x.code}: {x.message}",
            "fix": "See the reason, then run apply --resume"}


def _deploy_done(run: Run, now: OrgNow) -> bool:
    """Whether the deploy already happened: its outcome is in the journal after the last amendment,
    or it was cut off but every component it creates is in the org (a deploy is all or nothing)."""
    j = run.journal
    last_amend = max((r["seq"] for r in j.of(APPLY, "amend")), default=0)
    if any(r["seq"] > last_amend and r.get("ok") for r in j.of(APPLY, "outcome", "deploy")):
        return True
    cut = [r for r in j.cut_off(APPLY) if r["step"] == "deploy"]
    new = [g for g in run.plan["generated"] if not g["exists"] and g["type"] in ("PermissionSet", "PermissionSetGroup")]
    if cut and not last_amend and new and all(
            (g["name"] in now.sets if g["type"] == "PermissionSet" else g["name"] in now.groups) for g in new):
        j.append(APPLY, "outcome", "deploy", ok=True, found="every component the deploy creates is in the org",
                 created=[{"type": g["type"], "name": g["name"]} for g in new])
        return True
    return False


def _deploy(runner: SfRunner, run: Run, target_org: str | None, now: OrgNow, progress: Progress,
            validate: bool) -> None:
    j = run.journal
    with tempfile.TemporaryDirectory(prefix=f"deploy-{os.getpid()}-", dir=tempfiles.private_dir()) as tmp:
        folder, _ = deploy_folder(run, Path(tmp))
        current = "validate" if validate else "deploy"
        try:
            if validate:
                progress("Validating the deploy (check only)")
                j.append(APPLY, "intent", "validate", records=[])
                res = commands.deploy(runner, folder, target_org, validate=True)
                j.append(APPLY, "outcome", "validate", ok=res.success, id=res.id,
                         failures=[f.__dict__ for f in res.failures])
                if not res.success:
                    raise _Stop("validate", _deploy_error(res))
            current = "deploy"
            progress("Deploying the generated permission sets, groups and profiles")
            j.append(APPLY, "intent", "deploy", records=[{"type": g["type"], "name": g["name"]}
                                                         for g in run.plan["generated"]])
            res = commands.deploy(runner, folder, target_org)
        except SfError as exc:
            raise _Stop(current, exc) from None
    created = [{"type": g["type"], "name": g["name"]} for g in run.plan["generated"]
               if not g["exists"] and g["type"] in ("PermissionSet", "PermissionSetGroup")]
    j.append(APPLY, "outcome", "deploy", ok=res.success, id=res.id, failures=[f.__dict__ for f in res.failures],
             created=created if res.success else [])
    if not res.success:
        raise _Stop("deploy", _deploy_error(res))
    for (t, name), rid in res.ids.items():
        if t == "PermissionSet":
            now.sets[name] = {"Id": rid, "LicenseId": None}
        elif t == "PermissionSetGroup":
            now.groups[name] = rid
        elif t == "Profile":
            now.profiles[name.lower()] = rid


def _dry_run(runner: SfRunner, run: Run, target_org: str | None, now: OrgNow, progress: Progress,
             lines: list[str]) -> Outcome:
    """apply --dry-run: the checks already passed; the deploy validated check-only (``--dry-run``, which
    saves nothing: docs/sf-wire.md section 6). API-only profiles that apply would first create as records
    are left out of the validation (they don't exist yet) and named."""
    step = run.step("create-profiles")
    later = sorted(r["Name"] for r in (step["records"] if step else []) if r["Name"].lower() not in now.profiles)
    with tempfile.TemporaryDirectory(prefix=f"deploy-{os.getpid()}-", dir=tempfiles.private_dir()) as tmp:
        folder, empty = deploy_folder(run, Path(tmp))
        if later:
            for g in run.plan["generated"]:
                if g["type"] == "Profile" and g["name"] in later:
                    (folder / g["file"][len(runs.METADATA) + 1:]).unlink(missing_ok=True)
            members = package_xml.read((folder / "package.xml").read_bytes())
            members["Profile"] = [m for m in members.get("Profile", []) if m not in later]
            (folder / "package.xml").write_bytes(package_xml.build({k: v for k, v in members.items() if v},
                                                                   run.plan["org"]["apiVersion"]))
        progress("Validating the deploy (check only: nothing is saved)")
        try:
            res = commands.deploy(runner, folder, target_org, dry_run=True)
        except SfError as exc:
            raise Failure(exc.name, f"The deploy could not be validated: {exc.message}. Nothing was changed",
                          exc.exit_code or 1, exc.actions) from None
    result = {"dryRun": True, "runDir": str(run.folder), "org": now.org_id,
              "users": [u["username"] for u in run.users],
              "steps": [s["action"] for s in run.plan["steps"]],
              "deploy": {"id": res.id, "status": res.status, "success": res.success,
                         "components": len(res.deployed),
                         "failures": [{"type": f.type, "name": f.name, "problem": f.problem} for f in res.failures]},
              "notValidated": later, "emptySets": sorted(empty), "sfCalls": len(runner.calls)}
    return Outcome(result, exit_code(failed=not res.success), lines)


def _deploy_error(res: commands.DeployResult) -> SfError:
    first = res.failures[0] if res.failures else None
    return SfError("DeployFailed", f"the deploy {res.id} failed ({res.status})" + (
        f": {first.type} {first.name}: {first.problem}" + (
            f" (and {len(res.failures) - 1} more)" if len(res.failures) > 1 else "") if first else ""),
        1, actions=["Fix what the deploy names (or plan again), then run apply --resume"])


def _component_ids(run: Run, now: OrgNow) -> dict[str, str]:
    ids = {f"set:{k}": v["Id"] for k, v in now.sets.items()}
    ids.update({f"group:{k}": v for k, v in now.groups.items()})
    return ids


def _grant_ops(run: Run, now: OrgNow, moved: list[dict[str, Any]], switched: set[str], ids: dict[str, str],
               empty: set[str], not_kept: dict[str, dict[str, Any]] | None = None
               ) -> tuple[list[commands.Write], list[dict[str, Any]]]:
    """The records still missing for the moved users, as at most five collections (one Composite call):
    the PSL, permission set and group assignments (one collection: both are PermissionSetAssignment
    records), connected-app access, package licenses, the user records (role and feature licenses,
    one record a user) and group and queue memberships. A user switched in this run holds nothing any
    more when the org strips assignments with the license (the documented behaviour); when it does not,
    the org answers DUPLICATE_VALUE, which counts as done. The role, memberships and feature licenses
    are set again as the snapshot holds them (a license change may clear them [U]); feature licenses the
    new license refused once (``not_kept``) are not asked for again."""
    psl, psa, access, packages, records, members = [], [], [], [], [], []
    meta_psl, meta_psa, meta_access, meta_pkg, meta_rec, meta_members = [], [], [], [], [], []
    seen_access: set[tuple[str, str]] = set()
    for u in moved:
        cur = now.users[u["id"]]
        fresh = u["id"] in switched
        b = run.before.get(u["id"], {})
        rec: dict[str, Any] = {}
        if "roleId" in b and (fresh and b["roleId"] or _id15(cur.role_id) != _id15(b["roleId"])):
            rec["UserRoleId"] = b["roleId"]
        want_f = sorted(set(b.get("featureLicenses") or ()) - cur.features - set((not_kept or {}).get(u["id"], {})))
        rec.update({f: True for f in want_f})
        if rec:
            records.append({"Id": u["id"], **rec})
            meta_rec.append({"kind": "user-record", "userId": u["id"], "name": ", ".join(sorted(rec)),
                             "roleId": rec.get("UserRoleId"), "fields": want_f})
        for m in b.get("memberships") or ():
            if fresh or _id15(m["groupId"]) not in cur.memberships:
                members.append({"GroupId": m["groupId"], "UserOrGroupId": u["id"]})
                meta_members.append({"kind": "member", "userId": u["id"], "name": m["name"], "groupId": m["groupId"]})
        if now.psl_id and (fresh or _id15(now.psl_id) not in cur.psls):
            psl.append({"AssigneeId": u["id"], "PermissionSetLicenseId": now.psl_id})
            meta_psl.append({"kind": "psl", "userId": u["id"], "name": rules.INTEGRATION_PSL})
        for a in u["to"]["assign"]:
            name = a["permissionSet"]
            if name in empty or (not fresh and name in cur.sets) or f"set:{name}" not in ids:
                continue
            psa.append(_assignment(u["id"], "PermissionSetId", ids[f"set:{name}"], a.get("expires")))
            meta_psa.append({"kind": "set", "userId": u["id"], "name": name})
        for g in u["to"]["groups"]:
            name = g["group"]
            if (not fresh and name in cur.groups) or f"group:{name}" not in ids:
                continue
            psa.append(_assignment(u["id"], "PermissionSetGroupId", ids[f"group:{name}"], g.get("expires")))
            meta_psa.append({"kind": "group", "userId": u["id"], "name": name})
        for a in u["to"]["access"]:
            parent = ids.get(f"set:{a['permissionSet']}")
            key = (_id15(parent), _id15(a["entityId"]))
            if parent is None or a["permissionSet"] in empty or key in now.access or key in seen_access:
                continue
            seen_access.add(key)
            access.append({"ParentId": parent, "SetupEntityId": a["entityId"]})
            meta_access.append({"kind": "access", "name": f"{a['entity']} on {a['permissionSet']}",
                                "parentId": parent, "entityId": a["entityId"]})
        for p in u.get("packages", []):
            if fresh or _id15(p["packageLicenseId"]) not in cur.packages:
                packages.append({"UserId": u["id"], "PackageLicenseId": p["packageLicenseId"]})
                meta_pkg.append({"kind": "package", "userId": u["id"], "name": p["namespace"],
                                 "packageLicenseId": p["packageLicenseId"]})
    ops = [commands.Write("psl", "POST", "PermissionSetLicenseAssign", psl),
           commands.Write("psa", "POST", "PermissionSetAssignment", psa),
           commands.Write("access", "POST", "SetupEntityAccess", access),
           commands.Write("packages", "POST", "UserPackageLicense", packages),
           commands.Write("records", "PATCH", "User", records),
           commands.Write("members", "POST", "GroupMember", members)]
    return ops, meta_psl + meta_psa + meta_access + meta_pkg + meta_rec + meta_members


def _record_grants(now: OrgNow, meta: list[dict[str, Any]], results: list[commands.RecordResult], ids: dict[str, str]) -> None:
    """Keep ``now`` in step with what the grant call did, so a retry asks only for what is missing."""
    for m, x in zip(meta, results):
        if not _ok(x):
            continue
        cur = now.users.get(m.get("userId", ""))
        if m["kind"] == "psl" and cur is not None and now.psl_id:
            cur.psls[_id15(now.psl_id)] = {"id": x.id, "name": rules.INTEGRATION_PSL}
        elif m["kind"] == "set" and cur is not None:
            cur.sets[m["name"]] = {"id": x.id, "psId": ids.get(f"set:{m['name']}"), "expires": None}
        elif m["kind"] == "group" and cur is not None:
            cur.groups[m["name"]] = {"id": x.id, "groupId": ids.get(f"group:{m['name']}"), "expires": None}
        elif m["kind"] == "access":
            now.access[(_id15(m["parentId"]), _id15(m["entityId"]))] = x.id or ""
        elif m["kind"] == "package" and cur is not None:
            cur.packages[_id15(m["packageLicenseId"])] = x.id or ""
        elif m["kind"] == "user-record" and cur is not None:
            cur.role_id = m["roleId"] or cur.role_id
            cur.features |= set(m["fields"])
        elif m["kind"] == "member" and cur is not None:
            cur.memberships[_id15(m["groupId"])] = x.id or ""


# --- rollback -----------------------------------------------------------------------------------


def _restore(runner: SfRunner, run: Run, target_org: str | None, api: str, now: OrgNow, user_ids: list[str],
             kind: str, step: str, delete_generated: bool, revoke: list[str] | None = None) -> dict[str, list[str]]:
    """Put ``user_ids`` back as the snapshot says, in two calls: remove what the snapshot does not
    hold and switch the profile back; then add what the snapshot holds and is missing. Returns the
    problems per user id (empty: restored)."""
    j = run.journal
    problems: dict[str, list[str]] = {}
    del_psa, del_psla, del_upl, del_gm, patch = [], [], [], [], []
    meta1: list[dict[str, Any]] = []
    for uid in user_ids:
        cur, b = now.users.get(uid), run.before[uid]
        if cur is None:
            problems[uid] = ["the user no longer exists"]
            continue
        keep_sets = {p["name"] for p in b["permissionSets"]}
        keep_groups = {g["name"] for g in b["groups"]}
        keep_psl = {_id15(p["permissionSetLicenseId"]) for p in b["permissionSetLicenses"]}
        keep_pkg = {_id15(p["packageLicenseId"]) for p in b["packageLicenses"]}
        for n, a in sorted(cur.sets.items()):
            if n not in keep_sets:
                del_psa.append({"Id": a["id"]})
                meta1.append({"kind": "unassign-set", "userId": uid, "name": n, "id": a["id"]})
        for n, a in sorted(cur.groups.items()):
            if n not in keep_groups:
                del_psa.append({"Id": a["id"]})
                meta1.append({"kind": "unassign-group", "userId": uid, "name": n, "id": a["id"]})
        for k, a in sorted(cur.psls.items()):
            if k not in keep_psl:
                del_psla.append({"Id": a["id"]})
                meta1.append({"kind": "unassign-psl", "userId": uid, "name": a["name"], "id": a["id"]})
        for k, rid in sorted(cur.packages.items()):
            if k not in keep_pkg:
                del_upl.append({"Id": rid})
                meta1.append({"kind": "unassign-package", "userId": uid, "name": k, "id": rid})
        if "memberships" in b:
            was_m = {_id15(m["groupId"]) for m in b["memberships"]}
            for k, rid in sorted(cur.memberships.items()):
                if k not in was_m:
                    del_gm.append({"Id": rid})
                    meta1.append({"kind": "unmember", "userId": uid, "name": k, "id": rid})
        if _id15(cur.profile_id) != _id15(b["profileId"]):
            patch.append({"Id": uid, "ProfileId": b["profileId"]})
            meta1.append({"kind": "profile", "userId": uid, "name": b["profile"]})
    if revoke is None:
        created = set(run.journal.created_access())
        revoke = [rid for rid in now.access.values() if rid in created]
    meta1 += [{"kind": "revoke-access", "id": rid, "name": rid} for rid in revoke]
    ops1 = [commands.Write("psa", "DELETE", "PermissionSetAssignment", del_psa),
            commands.Write("psla", "DELETE", "PermissionSetLicenseAssign", del_psla),
            commands.Write("upl", "DELETE", "UserPackageLicense", del_upl),
            commands.Write("sea", "DELETE", "SetupEntityAccess", [{"Id": r} for r in revoke]),
            commands.Write("gm", "DELETE", "GroupMember", del_gm),
            commands.Write("user", "PATCH", "User", patch)]
    switched_back: set[str] = set()
    # the results come back collection by collection: the metadata in the same order
    order1 = {"unassign-set": 0, "unassign-group": 0, "unassign-psl": 1, "unassign-package": 2, "revoke-access": 3,
              "unmember": 4, "profile": 5}
    meta1.sort(key=lambda m: order1[m["kind"]])
    if meta1:
        j.append(kind, "intent", f"{step}:remove", records=meta1)
        res = _writes(runner, f"{step}:remove", ops1, target_org, api)
        flat = [x for o in ops1 for x in res[o.key]]
        j.append(kind, "outcome", f"{step}:remove", results=[
            {**m, "ok": x.success or x.code == "ENTITY_IS_DELETED", "code": x.code, "message": x.message}
            for m, x in zip(meta1, flat)])
        for m, x in zip(meta1, flat):
            if m["kind"] == "profile" and x.success:
                switched_back.add(m["userId"])
            if not (x.success or x.code == "ENTITY_IS_DELETED") and m.get("userId"):
                problems.setdefault(m["userId"], []).append(f"{m['kind']} {m['name']}: {x.message or x.code}")
            elif m.get("userId") and m["kind"].startswith("unassign"):
                cur = now.users[m["userId"]]
                {"unassign-set": cur.sets, "unassign-group": cur.groups}.get(m["kind"], {}).pop(m["name"], None)
            elif m.get("userId") and m["kind"] == "unmember":
                now.users[m["userId"]].memberships.pop(m["name"], None)
    # then what the snapshot holds and is missing; after a switch across licenses nothing is held
    add_psla, add_sets, add_groups, add_upl, add_rec, add_members = [], [], [], [], [], []
    meta2: list[dict[str, Any]] = []
    for uid in user_ids:
        cur, b = now.users.get(uid), run.before[uid]
        if cur is None or any(p.startswith("profile") for p in problems.get(uid, [])):
            continue
        fresh = uid in switched_back
        for p in b["permissionSetLicenses"]:
            if fresh or _id15(p["permissionSetLicenseId"]) not in cur.psls:
                add_psla.append({"AssigneeId": uid, "PermissionSetLicenseId": p["permissionSetLicenseId"]})
                meta2.append({"kind": "psl", "userId": uid, "name": p["name"]})
        for p in b["permissionSets"]:
            if fresh or p["name"] not in cur.sets:
                add_sets.append(_assignment(uid, "PermissionSetId", p["permissionSetId"], p.get("expires")))
                meta2.append({"kind": "set", "userId": uid, "name": p["name"]})
        for g in b["groups"]:
            if fresh or g["name"] not in cur.groups:
                add_groups.append(_assignment(uid, "PermissionSetGroupId", g["groupId"], g.get("expires")))
                meta2.append({"kind": "group", "userId": uid, "name": g["name"]})
        for p in b["packageLicenses"]:
            if fresh or _id15(p["packageLicenseId"]) not in cur.packages:
                add_upl.append({"UserId": uid, "PackageLicenseId": p["packageLicenseId"]})
                meta2.append({"kind": "package", "userId": uid, "name": p["namespace"]})
        # the user record as the snapshot holds it: role and feature licenses (after the switch back, which
        # may clear them [U]), and the public groups and queues it was in
        rec: dict[str, Any] = {}
        if "roleId" in b and (fresh or _id15(cur.role_id) != _id15(b["roleId"])):
            rec["UserRoleId"] = b["roleId"]
        gone = set(b.get("featureLicenses") or ()) - (set() if fresh else cur.features)
        rec.update({f: True for f in sorted(gone)})
        if rec:
            add_rec.append({"Id": uid, **rec})
            meta2.append({"kind": "user-record", "userId": uid, "name": ", ".join(sorted(rec))})
        for m in b.get("memberships") or ():
            if fresh or _id15(m["groupId"]) not in cur.memberships:
                add_members.append({"GroupId": m["groupId"], "UserOrGroupId": uid})
                meta2.append({"kind": "member", "userId": uid, "name": m["name"]})
    drop_sets = []
    if delete_generated:
        still = {n for u in now.users.values() for n in u.sets}
        for c in run.journal.created_components():
            if c["type"] == "PermissionSet" and c["name"] in now.sets and c["name"] not in still:
                drop_sets.append({"Id": now.sets[c["name"]]["Id"]})
                meta2.append({"kind": "delete-permission-set", "name": c["name"]})
    ops2 = [commands.Write("psla", "POST", "PermissionSetLicenseAssign", add_psla),
            commands.Write("sets", "POST", "PermissionSetAssignment", add_sets),
            commands.Write("groups", "POST", "PermissionSetAssignment", add_groups),
            commands.Write("upl", "POST", "UserPackageLicense", add_upl),
            commands.Write("drop", "DELETE", "PermissionSet", drop_sets),
            commands.Write("rec", "PATCH", "User", add_rec),
            commands.Write("members", "POST", "GroupMember", add_members)]
    order2 = {"psl": 0, "set": 1, "group": 2, "package": 3, "delete-permission-set": 4, "user-record": 5, "member": 6}
    meta2.sort(key=lambda m: order2[m["kind"]])
    if meta2:
        j.append(kind, "intent", f"{step}:add", records=meta2)
        res = _writes(runner, f"{step}:add", ops2, target_org, api)
        flat = [x for o in ops2 for x in res[o.key]]
        j.append(kind, "outcome", f"{step}:add", results=[
            {**m, "ok": _ok(x), "id": x.id, "code": x.code, "message": x.message} for m, x in zip(meta2, flat)])
        for m, x in zip(meta2, flat):
            if not _ok(x) and m.get("userId"):
                problems.setdefault(m["userId"], []).append(f"{m['kind']} {m['name']}: {x.message or x.code}")
    return problems


def _refuse_forged(run: Run) -> None:
    """A journal naming users the plan does not hold was edited, or belongs to another run: nothing is
    done on its word."""
    forged = sorted(run.journal.touched_users() - set(run.before))
    if forged:
        raise Failure("JournalForged", f"{run.folder / runs.JOURNAL} names user(s) {', '.join(forged[:5])} that the "
                      "plan does not hold: the journal was edited or belongs to another run, so nothing was changed",
                      actions=["Restore the run folder's journal.jsonl, or remove it: rollback works from the "
                               "snapshot alone"])


# rollback and verify live in migrate/rollback.py; named here too for the callers that came before it


def rollback(*args: Any, **kwargs: Any) -> Outcome:
    from sf_intuser.migrate import rollback as rollback_mod

    return rollback_mod.rollback(*args, **kwargs)


def verify(*args: Any, **kwargs: Any) -> Outcome:
    from sf_intuser.migrate import rollback as rollback_mod

    return rollback_mod.verify(*args, **kwargs)
