"""SOQL literals, escaped in one place.

SOQL string literals escape ``\\``, ``'``, ``"``, newline, carriage return, tab, backspace and form
feed with a backslash (SOQL and SOSL Reference, "Quoted String Escape Sequences"). A username
holding a quote or a backslash therefore cannot end the literal and change the query.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, TypeVar

T = TypeVar("T")

_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def quote(value: str) -> str:
    """A SOQL string literal for ``value``."""
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in str(value)) + "'"


def in_list(values: Iterable[str]) -> str:
    """``('a', 'b')`` for ``IN``; raises on an empty list (SOQL has no empty IN)."""
    items = sorted({str(v) for v in values})
    if not items:
        raise ValueError("IN needs at least one value")
    return "(" + ", ".join(quote(v) for v in items) + ")"


def chunks(values: Iterable[T], size: int = 200) -> Iterator[list[T]]:
    """Batches for ``IN (...)`` and sObject collections (200 records a call)."""
    batch: list[T] = []
    for v in values:
        batch.append(v)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def field_path(rec: Mapping[str, Any], path: str) -> Any:
    """A field of a SOQL row by its path through relationships (``Profile.UserLicense.Name``): REST nests
    each relationship as an object, null when the lookup is empty (None then)."""
    cur: Any = rec
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur
