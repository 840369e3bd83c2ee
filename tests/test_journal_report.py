"""The journal (append-only, read whole or refused) and the migration report (pure), offline."""

from __future__ import annotations

import json

import pytest

from sf_intuser.errors import Failure
from sf_intuser.runs.journal import Journal
from sf_intuser.report import migration


def test_the_journal_appends_whole_lines_and_reads_them_back(tmp_path):
    j = Journal.load(tmp_path)
    j.append("apply", "start")
    j.append("apply", "intent", "switch-profiles", records=[{"userId": "005A"}, {"userId": "005B"}])
    j.append("apply", "outcome", "switch-profiles", results=[])
    j.append("apply", "intent", "grant", records=[{"userId": "005A", "kind": "set", "name": "X"}])
    again = Journal.load(tmp_path)
    assert [r["seq"] for r in again.records] == [1, 2, 3, 4]
    assert again.touched_users() == {"005A", "005B"}
    assert [r["step"] for r in again.cut_off("apply")] == ["grant"]
    assert again.finished("apply") is None
    again.append("apply", "end", complete=True)
    assert Journal.load(tmp_path).finished("apply")["complete"] is True
    assert (tmp_path / "journal.jsonl").read_bytes().endswith(b"\n")


@pytest.mark.parametrize("text,line", [('{"run": "apply", "phase": "start"}\nnot json\n', 2),
                                       ('{"run": "apply", "phase": "start"}\n{"run": "app\n{"run": "apply"}', 2),
                                       ('[1, 2]\n', 1)])
def test_a_journal_that_does_not_parse_is_refused_naming_the_line(tmp_path, text, line):
    (tmp_path / "journal.jsonl").write_text(text)
    with pytest.raises(Failure) as err:
        Journal.load(tmp_path)
    assert err.value.name == "JournalBroken" and f"line {line}" in err.value.message


def test_a_last_record_never_written_whole_is_set_aside_and_cut_off_before_the_next(tmp_path):
    """A crash or a full disk while writing leaves a last line without its end of line: that record's
    step never started (a step starts only once its intent is whole on disk)."""
    path = tmp_path / "journal.jsonl"
    path.write_text('{"seq": 1, "run": "apply", "phase": "start", "step": ""}\n{"seq": 2, "run": "apply", "pha')
    j = Journal.load(tmp_path)
    assert [r["seq"] for r in j.records] == [1] and j.torn
    assert j.cut_off("apply") == []
    j.append("apply", "intent", "switch-profiles", records=[])
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and '"phase": "intent"' in lines[1]
    assert [r["phase"] for r in Journal.load(tmp_path).records] == ["start", "intent"]


def test_a_write_the_disk_cuts_short_is_taken_back_and_the_step_does_not_start(tmp_path, monkeypatch):
    import os as os_mod

    j = Journal.load(tmp_path)
    j.append("apply", "start")
    before = (tmp_path / "journal.jsonl").read_bytes()
    real = os_mod.pwrite
    monkeypatch.setattr(os_mod, "pwrite", lambda fd, data, offset: real(fd, data[:10], offset))   # a full disk
    with pytest.raises(Failure) as err:
        j.append("apply", "intent", "switch-profiles", records=[{"userId": "005A"}])
    assert err.value.name == "JournalWriteFailed" and "switch-profiles" in err.value.message
    assert (tmp_path / "journal.jsonl").read_bytes() == before
    assert len(j.records) == 1
    monkeypatch.setattr(os_mod, "pwrite", real)
    j.append("apply", "intent", "switch-profiles", records=[])
    assert [r["phase"] for r in Journal.load(tmp_path).records] == ["start", "intent"]


def _plan(users):
    return {"run": "r1", "createdAt": "2026-11-23T00:00:00Z", "org": {"id": "00D1", "alias": "acme"},
            "users": users, "seats": {"integrationLicense": {"free": 1}},
            "savings": {"currency": "USD", "freedSeats": [{"license": "Salesforce", "seats": 2, "monthlyPrice": 175.0,
                                                           "source": "list"}],
                        "integrationSeatPrice": 10.0, "note": "At renewal."}}


