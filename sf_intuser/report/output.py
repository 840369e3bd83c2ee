"""Human tables and sf's JSON envelope. Pure formatting: the command layer (cli/) does the printing."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Sequence

#: sf's exit codes (salesforcecli plugin-user permset assign; plugin-deploy-retrieve errorCodes).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 68


def exit_code(*, failed: bool = False, partial: bool = False) -> int:
    """The one mapping from an outcome to sf's exit codes (README, "Exit codes"): 1 when it failed (or
    nothing of it succeeded), 68 when part of it did, else 0. Every command's outcome goes through it."""
    return EXIT_FAILURE if failed else EXIT_PARTIAL if partial else EXIT_OK


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


#: the width tables fit (None: as wide as they come). The command layer sets it from the terminal
#: (``COLUMNS``, else the terminal's size) unless ``--wide``; this module stays free of the terminal.
WIDTH: list[int | None] = [None]


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str], width: int | None = None) -> str:
    """A plain left-aligned table, like sf's ``ux.table``, fitted to ``width`` (default :data:`WIDTH`):
    when the columns don't fit, the widest are narrowed and their cells wrapped onto more lines
    (at spaces where it can; never below 8 characters a column)."""
    from sf_intuser.report.escape import terminal

    # a cell holds one line, whatever the org put in a name (a line break would start a false row)
    rows = [[terminal("" if v is None else str(v)) for v in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, v in enumerate(r):
            widths[i] = max(widths[i], len(v))
    limit = width if width is not None else WIDTH[0]
    if limit:
        widths = _fit(widths, [len(h) for h in headers], limit - 2 * (len(headers) - 1))
    line = "  ".join(h.upper().ljust(widths[i]) for i, h in enumerate(headers)).rstrip()
    sep = "  ".join("─" * widths[i] for i in range(len(headers)))
    body: list[str] = []
    for r in rows:
        cells = [_wrap(v, widths[i]) for i, v in enumerate(r)]
        for k in range(max(len(c) for c in cells) if cells else 0):
            body.append("  ".join((c[k] if k < len(c) else "").ljust(widths[i]) for i, c in enumerate(cells)).rstrip())
    return "\n".join([line, sep, *body])


def _fit(widths: list[int], heads: list[int], room: int) -> list[int]:
    """Column widths that fit ``room``: narrow columns keep their width, the wide ones share what is
    left evenly (none below its header or 8 characters, so a table may still overflow a tiny terminal)."""
    if sum(widths) <= room:
        return list(widths)
    out = list(widths)
    left, todo = room, sorted(range(len(widths)), key=lambda i: widths[i])
    while todo:
        share = left // len(todo)
        i = todo.pop(0)
        out[i] = min(widths[i], max(share, min(widths[i], max(8, heads[i]))))
        left -= out[i]
    return out


def _wrap(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    out: list[str] = []
    rest = text
    while len(rest) > width:
        cut = rest.rfind(" ", 0, width + 1)
        if cut <= width // 3:
            cut = width
        out.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        out.append(rest)
    return out


def fit_lines(text: str, width: int | None = None) -> str:
    """Prose lines longer than ``width`` (default :data:`WIDTH`) wrapped at spaces, continuing under
    their own indent; table lines (already fitted) and short lines are left as they are."""
    limit = width if width is not None else WIDTH[0]
    if not limit:
        return text
    out = []
    for line in text.split("\n"):
        if len(line) <= limit:
            out.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip(" ")))
        rest = line
        while len(rest) > limit:
            cut = rest.rfind(" ", len(indent) + 3, limit + 1)
            if cut <= len(indent) + 2:
                cut = limit
            out.append(rest[:cut].rstrip())
            rest = indent + "  " + rest[cut:].lstrip()
        out.append(rest)
    return "\n".join(out)


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
