"""A first slice of the emulated org: what the real ``sf`` CLI needs to log in, display the org and query.

Endpoints and shapes follow shared/spec/sf-wire.md section 3 (rows 1-11): identity (``userinfo``,
the v51.0 User GET), the version list and version root, and REST/Tooling query with pagination and
the undocumented ``columns=true`` call. SOQL is a deliberately small subset (``SELECT`` fields and
parent paths ``FROM`` one object, ``WHERE`` equalities joined by ``AND``, ``LIMIT``); anything else
fails loudly with ``MALFORMED_QUERY``, never with a wrong answer. Metadata SOAP, writes and the
license rules are not built yet.

The server binds 127.0.0.1 only and stops by itself after ``max_seconds``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ORG_ID = "00D000000000001AAA"
API_VERSIONS = ("60.0", "61.0", "62.0")


@dataclass
class OrgState:
    username: str = "admin@emulated.example"
    org_id: str = ORG_ID
    token_prefix: str = ORG_ID[:15] + "!"
    page_size: int = 2000
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def add(self, sobject: str, record: dict[str, Any]) -> None:
        self.records.setdefault(sobject, {})[record["Id"]] = dict(record)

    @property
    def admin_id(self) -> str:
        return "005000000000001AAA"


def default_state() -> OrgState:
    s = OrgState()
    s.add("Organization", {"Id": ORG_ID, "Name": "Emulated Org", "InstanceName": "EMU1", "IsSandbox": False,
                           "TrialExpirationDate": None, "NamespacePrefix": None,
                           "OrganizationType": "Enterprise Edition"})
    s.add("UserLicense", {"Id": "100000000000001AAA", "Name": "Salesforce"})
    s.add("UserLicense", {"Id": "100000000000002AAA", "Name": "Salesforce Integration"})
    s.add("Profile", {"Id": "00e000000000001AAA", "Name": "System Administrator", "UserLicenseId": "100000000000001AAA"})
    s.add("Profile", {"Id": "00e000000000002AAA", "Name": "Integration Middleware", "UserLicenseId": "100000000000001AAA"})
    users = [("005000000000001AAA", s.username, "00e000000000001AAA"),
             ("005000000000002AAA", "middleware@emulated.example", "00e000000000002AAA"),
             ("005000000000003AAA", "etl@emulated.example", "00e000000000002AAA")]
    for uid, name, prof in users:
        s.add("User", {"Id": uid, "Username": name, "IsActive": True, "ProfileId": prof, "UserType": "Standard"})
    return s


class QueryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


_QUERY = re.compile(r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)"
                    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$", re.IGNORECASE | re.DOTALL)
_COND = re.compile(r"^\s*(?P<field>[\w.]+)\s*=\s*(?:'(?P<str>(?:[^'\\]|\\.)*)'|(?P<bool>true|false))\s*$", re.IGNORECASE)


def run_soql(state: OrgState, soql: str) -> tuple[str, list[str], list[dict[str, Any]]]:
    m = _QUERY.match(soql)
    if not m:
        raise QueryError("MALFORMED_QUERY", f"sf-intuser emulator does not support this query: {soql}")
    obj = m.group("obj")
    table = next((v for k, v in state.records.items() if k.lower() == obj.lower()), None)
    if table is None:
        raise QueryError("INVALID_TYPE", f"sObject type '{obj}' is not supported.")
    fields = [f.strip() for f in m.group("fields").split(",")]
    if any(not re.fullmatch(r"[A-Za-z]\w*(\.[A-Za-z]\w*)*", f) for f in fields):
        raise QueryError("MALFORMED_QUERY", f"sf-intuser emulator supports plain field lists only: {soql}")
    conds = []
    if m.group("where"):
        for part in re.split(r"\s+AND\s+", m.group("where"), flags=re.IGNORECASE):
            c = _COND.match(part)
            if not c:
                raise QueryError("MALFORMED_QUERY", f"sf-intuser emulator supports '=' conditions joined by AND: {part}")
            value: Any = c.group("str")
            if value is not None:
                value = re.sub(r"\\(.)", r"\1", value)
            else:
                value = c.group("bool").lower() == "true"
            conds.append((c.group("field"), value))
    rows = []
    for rec in table.values():
        if all(_path(state, rec, f) == v for f, v in conds):
            rows.append(rec)
    if m.group("limit"):
        rows = rows[: int(m.group("limit"))]
    return obj, fields, [_project(state, obj, r, fields) for r in rows]


def _parent(state: OrgState, rec: dict[str, Any], rel: str) -> tuple[str, dict[str, Any] | None]:
    ref = rec.get(rel + "Id")
    return rel, state.records.get(rel, {}).get(ref) if ref else None


def _path(state: OrgState, rec: dict[str, Any], path: str) -> Any:
    parts = path.split(".")
    cur: dict[str, Any] | None = rec
    for rel in parts[:-1]:
        if cur is None:
            return None
        _, cur = _parent(state, cur, rel)
    return None if cur is None else next((v for k, v in cur.items() if k.lower() == parts[-1].lower()), None)


def _attrs(obj: str, rec: dict[str, Any]) -> dict[str, str]:
    return {"type": obj, "url": f"/services/data/v62.0/sobjects/{obj}/{rec['Id']}"}


def _project(state: OrgState, obj: str, rec: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": _attrs(obj, rec)}
    for f in fields:
        parts = f.split(".")
        cur_out, cur_rec = out, rec
        for rel in parts[:-1]:
            rel_name, parent = _parent(state, cur_rec, rel)
            if parent is None:
                cur_out[rel_name] = None
                break
            node = cur_out.setdefault(rel_name, {"attributes": _attrs(rel_name, parent)})
            cur_out, cur_rec = node, parent
        else:
            key = next((k for k in cur_rec if k.lower() == parts[-1].lower()), parts[-1])
            cur_out[key] = cur_rec.get(key)
    return out


def column_metadata(obj: str, fields: list[str]) -> dict[str, Any]:
    """The ``columns=true`` answer the CLI requires after every non-empty query (sf-wire.md 4.3)."""
    def col(name: str, display: str, joins: list) -> dict[str, Any]:
        return {"aggregate": False, "apexType": None if joins else "String", "booleanType": False, "columnName": name,
                "custom": False, "displayName": display, "foreignKeyName": None, "insertable": False,
                "joinColumns": joins, "numberType": False, "textType": not joins, "updatable": False}

    tree: dict[str, Any] = {}
    for f in fields:
        node = tree
        for p in f.split("."):
            node = node.setdefault(p, {})

    def build(node: dict, prefix: str) -> list:
        return [col(k, prefix + k, build(v, prefix + k + ".")) for k, v in node.items()]

    return {"columnMetadata": build(tree, ""), "entityName": obj, "groupBy": False, "idSelected": "Id" in fields,
            "keyPrefix": None}


class Handler(BaseHTTPRequestHandler):
    server_version = "sf-intuser-emulator"
    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> OrgState:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, [{"message": message, "errorCode": code, "fields": []}])

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        self.state.requests.append(("GET", self.path))
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer " + self.state.token_prefix):
            return self._error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        path = url.path.rstrip("/")
        if path == "/services/oauth2/userinfo":
            return self._send(200, {"user_id": self.state.admin_id, "organization_id": self.state.org_id,
                                    "preferred_username": self.state.username})
        if path == "/services/data":
            return self._send(200, [{"version": v, "label": "Emulated", "url": f"/services/data/v{v}"}
                                    for v in API_VERSIONS])
        m = re.fullmatch(r"/services/data/v(\d+\.\d)(/tooling)?(/.*)?", path)
        if not m:
            return self._error(404, "NOT_FOUND", "The requested resource does not exist")
        rest = m.group(3) or ""
        if rest == "":
            return self._send(200, {})
        um = re.fullmatch(r"/sobjects/(\w+)/(\w+)", rest)
        if um:
            rec = self.state.records.get(um.group(1), {}).get(um.group(2))
            if rec is None:
                return self._error(404, "NOT_FOUND", "The requested resource does not exist")
            return self._send(200, {"attributes": _attrs(um.group(1), rec), **rec})
        if rest == "/query":
            qs = parse_qs(url.query)
            soql = qs.get("q", [""])[0]
            try:
                obj, fields, rows = run_soql(self.state, soql)
            except QueryError as exc:
                return self._error(400, exc.code, str(exc))
            if qs.get("columns", [""])[0] == "true":
                return self._send(200, column_metadata(obj, fields))
            return self._send(200, self._page(rows, 0, soql))
        pm = re.fullmatch(r"/query/01g(\d+)-(\d+)", rest)
        if pm:
            soql = self.server.cursors.get(pm.group(1))  # type: ignore[attr-defined]
            if soql is None:
                return self._error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            _, _, rows = run_soql(self.state, soql)
            return self._send(200, self._page(rows, int(pm.group(2)), soql))
        return self._error(404, "NOT_FOUND", "The requested resource does not exist")

    def _page(self, rows: list, start: int, soql: str) -> dict[str, Any]:
        size = self.state.page_size
        page = rows[start:start + size]
        body: dict[str, Any] = {"totalSize": len(rows), "done": start + size >= len(rows), "records": page}
        if not body["done"]:
            cursors = self.server.cursors  # type: ignore[attr-defined]
            cid = f"{len(cursors) + 1:012d}"
            cursors[cid] = soql
            body["nextRecordsUrl"] = f"/services/data/v62.0/query/01g{cid}-{start + size}"
        return body


class EmulatedOrg:
    """Start with :meth:`start`; ``url`` is the instance URL; stops itself after ``max_seconds``."""

    def __init__(self, state: OrgState | None = None, port: int = 0, max_seconds: float = 1800) -> None:
        self.state = state or default_state()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.state = self.state  # type: ignore[attr-defined]
        self.httpd.cursors = {}  # type: ignore[attr-defined]
        self.httpd.daemon_threads = True
        self.max_seconds = max_seconds
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def access_token(self) -> str:
        return self.state.token_prefix + "AQ0AQEmulatedSessionToken" + str(int(time.time()))

    def start(self) -> "EmulatedOrg":
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.max_seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer:
            self._timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
