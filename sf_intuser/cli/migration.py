"""The migration: discover, snapshot, plan, apply, verify, rollback, report, rehearse."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sf_intuser import run_files
from sf_intuser.cli.common import (
    CliError,
    _calls_line,
    _confirm,
    _failure,
    _load_config,
    _now,
    _org_of_run,
    _Progress,
    _sf_runner,
    config_option,
    days_option,
    emit,
    json_option,
    json_wanted,
    main,
    me,
    run_dir_argument,
    sf_path_option,
    target_org_option,
    verbose_option,
    yes_option,
)
from sf_intuser.cli.views import _discovery_human, _outcome_human, _plan_human, _tighten_human
from sf_intuser.errors import Failure
from sf_intuser.report.output import (
    EXIT_USAGE,
    table,
)

if TYPE_CHECKING:
    from sf_intuser.sf.runner import SfRunner


@main.command()
@target_org_option
@days_option
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the candidates to this CSV file.")
@config_option
@verbose_option
@sf_path_option
@json_option
def discover(target_org: str | None, days: int | None, csv_path: Path | None, config_path: Path | None, verbose: bool,
             sf_path: str | None, as_json: bool) -> None:
    """Find the users that can move to the Salesforce Integration license, and what it saves.

    A candidate is active, internal, on another license, and an integration by the evidence: API
    logins in the window, API Only User, or the run-as user of a client-credentials connected app.
    Anyone with a UI login (or an OAuth login through Salesforce's apps for people) is never
    proposed. Reads the org only, in a fixed number of sf calls whatever the number of users.

    \b
    Examples:
      sf-intuser discover
      sf-intuser discover -o my-sandbox --days 30 --csv candidates.csv
      sf-intuser discover --json
    """
    import time

    from sf_intuser import workflow
    from sf_intuser.report.discovery import candidates_csv

    cfg = _load_config(config_path)
    t0 = time.perf_counter()
    runner = _sf_runner(sf_path)
    try:
        result, _ = workflow.discover(runner, target_org, cfg, days, _Progress(json_wanted(as_json)))
    except Failure as exc:
        raise _failure(exc) from None
    if csv_path is not None:
        from sf_intuser.workspace import write_atomic

        try:
            write_atomic(csv_path.parent, {csv_path.name: candidates_csv(result).encode("utf-8")})
            os.chmod(csv_path, 0o600)   # org data: its owner's only, as the run folder is
        except OSError as exc:
            raise CliError("OutputFailed", f"Cannot write {csv_path}: {exc.strerror or exc}",
                           actions=["Check the folder exists and is writable"]) from None
        result["csv"] = str(csv_path)
    emit(as_json, result, lambda: _discovery_human(result, csv_path,
                                                   "\n" + _calls_line(runner, t0) if verbose else ""))


@main.command()
@target_org_option
@click.option("-u", "--user", "users", multiple=True, required=True, metavar="USERNAME",
              help="A user to snapshot (repeatable).")
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The run folder to create (default: intuser-runs/<org>-<timestamp>).")
@days_option
@config_option
@verbose_option
@sf_path_option
@json_option
def snapshot(target_org: str | None, users: tuple[str, ...], run_dir: Path | None, days: int | None,
             config_path: Path | None, verbose: bool, sf_path: str | None, as_json: bool) -> None:
    """Record everything a move would change for some users, before anything changes.

    Writes a run folder holding snapshot/: the users' profiles, permission sets, groups, licenses,
    package licenses, login policy, connected-app and Apex access, and the retrieved XML, with a
    SHA-256 for every file in snapshot/manifest.json. `sf-intuser plan --run-dir` plans from it.

    \b
    Examples:
      sf-intuser snapshot -u middleware@acme.com -u etl@acme.com
      sf-intuser snapshot -o my-sandbox -u etl@acme.com --run-dir intuser-runs/before-renewal --json
    """
    import time

    from sf_intuser import workflow

    cfg = _load_config(config_path)
    t0 = time.perf_counter()
    runner = _sf_runner(sf_path)
    try:
        result, warnings = workflow.snapshot(runner, target_org, users, cfg, run_dir, days,
                                             _Progress(json_wanted(as_json)), _now())
    except Failure as exc:
        raise _failure(exc) from None
    emit(as_json, result,
         lambda: f"Snapshot of {len(result['users'])} user(s) written to {result['snapshot']} ({result['files']} files, "
                 "each with its SHA-256 in manifest.json)" + ("\n" + _calls_line(runner, t0) if verbose else ""),
         warnings=warnings)



@main.command()
@target_org_option
@click.option("-u", "--user", "users", multiple=True, metavar="USERNAME",
              help="A user to move (repeatable; default: the [[users]] of sf-intuser.toml).")
@click.option("--all-candidates", is_flag=True, help="Plan every candidate discover finds.")
@config_option
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The run folder (default: intuser-runs/<org>-<timestamp>). One holding only a snapshot "
                   "(sf-intuser snapshot) is planned from that snapshot, without reading the org.")
@click.option("--into-project", is_flag=True,
              help="Also write the generated permission sets, groups and profiles into the SFDX project's default "
                   "package directory (source format).")
@click.option("--force", is_flag=True, help="With --into-project: overwrite project files that differ.")
@click.option("--psl", is_flag=True, help="Bind generated permission sets to SalesforceAPIIntegrationPsl "
                                          "instead of no license.")
@days_option
@verbose_option
@sf_path_option
@json_option
def plan(target_org: str | None, users: tuple[str, ...], all_candidates: bool, config_path: Path | None,
         run_dir: Path | None, into_project: bool, force: bool, psl: bool, days: int | None, verbose: bool,
         sf_path: str | None, as_json: bool) -> None:
    """Snapshot the users and plan their move, changing nothing in the org.

    Writes a run folder: snapshot/, metadata/ (deployable, Metadata API format), plan.json (ordered
    steps, each with its inverse) and plan.md (the review). Exit 0 when every user is planned, 68
    when some are blocked (each with its fix), 1 when none can be (nothing is written).

    \b
    Examples:
      sf-intuser plan -u middleware@acme.com -u etl@acme.com
      sf-intuser plan --all-candidates -o my-sandbox --json
      sf-intuser plan --into-project          # users from sf-intuser.toml
      sf-intuser plan --run-dir intuser-runs/before-renewal   # from a snapshot taken earlier
    """
    import time

    from sf_intuser import runs, workflow
    from sf_intuser.report.output import exit_code

    cfg = _load_config(config_path)
    if users and all_candidates:
        raise click.UsageError("Give users with -u or ask for --all-candidates, not both.")
    existing = run_dir is not None and runs.state(run_dir) not in ("absent", "empty")
    if not users and not cfg.users and not all_candidates and not existing:
        raise click.UsageError("Which users? Name them with -u USERNAME, list them in sf-intuser.toml ([[users]] "
                               "username = \"...\"), or pass --all-candidates.")
    project = None
    if into_project:
        from sf_intuser.workspace import find_project

        project = find_project(Path.cwd())
        if project is None:
            raise CliError("NotInProject", "--into-project needs an SFDX project (a folder with sfdx-project.json "
                           "at or above the working folder)", EXIT_USAGE,
                           actions=["cd into the project, or leave out --into-project"])
    t0 = time.perf_counter()
    runners: list[SfRunner] = []

    def factory() -> SfRunner:
        runners.append(_sf_runner(sf_path))
        return runners[-1]

    try:
        out = workflow.plan(factory, target_org, users, all_candidates, cfg, run_dir, project=project, force=force,
                            psl=psl, days=days, progress=_Progress(json_wanted(as_json)), now=_now())
    except Failure as exc:
        raise _failure(exc) from None
    extra = "\n" + _calls_line(runners[0], t0) if verbose and runners else ""
    emit(as_json, out.result, lambda: _plan_human(out.result) + extra,
         status=exit_code(partial=out.blocked), warnings=out.result["warnings"])



@main.command()
@run_dir_argument
@target_org_option
@click.option("--days", type=click.IntRange(1, 365), default=None, metavar="N",
              help="The window of evidence in days (default 30, or [tighten] days in sf-intuser.toml).")
@config_option
@verbose_option
@sf_path_option
@json_option
def tighten(run_dir: Path, target_org: str | None, days: int | None, config_path: Path | None, verbose: bool,
            sf_path: str | None, as_json: bool) -> None:
    """Narrow a plan's generated permission sets to what each integration was seen doing.

    Reads the org's event logs (ApiTotalUsageEventLog, then the EventLogFile types ApiTotalUsage, API,
    RestApi, BulkApi and BulkApi2: whichever the org has) for the objects each user read and wrote,
    in a fixed number of sf calls whatever the number of users. Writes a new run folder inside RUN
    (tightened-<time>) with its own plan.md, plan.json and metadata/: object access only where the
    user was seen, record visibility kept on those objects, user permissions only where a rule needs
    them. Nothing is ever widened; the original plan is untouched. Review plan.md, then apply the new
    folder like any run; rollback works as always. keep-access in sf-intuser.toml protects what the
    window can't show. Exit 0 when written, 1 when the org gave no evidence.

    \b
    Examples:
      sf-intuser tighten intuser-runs/acme-20261123-101500 -o acme
      sf-intuser tighten intuser-runs/acme-20261123-101500 --days 90 --json
    """
    import time

    from sf_intuser import workflow

    t0 = time.perf_counter()
    cfg = _load_config(config_path)
    runners: list[SfRunner] = []

    def factory() -> SfRunner:
        runners.append(_sf_runner(sf_path))
        return runners[-1]

    try:
        out = workflow.tighten(factory, run_dir, _org_of_run(run_dir, target_org), cfg, days,
                               _Progress(json_wanted(as_json)), _now())
    except Failure as exc:
        raise _failure(exc) from None
    extra = "\n" + _calls_line(runners[0], t0) if verbose and runners else ""
    emit(as_json, out, lambda: _tighten_human(out) + extra, warnings=out["warnings"])


@main.command()
@run_dir_argument
@target_org_option
@yes_option
@click.option("--resume", is_flag=True, help="Continue an apply that stopped or died; nothing is done twice.")
@click.option("--dry-run", is_flag=True,
              help="Make every check and validate the deploy (check only); change nothing, ask nothing.")
@verbose_option
@sf_path_option
@json_option
def apply(run_dir: Path, target_org: str | None, yes: bool, resume: bool, dry_run: bool, verbose: bool,
          sf_path: str | None, as_json: bool) -> None:
    """Carry out a plan: deploy, move the users, give their access back, verify.

    Refuses a run folder changed by hand, another org, and users whose access changed since the plan.
    Every step is written to journal.jsonl first; a run that stops or dies continues with --resume,
    or is undone with rollback. Exit 0 when every user moved, 68 when some could not (each with the
    way forward), 1 when the run stopped or a moved user differs from the plan.

    \b
    Examples:
      sf-intuser apply intuser-runs/acme-20261123-101500 -o acme
      sf-intuser apply intuser-runs/acme-20261123-101500 --dry-run
      sf-intuser apply intuser-runs/acme-20261123-101500 --resume --no-prompt --json
    """
    import time

    from sf_intuser.migrate import apply as apply_mod

    t0 = time.perf_counter()
    runner = _sf_runner(sf_path)
    try:
        out = apply_mod.apply(runner, run_dir, _org_of_run(run_dir, target_org), resume=resume,
                              confirm=_confirm(yes, as_json), dry_run=dry_run,
                              progress=_Progress(json_wanted(as_json)))
    except Failure as exc:
        raise exc from None
    extra = "\n" + _calls_line(runner, t0) if verbose else ""
    r = out.result
    if dry_run:
        emit(as_json, r, lambda: _dry_run_human(run_dir, out) + extra, status=out.exit_code)
        return
    title = (f"Moved {len(r['successes'])} of {len(r['successes']) + len(r['failures'])} user(s) to the Salesforce "
             f"Integration license in {r['org']}.")
    emit(as_json, r, lambda: _outcome_human(title, out) + f"\nNext: sf-intuser report {run_dir}" + extra,
         status=out.exit_code)


def _dry_run_human(run_dir: Path, out: Any) -> str:
    r, d = out.result, out.result["deploy"]
    lines = [*out.lines, "",
             ("The deploy validates (check only: nothing was saved)" if d["success"] else
              f"The deploy does not validate ({d['status']})") + f": {d['components']} component(s), id {d['id']}."]
    lines += [f"  {f['type']} {f['name']}: {f['problem']}" for f in d["failures"]]
    if r["notValidated"]:
        lines.append("Not validated (apply creates them as records first): " + ", ".join(r["notValidated"]))
    lines.append("Steps apply would take: " + ", ".join(r["steps"]))
    lines.append("Nothing was changed." + (f" Next: {me()} apply {run_dir}" if d["success"] else ""))
    return "\n".join(lines)


@main.command()
@run_dir_argument
@target_org_option
@verbose_option
@sf_path_option
@json_option
def verify(run_dir: Path, target_org: str | None, verbose: bool, sf_path: str | None, as_json: bool) -> None:
    """Read the org again and compare every planned user with the plan's target.

    Exit 0 when every user is as planned, 1 when anything differs (each difference is named).

    \b
    Example:
      sf-intuser verify intuser-runs/acme-20261123-101500 -o acme
    """
    import time

    from sf_intuser.migrate import rollback as rollback_mod

    t0 = time.perf_counter()
    runner = _sf_runner(sf_path)
    out = rollback_mod.verify(runner, run_dir, _org_of_run(run_dir, target_org),
                           progress=_Progress(json_wanted(as_json)))
    r = out.result
    rows = [(u["username"], "as planned" if u["reached"] else "differs", "; ".join(u["differences"]))
            for u in r["users"]]
    extra = "\n" + _calls_line(runner, t0) if verbose else ""
    emit(as_json, r, lambda: f"{r['reached']} of {len(r['users'])} user(s) as planned.\n\n"
         + table(rows, ("USER", "STATE", "DIFFERENCES")) + extra, status=out.exit_code)


@main.command()
@run_dir_argument
@target_org_option
@yes_option
@click.option("--delete-generated", is_flag=True,
              help="Also delete what the plan generated and no one uses any more: the permission sets the apply "
                   "created, and the API-only profiles and rebuilt groups (a destructive deploy). Says what it "
                   "deleted and what it kept.")
@verbose_option
@sf_path_option
@json_option
def rollback(run_dir: Path, target_org: str | None, yes: bool, delete_generated: bool, verbose: bool,
             sf_path: str | None, as_json: bool) -> None:
    """Put every user the apply touched back as the snapshot says.

    Profile (and so license), permission set, group and license assignments with their expiry, and the
    access grants the apply made. Undoes only what the journal says was done; running it twice is
    harmless; works after an apply or a rollback died at any point. Exit 0 when every user is back,
    1 otherwise (each difference named).

    \b
    Examples:
      sf-intuser rollback intuser-runs/acme-20261123-101500 -o acme
      sf-intuser rollback intuser-runs/acme-20261123-101500 --delete-generated --yes
    """
    import time

    from sf_intuser.migrate import rollback as rollback_mod

    t0 = time.perf_counter()
    runner = _sf_runner(sf_path)
    out = rollback_mod.rollback(runner, run_dir, _org_of_run(run_dir, target_org), delete_generated=delete_generated,
                             confirm=_confirm(yes, as_json), progress=_Progress(json_wanted(as_json)))
    r = out.result
    extra = "\n" + _calls_line(runner, t0) if verbose else ""

    def human() -> str:
        if "journal" not in r:          # nothing to undo: the lines say so
            return "\n".join(out.lines)
        rows = [(u, "restored", "") for u in r["restored"]] + [(u, "already as the snapshot", "")
                                                              for u in r["alreadyRestored"]] + \
            [(f["username"], "differs", f["message"]) for f in r["failures"]]
        text = (f"Rolled back {len(r['restored'])} user(s).\n\n" + table(rows, ("USER", "STATE", "DIFFERENCES"))
                + f"\nJournal: {r['journal']}")
        if "deleted" in r:
            text += "\nDeleted: " + (", ".join(f"{d['type']} {d['name']}" for d in r["deleted"]) or "nothing")
            text += "".join(f"\nKept: {k['type']} {k['name']} ({k['reason']})" for k in r["kept"])
        return text + extra

    emit(as_json, r, human, status=out.exit_code)


@main.command()
@run_dir_argument
@click.option("--format", "fmt", type=click.Choice(["md", "html", "csv"]), default=None,
              help="md, html or csv (default: from --output's extension, else md).")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the report here (default: print it; html goes to RUN/report.html).")
@json_option
def report(run_dir: Path, fmt: str | None, output: Path | None, as_json: bool) -> None:
    """The migration report from the run folder (the org is not read): per user before, after, outcome
    and saving, and the license cost per month before and after.

    \b
    Examples:
      sf-intuser report intuser-runs/acme-20261123-101500
      sf-intuser report intuser-runs/acme-20261123-101500 --format html   # RUN/report.html
      sf-intuser report intuser-runs/acme-20261123-101500 --output users.csv
    """
    from sf_intuser.migrate.apply import open_run
    from sf_intuser.report import migration
    from sf_intuser.workspace import write_synced

    run = open_run(run_dir)
    fmt = fmt or (output.suffix.lstrip(".").lower() if output and output.suffix.lstrip(".").lower()
                  in ("md", "html", "csv") else "md")
    rep = migration.build(run.plan, run.journal.records)
    body = migration.render(rep, fmt)
    if output is None and fmt == "html":
        output = run_dir / run_files.REPORT_HTML
    if output is not None:
        try:
            write_synced(output, body.encode("utf-8"), private=True)
        except OSError as exc:
            raise CliError("OutputFailed", f"{output} could not be written: {exc.strerror or exc}",
                           actions=["Check the folder is writable"]) from None
    result = {**migration.summary(rep), "format": fmt, "output": str(output) if output else None,
              "users": rep["users"]}
    emit(as_json, result, lambda: f"Wrote {output}" if output else body.rstrip("\n"))


# --- rehearse ---------------------------------------------------------------------------------


@main.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path, file_okay=False))
@click.option("--on", "on", required=True, metavar="ORG",
              help="Alias or username of the sandbox or scratch org to rehearse in (never the plan's own org).")
@click.option("--keep", is_flag=True,
              help="Leave the rehearsal in place (stand-ins moved) instead of rolling it back.")
@click.option("--run-dir", "rehearsal_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The rehearsal's own run folder (default: next to RUN_DIR, named after it).")
@click.option("--clean-up", "clean_up", is_flag=True,
              help="Only deactivate the stand-ins left active in ORG (a kept or interrupted rehearsal).")
@config_option
@verbose_option
@sf_path_option
@json_option
def rehearse(run_dir: Path, on: str, keep: bool, rehearsal_dir: Path | None, clean_up: bool,
             config_path: Path | None, verbose: bool, sf_path: str | None, as_json: bool) -> None:
    """Rehearse a planned migration in a sandbox or scratch org: stand-ins of production's users, moved there.

    Deploys production's profiles and permission sets (from the snapshot) to ORG, creates a look-alike
    of each planned user there (a username of its own, "[sf-intuser rehearsal]" in its name, the same
    profile, sets, groups and licenses), plans them as production was planned and says where that plan
    differs, applies and verifies it, writes report.html, then rolls back and deactivates the stand-ins
    (unless --keep). Refuses the plan's own org. Exit 0 when the rehearsal moved everyone and rolled
    back, 68 when some users could not move, 1 when it failed.

    \b
    Examples:
      sf-intuser rehearse intuser-runs/acme-20261123-101500 --on acme-uat
      sf-intuser rehearse intuser-runs/acme-20261123-101500 --on my-scratch --keep --json
      sf-intuser rehearse intuser-runs/acme-20261123-101500 --on acme-uat --clean-up
    """
    import time

    from sf_intuser import workflow
    from sf_intuser.migrate.rehearse import clean_up as run_clean_up
    from sf_intuser.migrate.rehearse import rehearse as run_rehearsal

    t0 = time.perf_counter()
    cfg = _load_config(config_path)
    runner = _sf_runner(sf_path)
    if clean_up:
        try:
            done = run_clean_up(runner, run_dir, on, progress=_Progress(json_wanted(as_json)))
        except Exception as exc:  # noqa: BLE001 - reported as sf does, or re-raised
            raise _failure(exc) from None
        emit(as_json, done.result, lambda: f"Deactivated {len(done.result['deactivated'])} stand-in(s) in {on}"
             + "".join(f"\n  {u}" for u in done.result["deactivated"]))
        return
    try:
        out = run_rehearsal(runner, run_dir, on, cfg=cfg, now=_now(), keep=keep, rehearsal_dir=rehearsal_dir,
                            progress=_Progress(json_wanted(as_json)), plan_fn=workflow.plan)
    except Exception as exc:  # noqa: BLE001 - every failure is reported as sf does, or re-raised
        raise _failure(exc) from None
    r = out.result

    def human() -> str:
        lines = [f"Rehearsed {r['productionRun']} in {on}: {len(r['apply']['successes'])} stand-in(s) moved "
                 f"and verified, {len(r['apply']['failures'])} not."]
        lines += [f"  {s['production']} -> {s['standIn']}" for s in r["standIns"]]
        if r["differences"]:
            lines += ["The rehearsal's plan differs from production's (it proves less):"] + \
                     [f"  {d}" for d in r["differences"]]
        else:
            lines.append("The rehearsal's plan matches production's for every user.")
        for f in r["apply"]["failures"]:
            lines.append(f"  not moved: {f['username']}: {f['message']}")
        lines.append("Rolled back; stand-ins deactivated." if r["rolledBack"] else
                     "Kept in place (--keep): roll back with sf-intuser rollback " + r["rehearsalRun"] if r["kept"]
                     else "The rollback did not finish: sf-intuser rollback " + r["rehearsalRun"])
        lines += [f"Rehearsal run folder: {r['rehearsalRun']}", f"Report: {r['report']}"]
        if verbose:
            lines.append(_calls_line(runner, t0))
        return "\n".join(lines)

    emit(as_json, r, human, status=out.exit_code,
         warnings=[f"plan differs: {d}" for d in r["differences"]])
