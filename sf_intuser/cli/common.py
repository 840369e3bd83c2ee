"""What every command shares: the click group, sf's output conventions and the common options.

Conventions follow ``sf``: ``--json`` prints ``{status, result, warnings}`` on stdout (also for
errors, as sf's error envelope), ``SF_CONTENT_TYPE=JSON`` means ``--json``; exit codes 0 ok,
1 failure, 2 usage, 68 partial success, 130 stopped by Ctrl-C.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import click

from sf_intuser import run_files
from sf_intuser import __version__
from sf_intuser.errors import Failure
from sf_intuser.report.output import (
    EXIT_OK,
    envelope,
)

CliError = Failure   # what a command fails with; run() prints it as sf does


def json_wanted(flag: bool) -> bool:
    return flag or os.environ.get("SF_CONTENT_TYPE", "").upper() == "JSON"


def echo(text: str, err: bool = False, as_json: bool = False) -> None:
    """Print for a person or a program, with org-controlled text made harmless: control characters
    (terminal escape sequences) shown as ``\\xNN`` in human output; in JSON, the C1 controls json.dumps
    leaves as they are written as ``\\u00NN`` (report/escape.py)."""
    from sf_intuser.report.escape import json_safe, terminal

    from sf_intuser.report.output import fit_lines

    click.echo(json_safe(text) if as_json else fit_lines(terminal(as_run(text), keep_newlines=True)), err=err)


#: the tool's own commands, as a hint names them (``sf-intuser verify RUN``)
_HINT = None


def as_run(text: str) -> str:
    """A hint as it works when pasted: each ``sf-intuser <command>`` the workflow layer wrote is named as
    this tool is run (:func:`me`): ``sf intuser`` through the plugin, the full path when sf-intuser is
    not on PATH. Names such as sf-intuser.toml are left alone."""
    global _HINT
    if "sf-intuser " not in text:
        return text
    runs_as = me()
    if runs_as == "sf-intuser":
        return text
    if _HINT is None:
        import re

        # a command where a hint starts one: a line's start, after ": ", a backquote or "(" (not in prose)
        _HINT = re.compile(r"(?:^|(?<=: )|(?<=`)|(?<=\()|(?<=  ))sf-intuser(?= (?:%s)\b)" % "|".join(
            sorted(main.commands, key=len, reverse=True)), re.M)
    return _HINT.sub(lambda _m: runs_as, text)


def emit(as_json: bool, result: Any, human: Callable[[], str], status: int = EXIT_OK,
         warnings: Sequence[str] = ()) -> None:
    pause_progress()
    if json_wanted(as_json):
        echo(envelope(result, status, warnings), as_json=True)
    else:
        text = human()
        if text:
            echo(text)
        for w in warnings:
            echo(f"Warning: {w}", err=True)
    if status:
        sys.exit(status)


json_option = click.option("--json", "as_json", is_flag=True, help="Format output as json (sf's envelope).")

if TYPE_CHECKING:
    from sf_intuser import workspace


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sf-intuser")
def main() -> None:
    """Move Salesforce integration users onto the free Salesforce Integration user license.

    \b
    Read the org:  discover, snapshot, plan
    Change it:     apply, verify, rollback, report
    Offline:       convert, lint
    Rehearse:      rehearse (a sandbox or scratch org), demo (the bundled emulated org)
    Tools:         doctor, emulator serve
    """



@functools.lru_cache(maxsize=4096)
def _shown(path: str | Path) -> str:
    """A path as the user would type it: relative to the working folder when it is below it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _discover(paths: Sequence[Path]) -> list["workspace.MetadataFile"]:
    from sf_intuser import workspace

    try:
        return workspace.discover(paths)
    except workspace.WorkspaceError as exc:
        raise CliError("PathNotFound", str(exc)) from None


# --- reading the org --------------------------------------------------------------------------

target_org_option = click.option(
    "-o", "--target-org", default=None, metavar="ORG",
    help="Username or alias of the org (default: sf's configured target-org).")
sf_path_option = click.option("--sf-path", default=None,
                              help="The sf executable (default: SF_INTUSER_SF, the setup's shim, PATH).")
config_option = click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
                             help="The config file (default: sf-intuser.toml in the project root or here).")
verbose_option = click.option("--verbose", is_flag=True,
                              help="Also say how many sf calls it made and how long they took.")
days_option = click.option("--days", type=click.IntRange(1, 180), default=None,
                           help="The login window in days (default 90, or [discover] days in sf-intuser.toml).")


