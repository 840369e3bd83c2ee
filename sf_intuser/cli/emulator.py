"""The bundled emulated org: emulator serve, and demo (the whole job on it)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import click

from sf_intuser.cli.common import (
    CliError,
    _now,
    _Progress,
    echo,
    emit,
    json_option,
    json_wanted,
    main,
    me,
    pause_progress,
)
from sf_intuser.cli.views import _discovery_human, _outcome_human, _plan_human
from sf_intuser.report.output import (
    envelope,
)

# --- emulator ---------------------------------------------------------------------------------


@main.group()
def emulator() -> None:
    """The bundled emulated org: a rehearsal stage the real sf CLI talks to on 127.0.0.1."""


@emulator.command()
@click.option("--port", type=int, default=0, show_default="a free port", help="Port on 127.0.0.1.")
@click.option("--seed", "seed_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A seed file (JSON) describing the org (default: the bundled Acme org).")
@click.option("-a", "--alias", default="intuser-emu", show_default=True, help="Alias to log the sf CLI in under.")
@click.option("--fault", "fault_specs", multiple=True, metavar="PATTERN@N=ACTION",
              help="Inject a fault, e.g. 'PATCH .*/sobjects/User/@1=400:LICENSE_LIMIT_EXCEEDED' "
                   "(repeatable; ACTION is STATUS:CODE[:MESSAGE], drop or delay:SECONDS).")
@click.option("--option", "options", multiple=True, metavar="NAME=VALUE",
              help="Platform behaviour switch, e.g. profile_change_across_licenses=refuse, "
                   "new_profile_by_deploy=true.")
@click.option("--scale", type=click.IntRange(0, 2000), default=0, metavar="N",
              help="Add N generated integration users (profiles, sets, groups, logins) to the seed.")
@click.option("--minutes", type=float, default=60, show_default=True, help="Stop by itself after this long.")
@click.option("--no-login", is_flag=True, help="Start the org without logging the sf CLI in.")
@click.option("--keep-login", is_flag=True,
              help="Leave sf logged in to the alias after the org stops (by default sf logs out of it).")
@click.option("--sf-path", default=None, help="The sf executable (default: SF_INTUSER_SF, the setup's shim, PATH).")
@json_option
def serve(port: int, seed_file: Path | None, alias: str, fault_specs: tuple[str, ...], options: tuple[str, ...],
          scale: int, minutes: float, no_login: bool, keep_login: bool, sf_path: str | None, as_json: bool) -> None:
    """Start the emulated org, log the sf CLI in under ALIAS, and print what to type next.

    Each alias is an org of its own (its own org id and admin username), so two can run side by side.

    \b
    Examples:
      sf-intuser emulator serve
      sf-intuser emulator serve --alias rehearsal --scale 50
      sf-intuser emulator serve --port 8099 --alias rehearsal --option profile_change_across_licenses=refuse
      sf-intuser emulator serve --fault 'POST .*/sobjects/PermissionSetAssignment@2=400:LICENSE_LIMIT_EXCEEDED'
    """
    import dataclasses

    from sf_intuser import emulated
    from sf_intuser.sf.runner import SfError

    org = emulated.start(seed_file, alias, scale, options, fault_specs, port, minutes)
    state = org.state
    logged_in = False
    login = sf_used = None
    try:
        if not no_login:
            login, sf_used = emulated.log_in(org, alias, sf_path)
            logged_in = True
    except SfError as exc:
        org.stop()
        raise CliError(exc.name, f"The emulated org started but sf could not log in: {exc.message}",
                       actions=exc.actions or ["Run `sf-intuser doctor`"]) from None
    result = {"instanceUrl": org.url, "username": state.username, "orgId": state.org_id,
              "alias": alias if logged_in else None, "login": login, "stopsAfterMinutes": minutes,
              "faults": list(fault_specs), "options": dataclasses.asdict(state.options)}
    if json_wanted(as_json):
        echo(envelope(result), as_json=True)
    else:
        import shlex
        import shutil

        echo(f"Emulated org {state.records['Organization'][state.org_id]['Name']} is up at {org.url}")
        if logged_in:
            # the commands as they will work: the sf this used, unless `sf` on PATH is that one
            on_path = shutil.which("sf")
            sf_cmd = "sf" if sf_used and on_path and Path(on_path).resolve() == Path(sf_used).resolve() \
                else shlex.quote(str(sf_used))
            me_ = me()
            echo(f"The sf CLI is logged in as {state.username} under the alias {alias}. Try:\n"
                       f"  {sf_cmd} data query -o {alias} -q \"SELECT Username, Profile.Name FROM User\"\n"
                       f"  {me_} discover -o {alias}\n  {me_} doctor -o {alias}\n")
        echo(f"It stops by itself after {minutes:g} minutes; Ctrl-C stops it now."
             + (f" Then sf logs out of {alias} (--keep-login keeps it)." if logged_in and not keep_login else ""),
             err=True)
    sys.stdout.flush()
    import signal

    terminated: list[int] = []

    def on_term(*_: Any) -> None:   # stopped as by Ctrl-C (the login goes too), then exit as killed by it
        terminated.append(1)
        org.stop()

    before = None
    if threading.current_thread() is threading.main_thread():
        before = signal.signal(signal.SIGTERM, on_term)
    try:
        org.stopped.wait()
    except KeyboardInterrupt:
        org.stop()
    finally:
        if before is not None:     # the process's own handler again (serve may run inside another program)
            signal.signal(signal.SIGTERM, before)
        if logged_in and not keep_login:
            # an org that no longer answers leaves nothing behind in the user's own sf home
            try:
                emulated.log_out(alias, sf_path)
                if not json_wanted(as_json):
                    echo(f"The emulated org stopped; sf logged out of {alias}.", err=True)
            except SfError as exc:
                echo(f"The emulated org stopped; sf could not log out of {alias}: {exc.message}. "
                     f"Log out yourself: sf org logout -o {alias} --no-prompt", err=True)
    if terminated:
        raise SystemExit(128 + signal.SIGTERM)   # 143, as a shell reports a process SIGTERM ended


# --- demo -------------------------------------------------------------------------------------


@main.command()
@click.option("-d", "--output-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where the run folder goes (default: intuser-runs/ here).")
@click.option("--sf-path", default=None, help="The sf executable (default: SF_INTUSER_SF, the setup's shim, PATH).")
@json_option
def demo(output_dir: Path | None, sf_path: str | None, as_json: bool) -> None:
    """Rehearse the whole job on the bundled emulated org: discover, plan, apply, verify, report.

    Starts the emulated org (Acme Corp) on 127.0.0.1 under a private sf home, logs the real sf CLI in,
    runs discover, plan --all-candidates and apply (which verifies), writes report.html, and says who
    moved, who did not and why, the saving a year, and where the run folder and the report are. Your
    own sf logins are not touched; the emulated org stops when the demo ends.

    \b
    Example:
      sf-intuser demo
    """
    from sf_intuser import emulated
    from sf_intuser.report.discovery import money

    quiet = json_wanted(as_json)
    progress = _Progress(quiet)

    def show(phase: str, res: Any) -> None:     # each phase's result as it ends, not all at the end
        if quiet:
            return
        pause_progress()
        if phase == "discover":
            echo(_discovery_human(res, None) + "\n")
        elif phase == "plan":
            echo(_plan_human(res) + "\n")
        else:
            echo(_outcome_human(f"Applied: {len(res.result['successes'])} user(s) moved and verified.", res) + "\n")

    d = emulated.demo(output_dir, sf_path, progress, _now(), show)
    found, out, done, rep, folder, page, blocked = d.discover, d.plan, d.apply, d.report, d.run_dir, d.page, d.blocked
    result = {"migrated": done.result["successes"], "blocked": blocked, "runDir": str(folder), "report": str(page),
              "yearlySaving": rep["cost"]["yearlySaving"], "discover": found, "plan": out.result,
              "apply": done.result}

    def human() -> str:
        lines: list[str] = []
        if blocked:
            lines += ["Not moved:"] + [f"  {b['username']}: {b['reason']}. Fix: {b['fix']}" for b in blocked] + [""]
        lines += [f"Saving: {money(rep['cost']['yearlySaving'])} a year at list prices, for {rep['cost']['counts']} "
                      f"({money(rep['cost']['monthlyBefore'])} → {money(rep['cost']['monthlyAfter'])} a month). "
                      + rep["note"],
                  f"Run folder: {folder}", f"Report: {page}",
                  f"The emulated org is stopped. Try it yourself: {me()} emulator serve, then (in another "
                  f"terminal) {me()} discover -o intuser-emu"]
        return "\n".join(lines)

    emit(as_json, result, human, status=done.exit_code)
