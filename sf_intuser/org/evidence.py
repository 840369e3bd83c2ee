"""Evidence of use: what each integration user read and wrote over a window, from the org's event logs,
in a fixed number of sf calls whatever the number of users (docs/salesforce-facts.md A10).

1. One Composite Batch call describes both sources: ``ApiTotalUsageEventLog`` (Object Reference: API
   61.0 and later; "To access this object, you must have the View Event Log Object Data user
   permission") and ``EventLogFile`` (Object Reference; its ``EventType`` picklist lists the types
   the org has). A source the describe does not find is ``absent``; a field it lacks is named.
2. One Composite Batch call runs the queries: ``ApiTotalUsageEventLog`` grouped by user, object, API
   family, HTTP method and connected app (SOAP also by resource, which is the call's name), so rows are
   counted by the org, not downloaded; and the list of ``EventLogFile`` files of the types
   ``ApiTotalUsage``, ``API``, ``RestApi``, ``BulkApi`` and ``BulkApi2`` in the window (daily files
   where the org also has hourly ones). A query the org refuses makes that source ``unreadable``,
   with the org's words, and the others still count.
3. One ``sf api request rest`` per log file (``/sobjects/EventLogFile/<id>/LogFile``: the CSV), so the
   calls grow with days and event types, never with users.

Which sources an org has without the Event Monitoring add-on, and how long each keeps its rows, is
[U] beyond the REST API Developer Guide's "Log files are available for 30 days ... in orgs with Event
Monitoring licenses ... In all Developer Edition orgs, log files are available for 1 day": every
case is handled, and the window each source covers is stated.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from sf_intuser.org.usage import (METADATA, Evidence, SourceReport, Use, call_operations, merged, object_of_uri, operations,
                                  short_id)
from sf_intuser.sf import commands
from sf_intuser.sf.runner import SfError, SfRunner
from sf_intuser.sf.soql import in_list

OBJECT = "ApiTotalUsageEventLog"
FILES = "EventLogFile"
#: the event types whose files say which object a user touched (Object Reference, "EventLogFile
#: Supported Event Types": API Total Usage, SOAP API, REST API, Bulk API, Bulk API 2.0)
FILE_TYPES = ("ApiTotalUsage", "API", "RestApi", "BulkApi", "BulkApi2")
#: ApiTotalUsageEventLog needs API 61.0 (Object Reference)
OBJECT_SINCE = 61.0
_OBJECT_FIELDS = ("UserIdentifier", "ObjectName", "ApiFamily", "HttpMethod", "ApiResource", "ConnectedAppIdentifier")


def _ids(user_ids: Iterable[str]) -> list[str]:
    """Each id as 15 and 18 characters: which one an event log holds is [U] for the object."""
    out: set[str] = set()
    for uid in user_ids:
        out.add(uid[:15])
        out.add(uid)
    return sorted(out)


def _day(value: str | None) -> str | None:
    return value[:10] if value else None


def read(runner: SfRunner, target_org: str | None, api_version: str, user_ids: list[str], days: int,
         now: datetime, progress: Any = lambda _m: None) -> Evidence:
    """The evidence for ``user_ids`` over the last ``days`` days."""
    start = (now - timedelta(days=days)).astimezone(timezone.utc)
    ev = Evidence(days, start.strftime("%Y-%m-%d"), now.astimezone(timezone.utc).strftime("%Y-%m-%d"))
    calls0 = len(runner.calls)
    wanted = set(uid[:15] for uid in user_ids)
    progress(f"Describing the event log sources ({OBJECT}, {FILES})")
    describes = [("GET", f"sobjects/{OBJECT}/describe"), ("GET", f"sobjects/{FILES}/describe")]
    # the object needs API 61.0: asked at that version at least (the plan's may be older than the org's);
    # an org without it answers the batch itself with an error, and is asked again at the plan's
    version = api_version if float(api_version) >= OBJECT_SINCE else f"{OBJECT_SINCE:.1f}"
    too_old = False
    try:
        described = commands.batch(runner, describes, target_org, version)
    except SfError:
        if version == api_version:
            raise
        too_old, version = True, api_version
        described = commands.batch(runner, describes, target_org, version)
    api_version = version
    obj_src = SourceReport(OBJECT, "absent")
    file_src = SourceReport(FILES, "absent")
    queries: list[tuple[str, str]] = []
    time_field = None
    if too_old:
        obj_src.reason = f"needs API {OBJECT_SINCE}, which the org does not serve"
    elif described[0].status >= 400:
        obj_src.reason = _error(described[0].body, "the org does not have it")
    else:
        fields = {f.get("name") for f in (described[0].body or {}).get("fields", [])}
        time_field = next((f for f in ("EventDate", "Timestamp") if f in fields), None)
        missing = [f for f in _OBJECT_FIELDS if f not in fields] + ([] if time_field else ["EventDate or Timestamp"])
        if missing:
            obj_src.status, obj_src.reason = "unreadable", "its describe lacks " + ", ".join(missing)
        else:
            where = f"UserIdentifier IN {in_list(_ids(user_ids))} AND {time_field} = LAST_N_DAYS:{days}"
            agg = f"COUNT(Id) n, MIN({time_field}) firstSeen, MAX({time_field}) lastSeen"
            queries.append(("object-rest", f"SELECT UserIdentifier, ObjectName, ApiFamily, HttpMethod, "
                                           f"ConnectedAppIdentifier, {agg} FROM {OBJECT} WHERE {where} AND "
                                           "ApiFamily != 'SOAP' GROUP BY UserIdentifier, ObjectName, ApiFamily, "
                                           "HttpMethod, ConnectedAppIdentifier"))
            queries.append(("object-soap", f"SELECT UserIdentifier, ObjectName, ApiResource, ConnectedAppIdentifier, "
                                           f"{agg} FROM {OBJECT} WHERE {where} AND ApiFamily = 'SOAP' GROUP BY "
                                           "UserIdentifier, ObjectName, ApiResource, ConnectedAppIdentifier"))
    types: list[str] = []
    if described[1].status >= 400:
        file_src.reason = _error(described[1].body, "the org does not have it")
    else:
        fields_of = {f.get("name"): f for f in (described[1].body or {}).get("fields", [])}
        listed = {v.get("value") for v in (fields_of.get("EventType") or {}).get("picklistValues") or []}
        types = [t for t in FILE_TYPES if not listed or t in listed]
        if not types:
            file_src.reason = "the org has none of the event types " + ", ".join(FILE_TYPES)
        else:
            daily = " AND Interval = 'Daily'" if "Interval" in fields_of else ""
            queries.append(("files", f"SELECT Id, EventType, LogDate FROM EventLogFile WHERE EventType IN "
                            f"{in_list(types)} AND LogDate = LAST_N_DAYS:{days}{daily} ORDER BY LogDate, EventType"))
    uses: list[Use] = []
    if queries:
        progress(f"Reading {len(queries)} event log quer{'y' if len(queries) == 1 else 'ies'}")
        from urllib.parse import quote as url_quote

        answers = dict(zip([k for k, _ in queries], commands.batch(
            runner, [("GET", "query?q=" + url_quote(q, safe="")) for _, q in queries], target_org, api_version)))
        if "object-rest" in answers:
            bad = next((a for k, a in answers.items() if k.startswith("object-") and a.status >= 400), None)
            if bad is not None:
                obj_src.status, obj_src.reason = "unreadable", _error(
                    bad.body, "the org refused the query") + " (it needs the View Event Log Object Data permission)"
            elif any(not (a.body or {}).get("done", True) for k, a in answers.items() if k.startswith("object-")):
                # an aggregate query answers in one page (SOQL: up to 2,000 groups); a cut-off answer would
                # show a user part of its use, and narrowing on part of it takes away what it needs
                obj_src.status, obj_src.reason = "unreadable", (
                    "more groups of calls than one answer holds: tighten fewer users at a time, or fewer days")
            else:
                obj_src.status = "used"
                rows = [*((answers["object-rest"].body or {}).get("records") or []),
                        *((answers["object-soap"].body or {}).get("records") or [])]
                uses += _object_uses(rows, wanted)
                obj_src.rows = sum(int(r.get("n") or 0) for r in rows)
                obj_src.window_from, obj_src.window_to = ev.asked_from, ev.asked_to
        if "files" in answers:
            a = answers["files"]
            if a.status >= 400:
                file_src.status, file_src.reason = "unreadable", _error(a.body, "the org refused the query") + \
                    " (it needs the View Event Log Files permission)"
            else:
                file_src.status = "used"
                records = (a.body or {}).get("records") or []
                file_src.files = len(records)
                got_files: list[Use] = []        # used only when every file was read: part of them is part of a use
                for i, rec in enumerate(records, 1):
                    progress(f"Downloading event log file {i} of {len(records)} ({rec.get('EventType')}, "
                             f"{_day(rec.get('LogDate'))})")
                    try:
                        body = commands.rest(runner, f"/services/data/v{api_version}/sobjects/EventLogFile/"
                                                     f"{rec['Id']}/LogFile", target_org, text=True)
                    except SfError as exc:
                        file_src.status, file_src.reason = "unreadable", f"file {rec['Id']}: {exc.message}"
                        break
                    got = file_uses(str(rec.get("EventType")), body, wanted)
                    file_src.rows += len(got)
                    got_files += got
                else:
                    uses += got_files
                if records:
                    days_seen = sorted(_day(r.get("LogDate")) or "" for r in records)
                    file_src.window_from, file_src.window_to = days_seen[0], days_seen[-1]
                else:
                    file_src.reason = "no log file in the window"
    ev.sources = [obj_src, file_src]
    ev.uses = merged(uses)
    first, last = ev.window()
    if first and last:
        ev.covered_days = (datetime.fromisoformat(last[:10]) - datetime.fromisoformat(first[:10])).days + 1
    ev.calls = len(runner.calls) - calls0
    return ev


def _error(body: Any, default: str) -> str:
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
    return f"{first.get('errorCode')}: {first.get('message')}" if first else default


def _object_uses(rows: list[dict[str, Any]], wanted: set[str]) -> list[Use]:
    out = []
    for r in rows:
        uid = short_id(r.get("UserIdentifier"))
        if uid not in wanted:
            continue
        if "ApiResource" in r:
            ops, call = call_operations(r.get("ApiResource"))
            family = "SOAP"
        else:
            family = str(r.get("ApiFamily") or "")
            ops, call = operations(family, r.get("HttpMethod"), None)
        for op in ops:
            out.append(Use(uid, r.get("ObjectName") or None, op, family or "unknown", r.get("ConnectedAppIdentifier"),
                           int(r.get("n") or 1), r.get("firstSeen"), r.get("lastSeen"), OBJECT, call))
    return out


def file_uses(event_type: str, body: str, wanted: set[str]) -> list[Use]:
    """The uses one log file's CSV records, for the users in ``wanted`` (15-character ids). Columns are
    read by name (the files' schema can change between releases: Object Reference, EventLogFile,
    "use the LogFileFieldNames and LogFileFieldTypes fields to validate the schema changes")."""
    out: list[Use] = []
    for row in csv.DictReader(io.StringIO(body.lstrip("\ufeff"))):
        uid = short_id(row.get("USER_ID_DERIVED") or row.get("USER_ID"))
        if uid not in wanted:
            continue
        when = row.get("TIMESTAMP_DERIVED") or None
        app = row.get("CONNECTED_APP_ID") or None
        if event_type == "ApiTotalUsage":
            family = row.get("API_FAMILY") or ""
            ops, call = operations(family, row.get("HTTP_METHOD"), row.get("API_RESOURCE"))
            obj = row.get("ENTITY_NAME") or None
        elif event_type == "API":
            family = "SOAP"
            ops, call = call_operations(row.get("METHOD_NAME"))
            if (row.get("API_TYPE") or "") == "M":      # SOAP Metadata (Object Reference, API event type)
                ops = (METADATA,)
            obj = row.get("ENTITY_NAME") or None
        elif event_type in ("BulkApi", "BulkApi2"):
            family = "Bulk"
            ops, call = call_operations(row.get("OPERATION_TYPE"))
            obj = row.get("ENTITY_TYPE") or row.get("ENTITY_NAME") or None
        else:   # RestApi
            family = "REST"
            uri = row.get("URI") or ""
            ops, call = operations("REST", row.get("METHOD"), uri)
            obj = row.get("ENTITY_NAME") or object_of_uri(uri)
        for op in ops:
            out.append(Use(uid, obj, op, family or "unknown", app, 1, when, when, f"{FILES} {event_type}", call))
    return out
