"""The typed contracts (sf_intuser/contracts.py) and their JSON Schemas (docs/schemas/): the committed
schemas are the ones the types give, each is a valid schema, the check can fail, and a whole
migration's --json answers and run folder validate against them through the real CLI."""

from __future__ import annotations

import json
import runpy

import pytest

from tests.conftest import ROOT
from tests.contracts import SCHEMAS, check_json_output, check_run_folder, problems, validator

gen = runpy.run_path(str(ROOT / "scripts" / "gen_schemas.py"))


def test_the_committed_schemas_are_the_ones_the_types_give():
    docs = gen["all_documents"]()
    assert sorted(docs) == sorted(p.name for p in SCHEMAS.glob("*.schema.json"))
    for name, doc in docs.items():
        assert (SCHEMAS / name).read_text() == gen["text"](doc), f"run python scripts/gen_schemas.py ({name})"


def test_every_schema_is_a_valid_json_schema():
    for p in SCHEMAS.glob("*.schema.json"):
        validator(p.name)     # check_schema raises on an invalid one


def test_the_check_names_a_missing_key_and_a_wrong_type():
    good = {"status": 0, "warnings": [], "result": {"runDir": "r", "users": [], "reached": 0, "differ": 0,
                                                     "sfCalls": 2}}
    assert check_json_output(["verify", "r", "--json"], json.dumps(good)) == []
    bad = json.loads(json.dumps(good))
    del bad["result"]["reached"]
    bad["result"]["sfCalls"] = "two"
    found = check_json_output(["verify", "r", "--json"], json.dumps(bad))
    assert any("'reached' is a required property" in f for f in found), found
    assert any(f.startswith("result/sfCalls:") for f in found), found
    assert problems("error.schema.json", {"name": "X", "message": "m", "exitCode": 1, "status": 1, "code": "X",
                                          "warnings": []}) == []
    assert problems("error.schema.json", {"name": "X"}) != []


@pytest.mark.e2e
@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "sf").exists(), reason="the pinned sf CLI is not installed")
def test_a_whole_migration_answers_as_the_schemas_say(server, tmp_path):
    """discover, plan, apply, verify, report and rollback with --json through the real CLI (each answer
    checked by tests.e2e.intuser against its schema), an error envelope, and the run folder's files."""
    from sf_intuser.emulator import seed
    from tests.e2e import ORG, intuser

    emu, runner = server
    emu.state = seed.load()
    home = runner.env["HOME"]
    assert intuser(home, "discover", "-o", ORG, "--json").returncode == 0
    run = tmp_path / "run"
    planned = intuser(home, "plan", "--all-candidates", "-o", ORG, "--run-dir", str(run), "--json")
    assert planned.returncode in (0, 68), planned.stderr
    assert check_run_folder(run) == []
    for args in (("apply", str(run), "--yes", "--json"), ("verify", str(run), "--json"),
                 ("report", str(run), "--json"), ("rollback", str(run), "--yes", "--json")):
        out = intuser(home, *args)
        assert out.returncode in (0, 68), (args, out.stdout[-500:], out.stderr[-500:])
    failed = intuser(home, "apply", str(tmp_path / "no-such-run"), "--yes", "--json")
    assert failed.returncode != 0 and json.loads(failed.stdout)["name"]
    folder = check_run_folder(run)
    assert folder == [] and (run / "journal.jsonl").is_file()
