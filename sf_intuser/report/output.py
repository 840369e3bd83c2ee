"""Human tables and sf's JSON envelope. Pure formatting: cli.py does the printing."""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

#: sf's exit codes (salesforcecli plugin-user permset assign; plugin-deploy-retrieve errorCodes).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 68


def envelope(result: Any, status: int = 0, warnings: Sequence[str] = ()) -> str:
    """``{"status", "result", "warnings"}`` as ``sf --json`` prints it."""
    return json.dumps({"status": status, "result": result, "warnings": list(warnings)}, indent=2, sort_keys=False)


def error_envelope(name: str, message: str, exit_code: int, actions: Sequence[str] = (),
                   data: Any = None, warnings: Sequence[str] = ()) -> str:
    """sf's error envelope: name, message, exitCode, actions, status, warnings (and data)."""
    out: dict[str, Any] = {"name": name, "message": message, "exitCode": exit_code, "status": exit_code,
                           "code": name, "warnings": list(warnings)}
    if actions:
        out["actions"] = list(actions)
    if data is not None:
        out["data"] = data
    return json.dumps(out, indent=2)


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain left-aligned table, like sf's ``ux.table``."""
    rows = [[("" if v is None else str(v)) for v in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, v in enumerate(r):
            widths[i] = max(widths[i], len(v))
    line = "  ".join(h.upper().ljust(widths[i]) for i, h in enumerate(headers)).rstrip()
    sep = "  ".join("─" * widths[i] for i in range(len(headers)))
    body = ["  ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip() for r in rows]
    return "\n".join([line, sep, *body])
