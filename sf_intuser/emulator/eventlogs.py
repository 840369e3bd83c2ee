"""The event logs the emulated org serves: ``ApiTotalUsageEventLog`` records and ``EventLogFile`` files
(docs/salesforce-facts.md A10), made from each seed user's ``apiUsage``:

    "apiUsage": [{"object": "Account", "ops": ["read", "create"], "api": "REST", "app": "Middleware",
                  "count": 20, "days": 30}]

``count`` calls of each operation spread evenly over the last ``days`` days, through ``api`` (REST,
SOAP or Bulk) and the connected app named ``app``. Which sources the org has and how long each keeps
its rows are options ([U]): ``event_log_object`` (``on``, ``refused``: the object exists but a query
is refused as for a user without View Event Log Object Data, or ``none``), ``event_log_object_days``,
``event_log_files`` (the event types with files: a comma list of ApiTotalUsage, API, RestApi,
BulkApi, BulkApi2, or ``none``) and ``event_log_file_days``.

Rows follow the documented fields: the object's ``UserIdentifier``, ``ObjectName``, ``ApiFamily``,
``ApiResource``, ``HttpMethod``, ``ConnectedAppIdentifier`` (Object Reference, ApiTotalUsageEventLog;
its time field is ``Timestamp`` here, after the Data Cloud mapping of the same log, [U]); each file's
CSV has its type's documented columns (Object Reference, "EventLogFile Supported Event Types") and is
generated the day after its events (REST API Developer Guide, "Using Event Monitoring"), one daily
file per type and day that has events.

:func:`allowed` answers whether a user's access now lets it make a recorded call: the e2e tests check
every recorded operation of a tightened user against it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from sf_intuser.emulator import soql

FILE_TYPES = ("ApiTotalUsage", "API", "RestApi", "BulkApi", "BulkApi2")
COLUMNS = {
    "ApiTotalUsage": ("API_FAMILY", "API_RESOURCE", "API_VERSION", "CLIENT_IP", "CLIENT_NAME", "CONNECTED_APP_ID",
                      "CONNECTED_APP_NAME", "COUNTS_AGAINST_API_LIMIT", "ENTITY_NAME", "EVENT_TYPE", "HTTP_METHOD",
                      "ORGANIZATION_ID", "REQUEST_ID", "STATUS_CODE", "TIMESTAMP", "TIMESTAMP_DERIVED", "USER_ID",
                      "USER_ID_DERIVED"),
    "API": ("API_TYPE", "API_VERSION", "CLIENT_IP", "CLIENT_NAME", "ENTITY_NAME", "EVENT_TYPE", "METHOD_NAME",
            "ORGANIZATION_ID", "REQUEST_ID", "TIMESTAMP", "TIMESTAMP_DERIVED", "USER_ID", "USER_ID_DERIVED"),
    "RestApi": ("CLIENT_IP", "CONNECTED_APP_ID", "EVENT_TYPE", "METHOD", "ORGANIZATION_ID", "REQUEST_ID",
                "STATUS_CODE", "TIMESTAMP", "TIMESTAMP_DERIVED", "URI", "USER_ID", "USER_ID_DERIVED"),
    "BulkApi": ("BATCH_ID", "ENTITY_TYPE", "EVENT_TYPE", "JOB_ID", "OPERATION_TYPE", "ORGANIZATION_ID", "REQUEST_ID",
                "ROWS_PROCESSED", "TIMESTAMP", "TIMESTAMP_DERIVED", "USER_ID", "USER_ID_DERIVED"),
    "BulkApi2": ("ENTITY_TYPE", "EVENT_TYPE", "JOB_ID", "OPERATION_TYPE", "ORGANIZATION_ID", "REQUEST_ID",
                 "TIMESTAMP", "TIMESTAMP_DERIVED", "USER_ID", "USER_ID_DERIVED"),
}
_SOAP_CALL = {"read": "query", "create": "create", "edit": "update", "delete": "delete", "upsert": "upsert"}
_BULK_OP = {"read": "query", "create": "insert", "edit": "update", "delete": "delete", "upsert": "upsert"}
_FLAGS = {"read": ("allowRead",), "create": ("allowCreate",), "edit": ("allowEdit",), "delete": ("allowDelete",),
          "upsert": ("allowCreate", "allowEdit")}
OPERATIONS = tuple(_FLAGS)
VERSION = "62.0"


def add_usage(state: Any, uid: str, spec: list[dict[str, Any]], now: dt.datetime, username: str) -> None:
    """The calls a seed user made (its ``apiUsage``), kept as events the logs are made from."""
    events = state.api_events
    for i, use in enumerate(spec):
        obj, ops, api = use.get("object"), use.get("ops", ["read"]), str(use.get("api", "REST"))
        bad = [o for o in ops if o not in _FLAGS]
        if not obj or bad or api not in ("REST", "SOAP", "Bulk"):
            from sf_intuser.emulator.seed import SeedError

            raise SeedError(f"user {username}: apiUsage[{i}] needs an object, ops among {', '.join(OPERATIONS)} "
                            "and api REST, SOAP or Bulk")
        count, days = int(use.get("count", 10)), int(use.get("days", 30))
        for k in range(count):
            when = now - dt.timedelta(hours=(k + 0.5) * days * 24 / count)
            for op in ops:
                events.append({"user": uid, "object": obj, "op": op, "api": api, "app": use.get("app"),
                               "time": when, "n": len(events)})
    state.event_logs_built = None


def events(state: Any) -> list[dict[str, Any]]:
    return list(state.api_events)


def ensure(state: Any) -> None:
    """Build the two sources' records for the options as they are now (again when they changed)."""
    key = (state.options.event_log_object, state.options.event_log_object_days, state.options.event_log_files,
           state.options.event_log_file_days, len(events(state)))
    if state.event_logs_built == key:
        return
    state.records["ApiTotalUsageEventLog"] = {}
    state.records["EventLogFile"] = {}
    state.event_log_bodies = {}
    now = state.now()
    apps = {a["Name"]: a["Id"] for a in state.table("ConnectedApplication").values()}
    if state.options.event_log_object != "none":
        since = now - dt.timedelta(days=state.options.event_log_object_days)
        for e in events(state):
            if e["time"] < since:
                continue
            family, method, resource = _request(e)
            state.put("ApiTotalUsageEventLog", {
                "ApiFamily": family, "ApiResource": resource, "HttpMethod": method, "ObjectName": e["object"],
                "UserIdentifier": e["user"], "ConnectedAppIdentifier": apps.get(e.get("app") or ""),
                "ClientName": e.get("app"), "IsApiLimitCounted": True, "StatusCode": 200,
                "RequestIdentifier": f"req{e['n']:08d}", "Timestamp": soql.format_datetime(e["time"])})
    types = file_types(state.options.event_log_files)
    if types:
        today = now.date()
        oldest = today - dt.timedelta(days=state.options.event_log_file_days)
        by_day: dict[tuple[str, dt.date], list[dict[str, Any]]] = {}
        for e in events(state):
            day = e["time"].date()
            if oldest <= day < today:       # a day's file comes the day after (REST API Developer Guide)
                for t in types:
                    if _in_type(t, e):
                        by_day.setdefault((t, day), []).append(e)
        for (t, day), evs in sorted(by_day.items()):
            body = _csv(state, t, sorted(evs, key=lambda e: e["time"]), apps)
            rec = state.put("EventLogFile", {
                "EventType": t, "LogDate": soql.format_datetime(dt.datetime(day.year, day.month, day.day,
                                                                            tzinfo=dt.timezone.utc)),
                "Interval": "Daily", "LogFileLength": len(body), "LogFileContentType": "CSV", "Sequence": 1,
                "LogFileFieldNames": ",".join(COLUMNS[t]), "LogFileFieldTypes": ",".join("String" for _ in COLUMNS[t]),
                "CreatedDate": soql.format_datetime(dt.datetime(day.year, day.month, day.day, 3,
                                                                tzinfo=dt.timezone.utc) + dt.timedelta(days=1))})
            rec["LogFile"] = f"/services/data/v{VERSION}/sobjects/EventLogFile/{rec['Id']}/LogFile"
            state.event_log_bodies[rec["Id"][:15]] = body
    state.event_logs_built = key


