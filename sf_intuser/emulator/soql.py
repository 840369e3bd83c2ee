"""The SOQL the emulated org understands, parsed properly (tokens, then a recursive-descent parser).

Supported, because the CLI and sf-intuser send it (docs/sf-wire.md 4, 8; docs/salesforce-facts.md A5):

- ``SELECT`` fields with parent paths (``Profile.UserLicense.Name``), ``COUNT()``, ``COUNT(field)``,
  ``MAX(field)`` and ``MIN(field)`` with an optional alias, and the grouped fields;
- ``FROM`` one object; ``WHERE`` with ``= != <> < > <= >=``, ``IN``/``NOT IN`` over a list or a
  semi-join subquery (one level: "Nesting of semi join sub-selects is not supported"),
  ``LIKE``, ``NOT``, ``AND``, ``OR`` and parentheses; values: strings (with SOQL
  escapes), numbers, ``true``/``false``/``null``, dates, datetimes and the date literals ``TODAY``,
  ``YESTERDAY``, ``LAST_N_DAYS:n``, ``N_DAYS_AGO:n``;
- ``GROUP BY``, ``ORDER BY`` (``ASC``/``DESC``, ``NULLS FIRST``/``LAST``), ``LIMIT`` and ``OFFSET``.

As in Salesforce, keywords and names are case-insensitive, string ``=`` and ``LIKE`` compare without
case, and mixing ``AND`` with ``OR`` without parentheses is an error. Anything else raises
:class:`QueryError` (``MALFORMED_QUERY``, ``INVALID_FIELD`` or ``INVALID_TYPE``): a loud failure,
never a wrong answer.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


class QueryError(Exception):
    """A query Salesforce refuses. ``pos`` is where in the query (0-based), when known."""

    def __init__(self, code: str, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.pos = pos

    def render(self, soql: str) -> str:
        """The message as Salesforce gives it: the query's line, a caret under the spot, the row and
        column, then the message (INVALID_FIELD, INVALID_TYPE and MALFORMED_QUERY answers quoted in
        forcedotcom/soql-tooling issue 86 and vlocityinc/vlocity_build issue 364)."""
        if self.pos is None:
            return self.message
        start = soql.rfind("\n", 0, self.pos) + 1
        end = soql.find("\n", self.pos)
        line = soql[start:end if end >= 0 else len(soql)]
        col = self.pos - start + 1
        row = soql.count("\n", 0, self.pos) + 1
        return f"{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{self.message}"


# --- tokens -------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),:])
  | (?P<name>[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)
""", re.VERBOSE)

_ESC = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str
    pos: int = 0


