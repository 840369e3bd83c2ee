"""What an integration user did, as the org's event logs record it: the data model and the reading of a
row. Pure (no sf, no clock): :mod:`sf_intuser.org.evidence` reads the rows, this module says what each
one means.

One row of evidence is a :class:`Use`: a user, an object, an operation (read, create, edit, delete, or
a write or operation whose kind the row can't tell), the API family and connected app, how many times
and when first and last seen. Where the row does not say which object (a REST query's resource names
none), the object is None: such a row can't narrow anything, and :mod:`sf_intuser.migrate.tighten`
keeps that kind of access on every object for the user.

How an operation is read from a row (docs/salesforce-facts.md A10):

- the ``ApiTotalUsage`` rows (``ApiTotalUsageEventLog`` and the event log file of that type) carry the
  HTTP method and the API resource, not an operation. SOAP is always POST, so for SOAP the resource
  is the call's name (``query``, ``create``, ...; Object Reference: "The API method or resource. For
  example, describeSObjects for SOAP"). For REST, GET reads, POST creates, PATCH edits (or upserts,
  by external id), DELETE deletes. For Bulk, a POST or PUT creates a job or uploads, which is a query
  as often as a load: unknown; a GET reads (results).
- the ``API`` event type (SOAP) names the call in ``METHOD_NAME``; ``BulkApi`` and ``BulkApi2`` name
  the operation in ``OPERATION_TYPE`` (``insert``, ``update``, ``upsert``, ``delete``, ``hardDelete``,
  ``query``, ``queryAll``); ``RestApi`` has the HTTP method and the URI.

Anything not in these tables is ``unknown``: it is never read as narrower than it may be.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

READ, CREATE, EDIT, DELETE = "read", "create", "edit", "delete"
#: a write whose kind the row can't tell, and an operation that may be a read or a write
WRITE, UNKNOWN = "write", "unknown"
#: a Metadata API call (no object): what the Modify Metadata rule of :mod:`sf_intuser.migrate.tighten` reads
METADATA = "metadata"
OPERATIONS = (READ, CREATE, EDIT, DELETE, WRITE, UNKNOWN, METADATA)

#: SOAP calls (SOAP API Developer Guide, "Core Calls") and Bulk operations (Bulk API 2.0 Developer Guide,
#: "operation": insert, delete, hardDelete, update, upsert, query, queryAll), lower-case -> operations
_CALLS: dict[str, tuple[str, ...]] = {
    "query": (READ,), "queryall": (READ,), "querymore": (READ,), "retrieve": (READ,), "search": (READ,),
    "describesobject": (READ,), "describesobjects": (READ,), "describelayout": (READ,),
    "getupdated": (READ,), "getdeleted": (READ,),
    "create": (CREATE,), "insert": (CREATE,), "update": (EDIT,), "upsert": (CREATE, EDIT),
    "delete": (DELETE,), "harddelete": (DELETE,), "undelete": (DELETE,), "emptyrecyclebin": (DELETE,),
    "merge": (EDIT, DELETE), "convertlead": (WRITE,),
}
#: calls that read no object's records (the org's shape, the session)
_NO_OBJECT = frozenset({"describeglobal", "getuserinfo", "getservertimestamp", "login", "logout", "limits",
                        "describetabs", "describesoftphonelayout"})
#: Metadata API calls (Metadata API Developer Guide, "File-Based Calls" and "CRUD-Based Calls")
METADATA_CALLS = frozenset({"deploy", "retrieve", "checkdeploystatus", "checkretrievestatus", "listmetadata",
                            "describemetadata", "readmetadata", "createmetadata", "updatemetadata",
                            "upsertmetadata", "deletemetadata", "renamemetadata", "describevaluetype",
                            "canceldeploy", "deployrecentvalidation"})

_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")


@dataclass
class Use:
    """One kind of use by one user: ``count`` rows of ``operation`` on ``object`` through ``api``."""
    user_id: str                     # 15 characters: event logs give 15 or 18, the first 15 are the same id
    object: str | None
    operation: str
    api: str
    app: str | None = None
    count: int = 1
    first: str | None = None
    last: str | None = None
    source: str = ""
    call: str | None = None          # the SOAP call or Bulk operation, where the row names it

    def key(self) -> tuple[Any, ...]:
        return (self.user_id, self.object, self.operation, self.api, self.app, self.call, self.source)

    def to_dict(self) -> dict[str, Any]:
        return {"object": self.object, "operation": self.operation, "api": self.api, "app": self.app,
                "count": self.count, "first": self.first, "last": self.last, "source": self.source,
                **({"call": self.call} if self.call else {})}


@dataclass
class SourceReport:
    """What one source of evidence gave: ``status`` is ``used`` (read, rows or none), ``absent`` (the
    org does not have it), ``unreadable`` (the org refused the read: ``reason`` says why) or
    ``skipped``; ``window`` the days its rows cover."""
    name: str
    status: str
    reason: str = ""
    rows: int = 0
    files: int = 0
    window_from: str | None = None
    window_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "reason": self.reason, "rows": self.rows,
                "files": self.files, "from": self.window_from, "to": self.window_to}


@dataclass
class Evidence:
    """Every source's rows, merged by user, and what each source said."""
    days: int
    asked_from: str
    asked_to: str
    uses: list[Use] = field(default_factory=list)
    sources: list[SourceReport] = field(default_factory=list)
    calls: int = 0
    covered_days: int | None = None      # the days from the window's first to its last, both counted

    def of(self, user_id: str) -> list[Use]:
        """The user's rows from the first source, in the order of preference, that has any: the log
        object, then the ApiTotalUsage files, then the API, RestApi and Bulk files together (each of
        those covers one API family). Sources overlap, and a row that names no object in a later
        source (a REST query) must not undo what an earlier one shows."""
        mine = [u for u in self.uses if u.user_id == user_id[:15]]
        for rank in (0, 1, 2):
            got = [u for u in mine if source_rank(u.source) == rank]
            if got:
                return got
        return []

    @property
    def any_source(self) -> bool:
        return any(s.status == "used" for s in self.sources)

    def window(self) -> tuple[str | None, str | None]:
        """The days the evidence covers: from the earliest start of a used source to the latest end."""
        used = [s for s in self.sources if s.status == "used"]
        starts = [s.window_from for s in used if s.window_from]
        ends = [s.window_to for s in used if s.window_to]
        return (min(starts) if starts else None, max(ends) if ends else None)

    def to_dict(self) -> dict[str, Any]:
        start, end = self.window()
        return {"days": self.days, "asked": {"from": self.asked_from, "to": self.asked_to},
                "covers": {"from": start, "to": end, "days": self.covered_days}, "sources": [s.to_dict() for s in self.sources],
                "sfCalls": self.calls}