def file_types(option: str) -> list[str]:
    """The event types of ``event_log_files``; raises ValueError for one that is not an event type."""
    if option.strip().lower() in ("", "none"):
        return []
    names = [t.strip() for t in option.split(",") if t.strip()]
    bad = [t for t in names if t not in FILE_TYPES]
    if bad:
        raise ValueError(f"event_log_files: {', '.join(bad)} is not one of {', '.join(FILE_TYPES)} (or none)")
    return names


def body_of(state: Any, record_id: str) -> bytes | None:
    ensure(state)
    return state.event_log_bodies.get(record_id[:15])


def _in_type(t: str, e: dict[str, Any]) -> bool:
    return t == "ApiTotalUsage" or {"API": "SOAP", "RestApi": "REST", "BulkApi": "Bulk", "BulkApi2": "Bulk"}[t] == e["api"]


def _request(e: dict[str, Any]) -> tuple[str, str, str]:
    """(API family, HTTP method, resource) of an event, as the API Total Usage log records it."""
    obj, op = e["object"], e["op"]
    if e["api"] == "SOAP":
        return "SOAP", "POST", _SOAP_CALL[op]
    if e["api"] == "Bulk":
        # a Bulk API 2.0 job: POST creates it (a query or a load: the log does not say), GET reads results
        return "Bulk", ("GET" if op == "read" else "POST"), (f"/v{VERSION}/jobs/query/750x0000000001/results"
                                                             if op == "read" else f"/v{VERSION}/jobs/ingest")
    rid = "001x00000000001AAA"
    return "REST", {"read": "GET", "create": "POST", "edit": "PATCH", "delete": "DELETE", "upsert": "PATCH"}[op], {
        "read": f"/v{VERSION}/query", "create": f"/v{VERSION}/sobjects/{obj}",
        "edit": f"/v{VERSION}/sobjects/{obj}/{rid}", "delete": f"/v{VERSION}/sobjects/{obj}/{rid}",
        "upsert": f"/v{VERSION}/sobjects/{obj}/External_Id__c/X-1"}[op]