def _user(uid, name, status="planned"):
    u = {"id": uid, "username": name, "status": status, "from": {"license": "Salesforce", "profile": "P"},
         "blockers": [] if status == "planned" else [{"problem": "CPQ", "fix": "remove it"}]}
    if status == "planned":
        u["to"] = {"license": "Salesforce Integration", "profile": "API Only - P",
                   "assign": [{"permissionSet": "P_Intuser"}], "groups": []}
    return u


def test_the_report_counts_cost_before_and_after_and_escapes_what_it_shows():
    plan = _plan([_user("1", "a@x"), _user("2", "<script>alert(1)</script>@x"), _user("3", "c@x", "blocked")])
    journal = [{"run": "apply", "phase": "outcome", "step": "verify",
                "users": [{"userId": "1", "outcome": "moved", "differences": []},
                          {"userId": "2", "outcome": "moved", "differences": []}]},
               {"run": "apply", "phase": "end", "step": ""}]
    rep = migration.build(plan, journal)
    # two users at $175 leave; one of them needs a bought Integration seat ($10): 350 -> 10 a month
    assert rep["cost"]["monthlyBefore"] == 350 and rep["cost"]["monthlyAfter"] == 10
    assert rep["cost"]["yearlySaving"] == 4080 and rep["state"] == "applied"
    assert [r["outcome"] for r in rep["users"]] == ["moved", "moved", "blocked"]
    page = migration.html_page(rep)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;@x" in page
    rows = migration.csv_text(rep).splitlines()
    assert rows[0].startswith("username,outcome") and len(rows) == 4
    assert "| c@x | Blocked in the plan (CPQ) |" in migration.markdown(rep)


def test_a_rolled_back_run_reports_its_users_back():
    plan = _plan([_user("1", "a@x")])
    journal = [{"run": "apply", "phase": "outcome", "step": "verify", "users": [{"userId": "1", "outcome": "moved"}]},
               {"run": "rollback", "phase": "outcome", "step": "verify", "users": [{"userId": "1", "restored": True}]},
               {"run": "rollback", "phase": "end", "step": ""}]
    rep = migration.build(plan, journal)
    assert rep["users"][0]["outcome"] == "rolled back" and rep["state"] == "rolled back"
    assert rep["cost"]["monthlyBefore"] == rep["cost"]["monthlyAfter"] == 175
    assert json.loads(json.dumps(rep)) == rep


def test_a_run_folder_is_locked_by_one_run_at_a_time_and_a_dead_holder_holds_nothing(tmp_path):
    from sf_intuser import runs

    (tmp_path / runs.LOCK).write_text("sf-intuser apply (pid 999999, since yesterday)")   # left by a dead process
    with runs.RunLock(tmp_path, "apply"):
        with pytest.raises(runs.RunError) as err:
            runs.RunLock(tmp_path, "rollback").__enter__()
        assert err.value.name == "RunFolderBusy"
        assert f"sf-intuser apply (pid {__import__('os').getpid()}" in err.value.message
    with runs.RunLock(tmp_path, "rollback"):
        pass


def test_every_csv_the_tool_writes_has_snake_case_headers_and_the_report_says_what_it_counts():
    import re

    from sf_intuser.report.discovery import CSV_COLUMNS

    plan = _plan([_user("1", "a@x"), _user("3", "c@x", "blocked")])
    rep = migration.build(plan, [{"run": "apply", "phase": "end", "step": ""}])
    report_header = migration.render(rep, "csv").splitlines()[0].split(",")
    for header in (list(CSV_COLUMNS), report_header):
        assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", h) for h in header), header
    assert rep["cost"]["users"] == 1 and "1 blocked" in rep["cost"]["counts"]
    assert rep["cost"]["counts"] in migration.html_page(rep) and rep["cost"]["counts"] in migration.markdown(rep)