def source_rank(source: str) -> int:
    return 0 if source == "ApiTotalUsageEventLog" else 1 if source == "EventLogFile ApiTotalUsage" else 2


def merged(uses: list[Use]) -> list[Use]:
    """Rows of the same user, object, operation, API, app and source as one, counted."""
    out: dict[tuple[Any, ...], Use] = {}
    for u in uses:
        k = u.key()
        if k not in out:
            out[k] = Use(**u.__dict__)
            continue
        m = out[k]
        m.count += u.count
        m.first = min(x for x in (m.first, u.first) if x) if (m.first or u.first) else None
        m.last = max(x for x in (m.last, u.last) if x) if (m.last or u.last) else None
    return sorted(out.values(), key=lambda u: (u.user_id, u.object or "", u.operation, u.api, u.app or ""))


def operations(family: str | None, method: str | None, resource: str | None) -> tuple[tuple[str, ...], str | None]:
    """The operations an ``ApiTotalUsage`` row stands for, and the call it names (if any)."""
    fam = (family or "").strip().lower()
    verb = (method or "").strip().upper()
    res = (resource or "").strip()
    if fam == "soap":
        return call_operations(res)
    if fam == "bulk":
        return ((READ,), None) if verb == "GET" else ((UNKNOWN,), None)
    if fam in ("rest", ""):
        if verb in ("GET", "HEAD"):
            return (READ,), None
        if "/composite" in res:
            return (WRITE,), None
        if verb == "POST":
            return (CREATE,), None
        if verb in ("PATCH", "PUT") and not res:
            return (CREATE, EDIT), None     # without the resource, a PATCH may be an upsert: both kept
        if verb in ("PATCH", "PUT"):
            tail = res.split("/sobjects/", 1)[1].split("/") if "/sobjects/" in res else []
            # sobjects/Object/ExternalIdField/value is an upsert (REST API Developer Guide, "Insert or Update
            # (Upsert) a Record Using an External ID"); sobjects/Object/Id an update
            upsert = len(tail) >= 3 and not _ID.match(tail[1])
            return ((CREATE, EDIT) if upsert else (EDIT,)), None
        if verb == "DELETE":
            return (DELETE,), None
    return (UNKNOWN,), None


def call_operations(call: str | None) -> tuple[tuple[str, ...], str | None]:
    """The operations of a SOAP call or Bulk operation by its name (``()`` for calls that read no
    object, such as describeGlobal)."""
    name = (call or "").strip()
    low = name.lower()
    if low in _NO_OBJECT:
        return (), name
    if low in METADATA_CALLS:
        return (METADATA,), name
    return _CALLS.get(low, (UNKNOWN,)), name or None


def object_of_uri(uri: str | None) -> str | None:
    """The object a REST URI names (``/services/data/v62.0/sobjects/Account/001...``), or None."""
    m = re.search(r"/sobjects/([A-Za-z0-9_]+)", uri or "")
    return m.group(1) if m else None


def short_id(value: str | None) -> str:
    return (value or "").strip()[:15]