def _csv(state: Any, t: str, evs: list[dict[str, Any]], apps: dict[str, str]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(COLUMNS[t])
    for e in evs:
        family, method, resource = _request(e)
        stamp = e["time"].strftime("%Y%m%d%H%M%S.") + f"{e['time'].microsecond // 1000:03d}"
        values = {"EVENT_TYPE": t, "ORGANIZATION_ID": state.org_id[:15], "REQUEST_ID": f"req{e['n']:08d}",
                  "TIMESTAMP": stamp, "TIMESTAMP_DERIVED": e["time"].strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                  "USER_ID": e["user"][:15], "USER_ID_DERIVED": e["user"], "API_FAMILY": family,
                  "API_RESOURCE": resource, "API_VERSION": VERSION, "HTTP_METHOD": method, "ENTITY_NAME": e["object"],
                  "CONNECTED_APP_ID": (apps.get(e.get("app") or "") or "")[:15],
                  "CONNECTED_APP_NAME": e.get("app") or "", "CLIENT_NAME": e.get("app") or "",
                  "COUNTS_AGAINST_API_LIMIT": "1", "STATUS_CODE": "200", "API_TYPE": "P",
                  "METHOD_NAME": _SOAP_CALL[e["op"]], "METHOD": method, "URI": "/services/data" + resource,
                  "ENTITY_TYPE": e["object"], "OPERATION_TYPE": _BULK_OP[e["op"]], "JOB_ID": "750x0000000001",
                  "BATCH_ID": "751x0000000001", "ROWS_PROCESSED": "1"}
        w.writerow([values.get(c, "") for c in COLUMNS[t]])
    return out.getvalue().encode("utf-8")


# --- what a user may do now ---------------------------------------------------------------------


def access(state: Any, user_id: str) -> dict[str, set[str]]:
    """object -> the object flags the user has now: from its profile's set and every set it is
    assigned, directly or through a group, with View All Data and Modify All Data."""
    set_ids: set[str] = set()
    for a in state.find("PermissionSetAssignment", AssigneeId=user_id):
        set_ids.add(a["PermissionSetId"])
        if a.get("PermissionSetGroupId"):
            set_ids |= {c["PermissionSetId"] for c in state.find("PermissionSetGroupComponent",
                                                                 PermissionSetGroupId=a["PermissionSetGroupId"])}
    out: dict[str, set[str]] = {}
    wide: set[str] = set()
    for sid in set_ids:
        ps = state.get(sid)
        if ps is None:
            continue
        for perm in ("ViewAllData", "ModifyAllData"):
            if state.field_value("PermissionSet", ps, "Permissions" + perm):
                wide.add(perm)
        for op in state.find("ObjectPermissions", ParentId=sid):
            flags = out.setdefault(op["SobjectType"].lower(), set())
            for f, name in (("PermissionsRead", "allowRead"), ("PermissionsCreate", "allowCreate"),
                            ("PermissionsEdit", "allowEdit"), ("PermissionsDelete", "allowDelete")):
                if op.get(f):
                    flags.add(name)
    if wide:
        out["*"] = {"allowRead"} | ({"allowCreate", "allowEdit", "allowDelete"} if "ModifyAllData" in wide else set())
    return out


def allowed(state: Any, user_id: str, obj: str, op: str) -> bool:
    """Whether the user may now make a call of ``op`` on ``obj`` (every flag the operation needs)."""
    have = access(state, user_id)
    flags = have.get(obj.lower(), set()) | have.get("*", set())
    return all(f in flags for f in _FLAGS[op])