class _Progress:
    """Progress lines on stderr for long work (never with --json, so stdout stays one envelope).

    No wait goes silent: while a step runs, a line saying what is still happening and for how long
    follows every :data:`BEAT` seconds (on a terminal it is rewritten in place). All stop when the
    command ends (:func:`stop_progress`)."""

    BEAT = 2.5
    live: list["_Progress"] = []

    def __init__(self, quiet: bool) -> None:
        import time

        self.quiet = quiet
        self.message = ""
        self.since = self.last = time.monotonic()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.tty = sys.stderr.isatty()
        self.lock = threading.Lock()

    def __call__(self, message: str) -> None:
        import time

        if self.quiet:
            return
        with self.lock:
            self._end_line()
            echo(f"... {message}", err=True)
            self.message, self.since = message, time.monotonic()
            self.last = self.since
        if self.thread is None:
            _Progress.live.append(self)
            self.thread = threading.Thread(target=self._beat, name="sf-intuser-progress", daemon=True)
            self.thread.start()

    def _end_line(self) -> None:
        if self.tty and self.last != self.since:      # a rewritten line is ended before the next one
            click.echo("", err=True)

    def _beat(self) -> None:
        import time

        while not self.stopped.wait(0.5):
            with self.lock:
                now = time.monotonic()
                if now - self.last < self.BEAT or not self.message:
                    continue
                self.last = now
                line = f"... {self.message} ({now - self.since:.0f} s)"
                if self.tty:
                    click.echo("\r" + line, err=True, nl=False)
                else:
                    echo(line, err=True)

    def pause(self) -> None:
        """Quiet until the next step's line (before a question, before the result)."""
        with self.lock:
            if self.message:
                self._end_line()
                self.message = ""
                self.last = self.since

    def stop(self) -> None:
        self.pause()
        self.stopped.set()


def pause_progress() -> None:
    for p in _Progress.live:
        p.pause()


def stop_progress() -> None:
    while _Progress.live:
        _Progress.live.pop().stop()


def _failure(exc: Exception) -> CliError:
    from sf_intuser.workflow import from_error

    return exc if isinstance(exc, Failure) else from_error(exc)


def _load_config(config_path: Path | None) -> "config_mod.Config":
    from sf_intuser import config as config_mod

    try:
        path = config_path or config_mod.find()
        if config_path is not None and not config_path.is_file():
            raise config_mod.ConfigError(f"{config_path}: no such file. Check the path given with --config")
        return config_mod.load(path) if path else config_mod.Config()
    except config_mod.ConfigError as exc:
        raise CliError("InvalidConfig", str(exc), actions=["Fix the file; the README lists its keys"]) from None


def _calls_line(runner: "SfRunner", t0: float) -> str:
    import time

    kinds: dict[str, int] = {}
    for c in runner.calls:
        verb = " ".join(a for a in c.argv[1:4] if not a.startswith("-") and "/" not in a) or " ".join(c.argv[1:2])
        kinds[verb] = kinds.get(verb, 0) + 1
    detail = ", ".join(f"{n}× sf {v}" for v, n in kinds.items())
    return f"{len(runner.calls)} sf call(s) in {time.perf_counter() - t0:.1f} s: {detail}"


def _now() -> "datetime":
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(microsecond=0)


def _sf_runner(sf_path: str | None, env: dict[str, str] | None = None) -> "SfRunner":
    from sf_intuser.sf.runner import SfError, SfRunner

    try:
        return SfRunner(sf=sf_path, env=env)
    except SfError as exc:
        raise _failure(exc) from None


if TYPE_CHECKING:
    from datetime import datetime

    from sf_intuser import config as config_mod
    from sf_intuser.sf.runner import SfRunner


run_dir_argument = click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path, file_okay=False))
yes_option = click.option("-y", "--yes", "-p", "--no-prompt", "yes", is_flag=True,
                          help="Do it without asking (sf's -p/--no-prompt). With --json, a change needs it.")


def _org_of_run(run_dir: Path, target_org: str | None) -> str | None:
    """``-o`` when given; else the org the run's plan was made for (its alias, else its username), so
    that a hint printed without ``-o`` works as printed. The command still checks the org's id against
    the plan's; a run folder without a readable plan leaves sf's default org."""
    if target_org:
        return target_org
    try:
        plan = json.loads((run_dir / run_files.PLAN).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    org = plan.get("org") if isinstance(plan, dict) else None
    if isinstance(org, dict):
        name = org.get("alias") or org.get("username")
        return name if isinstance(name, str) and name else None
    return None


def _confirm(yes: bool, as_json: bool) -> "Callable[[list[str]], bool] | None":
    """None when no question is asked (-p/--no-prompt, --yes); else the question, asked only when there
    is something to change. With --json nothing is asked (the output is for a program), so a change
    needs --no-prompt: without it nothing is done (ConfirmationRequired), as without a terminal."""
    if yes:
        return None

    def ask(lines: list[str]) -> bool:
        if json_wanted(as_json):
            raise CliError("ConfirmationRequired", "Nothing was changed: with --json nothing is asked, so a "
                           "change needs --no-prompt (or --yes)", data={"wouldDo": lines},
                           actions=["Add --no-prompt to go ahead", "See what it would do first: add --dry-run "
                                    "(apply)"])
        pause_progress()
        for line in lines:
            echo(line, err=True)
        if not sys.stdin.isatty():
            raise CliError("ConfirmationRequired", "Nothing was changed: there is no terminal to ask, and "
                           "-p/--no-prompt was not given",
                           actions=["Review the lines above, then run again with --no-prompt"])
        return click.confirm("Go ahead?", default=False, err=True)

    return ask



def me() -> str:
    """How the user runs this tool, as a hint must print it to work when pasted: ``sf intuser`` through the
    sf plugin (it sets SF_INTUSER_VIA_SF), ``sf-intuser`` when that is on PATH, else its full path (a
    virtual environment not activated)."""
    import shlex
    import shutil

    if os.environ.get("SF_INTUSER_VIA_SF") == "1":
        return "sf intuser"
    if shutil.which("sf-intuser"):
        return "sf-intuser"
    here = Path(sys.executable).parent / "sf-intuser"
    return shlex.quote(str(here)) if here.exists() else "sf-intuser"
