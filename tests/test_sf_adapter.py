"""The sf choke point: envelopes, typed errors, redaction, SOQL escaping; and the real CLI."""

from __future__ import annotations

import json
import os

import pytest

from sf_intuser.sf import commands, soql
from sf_intuser.sf.runner import QUIET_ENV, SfAuthError, SfError, SfNotFound, SfRunner, find_sf, redact
from tests.conftest import ROOT

TOKEN = "00D000000000001!AQ0AQFakeTokenForTests.abc"


class FakeExec:
    """Records argv and environment; answers with recorded (exit, stdout) pairs."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.seen = []

    def __call__(self, argv, env, timeout):
        self.seen.append((list(argv), dict(env), timeout))
        code, out = self.answers.pop(0)
        return code, out if isinstance(out, str) else json.dumps(out), ""


def runner(*answers, env=None):
    ex = FakeExec(*answers)
    return SfRunner(sf="/opt/sf", env=env or {"PATH": "/usr/bin"}, executor=ex), ex


def test_success_envelope_argv_and_quiet_env():
    r, ex = runner((0, {"status": 0, "result": {"records": [{"Id": "005"}], "done": True}, "warnings": []}))
    recs = commands.query(r, "SELECT Id FROM User", "emu")
    assert recs == [{"Id": "005"}]
    argv, env, _ = ex.seen[0]
    assert argv == ["/opt/sf", "data", "query", "--query", "SELECT Id FROM User", "--target-org", "emu", "--json"]
    for k, v in QUIET_ENV.items():
        assert env[k] == v
    assert len(r.calls) == 1 and r.calls[0].exit_code == 0


def test_error_envelope_becomes_typed_error_with_token_redacted():
    r, _ = runner((1, {"name": "LICENSE_LIMIT_EXCEEDED", "message": f"License Limit Exceeded for {TOKEN}",
                       "exitCode": 1, "status": 1, "actions": ["Free a seat"]}))
    with pytest.raises(SfError) as err:
        r.run(["data", "update", "record"])
    assert err.value.name == "LICENSE_LIMIT_EXCEEDED" and err.value.exit_code == 1
    assert TOKEN not in str(err.value) and "[REDACTED]" in err.value.message
    assert err.value.actions == ["Free a seat"]


def test_expired_session_is_an_error_although_sf_exits_0():
    r, _ = runner((0, {"status": 0, "result": {"username": "a@b.c", "connectedStatus": "Session expired or invalid"},
                       "warnings": ["unable to refresh auth for org"]}))
    with pytest.raises(SfAuthError) as err:
        commands.org_display(r, "emu")
    assert "Session expired" in err.value.message


def test_invalid_session_name_maps_to_auth_error():
    r, _ = runner((1, {"name": "INVALID_SESSION_ID", "message": "Session expired or invalid", "exitCode": 1}))
    with pytest.raises(SfAuthError):
        r.run(["data", "query", "--query", "SELECT Id FROM User"])


def test_partial_success_failures_surface_when_no_message():
    r, _ = runner((68, {"status": 68, "result": {"successes": [], "failures": [{"name": "u", "message": "nope"}]}}))
    with pytest.raises(SfError) as err:
        r.run(["org", "assign", "permset"])
    assert err.value.exit_code == 68 and "nope" in err.value.message


def test_no_envelope_is_a_clear_error():
    r, _ = runner((1, "TypeError: Cannot read properties of undefined"))
    with pytest.raises(SfError) as err:
        r.run(["org", "display"])
    assert err.value.name == "SfBadOutput" and "TypeError" in err.value.message


def test_redact_tokens_and_jwts():
    assert redact(f"token {TOKEN} and eyJhbGciOi.eyJzdWIiOi.sig") == "token [REDACTED] and [REDACTED]"


def test_soql_quote_cannot_be_broken_out_of():
    evil = "o'brien\\' OR Username != '"
    q = f"SELECT Id FROM User WHERE Username = {soql.quote(evil)}"
    assert q == "SELECT Id FROM User WHERE Username = 'o\\'brien\\\\\\' OR Username != \\''"
    assert soql.in_list(["b", "a'"]) == "('a\\'', 'b')"
    with pytest.raises(ValueError):
        soql.in_list([])
    assert [len(c) for c in soql.chunks(map(str, range(450)))] == [200, 200, 50]


def test_find_sf_order(tmp_path):
    fake = tmp_path / "sf"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_sf(str(fake), environ={}) == str(fake)
    assert find_sf(None, environ={"SF_INTUSER_SF": str(fake)}) == str(fake)
    with pytest.raises(SfNotFound) as err:
        find_sf(str(tmp_path / "missing"), environ={})
    assert "make setup" in " ".join(err.value.actions)


# --- the real, pinned CLI ----------------------------------------------------------------------

SHIM = ROOT / ".venv" / "bin" / "sf"
needs_sf = pytest.mark.skipif(not SHIM.exists(), reason="the pinned sf CLI is not installed (run `make setup`)")


@pytest.fixture()
def real_runner(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "SF_USE_GENERIC_UNIX_KEYCHAIN": "true"}
    return SfRunner(sf=str(SHIM), env=env, timeout=120)


@pytest.mark.e2e
@needs_sf
def test_real_cli_version(real_runner):
    assert commands.version(real_runner) == (2, 146, 3)


@pytest.mark.e2e
@needs_sf
def test_real_cli_unknown_org_is_a_typed_auth_error(real_runner):
    with pytest.raises(SfAuthError) as err:
        commands.org_display(real_runner, "no-such-org")
    # observed: sf fails the --target-org flag parse, exit 2, NamedOrgNotFoundError
    assert err.value.name == "NamedOrgNotFoundError" and err.value.exit_code == 2
    assert "no-such-org" in err.value.message


@pytest.mark.e2e
@needs_sf
def test_doctor_against_the_real_cli(tmp_path):
    import subprocess

    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "SF_INTUSER_SF": str(SHIM)}
    env.pop("SF_CONTENT_TYPE", None)
    out = subprocess.run([str(ROOT / ".venv/bin/sf-intuser"), "doctor", "--json"], capture_output=True, text=True,
                         env=env, timeout=120)
    res = json.loads(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    checks = {c["check"]: c for c in res["result"]["checks"]}
    assert checks["sf version"]["detail"] == "2.146.3" and checks["sf version"]["ok"]
    out = subprocess.run([str(ROOT / ".venv/bin/sf-intuser"), "doctor", "-o", "nope", "--json"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 1 and json.loads(out.stdout)["status"] == 1
