"""Write docs/schemas/*.schema.json from the typed contracts in sf_intuser/contracts.py.

    python scripts/gen_schemas.py          # write them
    python scripts/gen_schemas.py --check  # exit 1 when a committed schema differs (the tests do this too)

JSON Schema draft 2020-12. A TypedDict becomes an object whose required keys are those of its
``...Base`` class (``__required_keys__``) and whose other keys are optional; objects stay open to new
keys (a later version may add some). ``from_`` is written ``from``.
"""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sf_intuser import contracts  # noqa: E402

OUT = ROOT / "docs" / "schemas"
BASE_URL = "https://sf-intuser.invalid/schemas/"   # an id, not a place to fetch from


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def schema_of(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if tp is Any:
        return {}
    if tp is type(None):
        return {"type": "null"}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    origin = get_origin(tp)
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin is Union:
        return {"anyOf": [schema_of(a, defs) for a in get_args(tp)]}
    if origin in (list, typing.List):
        (item,) = get_args(tp)
        return {"type": "array", "items": schema_of(item, defs)}
    if origin in (dict, typing.Dict):
        _, value = get_args(tp)
        return {"type": "object", "additionalProperties": schema_of(value, defs)}
    if _is_typeddict(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}   # a placeholder while its fields are worked out
            hints = get_type_hints(tp)
            props = {contracts.RENAMED.get(k, k): schema_of(v, defs) for k, v in hints.items()}
            required = sorted(contracts.RENAMED.get(k, k) for k in tp.__required_keys__)
            body: dict[str, Any] = {"type": "object", "properties": props, "required": required}
            doc = (tp.__doc__ or "").strip()
            if doc and not doc.startswith(name + "("):
                body["description"] = " ".join(doc.split())
            defs[name] = body
        return {"$ref": f"#/$defs/{name}"}
    raise TypeError(f"no JSON Schema for {tp!r}")


def document(title: str, tp: Any, file_name: str, *, envelope: bool = False, lines: bool = False) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    root = schema_of(tp, defs)
    if envelope:
        root = {"type": "object", "required": ["status", "result", "warnings"],
                "properties": {"status": {"type": "integer"}, "result": root,
                               "warnings": {"type": "array", "items": {"type": "string"}}}}
    doc: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": BASE_URL + file_name,
                           "title": title}
    if lines:
        doc["description"] = "Each line of the file is one such record (JSON Lines)."
    doc.update(root)
    doc["$defs"] = dict(sorted(defs.items()))
    return doc


def all_documents() -> dict[str, dict[str, Any]]:
    out = {}
    for path, tp in contracts.RUN_FILES.items():
        name = "run-" + path.replace("/", "-").replace(".jsonl", "").replace(".json", "") + ".schema.json"
        out[name] = document(f"sf-intuser run folder: {path}", tp, name, lines=path.endswith(".jsonl"))
    for command, tp in contracts.RESULTS.items():
        name = "result-" + command.replace(" ", "-") + ".schema.json"
        out[name] = document(f"sf-intuser {command} --json", tp, name, envelope=True)
    out["error.schema.json"] = document("sf-intuser --json, when a command fails", contracts.ErrorEnvelope,
                                        "error.schema.json")
    return out


def text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    docs = all_documents()
    if "--check" in argv:
        stale = [n for n, d in docs.items() if not (OUT / n).is_file() or (OUT / n).read_text() != text(d)]
        extra = [p.name for p in OUT.glob("*.schema.json") if p.name not in docs]
        for n in stale + extra:
            print(f"docs/schemas/{n} is out of date: run python scripts/gen_schemas.py", file=sys.stderr)
        return 1 if stale or extra else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for p in OUT.glob("*.schema.json"):
        if p.name not in docs:
            p.unlink()
    for n, d in docs.items():
        (OUT / n).write_text(text(d))
    print(f"wrote {len(docs)} schemas to docs/schemas/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
