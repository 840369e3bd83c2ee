"""The one choke point that runs the ``sf`` CLI (the only importer of ``sh``).

Every call: an argv list (never a shell string), ``--json`` unless the command has none, the
offline and fast environment below, a timeout, and a record of the call (argv with secrets
redacted, exit code, seconds). sf prints its JSON envelope on stdout even when it fails
(docs/sf-wire.md section 9), so the envelope is parsed first and the exit code judged after;
a failure becomes a :class:`SfError` carrying sf's error name, message, exit code and actions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

#: Environment that keeps ``sf`` offline and fast (docs/sf-wire.md sections 0 and 10):
#: telemetry off, no new-version check, both auto-update switches (``SF_AUTOUPDATE_DISABLE`` alone
#: *starts* a background updater on npm installs), and no log file (its flush adds 0.2-1.1 s a call).
QUIET_ENV: dict[str, str] = {
    "SF_DISABLE_TELEMETRY": "true",
    "SF_SKIP_NEW_VERSION_CHECK": "true",
    "SF_DISABLE_AUTOUPDATE": "true",
    "SF_AUTOUPDATE_DISABLE": "true",
    "SF_DISABLE_LOG_FILE": "true",
}

#: The CLI version sf-intuser is built and tested against (tools/sf-cli/package.json).
TESTED_VERSION = (2, 146, 3)
MIN_MAJOR = 2

_TOKEN = re.compile(r"00D\w{12,15}![\w.]+")
_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


def redact(text: str) -> str:
    """Remove access tokens (``00D...!...`` session ids and JWTs) from anything we log or show."""
    return _JWT.sub("[REDACTED]", _TOKEN.sub("[REDACTED]", text))


class SfError(Exception):
    """sf failed. ``name`` is sf's error name (e.g. ``INVALID_SESSION_ID``), ``exit_code`` its exit code."""

    def __init__(self, name: str, message: str, exit_code: int = 1, actions: Sequence[str] = (),
                 data: Any = None, argv: Sequence[str] = ()) -> None:
        self.name = name
        self.message = redact(message)
        self.exit_code = exit_code
        self.actions = [redact(a) for a in actions]
        self.data = data
        self.argv = list(argv)
        super().__init__(f"{name}: {self.message}")


class SfNotFound(SfError):
    pass


class SfTimeout(SfError):
    pass


class SfAuthError(SfError):
    """No usable session for the org (not logged in, expired or revoked)."""


class SfConnectionError(SfError):
    """The org did not answer: the connection failed or was dropped. sf reports it as exit 10,
    ``TypeError: fetch failed`` (observed against the emulated org); jsforce itself retries 5xx answers
    and got retries dropped connections a few times before this surfaces."""


@dataclass
class Envelope:
    status: int
    result: Any
    warnings: list[str]
    raw: dict[str, Any]


@dataclass
class Call:
    argv: list[str]
    exit_code: int
    seconds: float


#: (argv, env, timeout) -> (exit_code, stdout, stderr); replaced by a fake in adapter tests.
Executor = Callable[[Sequence[str], Mapping[str, str], float], tuple[int, str, str]]


def sh_executor(argv: Sequence[str], env: Mapping[str, str], timeout: float,
                cwd: str | None = None) -> tuple[int, str, str]:
    import sh  # the only import of sh in the project

    try:
        proc = sh.Command(argv[0])(*argv[1:], _env=dict(env), _timeout=timeout, _ok_code=list(range(256)),
                                   _return_cmd=True, _in="", _cwd=cwd)
    except sh.TimeoutException:
        raise SfTimeout("SfTimeout", f"sf did not finish within {timeout:.0f} s", 1, argv=argv) from None
    except sh.CommandNotFound:
        raise SfNotFound("SfNotFound", f"cannot run {argv[0]}", 127, argv=argv) from None
    except sh.SignalException as exc:
        return 128 + abs(exc.exit_code), exc.stdout.decode("utf-8", "replace"), exc.stderr.decode("utf-8", "replace")
    out, err = proc.stdout, proc.stderr
    return (int(proc.exit_code), out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out),
            err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err))


def run_process(argv: Sequence[str], *, stdin: bytes = b"", timeout: float = 60,
                cwd: str | None = None) -> tuple[int, bytes, bytes] | None:
    """Any other program the tool runs (git, for the lint and the gate), through the same one place as sf:
    its exit code, stdout and stderr as bytes; None when it can't be started or outlives ``timeout``."""
    import sh  # the only import of sh in the project

    try:
        proc = sh.Command(argv[0])(*argv[1:], _timeout=timeout, _ok_code=list(range(256)), _return_cmd=True,
                                   _in=stdin, _cwd=cwd, _decode_errors="replace", _tty_out=False)
    except (sh.TimeoutException, sh.CommandNotFound, sh.SignalException, OSError):
        return None
    out, err = proc.stdout, proc.stderr
    return proc.exit_code, out if isinstance(out, bytes) else str(out).encode(), \
        err if isinstance(err, bytes) else str(err).encode()


