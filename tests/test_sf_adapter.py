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
    assert checks["target org"]["skipped"] is True          # no org: said as skipped, not as ok
    human = subprocess.run([str(ROOT / ".venv/bin/sf-intuser"), "doctor"], capture_output=True, text=True, env=env,
                           timeout=120)
    assert any(ln.split()[:3] == ["target", "org", "skipped"] for ln in human.stdout.splitlines()), human.stdout
    out = subprocess.run([str(ROOT / ".venv/bin/sf-intuser"), "doctor", "-o", "nope", "--json"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 1 and json.loads(out.stdout)["status"] == 1


# --- verbs over recorded envelopes (shapes from docs/sf-wire.md sections 6 and 8) ---------


def test_assign_permset_duplicate_counts_as_already_done():
    r, ex = runner((1, {"status": 1, "result": {"successes": [{"name": "a@x.com", "value": "PS"}], "failures": [
        {"name": "b@x.com", "message": "Duplicate PermissionSetAssignment. Assignee: 005; Permission Set: 0PS"},
        {"name": "c@x.com", "message": "Can't assign permission set PS to user c@x.com. The user license doesn't "
                                       "allow the permission: FreezeUsers"}]}, "warnings": []}))
    res = commands.assign_permsets(r, ["PS"], ["a@x.com", "b@x.com", "c@x.com"], "emu")
    assert res.done == [("a@x.com", "PS")] and res.already == [("b@x.com", "PS")]
    assert res.failures == [("c@x.com", "Can't assign permission set PS to user c@x.com. The user license doesn't "
                                        "allow the permission: FreezeUsers")]
    assert ex.seen[0][0][1:] == ["org", "assign", "permset", "--name", "PS", "--on-behalf-of", "a@x.com",
                                 "--on-behalf-of", "b@x.com", "--on-behalf-of", "c@x.com", "--target-org", "emu",
                                 "--json"]


def test_assign_permset_license_warning_means_already():
    r, _ = runner((0, {"status": 0, "result": {"successes": [], "failures": []}, "warnings": [
        'The user "a@x.com" already has the Permission Set License "SalesforceAPIIntegrationPsl"']}))
    res = commands.assign_permset_licenses(r, ["SalesforceAPIIntegrationPsl"], ["a@x.com"], "emu")
    assert res.ok and res.already == [("a@x.com", "SalesforceAPIIntegrationPsl")] and not res.done


def test_assign_unknown_user_is_an_error():
    r, _ = runner((1, {"name": "SingleRecordQuery_NoRecords", "message": "No record found for SELECT Id FROM User",
                       "exitCode": 1, "status": 1}))
    with pytest.raises(SfError) as err:
        commands.assign_permsets(r, ["PS"], ["nobody@x.com"], "emu")
    assert err.value.name == "SingleRecordQuery_NoRecords"


def test_deploy_failure_is_parsed_per_file():
    result = {"status": "Failed", "success": False, "checkOnly": False, "id": "0Af1", "details": {
        "componentFailures": {"componentType": "Profile", "fullName": "Integration", "fileName":
                              "profiles/Integration.profile", "problem": "In field: field - no CustomField",
                              "lineNumber": "12", "columnNumber": "5"},
        "componentSuccesses": [{"componentType": "Package", "fullName": "package.xml"},
                               {"componentType": "ApexClass", "fullName": "Z"}]}}
    r, _ = runner((1, {"status": 1, "result": result, "warnings": []}))
    res = commands.deploy(r, ROOT, "emu")
    assert res.status == "Failed" and res.deployed == [("ApexClass", "Z")]
    assert res.failures == [commands.ComponentFailure("Profile", "Integration", "profiles/Integration.profile",
                                                      "In field: field - no CustomField", 12, 5)]


def test_failed_validation_is_read_back_with_deploy_report():
    failed = {"status": "Failed", "checkOnly": True, "id": "0Af1", "details": {"componentFailures": [
        {"componentType": "Profile", "fullName": "P", "fileName": "profiles/P.profile", "problem": "bad"}]}}
    r, ex = runner((1, {"name": "FailedValidationError", "message": "Failed to validate", "exitCode": 1,
                        "status": 1, "data": {"deployId": "0Af1"}}),
                   (1, {"status": 1, "result": failed, "warnings": []}))
    res = commands.deploy(r, ROOT, "emu", validate=True)
    assert res.check_only and [f.problem for f in res.failures] == ["bad"]
    assert ex.seen[1][0][1:6] == ["project", "deploy", "report", "--job-id", "0Af1"]


def test_deploy_error_envelope_without_result_is_raised():
    r, _ = runner((1, {"name": "sf:INVALID_SESSION_ID", "message": "INVALID_SESSION_ID: Illegal Session",
                       "exitCode": 1, "status": 1}))
    with pytest.raises(SfAuthError):
        commands.deploy(r, ROOT, "emu", dry_run=True)


def test_collection_parses_per_record_errors_and_http_errors():
    body = [{"id": "0Pa1", "success": True, "errors": []},
            {"success": False, "errors": [{"statusCode": "DUPLICATE_VALUE", "message": "dup", "fields": []}]}]
    r, ex = runner((0, json.dumps(body, indent=2)))
    res = commands.collection(r, "POST", [{"attributes": {"type": "PermissionSetAssignment"}}] * 2, "emu", "62.0")
    assert res == [commands.RecordResult("0Pa1", True), commands.RecordResult(None, False, "DUPLICATE_VALUE", "dup")]
    argv = ex.seen[0][0]
    assert argv[1:5] == ["api", "request", "rest", "/services/data/v62.0/composite/sobjects"]
    assert "--json" not in argv    # the beta command has no --json flag
    r, _ = runner((1, json.dumps([{"message": "License Limit Exceeded", "errorCode": "LICENSE_LIMIT_EXCEEDED"}])))
    with pytest.raises(SfError) as err:
        commands.collection(r, "POST", [{"attributes": {"type": "User"}}], "emu", "62.0")
    assert err.value.name == "LICENSE_LIMIT_EXCEEDED"


def test_collection_sends_200_records_a_call():
    answers = [(0, json.dumps([{"id": f"0Pa{i}", "success": True, "errors": []} for i in range(n)]))
               for n in (200, 200, 50)]
    r, ex = runner(*answers)
    res = commands.collection(r, "DELETE", [{"Id": f"0Pa{i}"} for i in range(450)], "emu", "62.0")
    assert len(res) == 450 and len(ex.seen) == 3
    assert ex.seen[2][0][4].count(",") == 49


def test_record_values_refuse_what_would_need_quoting():
    r, _ = runner()
    with pytest.raises(ValueError):
        commands.update_record(r, "User", "005", {"LastName": "O'Brien Smith"}, "emu")


def test_record_values_quote_spaces_as_sf_documents():
    assert commands._values({"Name": "API Only - ETL", "UserLicenseId": "100x", "On": True}) == \
        "Name='API Only - ETL' UserLicenseId=100x On=true"
