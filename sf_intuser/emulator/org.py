"""The emulated org's state: records, metadata components, the platform rules on writes, and queries.

Everything a test may want to assert on lives here and is plain data (``state.records``,
``state.components``, ``state.requests``). Writes go through :meth:`OrgState.insert`,
:meth:`OrgState.update` and :meth:`OrgState.delete`, which enforce the rules below and raise
:class:`ApiError` with the status, ``errorCode`` and message Salesforce answers with. Each rule names
its source; where the platform's behaviour is unknown ([U] in docs/salesforce-facts.md) the emulator
offers both behaviours behind an option in :class:`Options`.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from lxml import etree

from sf_intuser.emulator import objects, profiles, soql
from sf_intuser.emulator.permissions import PermissionModel
from sf_intuser.metadata import schema, xml
from sf_intuser.metadata.access import SECTION_KEYS

INTEGRATION_LICENSE = "Salesforce Integration"
STANDARD_API_PROFILE = "Minimum Access - API Only Integrations"


class ApiError(Exception):
    """A Salesforce REST error: HTTP status, errorCode, message (and the fields it concerns)."""

    def __init__(self, status: int, code: str, message: str, fields: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields)

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.code, "fields": self.fields}


@dataclass
class Options:
    """Switches for behaviour that is unknown or differs between orgs (docs/salesforce-facts.md A3, A4, A7)."""

    #: A3/A7 q2 [V, conflicting]: moving a user to a profile of another license either succeeds and
    #: strips every permission set and permission set license assignment ("strip", the migration
    #: article's account) or fails with FIELD_INTEGRITY_EXCEPTION (KB 000386999) ("refuse").
    profile_change_across_licenses: str = "strip"
    #: A4 [U]: whether a deploy of a brand-new Profile file of the Salesforce Integration license
    #: creates the profile (for other licenses it does: Metadata API doc, Profile). Off: the deploy
    #: fails and the profile must be created as a Profile record (Name, UserLicenseId), as Salesforce
    #: recommends.
    new_profile_by_deploy: bool = False
    #: A3 [V-3P claim, U]: whether moving a user to an API-only profile assigns the
    #: SalesforceAPIIntegrationPsl by itself (sfdx-hardis says so for "Salesforce API Only" profiles).
    api_profile_assigns_psl: bool = False
    #: [U]: whether the Salesforce API Integration permission set license may be assigned to a user of
    #: another user license (Help names it for integration users only). Off: refused, as any PSL the
    #: user's license does not support.
    integration_psl_any_license: bool = False
    #: Requests answered with InProgress before a Metadata API job reports done (docs/sf-wire.md 10: each
    #: InProgress poll costs the CLI one second, so the default is none).
    metadata_polls_in_progress: int = 0
    #: A7 q3 [U]: whether the standard "Minimum Access - API Only Integrations" profile takes login IP
    #: ranges by deploy. Off: users with ranges need a custom API-only profile.
    ip_ranges_on_standard_profile: bool = False
    #: The org is a Dev Hub: it knows ScratchOrgInfo, and a new one brings up a scratch org (a blank
    #: emulated org on its own port) that `sf org create scratch` authorizes with the signup's auth code.
    dev_hub: bool = False
    #: The org tracks source (a scratch org, or a sandbox with tracking): the Tooling object
    #: SourceMember exists and every deployed component gets a row with a RevisionCounter (Salesforce
    #: DX Developer Guide, "Track Changes Between Your Project and Org"; sf tells tracking by describing
    #: SourceMember: @salesforce/core org.js supportsSourceTracking, and after a scratch org's settings
    #: deploy sets each row's RevisionCounter to 0: scratchOrgInfoApi.js updateRevisionCounterToZero).
    source_tracking: bool = False
    #: [U]: whether an sObject Collections call may write setup objects (User, PermissionSetAssignment,
    #: ...) and non-setup objects together. Apex refuses it in one transaction (MIXED_DML_OPERATION,
    #: Apex Developer Guide); whether a collection is one such transaction is not documented. On by
    #: default: refused.
    refuse_mixed_dml: bool = True
    #: The language of the user the API acts as: standard profiles' ``Profile.Name`` is translated
    #: into it (:mod:`.profiles`: Salesforce KB 000317298, salesforce.stackexchange q 156802); their
    #: Metadata API names are not.
    language: str = "en_US"
    #: [U] whether a change of license clears the user's role (no source says either way); off: kept
    license_change_clears_role: bool = False
    #: [U] whether a change of license removes the user from public groups and queues; off: kept
    license_change_clears_groups: bool = False
    #: [U] whether a Salesforce Integration user may hold feature licenses (Marketing User, Knowledge
    #: User, ...: the User's UserPermissions* checkboxes); off: it may not
    integration_feature_licenses: bool = False
    #: [U] a change of license to one that can't hold the user's feature licenses either clears them
    #: ("clear") or is refused until they are cleared ("refuse")
    feature_licenses_on_license_change: str = "clear"
    #: [U] which event logs the org has and how long they keep rows (:mod:`.eventlogs`): the
    #: ApiTotalUsageEventLog object ("on"; "refused": a query of it is refused; "none": absent), its
    #: retention in days, the EventLogFile event types with files (a comma list, or "none") and
    #: their retention (REST API Developer Guide: 30 days with Event Monitoring, 1 in Developer Edition)
    event_log_object: str = "on"
    event_log_object_days: int = 30
    event_log_files: str = "ApiTotalUsage"
    event_log_file_days: int = 1

    #: the values a text option may take
    CHOICES = {"profile_change_across_licenses": ("strip", "refuse"), "language": profiles.LANGUAGES,
               "feature_licenses_on_license_change": ("clear", "refuse"),
               "event_log_object": ("on", "refused", "none")}

    def set(self, name: str, value: str) -> None:
        """Set an option from text (``--option NAME=VALUE``); raises ValueError naming the valid values."""
        if name not in {f for f in self.__dataclass_fields__}:
            raise ValueError(f"unknown option {name!r}; use one of {', '.join(sorted(self.__dataclass_fields__))}")
        current = getattr(self, name)
        if isinstance(current, bool):
            if value.lower() not in ("true", "false"):
                raise ValueError(f"{name} takes true or false, not {value!r}")
            setattr(self, name, value.lower() == "true")
        elif isinstance(current, int):
            if not value.isdigit():
                raise ValueError(f"{name} takes a whole number, not {value!r}")
            setattr(self, name, int(value))
        else:
            allowed = self.CHOICES.get(name, ())
            if allowed and value not in allowed:
                raise ValueError(f"{name} takes {' or '.join(allowed)}, not {value!r}")
            if name == "event_log_files":
                from sf_intuser.emulator.eventlogs import file_types

                file_types(value)
            setattr(self, name, value)


@dataclass
class Component:
    """A metadata component as Salesforce stores it: ``body`` is the XML, or the source of a class or
    page whose ``meta`` holds the -meta.xml."""

    type: str
    name: str
    body: bytes
    meta: bytes | None = None
    #: a type the emulated org does not model: its files as deployed (path below the package root)
    files: dict[str, bytes] | None = None


_ENABLED_CACHE: dict[bytes, frozenset[str]] = {}
_SEQ = itertools.count(1)
_SEQ_LOCK = threading.Lock()


def new_id(prefix: str) -> str:
    """An id unique across restarts of the emulator (the CLI caches deploy ids in ~/.sf, so a counter
    that restarts would collide: docs/sf-wire.md section 6): milliseconds since the epoch, then a process
    counter, both in base 62."""
    with _SEQ_LOCK:
        n = next(_SEQ)
    return f"{prefix}{_base62(int(time.time() * 1000), 8)}{_base62(n, 4)}AAA"


def _base62(value: int, width: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    for _ in range(width):
        value, r = divmod(value, 62)
        out = digits[r] + out
    return out


#: rows an aggregate query may return (one batch; there is no queryMore for aggregates)
AGGREGATE_ROW_LIMIT = 2000


def _where_paths(cond: "soql.Cond | None") -> list[str]:
    """The field paths a WHERE clause filters on (a semi-join's own WHERE is its own)."""
    if cond is None:
        return []
    if cond.op in ("AND", "OR", "NOT"):
        return [p for c in cond.args for p in _where_paths(c)]
    return [cond.path]


def _aggregate_value(func: str, values: list[Any]) -> Any:
    if func == "count":
        return sum(1 for v in values if v is not None)
    present = [v for v in values if v is not None]
    if not present:
        return None
    return max(present) if func == "max" else min(present)


@dataclass
class OrgState:
    org_id: str = "00D000000000001AAA"
    username: str = "admin@emulated.example"
    admin_id: str = "005000000000001AAA"
    api_versions: tuple[str, ...] = ("60.0", "61.0", "62.0")
    page_size: int = 2000
    options: Options = field(default_factory=Options)
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    components: dict[tuple[str, str], Component] = field(default_factory=dict)
    #: which user permissions exist, need others, and what each license allows (seed data)
    perms: PermissionModel = field(default_factory=PermissionModel.builtin)
    requests: list[tuple[str, str]] = field(default_factory=list)
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: the calls the seed's users made (their ``apiUsage``), what the event logs are made from (:mod:`.eventlogs`)
    api_events: list[dict[str, Any]] = field(default_factory=list)
    #: the event log files' CSV by record id (15), and the options they were last built for
    event_log_bodies: dict[str, bytes] = field(default_factory=dict)
    event_logs_built: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        self.token_prefix = self.org_id[:15] + "!"
        #: while seeding, ids are counted per key prefix so a seed always gives the same ids
        self.seeding: dict[str, int] | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> "OrgState":
        """The org as it stands, to serve again later (:meth:`EmulatedOrg.reset`): records, components,
        options and the request log copied; a new lock; the clock and the server's hooks shared."""
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        shared = {"now", "scratch_factory", "scratch_stopper"}
        for key, value in self.__dict__.items():
            if key == "lock":
                new.lock = threading.RLock()
            else:
                setattr(new, key, value if key in shared else copy.deepcopy(value, memo))
        return new

    def new_record_id(self, prefix: str) -> str:
        if self.seeding is None:
            return new_id(prefix)
        self.seeding[prefix] = self.seeding.get(prefix, 0) + 1
        return f"{prefix}{self.seeding[prefix]:012d}AAA"

    # --- plain record access -------------------------------------------------------------------

    def table(self, obj: str) -> dict[str, dict[str, Any]]:
        return self.records.setdefault(obj, {})

    def get(self, record_id: str | None) -> dict[str, Any] | None:
        obj = objects.object_of_id(record_id)
        if not obj or not record_id:
            return None
        table = self.records.get(obj, {})
        return table.get(record_id) or next((r for k, r in table.items() if k[:15] == record_id[:15]), None)

    def put(self, obj: str, values: dict[str, Any], record_id: str | None = None) -> dict[str, Any]:
        rec: dict[str, Any] = {f: None for f in objects.OBJECTS[obj][1]}
        rec.update(values)
        rec["Id"] = record_id or values.get("Id") or self.new_record_id(objects.OBJECTS[obj][0])
        self.table(obj)[rec["Id"]] = rec
        return rec

    def find(self, obj: str, **where: Any) -> list[dict[str, Any]]:
        def ok(r: dict[str, Any]) -> bool:
            return all((str(r.get(k)).lower() == str(v).lower()) if isinstance(v, str) else r.get(k) == v
                       for k, v in where.items())
        return [r for r in self.records.get(obj, {}).values() if ok(r)]

    def one(self, obj: str, **where: Any) -> dict[str, Any] | None:
        found = self.find(obj, **where)
        return found[0] if found else None

    def view(self, obj: str, rec: dict[str, Any]) -> dict[str, Any]:
        """A record with its computed fields filled in."""
        if obj == "UserLicense":
            return {**rec, "UsedLicenses": self.used_user_licenses(rec["Id"])}
        if obj == "PermissionSetLicense":
            return {**rec, "UsedLicenses": len(self.find("PermissionSetLicenseAssign",
                                                         PermissionSetLicenseId=rec["Id"]))}
        if obj == "PackageLicense":
            return {**rec, "UsedLicenses": len(self.find("UserPackageLicense", PackageLicenseId=rec["Id"]))}
        if obj == "Profile":   # the Metadata API name is not a field of the Profile object
            return {k: v for k, v in rec.items() if not k.startswith("_")}
        return rec

    def field_value(self, obj: str, rec: dict[str, Any], name: str) -> Any:
        """A field's value, computed ones included: ``PermissionSet.Permissions<X>`` from the set's
        metadata (a profile's own set from the profile), ``PermissionSetLicense.MaximumPermissions<X>``
        from the license's maximum permissions."""
        perm = objects.permission_of(obj, name)
        if obj == "Profile" and name == "Name":
            return profiles.translated(rec.get("Name") or "", self.options.language)
        if perm is None:
            return self.view(obj, rec).get(name)
        if obj == "PermissionSet":
            return perm in self.enabled_user_permissions(rec)
        return perm in self.perms.psl_max.get(rec.get("DeveloperName") or "", frozenset())

    # --- licenses ------------------------------------------------------------------------------

    def license_of_profile(self, profile_id: str | None) -> dict[str, Any] | None:
        prof = self.get(profile_id)
        return self.get(prof.get("UserLicenseId")) if prof else None

    def license_of_user(self, user: dict[str, Any]) -> dict[str, Any] | None:
        return self.license_of_profile(user.get("ProfileId"))

    def used_user_licenses(self, license_id: str) -> int:
        return sum(1 for u in self.records.get("User", {}).values()
                   if u.get("IsActive") and (self.license_of_user(u) or {}).get("Id") == license_id)

    def is_integration_user(self, user: dict[str, Any]) -> bool:
        return (self.license_of_user(user) or {}).get("Name") == INTEGRATION_LICENSE

    # --- queries -------------------------------------------------------------------------------

    def resolve(self, obj: str, rec: dict[str, Any], path: str) -> Any:
        parts = path.split(".")
        cur: dict[str, Any] | None = rec
        cur_obj = obj
        if len(parts) > 1 and parts[0].lower() == obj.lower():  # SELECT User.Name FROM User
            parts = parts[1:]
        for rel in parts[:-1]:
            if cur is None:
                return None
            ref_field = objects.field_name(cur_obj, rel + "Id")
            if ref_field is None:
                raise soql.QueryError("INVALID_FIELD", f"Didn't understand relationship '{rel}' in field path. "
                                      f"No such relationship on entity '{cur_obj}'.")
            cur = self.get(cur.get(ref_field))
            cur_obj = (objects.object_of_id(cur["Id"]) or cur_obj) if cur else cur_obj
        if cur is None:
            return None
        name = objects.field_name(cur_obj, parts[-1])
        if name is None and cur_obj == "PermissionSetLicense" and parts[-1].lower() == "name":
            name = "MasterLabel"   # the name field of a permission set license, reached through License
        if name is None:
            raise soql.QueryError("INVALID_FIELD", f"No such column '{parts[-1]}' on entity '{cur_obj}'. If you are "
                                  "attempting to use a custom field, be sure to append the '__c' after the custom "
                                  "field name. Please reference your WSDL or the describe call for the appropriate "
                                  "names.")
        return self.field_value(cur_obj, cur, name)

    def sobject(self, name: str) -> str | None:
        """The object's proper name if this org has it (ScratchOrgInfo only on a Dev Hub), else None."""
        obj = objects.canonical(name)
        if (obj in ("ScratchOrgInfo", "ActiveScratchOrg") and not self.options.dev_hub) or (obj == "SourceMember"
                                                                     and not self.options.source_tracking):
            return None
        if obj in ("ApiTotalUsageEventLog", "EventLogFile"):
            from sf_intuser.emulator import eventlogs

            if (obj == "ApiTotalUsageEventLog" and self.options.event_log_object == "none") or \
                    (obj == "EventLogFile" and not eventlogs.file_types(self.options.event_log_files)):
                return None
            eventlogs.ensure(self)
        return obj

    def query(self, text: str) -> tuple[soql.Query, list[dict[str, Any]], int]:
        """Parse and run; returns the query, the result records (projected) and totalSize."""
        q = soql.parse(text)
        obj = self.sobject(q.obj)
        if obj is None:
            raise soql.QueryError("INVALID_TYPE", f"sObject type '{q.obj}' is not supported. If you are attempting "
                                  "to use a custom object, be sure to append the '__c' after the entity name. "
                                  "Please reference your WSDL or the describe call for the appropriate names.",
                                  q.obj_pos)
        if obj == "ApiTotalUsageEventLog" and self.options.event_log_object == "refused":
            # [U] the wording: a user without View Event Log Object Data (Object Reference)
            raise soql.QueryError("INSUFFICIENT_ACCESS", "You don't have permission to view this data: "
                                  "View Event Log Object Data is required")
        rows = self._select(obj, q)
        if q.aggregate:
            return q, *self._aggregate(obj, q, rows)
        rows = soql.sort_rows(rows, q.order_by, lambda r, p: self.resolve(obj, r, p))
        rows = rows[q.offset:]
        if q.limit is not None:
            rows = rows[:q.limit]
        return q, [self.project(obj, r, [f.path for f in q.fields]) for r in rows], len(rows)

    def _select(self, obj: str, q: soql.Query) -> list[dict[str, Any]]:
        def check(path: str, pos: int | None) -> None:
            try:
                objects.check_path(obj, path)
            except soql.QueryError as exc:
                exc.pos = pos
                raise

        for f in q.fields:
            if f.path:
                check(f.path, f.pos)
        for path, pos in q.positions.items():   # WHERE, GROUP BY and ORDER BY
            check(path, pos)
        for path in _where_paths(q.where):
            if "." not in path and objects.field_name(obj, path) in objects.NOT_FILTERABLE.get(obj, ()):
                # the answer quoted in public projects for a field without the Filter property
                raise soql.QueryError("INVALID_FIELD", f"field '{objects.field_name(obj, path)}' can not be "
                                      "filtered in query call", q.positions.get(path))
        for path in q.group_by:
            if "." not in path and objects.field_name(obj, path) in objects.NOT_GROUPABLE.get(obj, ()):
                # wording [U]; the rule is the object reference's (no Group property)
                raise soql.QueryError("INVALID_FIELD", f"field '{objects.field_name(obj, path)}' can not be "
                                      "grouped in a query call", q.positions.get(path))
        now = self.now()

        memo: dict[int, set] = {}

        def semi(sub: soql.Query) -> set:
            # a semi-join's answer does not depend on the outer record: evaluate it once per query
            if id(sub) not in memo:
                memo[id(sub)] = semi_once(sub)
            return memo[id(sub)]

        def semi_once(sub: soql.Query) -> set:
            sub_obj = objects.canonical(sub.obj)
            if sub_obj is None:
                raise soql.QueryError("INVALID_TYPE", f"sObject type '{sub.obj}' is not supported. If you are "
                                      "attempting to use a custom object, be sure to append the '__c' after the "
                                      "entity name. Please reference your WSDL or the describe call for the "
                                      "appropriate names.", sub.obj_pos)
            return {self.resolve(sub_obj, r, sub.fields[0].path) for r in self._select(sub_obj, sub)}

        return [r for r in list(self.records.get(obj, {}).values())
                if soql.matches(q.where, r, lambda rec, p: self.resolve(obj, rec, p), now, semi)]

    def _aggregate(self, obj: str, q: soql.Query, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        plain = [f for f in q.fields if not f.func]
        grouped = {g.lower() for g in q.group_by}
        for f in plain:
            if f.path.lower() not in grouped:
                raise soql.QueryError("MALFORMED_QUERY", f"Field must be grouped or aggregated: {f.path}")
        if not q.group_by:
            if len(q.fields) == 1 and q.fields[0].func and not q.fields[0].path:
                return [], len(rows)  # SELECT COUNT() FROM X: totalSize is the count, no records
            groups: dict[tuple, list] = {(): rows}
        else:
            groups = {}
            for r in rows:
                groups.setdefault(tuple(self.resolve(obj, r, g) for g in q.group_by), []).append(r)
        out = []
        expr = 0
        for key, members in groups.items():
            rec: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
            for g, v in zip(q.group_by, key):
                rec[g.split(".")[-1]] = v
            expr = 0
            for f in q.fields:
                if f.func:
                    name = f.alias or f"expr{expr}"
                    if not f.alias:
                        expr += 1
                    rec[name] = _aggregate_value(f.func, [self.resolve(obj, m, f.path) for m in members]
                                                 if f.path else members)
            out.append(rec)
        resolve = {g.split(".")[-1]: g for g in q.group_by}
        out = soql.sort_rows(out, [(p.split(".")[-1], d, n) for p, d, n in q.order_by],
                             lambda r, p: r.get(p if p in r else resolve.get(p, p)))
        if q.limit is not None:
            out = out[:q.limit]
        if len(out) > AGGREGATE_ROW_LIMIT:
            # An aggregate result is one batch of at most 2,000 rows; a larger one is refused outright
            # (message quoted in public projects, measured on a sandbox; the error code is [U])
            raise soql.QueryError("MALFORMED_QUERY", "Aggregate query does not support queryMore(), use LIMIT to "
                                  "restrict the results to a single batch")
        return out, len(out)

    def attributes(self, obj: str, rid: str) -> dict[str, str]:
        return {"type": obj, "url": f"/services/data/v{self.api_versions[-1]}/sobjects/{obj}/{rid}"}

    def project(self, obj: str, rec: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": self.attributes(obj, rec["Id"])}
        for f in fields:
            parts = f.split(".")
            if len(parts) > 1 and parts[0].lower() == obj.lower():
                parts = parts[1:]
            node, cur, cur_obj = out, rec, obj
            for rel in parts[:-1]:
                ref = objects.field_name(cur_obj, rel + "Id") or rel + "Id"
                parent = self.get(cur.get(ref))
                rel_name = ref[:-2]
                if parent is None:
                    node[rel_name] = None
                    break
                p_obj = objects.object_of_id(parent["Id"]) or rel_name
                node = node.setdefault(rel_name, {"attributes": self.attributes(p_obj, parent["Id"])})
                if node is None:
                    break
                cur, cur_obj = parent, p_obj
            else:
                name = objects.field_name(cur_obj, parts[-1])
                source = name or ("MasterLabel" if cur_obj == "PermissionSetLicense" and parts[-1].lower() == "name"
                                  else parts[-1])
                node[name or parts[-1]] = self.field_value(cur_obj, cur, source)
        return out

    # --- writes (the rules) --------------------------------------------------------------------

    def _check_fields(self, obj: str, values: dict[str, Any], op: str) -> dict[str, Any]:
        if op not in objects.WRITABLE.get(obj, set()):
            raise ApiError(400, "INVALID_TYPE_FOR_OPERATION", f"entity type {obj} does not support {op}")
        out = {}
        for k, v in values.items():
            if k == "attributes":
                continue
            name = objects.field_name(obj, k)
            if name is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{k}' on sobject of type {obj}", [k])
            if (obj, name) in objects.COMPUTED or name == "Id":
                raise ApiError(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                               f"Unable to create/update fields: {name}. Please check the security settings of "
                               "this field and verify that it is read/write for your profile or permission set.",
                               [name])
            out[name] = v
        return out

    def _must(self, obj: str, record_id: Any, field_name: str) -> dict[str, Any]:
        rec = self.get(str(record_id)) if record_id else None
        if rec is None or objects.object_of_id(rec["Id"]) != obj:
            raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [field_name])
        return rec

    def insert(self, obj: str, values: dict[str, Any]) -> str:
        obj = self.sobject(obj) or obj
        if obj not in objects.OBJECTS or self.sobject(obj) is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        vals = self._check_fields(obj, values, "create")
        handler = getattr(self, f"_insert_{obj}", None)
        if handler is not None:
            return handler(vals)
        return self.put(obj, vals)["Id"]

    def update(self, obj: str, record_id: str, values: dict[str, Any]) -> None:
        obj = objects.canonical(obj) or obj
        vals = self._check_fields(obj, values, "update")
        rec = self.get(record_id)
        if rec is None or objects.object_of_id(rec["Id"]) != obj:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        handler = getattr(self, f"_update_{obj}", None)
        if handler is not None:
            handler(rec, vals)
        else:
            rec.update(vals)

    def delete(self, obj: str, record_id: str) -> None:
        obj = objects.canonical(obj) or obj
        if "delete" not in objects.WRITABLE.get(obj, set()):
            raise ApiError(400, "INVALID_TYPE_FOR_OPERATION", f"entity type {obj} does not support delete")
        rec = self.get(record_id)
        if rec is None or objects.object_of_id(rec["Id"]) != obj:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        handler = getattr(self, f"_delete_{obj}", None)
        if handler is not None:
            handler(rec)
        del self.records[obj][rec["Id"]]

    def snapshot(self) -> "Snapshot":
        """The records and metadata as they are now; ``.restore()`` puts them back (allOrNone, rollbackOnError)."""
        return Snapshot(self)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """``with state.transaction():`` restores records and metadata if the block raises."""
        snap = self.snapshot()
        try:
            yield
        except BaseException:
            snap.restore()
            raise

    # User -------------------------------------------------------------------------------------

    def _seat_check(self, license_rec: dict[str, Any] | None) -> None:
        """Seat limits (docs/salesforce-facts.md A1: five free Salesforce Integration seats, more are bought):
        an active user beyond TotalLicenses is refused with LICENSE_LIMIT_EXCEEDED; the message is the
        one docs/sf-wire.md section 9 records."""
        if license_rec and self.used_user_licenses(license_rec["Id"]) >= int(license_rec.get("TotalLicenses") or 0):
            raise ApiError(400, "LICENSE_LIMIT_EXCEEDED", "License Limit Exceeded")

    # ScratchOrgInfo (a Dev Hub) ---------------------------------------------------------------

    #: Set by the server: brings up the scratch org a ScratchOrgInfo asks for and returns its fields
    #: (LoginUrl, ScratchOrg, SignupUsername, AuthCode).
    scratch_factory: Any = None
    #: Set by the server: stops the scratch org whose 15-character org id it is given
    scratch_stopper: Any = None
    #: the last SourceMember revision (Options.source_tracking)
    revision: int = 0
    #: the last deploy's warnings (what it stored without checking, files it did not deploy)
    deploy_warnings: list[str] = field(default_factory=list)
    #: Scratch org definition editions (Salesforce DX Developer Guide, "Scratch Org Definition File")
    SCRATCH_EDITIONS = ("developer", "enterprise", "group", "professional", "partner developer",
                        "partner enterprise", "partner group", "partner professional")

    def _insert_ScratchOrgInfo(self, vals: dict[str, Any]) -> str:
        for req in ("Edition", "ConnectedAppConsumerKey", "ConnectedAppCallbackUrl"):
            if not vals.get(req):
                raise ApiError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{req}]", [req])
        if str(vals["Edition"]).lower() not in self.SCRATCH_EDITIONS:
            raise ApiError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                           f"Edition: bad value for restricted picklist field: {vals['Edition']}", ["Edition"])
        days = int(vals.get("DurationDays") or 7)
        if not 1 <= days <= 30:   # DurationDays: 1 to 30 (Developer Guide, "org create scratch")
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", "DurationDays must be between 1 and 30",
                           ["DurationDays"])
        if self.scratch_factory is None:
            raise ApiError(500, "UNKNOWN_EXCEPTION", "this emulated Dev Hub can't bring up scratch orgs")
        vals.update(self.scratch_factory(vals))
        vals.setdefault("Status", "Active")
        vals["CreatedDate"] = soql.format_datetime(self.now())
        vals["CreatedById"] = self.admin_id
        vals["ExpirationDate"] = (self.now() + dt.timedelta(days=days)).date().isoformat()
        info = self.put("ScratchOrgInfo", vals)["Id"]
        # the hub's record of the live org, which `sf org delete scratch` deletes (Object Reference,
        # ActiveScratchOrg; @salesforce/core org.js deleteScratchOrg: SELECT Id FROM ActiveScratchOrg WHERE
        # SignupUsername='...', then DELETE)
        self.put("ActiveScratchOrg", {"ScratchOrg": vals.get("ScratchOrg"), "SignupUsername": vals.get("SignupUsername"),
                                      "OrgName": vals.get("OrgName"), "Edition": vals.get("Edition"),
                                      "ExpirationDate": vals["ExpirationDate"], "CreatedDate": vals["CreatedDate"],
                                      "ScratchOrgInfoId": info, "Status": "Active"})
        return info

    def _delete_ActiveScratchOrg(self, rec: dict[str, Any]) -> None:
        """Deleting the record ends the scratch org (it stops serving) and marks its request Deleted."""
        info = self.get(rec.get("ScratchOrgInfoId"))
        if info is not None:
            info["Status"] = "Deleted"
        if self.scratch_stopper is not None:
            self.scratch_stopper(str(rec.get("ScratchOrg") or ""))

    #: what a new User must have: the User object reference (not nillable, no default on create),
    #: as @salesforce/core lists them for `sf org create user` (org/user.ts REQUIRED_FIELDS)
    USER_REQUIRED = ("Username", "LastName", "Email", "Alias", "TimeZoneSidKey", "LocaleSidKey",
                     "EmailEncodingKey", "LanguageLocaleKey", "ProfileId")

    def _insert_User(self, vals: dict[str, Any]) -> str:
        missing = [f for f in self.USER_REQUIRED if not vals.get(f)]
        if missing:
            raise ApiError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                           missing)
        if len(str(vals["Alias"])) > 8:   # User.Alias is a string(8) (User object reference)
            raise ApiError(400, "STRING_TOO_LONG", f"Alias: data value too large: {vals['Alias']} (max length=8)",
                           ["Alias"])
        if "@" not in str(vals["Username"]):   # "must be in the form of an email address" (User reference)
            raise ApiError(400, "INVALID_NEW_VALUE", "Username: must be in the form of an email address",
                           ["Username"])
        self._must("Profile", vals["ProfileId"], "ProfileId")
        if self.one("User", Username=vals["Username"]):
            raise ApiError(400, "DUPLICATE_USERNAME", "Duplicate Username.<br>The username already exists in this "
                           "or another Salesforce organization. Usernames must be unique across all Salesforce "
                           "organizations.", ["Username"])
        vals.setdefault("IsActive", True)
        if vals["IsActive"]:
            self._seat_check(self.license_of_profile(vals["ProfileId"]))
        vals.setdefault("UserType", "Standard")
        vals.setdefault("CreatedDate", soql.format_datetime(self.now()))
        vals.setdefault("Name", " ".join(x for x in (vals.get("FirstName"), vals["LastName"]) if x))
        uid = self.put("User", vals)["Id"]
        self.own_assignment(uid, vals["ProfileId"])
        return uid

    def own_assignment(self, user_id: str, profile_id: str) -> None:
        """Every user is assigned its profile's own permission set (``PermissionSet.IsOwnedByProfile``;
        Salesforce Help KB 000394118: such assignments can't be removed without changing the
        profile); a change of profile moves it."""
        for psa in self.find("PermissionSetAssignment", AssigneeId=user_id):
            if (self.get(psa["PermissionSetId"]) or {}).get("IsOwnedByProfile"):
                del self.records["PermissionSetAssignment"][psa["Id"]]
        owned = self.one("PermissionSet", ProfileId=profile_id, IsOwnedByProfile=True)
        if owned is not None:
            self.put("PermissionSetAssignment", {"AssigneeId": user_id, "PermissionSetId": owned["Id"],
                                                 "IsActive": True})

    def _update_User(self, rec: dict[str, Any], vals: dict[str, Any]) -> None:
        new_profile = vals.get("ProfileId")
        old_license = self.license_of_user(rec)
        new_license = old_license
        if new_profile and new_profile != rec.get("ProfileId"):
            self._must("Profile", new_profile, "ProfileId")
            new_license = self.license_of_profile(new_profile)
        activating = vals.get("IsActive") is True and not rec.get("IsActive")
        license_changes = (new_license or {}).get("Id") != (old_license or {}).get("Id")
        if license_changes and self.options.profile_change_across_licenses == "refuse":
            # KB 000386999 (docs/salesforce-facts.md A3)
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                           "You can only reassign this user to a profile of the current license", ["ProfileId"])
        if (license_changes and (vals.get("IsActive", rec.get("IsActive")))) or activating:
            self._seat_check(new_license)
        profile_changes = bool(new_profile) and new_profile != rec.get("ProfileId")
        to_integration = (new_license or {}).get("Name") == INTEGRATION_LICENSE
        features = [f for f in objects.FEATURE_LICENSES if vals.get(f, rec.get(f))]
        if features and to_integration and not self.options.integration_feature_licenses:
            if license_changes and self.options.feature_licenses_on_license_change == "clear":
                vals.update({f: False for f in features})
            else:
                # [U]: the text is this emulator's; no source gives Salesforce's
                raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", "The Salesforce Integration user license doesn't "
                               "allow the feature license: " + ", ".join(f[len("UserPermissions"):] for f in features),
                               features)
        if vals.get("UserRoleId"):
            self._must("UserRole", vals["UserRoleId"], "UserRoleId")
        rec.update(vals)
        if profile_changes and new_profile:
            self.own_assignment(rec["Id"], new_profile)
        if license_changes:
            # The migration article and terrasky docs (docs/salesforce-facts.md A3): every permission set
            # assignment is removed when the license changes; permission set licenses go with them.
            for psa in self.find("PermissionSetAssignment", AssigneeId=rec["Id"]):
                ps = self.get(psa["PermissionSetId"])
                if ps and not ps.get("IsOwnedByProfile"):
                    del self.records["PermissionSetAssignment"][psa["Id"]]
            for psla in self.find("PermissionSetLicenseAssign", AssigneeId=rec["Id"]):
                del self.records["PermissionSetLicenseAssign"][psla["Id"]]
            if self.options.license_change_clears_role:
                rec["UserRoleId"] = None
            if self.options.license_change_clears_groups:
                for gm in self.find("GroupMember", UserOrGroupId=rec["Id"]):
                    del self.records["GroupMember"][gm["Id"]]
            if (self.options.api_profile_assigns_psl and (new_license or {}).get("Name") == INTEGRATION_LICENSE):
                psl = self.one("PermissionSetLicense", DeveloperName="SalesforceAPIIntegrationPsl")
                if psl:
                    self._insert_PermissionSetLicenseAssign({"AssigneeId": rec["Id"],
                                                             "PermissionSetLicenseId": psl["Id"]})

    def _insert_GroupMember(self, vals: dict[str, Any]) -> str:
        self._must("Group", vals.get("GroupId"), "GroupId")
        member = self.get(str(vals.get("UserOrGroupId") or ""))
        if member is None or objects.object_of_id(member["Id"]) not in ("User", "Group"):
            raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["UserOrGroupId"])
        if self.one("GroupMember", GroupId=vals["GroupId"], UserOrGroupId=vals["UserOrGroupId"]):
            # a member is in a group once (GroupMember: a duplicate insert fails)
            raise ApiError(400, "DUPLICATE_VALUE", "duplicate value found: GroupMember", ["UserOrGroupId"])
        return self.put("GroupMember", vals)["Id"]

    # Profile ----------------------------------------------------------------------------------

    def _insert_Profile(self, vals: dict[str, Any]) -> str:
        """A new profile as a Profile record (Name, UserLicenseId), as Salesforce recommends (Metadata API
        doc, Profile; CumulusCI create_blank_profile): it starts empty but for what the license requires."""
        for req in ("Name", "UserLicenseId"):
            if not vals.get(req):
                raise ApiError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{req}]", [req])
        lic = self._must("UserLicense", vals["UserLicenseId"], "UserLicenseId")
        same = self.one("Profile", Name=vals["Name"])
        if same:
            raise ApiError(400, "DUPLICATE_VALUE", f"duplicate value found: Name duplicates value on record with "
                           f"id: {same['Id']}", ["Name"])
        api = profiles.encode(vals["Name"])
        self.components[("Profile", api)] = Component(
            "Profile", api, blank_profile(lic["Name"], custom=True, description=vals.get("Description")))
        return self.sync_profile(api, vals.get("Description"), label=vals["Name"])["Id"]

    def _update_Profile(self, rec: dict[str, Any], vals: dict[str, Any]) -> None:
        if "UserLicenseId" in vals and vals["UserLicenseId"] != rec["UserLicenseId"]:
            # IdeaExchange "Change User License of a Profile": not possible (docs/salesforce-facts.md A3)
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", "You can't change the user license of a profile",
                           ["UserLicenseId"])
        if "Name" in vals and vals["Name"] != rec["Name"]:
            comp = self.components.pop(("Profile", rec["_FullName"]))
            api = profiles.encode(vals["Name"])
            self.components[("Profile", api)] = Component("Profile", api, comp.body)
            rec["_FullName"] = api
        rec.update(vals)

    # PermissionSet ----------------------------------------------------------------------------

    def _insert_PermissionSet(self, vals: dict[str, Any]) -> str:
        for req in ("Name", "Label"):
            if not vals.get(req):
                raise ApiError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{req}]", [req])
        if self.one("PermissionSet", Name=vals["Name"]):
            raise ApiError(400, "DUPLICATE_DEVELOPER_NAME", "The API name you entered is already in use", ["Name"])
        root = xml.new_root("PermissionSet")
        if vals.get("Description"):
            xml.add(root, "description", vals["Description"])
        xml.add(root, "hasActivationRequired", "false")
        xml.add(root, "label", vals["Label"])
        lic = self.get(vals.get("LicenseId")) if vals.get("LicenseId") else None
        if lic:
            xml.add(root, "license", lic.get("DeveloperName") or lic.get("Name"))
        self.components[("PermissionSet", vals["Name"])] = Component("PermissionSet", vals["Name"],
                                                                      xml.serialize(root))
        return self.sync_permission_set(vals["Name"])["Id"]

    def _delete_PermissionSet(self, rec: dict[str, Any]) -> None:
        if rec.get("IsOwnedByProfile"):
            raise ApiError(400, "INVALID_OPERATION", "Cannot delete a permission set owned by a profile")
        if self.find("PermissionSetAssignment", PermissionSetId=rec["Id"]):
            raise ApiError(400, "DELETE_FAILED", "Your attempt to delete the permission set could not be completed "
                           "because it is assigned to users.")
        self.components.pop(("PermissionSet", rec["Name"]), None)
        for obj in ("ObjectPermissions", "FieldPermissions", "SetupEntityAccess"):
            table = self.table(obj)
            for rid in [k for k, r in table.items() if r["ParentId"] == rec["Id"]]:
                del table[rid]

    # PermissionSetAssignment ------------------------------------------------------------------

    def _insert_PermissionSetAssignment(self, vals: dict[str, Any]) -> str:
        user = self._must("User", vals.get("AssigneeId"), "AssigneeId")
        if vals.get("PermissionSetGroupId") and not vals.get("PermissionSetId"):
            psg = self._must("PermissionSetGroup", vals["PermissionSetGroupId"], "PermissionSetGroupId")
            group_ps = self.one("PermissionSet", PermissionSetGroupId=psg["Id"])
            vals["PermissionSetId"] = group_ps["Id"] if group_ps else None
            for comp in self.find("PermissionSetGroupComponent", PermissionSetGroupId=psg["Id"]):
                self._check_assignable(user, self.get(comp["PermissionSetId"]))
        ps = self._must("PermissionSet", vals.get("PermissionSetId"), "PermissionSetId")
        if ps.get("IsOwnedByProfile"):
            raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY",
                           "Cannot assign a permission set that is owned by a profile", ["PermissionSetId"])
        for existing in self.find("PermissionSetAssignment", AssigneeId=user["Id"]):
            if existing["PermissionSetId"] == ps["Id"]:
                # docs/sf-wire.md section 8: the real org answers DUPLICATE_VALUE
                raise ApiError(400, "DUPLICATE_VALUE", f"Duplicate PermissionSetAssignment. Assignee: {user['Id']}; "
                               f"Permission Set: {ps['Id']}")
        if not ps.get("PermissionSetGroupId"):
            self._check_assignable(user, ps)
        vals.setdefault("IsActive", True)
        return self.put("PermissionSetAssignment", vals)["Id"]

    def _delete_PermissionSetAssignment(self, rec: dict[str, Any]) -> None:
        """Help "Remove a Permission Set License from a User" [V]: removing a permission set removes the
        permission set license it needed, unless another assigned permission set still needs it.

        The assignment of a profile's own permission set can't be removed without changing the
        profile (KB 000394118) [V]; the error text is not public [U]."""
        ps = self.get(rec["PermissionSetId"]) or {}
        if ps.get("IsOwnedByProfile"):
            raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "You can't remove a permission set that's owned by a "
                           "profile; change the user's profile instead", ["PermissionSetId"])
        psl_id = ps.get("LicenseId")
        if objects.object_of_id(psl_id) != "PermissionSetLicense":
            return
        for other in self.find("PermissionSetAssignment", AssigneeId=rec["AssigneeId"]):
            if other["Id"] != rec["Id"] and (self.get(other["PermissionSetId"]) or {}).get("LicenseId") == psl_id:
                return
        for psla in self.find("PermissionSetLicenseAssign", AssigneeId=rec["AssigneeId"], PermissionSetLicenseId=psl_id):
            del self.records["PermissionSetLicenseAssign"][psla["Id"]]

    def _check_assignable(self, user: dict[str, Any], ps: dict[str, Any] | None) -> None:
        if ps is None:
            return
        user_license = self.license_of_user(user) or {}
        bound = self.get(ps.get("LicenseId")) if ps.get("LicenseId") else None
        kind = objects.object_of_id(bound["Id"]) if bound else None
        if bound is not None and kind == "UserLicense" and bound["Id"] != user_license.get("Id"):
            # PermissionSetAssignment object reference: "if the PermissionSet has a UserLicenseId, its
            # UserLicenseId and the Profile UserLicenseId must match" [V]. Message text [U].
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                           f"Can't assign permission set {ps['Label']} to user {user['Username']}. The permission set "
                           f"license {bound['Name']} doesn't match the user's license "
                           f"{user_license.get('Name')}.", ["PermissionSetId"])
        added = None
        if bound is not None and kind == "PermissionSetLicense":
            if not self.find("PermissionSetLicenseAssign", AssigneeId=user["Id"], PermissionSetLicenseId=bound["Id"]):
                # Help "Create a Permission Set Associated with a Permission Set License": assigning the
                # permission set assigns its license on the way when a seat is free [V].
                added = self._insert_PermissionSetLicenseAssign({"AssigneeId": user["Id"],
                                                                 "PermissionSetLicenseId": bound["Id"]})
        # A user may hold what its user license allows, plus what its permission set licenses allow
        # (PermissionSetLicense.MaximumPermissions<X>) [V]; which lists apply is seed data [U].
        psls = [(self.get(a["PermissionSetLicenseId"]) or {}).get("DeveloperName", "")
                for a in self.find("PermissionSetLicenseAssign", AssigneeId=user["Id"])]
        problem = self.perms.not_allowed(self.enabled_user_permissions(ps),
                                         self.perms.allowed_for(user_license.get("Name"), psls))
        if problem:
            if added:
                del self.records["PermissionSetLicenseAssign"][added]
            # Veeva KB 115003888654; waitingimpatiently.com (docs/salesforce-facts.md A2) [V-3P]
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                           f"Can't assign permission set {ps['Label']} to user {user['Username']}. {problem}",
                           ["PermissionSetId"])

    def component_of(self, ps: dict[str, Any]) -> Component | None:
        """The metadata behind a permission set record: its own file, or its profile's."""
        if ps.get("IsOwnedByProfile"):
            prof = self.get(ps.get("ProfileId")) or {}
            return self.components.get(("Profile", prof.get("_FullName", "")))
        return self.components.get(("PermissionSet", ps.get("Name", "")))

    def enabled_user_permissions(self, ps: dict[str, Any]) -> frozenset[str]:
        comp = self.component_of(ps)
        if comp is None:
            return frozenset()
        cached = _ENABLED_CACHE.get(comp.body)   # bytes keep their hash: a lookup costs little
        if cached is None:
            root = xml.parse(comp.body, f"{comp.type} {comp.name}").root
            cached = frozenset(n for n, on in PermissionModel.user_permissions(root).items() if on)
            if len(_ENABLED_CACHE) > 4096:
                _ENABLED_CACHE.clear()
            _ENABLED_CACHE[comp.body] = cached
        return cached

    # PermissionSetLicenseAssign ---------------------------------------------------------------

    def _insert_PermissionSetLicenseAssign(self, vals: dict[str, Any]) -> str:
        user = self._must("User", vals.get("AssigneeId"), "AssigneeId")
        psl = self._must("PermissionSetLicense", vals.get("PermissionSetLicenseId"), "PermissionSetLicenseId")
        if self.find("PermissionSetLicenseAssign", AssigneeId=user["Id"], PermissionSetLicenseId=psl["Id"]):
            # docs/sf-wire.md section 8: the message must start with "duplicate value found"
            raise ApiError(400, "DUPLICATE_VALUE",
                           "duplicate value found: <unknown> duplicates value on record with id: <unknown>")
        if self.is_integration_user(user) and not psl.get("IsAvailableForIntegrations"):
            # KB 005385054 (docs/salesforce-facts.md A2): the Health Cloud wording, generalised
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                           f"Integration User can't be assigned the {psl['MasterLabel']} permission set license, "
                           "because Integration User's user license doesn't support it", ["PermissionSetLicenseId"])
        supported = self.perms.psl_user_licenses.get(psl.get("DeveloperName") or "")
        lic = self.license_of_user(user) or {}
        if supported is not None and lic.get("Name") not in supported and not (
                psl.get("IsAvailableForIntegrations") and self.options.integration_psl_any_license):
            # KB 005385054's wording (a PSL the user's license does not support), for any license
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                           f"{user.get('Name') or user.get('Username')} can't be assigned the {psl['MasterLabel']} "
                           f"permission set license, because {user.get('Name') or user.get('Username')}'s user "
                           "license doesn't support it", ["PermissionSetLicenseId"])
        if len(self.find("PermissionSetLicenseAssign", PermissionSetLicenseId=psl["Id"])) >= int(
                psl.get("TotalLicenses") or 0):
            raise ApiError(400, "LICENSE_LIMIT_EXCEEDED", "License Limit Exceeded")
        return self.put("PermissionSetLicenseAssign", vals)["Id"]

    def _delete_PermissionSetLicenseAssign(self, rec: dict[str, Any]) -> None:
        for psa in self.find("PermissionSetAssignment", AssigneeId=rec["AssigneeId"]):
            ps = self.get(psa["PermissionSetId"]) or {}
            if ps.get("LicenseId") and ps["LicenseId"][:15] == rec["PermissionSetLicenseId"][:15]:
                raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION",
                               f"Can't remove the permission set license: permission set {ps.get('Label')} "
                               "assigned to this user requires it.")

    # SetupEntityAccess ------------------------------------------------------------------------

    def _insert_SetupEntityAccess(self, vals: dict[str, Any]) -> str:
        self._must("PermissionSet", vals.get("ParentId"), "ParentId")
        entity = self.get(vals.get("SetupEntityId"))
        if entity is None:
            raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["SetupEntityId"])
        vals["SetupEntityType"] = objects.object_of_id(entity["Id"])
        if vals["SetupEntityType"] not in objects.SETUP_ENTITY_TYPES:
            # the field is a restricted picklist of the types above (Object Reference); the text is [U]
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", f"SetupEntityId: a {vals['SetupEntityType']} can't be "
                           "granted through SetupEntityAccess", ["SetupEntityId"])
        for existing in self.find("SetupEntityAccess", ParentId=vals["ParentId"]):
            if existing["SetupEntityId"][:15] == entity["Id"][:15]:
                raise ApiError(400, "DUPLICATE_VALUE", "duplicate value found: SetupEntityId duplicates value on "
                               f"record with id: {existing['Id']}")
        rec = self.put("SetupEntityAccess", vals)
        self._patch_access(self.get(vals["ParentId"]), entity, True)
        return rec["Id"]

    # UserPackageLicense -----------------------------------------------------------------------

    def _insert_UserPackageLicense(self, vals: dict[str, Any]) -> str:
        """A user's seat of a managed package (UserPackageLicense and PackageLicense object reference:
        ``AllowedLicenses`` is the number of seats, -1 a site license without a limit) [V]; the error
        wording is [U] and taken from the user license's."""
        user = self._must("User", vals.get("UserId"), "UserId")
        pkg = self._must("PackageLicense", vals.get("PackageLicenseId"), "PackageLicenseId")
        if self.find("UserPackageLicense", UserId=user["Id"], PackageLicenseId=pkg["Id"]):
            raise ApiError(400, "DUPLICATE_VALUE",
                           "duplicate value found: <unknown> duplicates value on record with id: <unknown>")
        seats = pkg.get("AllowedLicenses")
        allowed = int(seats) if seats is not None else -1
        if 0 <= allowed <= len(self.find("UserPackageLicense", PackageLicenseId=pkg["Id"])):
            raise ApiError(400, "LICENSE_LIMIT_EXCEEDED", "License Limit Exceeded")
        return self.put("UserPackageLicense", vals)["Id"]

    def _delete_SetupEntityAccess(self, rec: dict[str, Any]) -> None:
        self._patch_access(self.get(rec["ParentId"]), self.get(rec["SetupEntityId"]), False)

    def _patch_access(self, parent: dict[str, Any] | None, entity: dict[str, Any] | None, enabled: bool) -> None:
        """Keep the metadata in step with a SetupEntityAccess write, so a retrieve shows it: the
        profile's or permission set's classAccesses/pageAccesses entry is enabled, or disabled
        (profile) or removed (permission set)."""
        kind = objects.object_of_id(entity["Id"]) if entity else None
        if parent is None or entity is None or kind not in ("ApexClass", "ApexPage"):
            return
        section, key = ("classAccesses", "apexClass") if kind == "ApexClass" else ("pageAccesses", "apexPage")
        if parent.get("IsOwnedByProfile"):
            prof = self.get(parent["ProfileId"]) or {}
            ckey = ("Profile", prof.get("_FullName", ""))
        else:
            ckey = ("PermissionSet", parent["Name"])
        comp = self.components.get(ckey)
        if comp is None:
            return
        doc = xml.parse(comp.body, f"{ckey[0]} {ckey[1]}")
        entry = next((e for e in xml.children(doc.root, section) if xml.text(e, key) == entity["Name"]), None)
        if entry is None and enabled:
            entry = xml.add(doc.root, section)
            xml.add(entry, key, entity["Name"])
            xml.add(entry, "enabled", "true")
        elif entry is not None and (enabled or ckey[0] == "Profile"):
            for flag_el in xml.children(entry, "enabled"):
                flag_el.text = "true" if enabled else "false"
        elif entry is not None:
            doc.root.remove(entry)
        sort_entries(doc.root)
        schema.sort_children(doc.root, ckey[0])
        self.components[ckey] = Component(ckey[0], ckey[1], doc.to_bytes(), comp.meta)

    # --- metadata components and the records derived from them ---------------------------------

    def sync_profile(self, name: str, description: str | None = None, label: str | None = None) -> dict[str, Any]:
        """The Profile record of the profile whose Metadata API name is ``name`` (made when new, with
        ``label`` or the label that API name stands for: :mod:`.profiles`)."""
        comp = self.components[("Profile", name)]
        root = xml.parse(comp.body, f"Profile {name}").root
        lic_name = xml.text(root, "userLicense") or "Salesforce"
        lic = self.one("UserLicense", Name=lic_name)
        prof = self.profile_by_api_name(name)
        # the record's Description is the metadata's <description> (Profile in the Metadata API and the
        # Object Reference name the same field; [I]: a deploy that sets one sets the other)
        description = description if description is not None else xml.text(root, "description")
        if prof is None:
            prof = self.put("Profile", {"Name": label or profiles.label_of(name), "_FullName": name,
                                        "UserLicenseId": lic["Id"] if lic else None,
                                        "UserType": "Standard", "Description": description})
        elif description is not None:
            prof["Description"] = description
        owned = self.one("PermissionSet", ProfileId=prof["Id"])
        if owned is None:
            owned = self.put("PermissionSet", {"Name": "X" + prof["Id"][:15], "Label": "X" + prof["Id"][:15],
                                               "IsOwnedByProfile": True, "ProfileId": prof["Id"],
                                               "LicenseId": prof["UserLicenseId"], "IsCustom": False,
                                               "Type": "Profile"})
        self._sync_access(owned, root)
        return prof

    def sync_permission_set(self, name: str) -> dict[str, Any]:
        comp = self.components[("PermissionSet", name)]
        root = xml.parse(comp.body, f"PermissionSet {name}").root
        lic_name = xml.text(root, "license")
        lic = self.license_by_name(lic_name) if lic_name else None
        fields = {"Name": name, "Label": xml.text(root, "label") or name, "Description": xml.text(root, "description"),
                  "LicenseId": lic["Id"] if lic else None, "IsOwnedByProfile": False, "IsCustom": True,
                  "Type": "Regular", "HasActivationRequired": (xml.text(root, "hasActivationRequired") == "true")}
        ps = self.one("PermissionSet", Name=name, IsOwnedByProfile=False)
        if ps is None:
            ps = self.put("PermissionSet", fields)
        else:
            ps.update(fields)
        self._sync_access(ps, root)
        return ps

    def profile_by_api_name(self, name: str) -> dict[str, Any] | None:
        """The Profile record behind a Metadata API name (exact: API names are file names)."""
        return next((r for r in self.records.get("Profile", {}).values() if r.get("_FullName") == name), None)

    def license_by_name(self, name: str) -> dict[str, Any] | None:
        return (self.one("UserLicense", Name=name) or self.one("PermissionSetLicense", DeveloperName=name)
                or self.one("PermissionSetLicense", PermissionSetLicenseKey=name)
                or self.one("PermissionSetLicense", MasterLabel=name))

    def _sync_access(self, parent: dict[str, Any], root: etree._Element) -> None:
        """The access of a profile or permission set as records, for its parent permission set (a
        profile's through its own set): ObjectPermissions where an object permission is granted,
        FieldPermissions where a field is readable (object reference: rows exist only for granted
        access), and SetupEntityAccess for the Apex classes and Visualforce pages it enables
        (docs/salesforce-facts.md A5)."""
        self._sync_object_access(parent, root)
        table = self.table("SetupEntityAccess")
        for rid in [k for k, r in table.items() if r["ParentId"] == parent["Id"]
                    and r["SetupEntityType"] in ("ApexClass", "ApexPage")]:
            del table[rid]
        for section, key, obj in (("classAccesses", "apexClass", "ApexClass"), ("pageAccesses", "apexPage", "ApexPage")):
            for entry in xml.children(root, section):
                if (xml.text(entry, "enabled") or "").lower() != "true":
                    continue
                target = self.one(obj, Name=xml.text(entry, key) or "")
                if target:
                    self.put("SetupEntityAccess", {"ParentId": parent["Id"], "SetupEntityId": target["Id"],
                                                   "SetupEntityType": obj})

    def _sync_object_access(self, parent: dict[str, Any], root: etree._Element) -> None:
        for obj in ("ObjectPermissions", "FieldPermissions"):
            table = self.table(obj)
            for rid in [k for k, r in table.items() if r["ParentId"] == parent["Id"]]:
                del table[rid]

        def on(entry: etree._Element, name: str) -> bool:
            return (xml.text(entry, name) or "").strip().lower() == "true"

        for op in xml.children(root, "objectPermissions"):
            flags = {f: on(op, f) for f in ("allowRead", "allowCreate", "allowEdit", "allowDelete",
                                            "viewAllRecords", "modifyAllRecords", "viewAllFields")}
            if any(flags.values()):
                self.put("ObjectPermissions", {
                    "ParentId": parent["Id"], "SobjectType": xml.text(op, "object"),
                    "PermissionsRead": flags["allowRead"], "PermissionsCreate": flags["allowCreate"],
                    "PermissionsEdit": flags["allowEdit"], "PermissionsDelete": flags["allowDelete"],
                    "PermissionsViewAllRecords": flags["viewAllRecords"],
                    "PermissionsModifyAllRecords": flags["modifyAllRecords"],
                    "PermissionsViewAllFields": flags["viewAllFields"]})
        for fp in xml.children(root, "fieldPermissions"):
            read, edit = on(fp, "readable"), on(fp, "editable")
            if read or edit:
                field_path = xml.text(fp, "field") or ""
                self.put("FieldPermissions", {"ParentId": parent["Id"], "SobjectType": field_path.split(".")[0],
                                              "Field": field_path, "PermissionsRead": read or edit,
                                              "PermissionsEdit": edit})

    def sync_connected_app(self, name: str) -> None:
        comp = self.components[("ConnectedApp", name)]
        root = xml.parse(comp.body, f"ConnectedApp {name}").root
        label = xml.text(root, "label") or name
        oauth = xml.child(root, "oauthConfig")
        approved = oauth is not None and (xml.text(oauth, "isAdminApproved") or "") == "true"
        app = self.one("ConnectedApplication", Name=label)
        if app is None:
            app = self.put("ConnectedApplication", {"Name": label})
        app["OptionsAllowAdminApprovedUsersOnly"] = approved
        table = self.table("SetupEntityAccess")
        for rid in [k for k, r in table.items() if r["SetupEntityId"] == app["Id"]]:
            del table[rid]
        # metadata doc, ConnectedApp: profileName holds the profile's name, permissionSetName the
        # permission set's label (docs/salesforce-facts.md A4)
        parents = [self.one("PermissionSet", ProfileId=(self.one("Profile", Name=(e.text or "").strip()) or {}).get("Id"))
                   for e in xml.children(root, "profileName")]
        parents += [self.one("PermissionSet", Label=(e.text or "").strip(), IsOwnedByProfile=False)
                    for e in xml.children(root, "permissionSetName")]
        for parent in parents:
            if parent:
                self.put("SetupEntityAccess", {"ParentId": parent["Id"], "SetupEntityId": app["Id"],
                                               "SetupEntityType": "ConnectedApplication"})

    def sync_group(self, name: str) -> None:
        comp = self.components[("PermissionSetGroup", name)]
        root = xml.parse(comp.body, f"PermissionSetGroup {name}").root
        psg = self.one("PermissionSetGroup", DeveloperName=name)
        fields = {"DeveloperName": name, "MasterLabel": xml.text(root, "label") or name,
                  "Status": xml.text(root, "status") or "Updated", "Description": xml.text(root, "description")}
        if psg is None:
            psg = self.put("PermissionSetGroup", fields)
            self.put("PermissionSet", {"Name": name, "Label": fields["MasterLabel"], "IsOwnedByProfile": False,
                                       "IsCustom": False, "Type": "Group", "PermissionSetGroupId": psg["Id"]})
        else:
            psg.update(fields)
        table = self.table("PermissionSetGroupComponent")
        for rid in [k for k, r in table.items() if r["PermissionSetGroupId"] == psg["Id"]]:
            del table[rid]
        for e in xml.children(root, "permissionSets"):
            ps = self.one("PermissionSet", Name=(e.text or "").strip(), IsOwnedByProfile=False)
            if ps:
                self.put("PermissionSetGroupComponent", {"PermissionSetGroupId": psg["Id"], "PermissionSetId": ps["Id"]})

    def track(self, mtype: str, name: str) -> None:
        """A deployed component's SourceMember row (an org that tracks source): a new revision."""
        if not self.options.source_tracking or self.seeding is not None:
            return
        self.revision += 1
        row = self.one("SourceMember", MemberType=mtype, MemberName=name)
        vals = {"MemberType": mtype, "MemberName": name, "MemberIdOrName": name, "IsNameObsolete": False,
                "RevisionCounter": self.revision, "IsNewMember": row is None, "ChangedBy": self.admin_id,
                "LastModifiedDate": soql.format_datetime(self.now())}
        if row is None:
            self.put("SourceMember", vals)
        else:
            row.update(vals)

    def add_component(self, comp: Component) -> None:
        """Store a component and refresh the records derived from it."""
        self.components[(comp.type, comp.name)] = comp
        if comp.type == "ApexClass" and not self.one("ApexClass", Name=comp.name):
            self.put("ApexClass", {"Name": comp.name, "Status": "Active"})
        elif comp.type == "ApexPage" and not self.one("ApexPage", Name=comp.name):
            self.put("ApexPage", {"Name": comp.name})
        elif comp.type == "Profile":
            self.sync_profile(comp.name)
        elif comp.type == "PermissionSet":
            self.sync_permission_set(comp.name)
        elif comp.type == "PermissionSetGroup":
            self.sync_group(comp.name)
        elif comp.type == "ConnectedApp":
            self.sync_connected_app(comp.name)


