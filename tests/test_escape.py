"""Org-controlled strings through every output: CSV cells that a spreadsheet would run, Markdown
that would break a heading or a table or carry HTML, control characters that would drive a terminal."""

from __future__ import annotations

import csv
import io
import json

import pytest

from sf_intuser.report import discovery, escape, plan_md
from sf_intuser.report.output import table

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx",
           "<script>alert(1)</script>", "a\n# Heading\n| x | y |", "\x1b]0;owned\x07\x1b[2J", "x\x9b31m"]


@pytest.mark.parametrize("value", HOSTILE)
def test_no_cell_starts_a_formula(value):
    cell = escape.csv_cell(value)
    assert not cell.startswith(escape.FORMULA_START)
    assert cell.endswith(value)          # the text itself is kept, after the apostrophe
    assert escape.csv_cell(42) == 42 and escape.csv_cell("Jane") == "Jane"


@pytest.mark.parametrize("value", HOSTILE)
def test_markdown_keeps_a_name_on_one_line_without_markup(value):
    out = escape.md(value)
    assert "\n" not in out and "\r" not in out
    for ch in "<>|*_`[]":
        assert ch not in out.replace("\\" + ch, "")   # each one escaped
    assert "\x1b" not in out and "\x07" not in out
    code = escape.md_code("a`b" + value)
    assert code.startswith("``") and "\n" not in code


@pytest.mark.parametrize("value", HOSTILE)
def test_no_control_character_reaches_the_terminal(value):
    out = escape.terminal(value)
    assert not any(ord(c) < 32 and c != "\t" or 0x7f <= ord(c) <= 0x9f for c in out)
    shown = table([[value, "ok"]], ["name", "x"])
    assert len(shown.splitlines()) == 3 and "\x1b" not in shown


def test_json_stays_the_same_value_without_raw_c1_controls():
    text = json.dumps({"name": "x\x9b31m\x85"}, ensure_ascii=False)
    safe = escape.json_safe(text)
    assert json.loads(safe) == {"name": "x\x9b31m\x85"} and not any(0x7f <= ord(c) <= 0x9f for c in safe)


def test_the_discovery_csv_neutralises_every_org_controlled_cell():
    cand = {"username": "=cmd|' /C calc'!A0", "name": "@SUM(1)", "license": "Salesforce", "profile": "+evil",
            "evidence": {"apiLogins": [], "apiOnly": None, "runAsOf": []}, "loginPolicy": None, "access": [],
            "blockers": ["-x"], "sharedBy": [], "monthlyPrice": 175.0}
    rows = list(csv.reader(io.StringIO(discovery.candidates_csv({"candidates": [cand]}))))
    assert all(not cell.startswith(escape.FORMULA_START) for row in rows[1:] for cell in row)
    assert rows[1][0] == "'=cmd|' /C calc'!A0" and rows[1][-1] == "175.0"


def test_plan_md_escapes_names_in_headings_tables_and_lists():
    user = {"username": "a\n# owned@x.com", "name": "<img src=x onerror=alert(1)>", "status": "blocked",
            "blockers": [{"problem": "profile *bold* [link](http://x)", "fix": "`rm -rf`"}]}
    plan = {"org": {"id": "00D", "name": "Org <b>", "username": "u", "edition": "E"}, "createdAt": "2026-12-01T00:00:00Z",
            "sfIntuser": "0", "summary": {"planned": 0, "blocked": 1, "generated": 0},
            "seats": {"integrationLicense": None, "integrationPsl": None, "candidates": 1},
            "savings": {"yearlySaving": 0, "freedSeats": [], "integrationSeatsToBuy": 0, "note": "n"},
            "users": [user], "steps": [], "generated": [], "warnings": []}
    out = plan_md.render(plan)
    assert "\n# owned" not in out and "<img" not in out and "<b>" not in out
    assert "\\*bold\\*" in out and "\\[link\\]" in out


def test_what_a_killed_process_left_is_removed_at_the_next_start_and_a_live_ones_files_stay(tmp_path,
                                                                                           monkeypatch):
    import os
    import subprocess

    from sf_intuser import tempfiles

    monkeypatch.setattr(tempfiles.tempfile, "gettempdir", lambda: str(tmp_path))
    dead = subprocess.run(["true"]).returncode == 0 and subprocess.Popen(["true"])
    dead.wait()
    d = tempfiles.private_dir()
    assert oct(d.stat().st_mode & 0o777) == "0o700"
    (d / f"request-{dead.pid}-abc.json").write_text("{}")
    (d / f"retrieve-{dead.pid}-xyz").mkdir()
    mine = tempfiles.new_file("request", ".json")
    live = subprocess.Popen(["sleep", "30"])
    try:
        (d / f"deploy-{live.pid}-q").mkdir()
        assert sorted(tempfiles.clean_leftovers()) == [f"request-{dead.pid}-abc.json", f"retrieve-{dead.pid}-xyz"]
        assert mine.exists() and (d / f"deploy-{live.pid}-q").exists()
    finally:
        live.kill()
    assert os.stat(mine).st_mode & 0o077 == 0
