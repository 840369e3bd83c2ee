"""Validating real outputs against the committed JSON Schemas (docs/schemas/)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from tests.conftest import ROOT

SCHEMAS = ROOT / "docs" / "schemas"


@lru_cache(maxsize=None)
def validator(name: str):
    from jsonschema import Draft202012Validator

    schema = json.loads((SCHEMAS / name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(name: str, value) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:300]}"
            for e in validator(name).iter_errors(value)]


def command_of(args) -> str | None:
    words = [a for a in args if not str(a).startswith("-")]
    if not words:
        return None
    if words[0] == "emulator" and len(words) > 1:
        return "emulator " + words[1]
    return words[0]


def check_json_output(args, stdout: str) -> list[str]:
    """The problems of a command's --json stdout against its schema (the error envelope when it
    failed); nothing when the output is not one JSON document (not a --json run)."""
    command = command_of(args)
    try:
        body = json.loads(stdout)
    except ValueError:
        return []
    if not isinstance(body, dict) or command is None:
        return []
    if "result" in body:
        name = "result-" + command.replace(" ", "-") + ".schema.json"
        return problems(name, body) if (SCHEMAS / name).is_file() else []
    return problems("error.schema.json", body)


def check_run_folder(folder: Path) -> list[str]:
    out = []
    for rel, name in (("plan.json", "run-plan.schema.json"), ("snapshot/manifest.json", "run-snapshot-manifest.schema.json"),
                      ("checksums.json", "run-checksums.schema.json")):
        p = folder / rel
        if p.is_file():
            out += [f"{rel}: {x}" for x in problems(name, json.loads(p.read_text()))]
    j = folder / "journal.jsonl"
    if j.is_file():
        for i, line in enumerate(j.read_text().splitlines(), 1):
            if line.strip():
                out += [f"journal.jsonl:{i}: {x}" for x in problems("run-journal.schema.json", json.loads(line))]
    return out
