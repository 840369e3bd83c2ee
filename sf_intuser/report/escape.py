"""Org-controlled strings (user names, profile and permission set labels, connected app names) made
safe for where they land. Anyone who can edit a profile label or a user's name in the org writes into
sf-intuser's output, so every such string passes through one of these. Pure.

- CSV: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
  Excel and LibreOffice; it gets a leading apostrophe (OWASP "CSV Injection").
- Markdown: characters Markdown gives a meaning anywhere in a line (emphasis, links, code, tables,
  raw HTML) are backslash-escaped, and line breaks become spaces, so a name can't start a heading,
  close a table row or inject HTML into a rendered plan.md.
- Terminal: control characters (escape sequences that move the cursor, clear the screen, set the
  window title or write a hyperlink) are shown as ``\\xNN`` instead of being sent to the terminal.
- HTML: ``html.escape`` (quotes included), where the report writes HTML.
"""

from __future__ import annotations

import re
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula (numbers stay numbers)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_row(values: list[Any]) -> list[Any]:
    return [csv_cell(v) for v in values]


#: characters with a meaning anywhere in a line (emphasis, code, links and images, raw HTML, tables,
#: strike-through); those that mean something only at the start of a line (``#``, ``-``, ``+``, ``1.``)
#: can't get there, since line breaks become spaces and every name follows text of ours
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~])")
_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")


def md(value: Any) -> str:
    """Text for Markdown: every character with a meaning escaped, on one line."""
    text = _BREAKS.sub(" ", "" if value is None else str(value))
    return _MD_SPECIAL.sub(r"\\\1", terminal(text))


def md_code(value: Any) -> str:
    """Text for a Markdown code span (`` `name` ``): on one line, with a fence longer than any run of
    backticks in it."""
    text = _BREAKS.sub(" ", terminal("" if value is None else str(value)))
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal(value: Any, keep_newlines: bool = False) -> str:
    """Text for a terminal: C0 and C1 control characters (ESC above all) shown as ``\\xNN``; tabs kept,
    and line breaks too when ``keep_newlines``."""
    text = "" if value is None else str(value)
    if not keep_newlines:
        text = text.replace("\n", "\\n")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


_C1 = re.compile(r"[\x7f-\x9f]")


def json_safe(text: str) -> str:
    """JSON text with the C1 control characters (which ``json.dumps(ensure_ascii=False)`` writes raw,
    and some terminals take as escape sequences) written as ``\\u00NN``: the same JSON value."""
    return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