class Snapshot:
    def __init__(self, state: OrgState) -> None:
        self.state = state
        self.records = copy.deepcopy(state.records)
        self.components = dict(state.components)

    def restore(self) -> None:
        self.state.records = self.records
        self.state.components = self.components


def blank_profile(license_name: str, custom: bool, description: str | None = None,
                  permissions: Iterable[str] = (), full_objects: Iterable[str] = ()) -> bytes:
    """A profile that grants what its license requires, plus ``permissions`` and full access to
    ``full_objects`` (a seed's standard profiles). A new Profile record starts with only what its
    license requires (Metadata API doc, Profile); the standard API-only profile of the Salesforce
    Integration license holds API Enabled, API Only User and Chatter Internal User (its retrieved
    files: docs/salesforce-facts.md A1)."""
    root = xml.new_root("Profile")
    xml.add(root, "custom", "true" if custom else "false")
    if description:
        xml.add(root, "description", description)
    for obj in sorted(set(full_objects)):
        op = xml.add(root, "objectPermissions")
        for flag in ("allowCreate", "allowDelete", "allowEdit", "allowRead", "modifyAllRecords"):
            xml.add(op, flag, "true")
        xml.add(op, "object", obj)
        xml.add(op, "viewAllRecords", "true")
    xml.add(root, "userLicense", license_name)
    required = ("ApiEnabled", "ApiUserOnly", "ChatterInternalUser") if license_name == INTEGRATION_LICENSE else ()
    for perm in sorted(set(required) | set(permissions)):
        up = xml.add(root, "userPermissions")
        xml.add(up, "enabled", "true")
        xml.add(up, "name", perm)
    return xml.serialize(root, fresh=True)


def sort_entries(root: etree._Element) -> None:
    """Entries of each repeated section in key order, as a retrieve writes them."""
    by_section: dict[str, list[etree._Element]] = {}
    for el in list(root):
        by_section.setdefault(xml.local(el), []).append(el)
    for section, els in by_section.items():
        key_field = SECTION_KEYS.get(section)
        if key_field and len(els) > 1:
            for el in els:
                root.remove(el)
            for el in sorted(els, key=lambda e: xml.text(e, key_field) or ""):
                root.append(el)


def relative_time(value: str, now: dt.datetime) -> str:
    """``-3d``, ``-12h`` or an ISO datetime -> a Salesforce datetime string."""
    m = re.fullmatch(r"-(\d+)([dhm])", value.strip())
    if not m:
        return soql.format_datetime(soql.parse_datetime(value))
    delta = {"d": dt.timedelta(days=1), "h": dt.timedelta(hours=1), "m": dt.timedelta(minutes=1)}[m.group(2)]
    return soql.format_datetime(now - int(m.group(1)) * delta)
