"""Human tables and sf's JSON envelope. Pure formatting: the command layer (cli/) does the printing."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Sequence

#: sf's exit codes (salesforcecli plugin-user permset assign; plugin-deploy-retrieve errorCodes).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 68


def dumps(value: Any, depth: int = 3, _level: int = 0) -> str:
    """JSON indented by two spaces, as sf prints it, down to ``depth`` levels; deeper values (one
    record of a long list) go on one line. Python's indenting encoder is pure Python and several
    times slower than its compact one, which matters for results with thousands of records."""
    if _level >= depth or not isinstance(value, (dict, list)) or not value:
        return json.dumps(value, ensure_ascii=False)
    pad, inner = "  " * _level, "  " * (_level + 1)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {dumps(v, depth, _level + 1)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    return "[\n" + ",\n".join(f"{inner}{dumps(v, depth, _level + 1)}" for v in value) + "\n" + pad + "]"


def envelope(result: Any, status: int = 0, warnings: Sequence[str] = ()) -> str:
    """``{"status", "result", "warnings"}`` as ``sf --json`` prints it."""
    return dumps({"status": status, "result": result, "warnings": list(warnings)})


def error_envelope(name: str, message: str, exit_code: int, actions: Sequence[str] = (),
                   data: Any = None, warnings: Sequence[str] = ()) -> str:
    """sf's error envelope: name, message, exitCode, actions, status, warnings (and data)."""
    out: dict[str, Any] = {"name": name, "message": message, "exitCode": exit_code, "status": exit_code,
                           "code": name, "warnings": list(warnings)}
    if actions:
        out["actions"] = list(actions)
    if data is not None:
        out["data"] = data
    return dumps(out)


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain left-aligned table, like sf's ``ux.table``."""
    from sf_intuser.report.escape import terminal

    # a cell holds one line, whatever the org put in a name (a line break would start a false row)
    rows = [[terminal("" if v is None else str(v)) for v in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, v in enumerate(r):
            widths[i] = max(widths[i], len(v))
    line = "  ".join(h.upper().ljust(widths[i]) for i, h in enumerate(headers)).rstrip()
    sep = "  ".join("─" * widths[i] for i in range(len(headers)))
    body = ["  ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip() for r in rows]
    return "\n".join([line, sep, *body])


def warning_lines(changes: Iterable[Any], shown: Callable[[str], str] = str, limit: int = 3) -> list[str]:
    """The warnings among ``changes`` (``Change`` records) as lines for a person: one per warning, or,
    where one file has more than ``limit`` of one kind, one line naming them all."""
    from sf_intuser.metadata.access import RECORD_TYPE_DEFAULTS_SUMMARY

    groups: dict[tuple[str, str, str], list[Any]] = {}
    for c in changes:
        if c.action == "warning" and c.rule != "unknown":
            groups.setdefault((c.file, c.rule, c.section), []).append(c)
    lines = []
    for (file, rule, section), items in sorted(groups.items()):
        reasons = {c.reason for c in items}
        if len(items) > limit and (rule == "record-type-default" or len(reasons) == 1):
            names = sorted(c.name for c in items)
            listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            why = RECORD_TYPE_DEFAULTS_SUMMARY if rule == "record-type-default" else items[0].reason
            lines.append(f"{shown(file)}: {len(items)} {section} ({listed}) {why}" if rule == "record-type-default"
                         else f"{shown(file)}: {section} {listed}: {why}")
        else:
            lines.extend(f"{shown(c.file)}: {c.section} {c.name}: {c.reason}" for c in items)
    return sorted(set(lines), key=lines.index)