def find_sf(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The ``sf`` to run: an explicit path, else ``SF_INTUSER_SF``, else the setup's shim beside this
    Python (``.venv/bin/sf``), else ``sf`` on PATH."""
    environ = os.environ if environ is None else environ
    for candidate in (explicit, environ.get("SF_INTUSER_SF")):
        if candidate:
            if Path(candidate).is_file() or shutil.which(candidate):
                return candidate
            raise SfNotFound("SfNotFound", f"sf not found at {candidate}", 127,
                             actions=["Fix --sf-path / SF_INTUSER_SF, or run `make setup` to install the pinned CLI"])
    shim = Path(sys.executable).parent / "sf"
    if shim.is_file():
        return str(shim)
    on_path = shutil.which("sf", path=environ.get("PATH"))
    if on_path:
        return on_path
    raise SfNotFound("SfNotFound", "the Salesforce CLI (sf) was not found", 127,
                     actions=["Run `make setup` in the sf-intuser checkout (it installs the pinned CLI), or "
                              "`npm install --global @salesforce/cli` (needs Node 22.19 or later)",
                              "Or point SF_INTUSER_SF at an sf executable"])


def parse_version(text: str) -> tuple[int, int, int] | None:
    m = re.search(r"@salesforce/cli/(\d+)\.(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


@dataclass
class SfRunner:
    sf: str | None = None
    env: Mapping[str, str] | None = None
    timeout: float = 900.0
    executor: Executor = sh_executor
    calls: list[Call] = field(default_factory=list)
    #: the folder sf runs in (an SFDX project for source-format retrieve and deploy); None: ours
    cwd: str | None = None

    def __post_init__(self) -> None:
        if self.sf is None:
            self.sf = find_sf(environ=self.env)

    @property
    def executable(self) -> str:
        """The sf executable this runner starts (found when it was made, if none was given)."""
        return self.sf or find_sf(environ=self.env)

    def environment(self) -> dict[str, str]:
        base = dict(os.environ if self.env is None else self.env)
        for k, v in QUIET_ENV.items():
            base.setdefault(k, v)
        base.pop("SF_CONTENT_TYPE", None)  # we always ask for --json ourselves
        return base

    def raw(self, args: Sequence[str], timeout: float | None = None) -> tuple[int, str, str]:
        argv = [str(self.sf), *args]
        t0 = time.perf_counter()
        extra = {"cwd": self.cwd} if self.cwd else {}
        code, out, err = self.executor(argv, self.environment(), timeout or self.timeout, **extra)
        self.calls.append(Call([redact(a) for a in argv], code, time.perf_counter() - t0))
        return code, out, err

    def run(self, args: Sequence[str], timeout: float | None = None, ok: Sequence[int] = (0,)) -> Envelope:
        """Run ``sf ARGS --json``; return the envelope, or raise :class:`SfError` for a failure."""
        args = [*args, "--json"]
        code, out, err = self.raw(args, timeout)
        env = parse_envelope(out)
        if env is None:
            raise SfError("SfBadOutput", f"sf {' '.join(args[:3])} printed no JSON envelope (exit {code}): "
                          f"{(err or out).strip()[:500]}", code or 1, argv=args)
        # an error envelope has no "result": whatever the exit code, it is an error
        if code in ok and env.get("status", code) in ok and ("result" in env or code == 0):
            return Envelope(int(env.get("status", 0)), env.get("result"), list(env.get("warnings") or []), env)
        raise error_from(env, code, args)

    def temp_json(self, data: Any) -> str:
        """A private temporary file holding ``data`` as JSON, for ``--body @file``; the caller deletes it
        (one a killed process leaves is removed at the next start: :mod:`sf_intuser.tempfiles`)."""
        from sf_intuser import tempfiles

        path = tempfiles.new_file("request", ".json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        return str(path)

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.calls)


def parse_envelope(stdout: str) -> dict[str, Any] | None:
    """sf's JSON envelope from stdout; tolerant of text printed before it."""
    text = stdout.strip()
    if not text:
        return None
    try:
        data = json.loads(text)
        return data if isinstance(data, dict) else None
    except ValueError:
        start = text.find("{")
        if start < 0:
            return None
        try:
            data = json.loads(text[start:])
            return data if isinstance(data, dict) else None
        except ValueError:
            return None


_AUTH_NAMES = {"INVALID_SESSION_ID", "NoAuthInfoFound", "NamedOrgNotFoundError", "NoDefaultEnvError",
               "NoOrgFound", "AuthInfoCreationError", "sf:INVALID_SESSION_ID"}


def error_from(env: dict[str, Any], code: int, argv: Sequence[str]) -> SfError:
    name = str(env.get("name") or env.get("code") or "SfError")
    message = str(env.get("message") or "")
    if not message and isinstance(env.get("result"), dict):
        failures = env["result"].get("failures") or []
        message = "; ".join(str(f.get("message", f)) for f in failures) or json.dumps(env["result"])[:500]
    exit_code = int(env.get("exitCode") or env.get("status") or code or 1)
    actions = list(env.get("actions") or [])
    cls: type[SfError] = SfAuthError if name in _AUTH_NAMES else SfError
    if name == "TypeError" and "fetch failed" in message or "ECONNRESET" in message or "ECONNREFUSED" in message:
        cls = SfConnectionError
        actions = actions or ["Check that the org's instance URL is reachable, then run the command again"]
    return cls(name, message, exit_code, actions, env.get("data") or env.get("result"), argv)