def tokenize(soql: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    while pos < len(soql):
        m = _TOKEN.match(soql, pos)
        if not m:
            raise QueryError("MALFORMED_QUERY", f"unexpected token: '{soql[pos]}'", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(Tok(kind, m.group(), pos))
        pos = m.end()
    return out


def _unescape(lit: str) -> str:
    body = lit[1:-1]

    def repl(m: re.Match) -> str:
        ch = m.group(1)
        if ch not in _ESC:
            raise QueryError("MALFORMED_QUERY", f"invalid escape sequence \\{ch} in {lit}")
        return _ESC[ch]

    return re.sub(r"\\(.)", repl, body)


# --- syntax tree --------------------------------------------------------------------------------


@dataclass
class Field:
    path: str            # as written, e.g. Profile.UserLicense.Name
    func: str | None = None   # count | max | min
    alias: str | None = None
    pos: int | None = None


@dataclass
class DateLiteral:
    name: str
    n: int = 0


@dataclass
class Cond:
    op: str                  # = != < > <= >= IN NOTIN LIKE AND OR NOT
    path: str = ""
    value: Any = None
    args: list["Cond"] = field(default_factory=list)
    sub: "Query | None" = None
    pos: int | None = None


@dataclass
class Query:
    fields: list[Field]
    obj: str
    where: Cond | None = None
    group_by: list[str] = field(default_factory=list)
    order_by: list[tuple[str, bool, bool | None]] = field(default_factory=list)  # path, desc, nulls_first
    limit: int | None = None
    offset: int = 0
    obj_pos: int | None = None
    #: where each path of WHERE, GROUP BY and ORDER BY was written
    positions: dict[str, int] = field(default_factory=dict)

    @property
    def aggregate(self) -> bool:
        return any(f.func for f in self.fields) or bool(self.group_by)


#: aggregate functions understood here
AGGREGATES = ("count", "max", "min")

_KEYWORDS = {"select", "from", "where", "and", "or", "not", "in", "like", "limit", "offset", "order", "group",
             "by", "asc", "desc", "nulls", "first", "last", "true", "false", "null", "includes", "excludes",
             "having", "with", "for", "using", "typeof"}
_DATE_LITERALS = {"today", "yesterday", "tomorrow"}
_DATE_N_LITERALS = {"last_n_days", "n_days_ago", "next_n_days"}


class _Parser:
    def __init__(self, soql: str) -> None:
        self.soql = soql
        self.toks = tokenize(soql)
        self.i = 0
        self.last_pos = 0
        self.positions: dict[str, int] = {}
        self.depth = 0
        self.semis = 0   # semi-join (and anti-join) subqueries in the top-level WHERE

    # helpers
    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def at(self, text: str) -> bool:
        """The next token is ``text``."""
        t = self.peek()
        return t is not None and t.text == text

    def here(self) -> Tok:
        """The next token; at the end of the query, MALFORMED_QUERY as the org answers it."""
        t = self.peek()
        if t is None:
            raise QueryError("MALFORMED_QUERY", "unexpected token: <EOF>", len(self.soql.rstrip()))
        return t

    def kw(self, *words: str) -> bool:
        t = self.peek()
        return t is not None and t.kind == "name" and t.text.lower() in words

    def take(self) -> Tok:
        t = self.here()
        self.i += 1
        return t

    def expect_kw(self, word: str) -> None:
        t = self.take()
        if t.kind != "name" or t.text.lower() != word:
            raise QueryError("MALFORMED_QUERY", f"expecting '{word.upper()}', found '{t.text}'", t.pos)

    def expect(self, text: str) -> None:
        t = self.take()
        if t.text != text:
            raise QueryError("MALFORMED_QUERY", f"expecting '{text}', found '{t.text}'", t.pos)

    def name(self) -> str:
        t = self.take()
        if t.kind != "name" or t.text.lower() in _KEYWORDS:
            raise QueryError("MALFORMED_QUERY", f"unexpected token: '{t.text}'", t.pos)
        self.last_pos = t.pos
        return t.text

    # grammar
    def query(self, nested: bool = False) -> Query:
        self.expect_kw("select")
        fields = [self.select_item()]
        while self.at(","):
            self.take()
            fields.append(self.select_item())
        self.expect_kw("from")
        q = Query(fields, self.name())
        q.obj_pos = self.last_pos
        outer, self.positions = self.positions, q.positions   # a semi-join keeps its own
        if self.kw("where"):
            self.take()
            q.where = self.condition()
        if self.kw("group"):
            self.take()
            self.expect_kw("by")
            q.group_by.append(self.name())
            q.positions.setdefault(q.group_by[-1], self.last_pos)
            while self.at(","):
                self.take()
                q.group_by.append(self.name())
                q.positions.setdefault(q.group_by[-1], self.last_pos)
        if self.kw("order"):
            self.take()
            self.expect_kw("by")
            while True:
                path = self.name()
                q.positions.setdefault(path, self.last_pos)
                desc = False
                nulls: bool | None = None
                if self.kw("asc", "desc"):
                    desc = self.take().text.lower() == "desc"
                if self.kw("nulls"):
                    self.take()
                    t = self.take().text.lower()
                    if t not in ("first", "last"):
                        raise QueryError("MALFORMED_QUERY", f"expecting FIRST or LAST after NULLS, found '{t}'",
                                         self.toks[self.i - 1].pos)
                    nulls = t == "first"
                q.order_by.append((path, desc, nulls))
                if self.at(","):
                    self.take()
                    continue
                break
        if self.kw("limit"):
            self.take()
            q.limit = self.integer()
        if self.kw("offset"):
            self.take()
            q.offset = self.integer()
        if not nested and self.peek() is not None:
            raise QueryError("MALFORMED_QUERY", f"unexpected token: '{self.here().text}'", self.here().pos)
        self.positions = outer
        return q

    def integer(self) -> int:
        t = self.take()
        if t.kind != "num" or not t.text.isdigit():
            raise QueryError("MALFORMED_QUERY", f"expecting a number, found '{t.text}'", t.pos)
        return int(t.text)

    def select_item(self) -> Field:
        t = self.peek()
        if t is not None and t.kind == "punct" and t.text == "(":
            # a loud failure rather than a wrong answer: what this org answers is a subset of SOQL
            raise QueryError("MALFORMED_QUERY", "unexpected token: '(' (child relationship subqueries are not "
                             "supported here)", t.pos)
        path = self.name()
        pos = self.last_pos
        nxt = self.peek()
        if nxt is not None and nxt.text == "(":
            func = path.lower()
            if func not in AGGREGATES:
                raise QueryError("MALFORMED_QUERY", f"unexpected token: '{path}' (only COUNT(), MAX() and MIN() are "
                                 "supported here)", pos)
            self.take()
            arg = ""
            arg_pos = None
            if self.peek() is not None and not self.at(")"):
                arg = self.name()
                arg_pos = self.last_pos
            self.expect(")")
            if func != "count" and not arg:
                raise QueryError("MALFORMED_QUERY", f"{path.upper()}() needs a field", pos)
            alias = None
            nxt = self.peek()
            if nxt is not None and nxt.kind == "name" and nxt.text.lower() not in _KEYWORDS:
                alias = self.take().text
            return Field(arg, func, alias, arg_pos)
        return Field(path, pos=pos)

    def condition(self) -> Cond:
        left = self.unary()
        joiner = None
        parts = [left]
        while self.kw("and", "or"):
            tok = self.take()
            word = tok.text.lower()
            if joiner and word != joiner:
                raise QueryError("MALFORMED_QUERY", f"unexpected token: '{tok.text}' (use parentheses when mixing AND "
                                 "and OR)", tok.pos)
            joiner = word
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else Cond(joiner.upper(), args=parts)  # type: ignore[union-attr]

    def unary(self) -> Cond:
        if self.kw("not"):
            self.take()
            return Cond("NOT", args=[self.unary()])
        t = self.peek()
        if t is not None and t.text == "(":
            self.take()
            c = self.condition()
            self.expect(")")
            return c
        return self.comparison()

    def comparison(self) -> Cond:
        path = self.name()
        self.positions.setdefault(path, self.last_pos)
        if self.kw("not"):
            self.take()
            self.expect_kw("in")
            c = self.in_rhs(path)
            c.op = "NOTIN"
            return c
        if self.kw("in"):
            self.take()
            return self.in_rhs(path)
        if self.kw("like"):
            self.take()
            t = self.take()
            if t.kind != "str":
                raise QueryError("MALFORMED_QUERY", f"unexpected token: '{t.text}'", t.pos)
            return Cond("LIKE", path, _unescape(t.text))
        t = self.take()
        if t.kind != "op":
            raise QueryError("MALFORMED_QUERY", f"unexpected token: '{t.text}'", t.pos)
        op = "!=" if t.text == "<>" else t.text
        return Cond(op, path, self.value())

    def in_rhs(self, path: str) -> Cond:
        self.expect("(")
        if self.kw("select"):
            if self.depth:
                # SOQL allows one level of semi-join (answers quoted in public projects: "Nesting of
                # semi join sub-selects is not supported")
                raise QueryError("MALFORMED_QUERY", "Nesting of semi join sub-selects is not supported",
                                 self.here().pos)
            self.semis += 1
            if self.semis > 2:
                # SOQL and SOSL Reference, "Semi-Join and Anti-Join Restrictions": no more than two IN or NOT
                # IN subqueries per WHERE clause; the message as orgs answer it (quoted in public projects)
                raise QueryError("MALFORMED_QUERY", "Maximum 2 semi join sub-selects are allowed", self.here().pos)
            self.depth += 1
            sub = self.query(nested=True)
            self.depth -= 1
            self.expect(")")
            if len(sub.fields) != 1 or sub.fields[0].func:
                raise QueryError("MALFORMED_QUERY", "a semi-join subquery selects exactly one field", sub.obj_pos)
            return Cond("IN", path, sub=sub)
        values = [self.value()]
        while self.at(","):
            self.take()
            values.append(self.value())
        self.expect(")")
        return Cond("IN", path, values)

    def value(self) -> Any:
        t = self.take()
        if t.kind == "str":
            return _unescape(t.text)
        if t.kind == "num":
            return float(t.text) if "." in t.text else int(t.text)
        if t.kind == "date":
            return dt.date.fromisoformat(t.text)
        if t.kind == "datetime":
            return parse_datetime(t.text)
        if t.kind == "name":
            low = t.text.lower()
            if low in ("true", "false"):
                return low == "true"
            if low == "null":
                return None
            if low in _DATE_LITERALS:
                return DateLiteral(low)
            if low in _DATE_N_LITERALS:
                self.expect(":")
                return DateLiteral(low, self.integer())
        raise QueryError("MALFORMED_QUERY", f"unexpected token: '{t.text}'", t.pos)


def parse(soql: str) -> Query:
    return _Parser(soql).query()


# --- evaluation ---------------------------------------------------------------------------------


def parse_datetime(text: str) -> dt.datetime:
    """Salesforce datetimes: ``2026-11-20T10:00:00.000+0000``, ``...Z`` or ``...+00:00``."""
    s = text.strip().replace("Z", "+00:00")
    s = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", s)
    return dt.datetime.fromisoformat(s)


def format_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _day_range(lit: DateLiteral, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Start (inclusive) and end (exclusive) of a date literal, in UTC (SOQL and SOSL Reference, Date Formats
    and Date Literals: LAST_N_DAYS:n starts n days ago at 00:00 and runs through now; TODAY is today)."""
    today = now.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    day = dt.timedelta(days=1)
    if lit.name == "today":
        return today, today + day
    if lit.name == "yesterday":
        return today - day, today
    if lit.name == "tomorrow":
        return today + day, today + 2 * day
    if lit.name == "last_n_days":
        return today - lit.n * day, today + day
    if lit.name == "next_n_days":
        return today + day, today + (lit.n + 1) * day
    return today - lit.n * day, today - (lit.n - 1) * day   # n_days_ago


Resolver = Callable[[dict[str, Any], str], Any]


def _as_comparable(value: Any, like: Any) -> Any:
    """Coerce a stored value to the literal's type (dates arrive as ISO strings)."""
    if value is None:
        return None
    if isinstance(like, dt.datetime) or isinstance(like, DateLiteral):
        if isinstance(value, str):
            v = parse_datetime(value) if "T" in value else dt.datetime.fromisoformat(value + "T00:00:00+00:00")
            return v
        return value
    if isinstance(like, dt.date):
        return dt.date.fromisoformat(str(value)[:10])
    if isinstance(like, str) and isinstance(value, str):
        return value.lower()
    return value


def _compare(op: str, value: Any, lit: Any, now: dt.datetime) -> bool:
    if isinstance(lit, DateLiteral):
        v = _as_comparable(value, lit)
        if v is None:
            return op == "!="
        start, end = _day_range(lit, now)
        return {"=": start <= v < end, "!=": not (start <= v < end), "<": v < start, "<=": v < end,
                ">": v >= end, ">=": v >= start}[op]
    if lit is None or value is None:
        if op == "=":
            return value is None and lit is None
        if op == "!=":
            return not (value is None and lit is None)
        return False
    v = _as_comparable(value, lit)
    w = lit.lower() if isinstance(lit, str) else lit
    try:
        return {"=": v == w, "!=": v != w, "<": v < w, "<=": v <= w, ">": v > w, ">=": v >= w}[op]
    except TypeError:
        raise QueryError("INVALID_QUERY_FILTER_OPERATOR", f"cannot compare {value!r} with {lit!r}") from None


def like_regex(pattern: str) -> re.Pattern:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return re.compile("^" + "".join(out) + "$", re.IGNORECASE | re.DOTALL)


def matches(cond: Cond | None, rec: dict[str, Any], resolve: Resolver, now: dt.datetime,
            semi: Callable[["Query"], set]) -> bool:
    if cond is None:
        return True
    op = cond.op
    if op == "AND":
        return all(matches(c, rec, resolve, now, semi) for c in cond.args)
    if op == "OR":
        return any(matches(c, rec, resolve, now, semi) for c in cond.args)
    if op == "NOT":
        return not matches(cond.args[0], rec, resolve, now, semi)
    value = resolve(rec, cond.path)
    if op in ("IN", "NOTIN"):
        pool = semi(cond.sub) if cond.sub is not None else cond.value
        norm = {_norm(v) for v in pool}
        hit = value is not None and _norm(value) in norm
        return hit if op == "IN" else (value is not None and not hit)
    if op == "LIKE":
        return value is not None and bool(like_regex(cond.value).match(str(value)))
    return _compare(op, value, cond.value, now)


def _norm(v: Any) -> Any:
    if isinstance(v, str):
        # 15- and 18-character ids compare equal, as in Salesforce
        return v[:15].lower() if re.fullmatch(r"[a-zA-Z0-9]{18}", v) else v.lower()
    return v


def sort_rows(rows: list[dict[str, Any]], order: Sequence[tuple[str, bool, bool | None]],
              resolve: Resolver) -> list[dict[str, Any]]:
    for path, desc, nulls_first in reversed(order):
        # SOQL default: NULLS FIRST for ASC, NULLS LAST for DESC
        nf = (not desc) if nulls_first is None else nulls_first

        def key(r: dict[str, Any], path: str = path) -> Any:
            v = resolve(r, path)
            return (0, "") if v is None else (1, v.lower() if isinstance(v, str) else v)

        present = [r for r in rows if resolve(r, path) is not None]
        absent = [r for r in rows if resolve(r, path) is None]
        present.sort(key=key, reverse=desc)
        rows = absent + present if nf else present + absent
    return rows
