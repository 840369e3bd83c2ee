"""End to end: the real, pinned sf CLI against the emulated org on 127.0.0.1."""

from __future__ import annotations

import os

import pytest

from sf_intuser.emulator.server import EmulatedOrg
from sf_intuser.sf import commands, soql
from sf_intuser.sf.runner import SfAuthError, SfError, SfRunner
from tests.conftest import ROOT

SHIM = ROOT / ".venv" / "bin" / "sf"
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not SHIM.exists(), reason="the pinned sf CLI is not installed (run `make setup`)")]


@pytest.fixture()
def org(tmp_path):
    emu = EmulatedOrg(max_seconds=300).start()
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "SF_USE_GENERIC_UNIX_KEYCHAIN": "true",
           "SF_ACCESS_TOKEN": emu.access_token()}
    runner = SfRunner(sf=str(SHIM), env=env, timeout=120)
    login = runner.run(["org", "login", "access-token", "--instance-url", emu.url, "--no-prompt", "--alias", "emu"])
    assert login.result["username"] == emu.state.username
    yield emu, runner
    emu.stop()


def test_login_display_and_paginated_query(org):
    emu, runner = org
    info = commands.org_display(runner, "emu")
    assert info.username == "admin@emulated.example" and info.instance_url.startswith(emu.url)
    emu.state.page_size = 2
    rows = commands.query(runner, "SELECT Id, Username, Profile.Name FROM User WHERE IsActive = true", "emu")
    assert [r["Username"] for r in rows] == ["admin@emulated.example", "middleware@emulated.example",
                                             "etl@emulated.example"]
    assert rows[1]["Profile"]["Name"] == "Integration Middleware"
    assert any("/query/01g" in path for _, path in emu.state.requests)  # the CLI followed nextRecordsUrl


def test_quoted_username_cannot_change_the_query(org):
    _, runner = org
    rows = commands.query(runner, f"SELECT Id FROM User WHERE Username = {soql.quote(chr(39) + ' OR Id != ' + chr(39))}",
                          "emu")
    assert rows == []


def test_unsupported_query_fails_loudly(org):
    _, runner = org
    with pytest.raises(SfError) as err:
        commands.query(runner, "SELECT COUNT() FROM User GROUP BY ProfileId", "emu")
    assert err.value.name == "MALFORMED_QUERY"


def test_revoked_session_is_an_auth_error(org):
    emu, runner = org
    emu.state.token_prefix = "00DREVOKED00000!"
    with pytest.raises(SfAuthError):
        commands.org_display(runner, "emu")
