"""The ``sf-intuser`` command line, by topic as sf groups its commands: ``metadata`` (convert, lint),
``migration`` (discover ... rehearse), ``org`` (doctor), ``emulator`` (serve, demo), ``gate``. The only
layer that prints, reads the environment and picks exit codes; each command parses, calls the workflow
layer and prints.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Sequence

import click

from sf_intuser import __version__
from sf_intuser.cli import emulator, gate, metadata, migration, org  # noqa: F401 - they register their commands
from sf_intuser.cli.common import CliError, as_run, echo, json_wanted, main, stop_progress
from sf_intuser.errors import Failure
from sf_intuser.report import output
from sf_intuser.report.output import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, error_envelope

# --- entry point ------------------------------------------------------------------------------


FLAGS_DIR_HELP = "Import flag values from a directory (sf's --flags-dir: a file per flag, a value per line)."


def _wide(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        output.WIDTH[0] = None
    return value


def _with_flags_dir(group: click.Group) -> None:
    """Every command takes sf's global ``--flags-dir`` (:func:`expand_flags_dir` reads it before click) and
    ``--wide`` (tables as wide as their longest cell, instead of fitted to the terminal)."""
    for cmd in group.commands.values():
        if isinstance(cmd, click.Group):
            _with_flags_dir(cmd)
        elif not any(p.name == "flags_dir" for p in cmd.params):
            cmd.params.append(click.Option(["--flags-dir", "flags_dir"], metavar="DIR", expose_value=False,
                                           show_default=False, help=FLAGS_DIR_HELP))
            cmd.params.append(click.Option(["--wide"], is_flag=True, expose_value=False, callback=_wide,
                                           is_eager=True, help="Print tables at full width instead of fitting "
                                                               "them to the terminal (COLUMNS)."))


def terminal_width() -> int | None:
    """The width tables and lines fit when stdout is a terminal: ``COLUMNS`` when set, else the terminal's
    own. None (no fitting) when the output goes to a file or a program, whatever ``COLUMNS`` says (test
    runners and CI set it for output no one reads at that width)."""
    if not sys.stdout.isatty():
        return None
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return max(int(cols), 40)
    import shutil

    return shutil.get_terminal_size().columns


def _command_of(argv: Sequence[str]) -> click.Command | None:
    cmd: click.Command = main
    for tok in argv:
        if not isinstance(cmd, click.Group) or tok.startswith("-"):
            break
        nxt = cmd.commands.get(tok)
        if nxt is None:
            break
        cmd = nxt
    return None if isinstance(cmd, click.Group) else cmd


def expand_flags_dir(argv: list[str]) -> list[str]:
    """sf's ``--flags-dir DIR``, done as sf's own preparse hook does it (@salesforce/cli
    dist/hooks/preparse.js), because sf runs that hook only for commands that parse through
    SfCommand, and ``sf intuser`` hands argv on untouched: each file in DIR is named after a flag
    (``target-org``, ``o``, ``json``; an extension is dropped); each line that is not a ``#``/``//``
    comment is a value (an empty file switches a boolean on; a ``.json`` file is one value). A flag
    given on the command line wins over its file, except for flags that take several values, which
    get both. A missing DIR adds nothing, as in sf."""
    if "--flags-dir" not in argv:
        return argv
    at = argv.index("--flags-dir")
    folder = argv[at + 1] if at + 1 < len(argv) else ""
    rest = argv[:at] + argv[at + 2:] if folder and not folder.startswith("-") else argv[:at] + argv[at + 1:]
    if not folder or folder.startswith("-"):
        return rest
    cmd = _command_of(rest)
    if cmd is None:
        return rest
    import json as json_mod

    options = [p for p in cmd.params if isinstance(p, click.Option)]
    ignore: set[str] = set()
    for o in options:
        if o.multiple:
            continue
        given = [x for x in o.opts + o.secondary_opts if x in rest or any(a.startswith(x + "=") for a in rest)]
        if given:
            ignore.update(x.lstrip("-") for x in o.opts + o.secondary_opts)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return rest
    added: list[str] = []
    for fname in names:
        stem, ext = os.path.splitext(fname)
        if fname in ignore or stem in ignore:
            continue
        try:
            contents = (Path(folder) / fname).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if ext == ".json":
            try:
                values = [json_mod.dumps(json_mod.loads(contents), separators=(",", ":"))]
            except ValueError:
                raise CliError("InvalidFlagsDir", f"--flags-dir {folder}: {fname} is not valid JSON", EXIT_USAGE,
                               actions=[f"Fix {Path(folder) / fname} or remove it"]) from None
        else:
            lines = contents.strip().split("\r\n" if "\r\n" in contents else "\n")
            values = [ln for ln in lines if not ln.strip().startswith(("#", "//"))]
        for value in values:
            added.append(f"-{stem}" if len(stem) == 1 else f"--{stem}")
            if value:
                added.append(value)
    return rest + added


#: a second SIGINT this soon after the first is the same Ctrl-C, delivered twice
SAME_CTRL_C = 2.0


def _one_ctrl_c() -> object:
    """A SIGINT handler that raises KeyboardInterrupt once per Ctrl-C. Ctrl-C in a terminal signals the
    whole foreground process group, and the plugin (``sf intuser``) also passes the signal on to its
    child, so the tool may get the same Ctrl-C twice within milliseconds; the second must not cut off
    the first one's clean stop (writing the journal's record and the answer)."""
    last = [0.0]

    def handler(_signum: int, _frame: object) -> None:
        now = time.monotonic()
        if last[0] and now - last[0] < SAME_CTRL_C:
            return
        last[0] = now
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGINT, handler)
    except ValueError:          # not the main thread (an in-process test): leave Python's own
        return None


def run(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    before = _one_ctrl_c()
    try:
        return _run(argv)
    finally:
        if before is not None:
            signal.signal(signal.SIGINT, before)  # type: ignore[arg-type]


def _run(argv: list[str]) -> int:
    from sf_intuser import tempfiles

    tempfiles.clean_leftovers()   # what a killed run left (request bodies, retrieves) goes now
    output.WIDTH[0] = terminal_width()
    as_json = "--json" in argv or json_wanted(False)
    try:
        argv = expand_flags_dir(argv)
        as_json = as_json or "--json" in argv
        try:
            main.main(args=argv, prog_name="sf intuser" if os.environ.get("SF_INTUSER_VIA_SF") == "1" else "sf-intuser",
                      standalone_mode=False)
        finally:
            stop_progress()
        return EXIT_OK
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        if as_json:
            echo(error_envelope("UsageError", exc.format_message(), EXIT_USAGE), as_json=True)
        else:
            exc.show()
        return EXIT_USAGE
    except click.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt) or isinstance(exc.__cause__, KeyboardInterrupt):
            return _fail(as_json, CliError("Interrupted", INTERRUPTED, EXIT_INTERRUPTED))
        echo("Aborted.", err=True)
        return EXIT_FAILURE
    except CliError as exc:
        return _fail(as_json, exc)
    except KeyboardInterrupt:
        return _fail(as_json, CliError("Interrupted", INTERRUPTED, EXIT_INTERRUPTED))
    except Exception as exc:   # noqa: BLE001 - the last line of defence: never a traceback on the terminal
        log = write_crash_log(argv)
        message = (f"sf-intuser failed unexpectedly ({type(exc).__name__}: {str(exc)[:300]}); "
                   + (f"the details are in {log}" if log else "the details could not be written to a log file"))
        return _fail(as_json, CliError("UnexpectedError", message, EXIT_FAILURE, actions=[
            "Run the command again; if it fails the same way, report it with the log file"]))


INTERRUPTED = "Stopped (Ctrl-C) before the command finished"


def _fail(as_json: bool, exc: Failure) -> int:
    """An error as sf prints it: its envelope with --json, else ``Error (Name): message`` and the fixes.
    Every fix names the tool as it is run (:func:`common.as_run`), so it works when pasted."""
    actions = [as_run(a) for a in exc.actions]
    if as_json:
        echo(error_envelope(exc.name, as_run(exc.message), exc.exit_code, actions, exc.data), as_json=True)
    else:
        echo(f"Error ({exc.name}): {exc.message}", err=True)
        for a in actions:
            echo(f"  Try this: {a}", err=True)
    return exc.exit_code


#: 128 + SIGINT, as a shell reports a command that Ctrl-C stopped
EXIT_INTERRUPTED = 130


def write_crash_log(argv: Sequence[str]) -> Path | None:
    """The traceback of an unexpected error, in a file only its user can read (it may name org data):
    ``$SF_INTUSER_LOG_DIR``, else ``$XDG_CACHE_HOME/sf-intuser/logs`` or ``~/.cache/sf-intuser/logs``,
    else the temporary folder. Returns the file, or None when none could be written."""
    import tempfile
    import time
    import traceback

    text = (f"sf-intuser {__version__}\nargv: {list(argv)!r}\n\n" + traceback.format_exc()).encode("utf-8", "replace")
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    for folder in (os.environ.get("SF_INTUSER_LOG_DIR"), str(Path(cache) / "sf-intuser" / "logs"),
                   tempfile.gettempdir()):
        if not folder:
            continue
        try:
            Path(folder).mkdir(parents=True, exist_ok=True, mode=0o700)
            path = Path(folder) / f"sf-intuser-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(text)
            return path
        except OSError:
            continue
    return None


_with_flags_dir(main)


def entry() -> None:
    sys.exit(run())


if __name__ == "__main__":
    entry()
