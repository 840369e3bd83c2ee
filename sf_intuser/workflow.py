"""The read side of a migration, end to end: ``discover``, ``snapshot`` and ``plan`` as functions the
command line (and ``demo``) call with an sf runner. They read the org through :mod:`.org`, plan with
:mod:`.migrate.plan` and write run folders through :mod:`.runs`; they print nothing and pick no exit
code: a failure is a :class:`Failure` naming the thing and the fix, and results are plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from sf_intuser import __version__, config as config_mod, runs
from sf_intuser.errors import Failure
from sf_intuser.metadata import license_rules
from sf_intuser.migrate import plan as plan_mod
from sf_intuser.org import discover as discover_mod
from sf_intuser.org import read, snapshot as snapshot_mod
from sf_intuser.org.model import Org
from sf_intuser.runs import snapshot as snapshot_files
from sf_intuser.report import plan_md
from sf_intuser.sf.runner import SfError, SfRunner

Progress = Callable[[str], None]


def from_error(exc: Exception) -> Failure:
    if isinstance(exc, SfError):
        return Failure(exc.name, exc.message, exc.exit_code if exc.exit_code not in (0, 2) else 1, exc.actions,
                       exc.data if isinstance(exc.data, (dict, list)) else None)
    if isinstance(exc, (snapshot_mod.SnapshotError, runs.RunError)):
        return Failure(exc.name, exc.message, 1, exc.actions)
    raise exc


def options(cfg: config_mod.Config, days: int | None) -> discover_mod.Options:
    opts = discover_mod.Options(days=days or cfg.days or 90, prices=dict(cfg.prices))
    if cfg.api_login_types:
        opts.api_login_types = cfg.api_login_types
    if cfg.people_apps:
        opts.people_apps = cfg.people_apps
    return opts


def stamp(now: datetime) -> str:
    return now.isoformat().replace("+00:00", "Z")


def org_dict(org: Any, from_flag: bool) -> dict[str, Any]:
    return {"id": org.id, "name": org.name, "edition": org.edition, "username": org.username, "alias": org.alias,
            "instanceUrl": org.instance_url, "targetOrgFrom": "flag" if from_flag else "sf config target-org"}


# --- discover -----------------------------------------------------------------------------------


def discover(runner: SfRunner, target_org: str | None, cfg: config_mod.Config, days: int | None,
             progress: Progress) -> tuple[dict[str, Any], discover_mod.Discovery]:
    opts = options(cfg, days)
    try:
        org = read.connect(runner, target_org)
        progress(f"Org {org.alias or org.username} ({org.instance_url})"
                 + ("" if target_org else ", sf's configured target-org"))
        inv, found = read.discover(runner, org, opts, progress)
    except SfError as exc:
        raise from_error(exc) from None
    result = {"org": org_dict(inv.org, bool(target_org)), "days": opts.days, **found.to_dict(),
              "sfCalls": len(runner.calls)}
    return result, found


# --- snapshot -----------------------------------------------------------------------------------


def _take(runner: SfRunner, target_org: str | None, usernames: list[str] | None, cfg: config_mod.Config,
          days: int | None, progress: Progress, now: datetime) -> tuple[Org, snapshot_mod.Snapshot]:
    opts = options(cfg, days)
    org = read.connect(runner, target_org)
    progress(f"Org {org.alias or org.username} ({org.instance_url})"
             + ("" if target_org else ", sf's configured target-org"))
    names = [u.permission_set for u in cfg.users if u.permission_set]
    snap, _ = snapshot_mod.take(runner, org, usernames=usernames, opts=opts, names=names, now=stamp(now),
                                progress=progress)
    return org, snap


def run_folder(run_dir: Path | None, org_label: str, now: datetime, base: Path | None = None) -> Path:
    return run_dir if run_dir is not None else (base or runs.DEFAULT_BASE) / runs.folder_name(org_label, now)


def snapshot(runner: SfRunner, target_org: str | None, users: Sequence[str], cfg: config_mod.Config,
             run_dir: Path | None, days: int | None, progress: Progress, now: datetime) -> tuple[dict[str, Any], list[str]]:
    if run_dir is not None and runs.state(run_dir) not in ("absent", "empty"):
        raise Failure("RunFolderExists", f"{run_dir} exists and is not empty: a run folder is never written over",
                      actions=["Leave out --run-dir for a new folder, or name a new one"])
    try:
        org, snap = _take(runner, target_org, list(users), cfg, days, progress, now)
    except (SfError, snapshot_mod.SnapshotError) as exc:
        raise from_error(exc) from None
    inv = snap.inventory
    if not [u for u in inv.users if u.active]:
        raise Failure("NoUsersFound", "Nothing was written: none of the users is an active user of the org ("
                      + ", ".join(inv.not_found or [u.username for u in inv.users]) + ")",
                      actions=["Check the usernames: sf data query -q \"SELECT Username, IsActive FROM User\""])
    folder = run_folder(run_dir, org.alias or org.username, now)
    _write(folder, snap=snap)
    result: dict[str, Any] = {"runDir": str(folder), "snapshot": str(folder / snapshot_files.FOLDER),
              "users": [u.username for u in inv.users if u.active], "notFound": inv.not_found,
              "inactive": [u.username for u in inv.users if not u.active], "files": len(snapshot_files.files_of(snap)),
              "sfCalls": len(runner.calls)}
    warnings = [f"no user {n!r} in the org: left out" for n in inv.not_found] + \
        [f"{u} is inactive: kept in the snapshot, but it holds no seat" for u in result["inactive"]]
    return result, warnings


def _write(folder: Path, **kwargs: Any) -> None:
    try:
        runs.write(folder, **kwargs)
    except (runs.RunError, snapshot_mod.SnapshotError) as exc:
        raise from_error(exc) from None
    except OSError as exc:
        raise Failure("OutputFailed", f"Nothing was written to {folder}: {exc.strerror or exc}",
                      actions=["Check the folder is writable and has space"]) from None


# --- plan ---------------------------------------------------------------------------------------


@dataclass
class PlanOutcome:
    result: dict[str, Any]
    plan: dict[str, Any]
    blocked: bool


def plan(runner_factory: Callable[[], SfRunner], target_org: str | None, users: Sequence[str], all_candidates: bool,
         cfg: config_mod.Config, run_dir: Path | None, *, project: Path | None = None, force: bool = False,
         psl: bool = False, days: int | None = None, progress: Progress = lambda _m: None,
         now: datetime, base: Path | None = None) -> PlanOutcome:
    """Snapshot and plan (or plan from the snapshot already in ``run_dir``), then write the run folder.
    ``runner_factory`` is called only when the org must be read."""
    wanted = list(users) or [u.username for u in cfg.users]
    st = runs.state(run_dir) if run_dir is not None else "absent"
    if st in ("planned", "other"):
        raise Failure("RunFolderExists", f"{run_dir} " + ("already holds a plan" if st == "planned" else
                                                         "exists and is not a run folder holding only a snapshot")
                      + ": a run folder is never written over",
                      actions=["Leave out --run-dir for a new folder, or name a new one"])
    runner = None
    try:
        if st == "snapshot":
            assert run_dir is not None
            snap = snapshot_files.load(run_dir)
            progress(f"Planning from the snapshot in {run_dir} (taken {snap.meta.get('takenAt')}); the org is not read")
            if wanted:
                outside = [w for w in wanted if w.lower() not in {u.lower() for u in snap.users}]
                if outside:
                    raise Failure("NotInSnapshot", f"{', '.join(outside)} is not in the snapshot in {run_dir} "
                                  f"(it holds {', '.join(snap.users)})",
                                  actions=["Plan those users into a new run folder (leave out --run-dir)"])
            else:
                wanted = list(snap.users)
            folder = run_dir
        else:
            runner = runner_factory()
            org, snap = _take(runner, target_org, None if all_candidates else wanted, cfg, days, progress, now)
            if all_candidates:
                wanted = list(snap.users)
                if not wanted:
                    raise Failure("NoCandidates", "Nothing was written: discover finds no candidate in "
                                  f"{org.alias or org.username}",
                                  actions=["See why: sf-intuser discover --json (each user with the reason)"])
            folder = run_folder(run_dir, org.alias or org.username, now, base)
    except (SfError, snapshot_mod.SnapshotError) as exc:
        raise from_error(exc) from None
    req = plan_mod.Request(wanted, stamp(now), __version__, run=folder.name,
                           overrides=plan_mod.overrides_from(cfg.users), discover=options(cfg, days),
                           license=license_rules.INTEGRATION_PSL if psl else None)
    the_plan = plan_mod.make_plan(snap.inventory, snap.metadata, req)
    data = the_plan.data
    if not the_plan.planned:
        raise Failure("NothingToPlan", "Nothing was written: no user can be planned: " + "; ".join(
            f"{u['username']}: {u['blockers'][0]['problem']}" for u in the_plan.blocked),
            actions=[b["fix"] for u in the_plan.blocked for b in u["blockers"]][:3],
            data={"users": [{"username": u["username"], "blockers": u["blockers"]} for u in the_plan.blocked]})
    _write(folder, snap=None if st == "snapshot" else snap, plan=data, plan_md=plan_md.render(data),
           files=the_plan.files)
    written_project: list[dict[str, Any]] = []
    if project is not None:
        try:
            written_project = runs.into_project(project, data, the_plan.files, force=force)
        except runs.RunError as exc:
            raise Failure(exc.name, f"The run folder {folder} was written; {exc.message}", 1, exc.actions) from None
    result = {"runDir": str(folder), "planMd": str(folder / runs.PLAN_MD), "planJson": str(folder / runs.PLAN),
              "metadata": str(folder / runs.METADATA) if the_plan.files else None, "summary": data["summary"],
              "users": [{"username": u["username"], "status": u["status"],
                         **({"to": u["to"]["profile"], "permissionSet": u["to"]["permissionSet"]}
                            if u["status"] == "planned" else {"blockers": u["blockers"]})} for u in data["users"]],
              "seats": data["seats"], "savings": data["savings"], "intoProject": written_project,
              "warnings": data["warnings"], "sfCalls": len(runner.calls) if runner else 0}
    return PlanOutcome(result, data, bool(the_plan.blocked))


# --- doctor -------------------------------------------------------------------------------------


@dataclass
class Checkup:
    """What ``doctor`` found: each check (``check``, ``ok``, ``detail``, ``skipped``), the fixes to try, and
    warnings that do not fail it."""
    checks: list[dict[str, Any]]
    actions: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return all(c["ok"] for c in self.checks)


def doctor(sf_path: str | None, target_org: str | None) -> Checkup:
    """Check the tools (sf found, its version, Node's), then the org (``target_org``, else sf's target-org):
    that it answers, its session, and the seats of the integration license and PSL. Stops at the first
    check that fails; never raises for what it checks."""
    import shutil

    from sf_intuser.sf import commands
    from sf_intuser.sf.runner import TESTED_VERSION

    checks: list[dict[str, Any]] = []
    warnings: list[str] = []
    actions: list[str] = []
    step = "sf found"
    try:
        runner = SfRunner(sf=sf_path)
        if not shutil.which(runner.executable):   # a --sf-path that is not an executable
            raise SfError("SfNotFound", f"{runner.sf} is not an executable", 127,
                          actions=["Pass --sf-path the sf executable, or run `make setup`"])
        checks.append({"check": "sf found", "ok": True, "detail": runner.sf})
        step = "sf version"
        ver, node = commands.versions(runner)
        detail = ".".join(map(str, ver)) if ver else "unknown"
        checks.append({"check": "sf version", "ok": ver is not None and ver[0] == TESTED_VERSION[0], "detail": detail})
        node_ok = node is not None and tuple(int(x) for x in node.split(".")) >= (22, 19, 0)
        checks.append({"check": "node version", "ok": node_ok, "detail": node or "unknown"})
        if not node_ok:
            actions.append("sf needs Node 22.19 or later: run `make setup`, which brings one from PyPI")
        if ver and ver < TESTED_VERSION:
            warnings.append(f"sf {detail} is older than {'.'.join(map(str, TESTED_VERSION))}, the version "
                            "sf-intuser is tested against; `make setup` installs that one")
        step = "target org"
        org = None
        try:
            org = commands.target_org(runner, target_org)
        except SfError:
            if target_org:
                raise
            checks.append({"check": "target org", "ok": True, "skipped": True,
                           "detail": "none given and no target-org configured: org checks skipped"})
        if org is not None:
            shown = f"{org.alias} ({org.username})" if org.alias else org.username
            checks.append({"check": "target org", "ok": True,
                           "detail": shown + ("" if target_org else ", sf's configured target-org")})
            step = "org reachable"
            why = commands.unreachable(org.instance_url)
            if why:
                checks.append({"check": "org reachable", "ok": False, "detail": f"{org.instance_url}: {why}"})
                actions.append(f"Start the emulated org again: sf-intuser emulator serve --alias {org.alias or 'ALIAS'}"
                               if commands.is_local(org.instance_url) else
                               "Check the network (VPN, proxy) and the org's My Domain URL, then run this again")
            else:
                checks.append({"check": "org reachable", "ok": True, "detail": org.instance_url})
                step = "org connected"
                info = commands.org_display(runner, org.alias or org.username)
                checks.append({"check": "org connected", "ok": True,
                               "detail": f"{info.username} ({info.org_id}) API v{info.api_version}"})
                step = "seats"
                lic, psl = read.seats(runner, org.alias or org.username)
                for label, s_, missing in (
                        ("Salesforce Integration seats", lic,
                         "the org has no Salesforce Integration license (Enterprise, Unlimited, Performance and "
                         "Developer editions include it)"),
                        ("SalesforceAPIIntegrationPsl seats", psl,
                         "the org has no Salesforce API Integration permission set license")):
                    if s_ is None:
                        checks.append({"check": label, "ok": False, "detail": missing})
                    else:
                        checks.append({"check": label, "ok": True,
                                       "detail": f"{s_.used} of {s_.total} used, {s_.free} free"})
                        if s_.free == 0:
                            warnings.append(f"{label}: none free; buy more or free one before moving a user")
    except SfError as exc:
        checks.append({"check": step, "ok": False, "detail": exc.message})
        actions = exc.actions or actions
    return Checkup(checks, actions, warnings)


# --- tighten ------------------------------------------------------------------------------------


def tighten(runner_factory: Callable[[], SfRunner], folder: Path, target_org: str | None, cfg: config_mod.Config,
            days: int | None, progress: Progress, now: datetime) -> dict[str, Any]:
    """Narrow a run's generated permission sets to each user's recorded use, into a new run folder
    inside ``folder`` (``tightened-<time>``): its own plan, checksums and copy of the snapshot, so apply
    and rollback take it like any run. Never the default; never over anything."""
    from sf_intuser.metadata.permission_set import MARKER
    from sf_intuser.migrate import apply as apply_mod
    from sf_intuser.migrate import tighten as tighten_mod
    from sf_intuser.org import evidence as evidence_mod
    from sf_intuser.sf import commands
    from sf_intuser.sf.soql import in_list

    run = apply_mod.open_run(folder)
    plan = run.plan
    if plan.get("tightened"):
        raise Failure("AlreadyTightened", f"{folder} holds a tightened plan (from {plan['tightened']['from']}): "
                      "nothing was written", actions=[f"Tighten the plan it came from: sf-intuser tighten "
                                                      f"{plan['tightened']['from']} -o {run.label()}"])
    if run.journal.of("apply") or run.journal.of("rollback"):
        raise Failure("RunAlreadyApplied", f"{folder} was applied (its journal says so): a plan is tightened before "
                      "it is applied; nothing was written",
                      actions=[f"Roll it back first: sf-intuser rollback {folder} -o {run.label()}",
                               "Then plan again and tighten the new run folder"])
    window = days or cfg.tighten_days or 30
    runner = runner_factory()
    try:
        org = commands.org_display(runner, target_org)
        if org.org_id[:15] != plan["org"]["id"][:15]:
            raise Failure("WrongOrg", f"{folder} was planned for the org {run.label()} ({plan['org']['id']}), but "
                          f"{target_org or 'the default org'} is {org.org_id}: nothing was written",
                          actions=[f"Name the plan's org: sf-intuser tighten {folder} -o {run.label()}"])
        ev = evidence_mod.read(runner, target_org, plan["org"]["apiVersion"], [u["id"] for u in run.users], window,
                               now, progress)
    except SfError as exc:
        raise from_error(exc) from None
    if not ev.any_source:
        raise Failure("NoEvidence", "Nothing was written: the org gave no evidence of use ("
                      + "; ".join(f"{s.name}: {s.status}, {s.reason}" for s in ev.sources) + ")",
                      actions=["Give the user sf runs as View Event Log Object Data (ApiTotalUsageEventLog) or View "
                               "Event Log Files (EventLogFile), or apply the plan as it is: sf-intuser apply "
                               f"{folder} -o {run.label()}"], data={"evidence": ev.to_dict()})
    snap = snapshot_files.load(folder)
    files = {p.relative_to(folder / runs.METADATA).as_posix(): p.read_bytes()
             for p in sorted((folder / runs.METADATA).rglob("*")) if p.is_file()}
    sources: dict[str, bytes] = {}
    for u in run.users:
        api = u["from"].get("profileApiName") or u["from"]["profile"]
        body = snap.metadata.get("Profile", {}).get(api)
        if body is not None:
            sources[f"profile {u['from']['profile']}"] = body
    for name, body in snap.metadata.get("PermissionSet", {}).items():
        sources[f"permission set {name}"] = body
    logins = {u["id"][:15]: sum(int(x.get("count") or 0) for x in (u.get("evidence") or {}).get("apiLogins", []))
              for u in run.users}
    out = folder / f"tightened-{now.strftime('%Y%m%d-%H%M%S')}"
    req = tighten_mod.Request(stamp(now), out.name, str(folder),
                              keep={u.username.lower(): u.keep_access for u in cfg.users},
                              keep_all=cfg.tighten_keep, login_days=snap.inventory.days, logins=logins)
    try:
        t = tighten_mod.tighten(plan, files, sources, ev, req)
        # the new sets' names, against the org's: one sf-intuser made is redeployed (and said to exist);
        # another's is never taken (the names are made again around it)
        for _ in range(3):
            names = [g["name"] for g in t.data["generated"] if g["kind"] == "tightened"
                     and g["name"].lower() not in req.ours]
            if not names:
                break
            found = commands.query(runner, f"SELECT Name, Description FROM PermissionSet WHERE Name IN "
                                   f"{in_list(names)}", target_org)
            ours = frozenset(r["Name"].lower() for r in found if (r.get("Description") or "").startswith(MARKER))
            foreign = frozenset(r["Name"].lower() for r in found) - ours
            if not ours and not foreign:
                break
            req.ours, req.foreign = req.ours | ours, req.foreign | foreign
            t = tighten_mod.tighten(plan, files, sources, ev, req)
    except SfError as exc:
        raise from_error(exc) from None
    except (KeyError, ValueError) as exc:
        raise Failure("PlanUnreadable", f"{folder}: the plan could not be tightened ({type(exc).__name__}: {exc}); "
                      "nothing was written", actions=["Plan again into a new run folder, then tighten it"]) from None
    _write(out, snap=snap, plan=t.data, plan_md=plan_md.render(t.data), files=t.files)
    start, end = ev.window()
    return {"runDir": str(out), "from": str(folder), "planMd": str(out / runs.PLAN_MD),
            "window": {"days": window, "from": start, "to": end}, "evidence": ev.to_dict(),
            "users": [{"username": u["username"], "narrowed": u["narrowed"], "counts": u["counts"],
                       "sets": [{"from": s["from"], "into": s["into"]} for s in u["sets"]], "warnings": u["warnings"]}
                      for u in t.data["tightened"]["users"]],
            "warnings": [f"{u['username']}: {w}" for u in t.data["tightened"]["users"] for w in u["warnings"]],
            "sfCalls": len(runner.calls), "evidenceSfCalls": ev.calls}
