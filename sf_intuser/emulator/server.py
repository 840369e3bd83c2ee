"""The emulated org's HTTP server: what the real ``sf`` CLI calls (docs/sf-wire.md section 3).

Identity (``userinfo``, the v51.0 User GET), the version list and root, sObject REST (GET, POST,
PATCH, DELETE, describe), REST and Tooling query with pagination and the ``columns=true`` call,
composite sObject collections, Composite Batch, and the SOAP Metadata API (:mod:`.mdapi`). Rules live in
:mod:`.org`, SOQL in :mod:`.soql`, faults in :mod:`.faults`.

The server binds 127.0.0.1 only and stops by itself after ``max_seconds``. Requests are served
one at a time under the state's lock, so tests can read ``state`` between CLI calls safely.
"""

from __future__ import annotations

from dataclasses import dataclass

import json
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from sf_intuser.emulator import faults as faults_mod
from sf_intuser.emulator import mdapi, objects, seed
from sf_intuser.emulator.org import ApiError, OrgState
from sf_intuser.emulator.soql import QueryError

NOT_FOUND = "The requested resource does not exist"
COLLECTION_LIMIT = 200
BATCH_LIMIT = 25
#: Composite (REST API Developer Guide, "Composite"): 25 subrequests, of which at most 5 may be sObject
#: Collections or query operations
COMPOSITE_LIMIT = 25
COMPOSITE_HEAVY_LIMIT = 5
HALTED = "The transaction was rolled back since another operation in the same transaction failed."
#: bytes a request URI may have (Salesforce KB 000386264)
URI_LIMIT = 16384


def error_body(code: str, message: str, fields: list[str] | None = None) -> list[dict[str, Any]]:
    """A REST error answer: a list of one ``{message, errorCode, fields}``."""
    return [{"message": message, "errorCode": code, "fields": fields or []}]


def column_metadata(obj: str, fields: list[str], aggregate: bool) -> dict[str, Any]:
    """The ``columns=true`` answer the CLI requires after every non-empty query (docs/sf-wire.md 4.3)."""
    def col(name: str, display: str, joins: list) -> dict[str, Any]:
        return {"aggregate": aggregate, "apexType": None if joins else "String", "booleanType": False,
                "columnName": name, "custom": False, "displayName": display, "foreignKeyName": None,
                "insertable": False, "joinColumns": joins, "numberType": False, "textType": not joins,
                "updatable": False}

    tree: dict[str, Any] = {}
    for f in fields:
        node = tree
        for p in f.split("."):
            node = node.setdefault(p, {})

    def build(node: dict, prefix: str) -> list:
        return [col(k, prefix + k, build(v, prefix + k + ".")) for k, v in node.items()]

    return {"columnMetadata": build(tree, ""), "entityName": obj, "groupBy": aggregate, "idSelected": "Id" in fields,
            "keyPrefix": objects.OBJECTS.get(obj, ("",))[0] or None}



@dataclass(frozen=True)
class RawBody:
    """A response body sent as it is (a log file's CSV), not as JSON."""
    data: bytes
    content_type: str


class Handler(BaseHTTPRequestHandler):
    server_version = "sf-intuser-emulator"
    protocol_version = "HTTP/1.1"

    @property
    def emu(self) -> "EmulatedOrg":
        return self.server.emulator  # type: ignore[attr-defined]

    @property
    def state(self) -> OrgState:
        return self.emu.state

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet; requests are in state.requests
        pass

    # --- plumbing ------------------------------------------------------------------------------

    def _send_bytes(self, status: int, data: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send(self, status: int, body: Any = None) -> None:
        if isinstance(body, RawBody):
            return self._send_bytes(status, body.data, body.content_type)
        if status == 204:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send_bytes(status, json.dumps(body).encode(), "application/json;charset=UTF-8")

    def _error(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        self._send(status, error_body(code, message, fields))

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            # undici (the CLI's fetch) streams a form body in chunks (RFC 9112 section 7.1)
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass      # trailer fields, then the empty line
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _json(self, raw: bytes | bytearray) -> Any:
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise ApiError(400, "JSON_PARSER_ERROR", "Unexpected character: the request body is not JSON") from None

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        raw = self._body()
        if len(self.path.encode()) > URI_LIMIT:
            # KB 000386264: a URI over 16,384 bytes is answered 414 URI Too Long
            return self._error(414, "URI_TOO_LONG", "URI Too Long")
        url = urlsplit(self.path)
        soap = url.path.startswith("/services/Soap/m/")
        label = f"{method} {self.path}"
        if soap:
            m = re.search(rb"<(?:\w+:)?Body[^>]*>\s*<(?:\w+:)?(\w+)", raw)
            label += " " + (m.group(1).decode() if m else "?")
        fault = None
        with self.state.lock:
            self.state.requests.append((method, label[len(method) + 1:]))
            for f in self.emu.faults:
                if f.hit(label):
                    fault = f
                    break
            if fault is not None and fault.action == "call" and fault.before is not None:
                fault.before(self.state)   # someone else's change, made just before this request
                fault = None
        try:
            self._faulted(fault, method, url, raw, soap)
        finally:
            if fault is not None:
                fault.done.set()

    def _faulted(self, fault: faults_mod.Fault | None, method: str, url: Any, raw: bytes, soap: bool) -> None:
        """The request as the org answers it, after ``fault`` (if any) applied: dropped, delayed, refused."""
        if fault is not None:
            if fault.action == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault.action == "delay":
                time.sleep(fault.seconds)
            elif soap:
                return self._send_bytes(500, mdapi.fault(fault.code, fault.message), "text/xml;charset=UTF-8")
            else:
                return self._error(fault.status, fault.code, fault.message)
        with self.state.lock:
            try:
                if soap:
                    return self._soap(raw)
                if url.path.startswith("/services/Soap/u/"):
                    return self._partner_soap(raw)
                self._route(method, url, raw)
            except ApiError as exc:
                self._send(exc.status, [exc.body()])
            except QueryError as exc:
                self._error(400, exc.code, exc.render(self._query_text(url)))

    def _token(self, raw: bytes) -> None:
        """OAuth 2.0 token endpoint (Salesforce Help, "OAuth 2.0 Web Server Flow" and "Refresh Token
        Flow"): the authorization code of a scratch org's signup (once), or a refresh token it issued,
        for an access token. Anything else: 400 invalid_grant, as Salesforce answers."""
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        emu, grant = self.emu, form.get("grant_type")
        st = self.state
        uid = st.admin_id
        web = grant == "authorization_code" and form.get("code") in emu.web_codes
        ok = (grant == "authorization_code" and emu.auth_code and form.get("code") == emu.auth_code) or web or \
             (grant == "refresh_token" and form.get("refresh_token") == emu.refresh_token)
        if web:
            emu.web_codes.discard(form["code"])   # good for one exchange
        if grant == "refresh_token" and form.get("refresh_token") in emu.user_tokens:
            # a user created through SCIM holds a refresh token of its own (the auto-approve-user header)
            uid, ok = emu.user_tokens[form["refresh_token"]], True
        if not ok:
            return self._send(400, {"error": "invalid_grant", "error_description": "authentication failure"})
        if grant == "authorization_code":
            emu.auth_code = None          # an authorization code is good for one exchange
        body = {"access_token": emu.access_token(uid), "instance_url": emu.url, "token_type": "Bearer",
                "id": f"{emu.url}/id/{st.org_id}/{uid}", "issued_at": str(int(time.time() * 1000)),
                "signature": "emulated", "scope": "api web refresh_token"}
        if grant == "authorization_code":
            body["refresh_token"] = emu.refresh_token
        self._send(200, body)

    def _authorize(self, qs: dict[str, list[str]]) -> None:
        """The OAuth 2.0 web server flow's authorize step (Salesforce Help, "OAuth 2.0 Web Server Flow for
        Web App Integration"), as `sf org login web` opens it in a browser: the admin has "logged in and
        allowed access" at once, so the answer redirects to ``redirect_uri`` with a one-time ``code`` and
        the ``state`` sent. Only a redirect to this machine is served."""
        import secrets

        redirect = (qs.get("redirect_uri") or [""])[0]
        if not re.match(r"^http://(localhost|127\.0\.0\.1)(:\d+)?/", redirect):
            return self._send(400, {"error": "redirect_uri_mismatch", "error_description": "redirect_uri must match "
                                    "configuration"})
        code = "aPrx" + secrets.token_hex(16)
        self.emu.web_codes.add(code)
        state = (qs.get("state") or [""])[0]
        sep = "&" if "?" in redirect else "?"
        self.send_response(302)
        self.send_header("Location", f"{redirect}{sep}code={code}" + (f"&state={state}" if state else ""))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _session_user(self) -> str:
        """The user whose session the request carries (a token :meth:`EmulatedOrg.access_token` made)."""
        m = re.search(r"AQ0AQU(005\w{15})", self.headers.get("Authorization", ""))
        return m.group(1) if m else self.state.admin_id

    def _scim_create(self, raw: bytes) -> None:
        """SCIM 1.0 ``POST /services/scim/v1/Users`` as ``sf org create user`` sends it (@salesforce/core
        org/user.js createUserInternal: userName, emails, name.familyName, nickName, entitlements[0] the
        profile id; header ``auto-approve-user: true``). The answer is 201 with the new user's ``id``
        and, in the ``auto-approve-user`` response header, a refresh token of the new user's own, which
        sf exchanges at the token endpoint (Salesforce Help, "SCIM User Provisioning"; core reads the
        header as the refresh token). Fields SCIM does not carry take the org's defaults [I], and sf
        sets them right after with a User update."""
        body = self._json(raw) or {}
        if not isinstance(body, dict):
            return self._send(400, {"Errors": [{"description": "the request body is not a SCIM User", "code": 400}]})
        username = str(body.get("userName") or body.get("username") or "")   # core sends "username"
        first = (body.get("emails") or [""])[0]   # sf sends strings; SCIM allows {"value": ...}
        email = first if isinstance(first, str) else str((first or {}).get("value") or "")
        admin = self.state.get(self.state.admin_id) or {}
        ents = body.get("entitlements") or [{}]
        vals = {"Username": username, "Email": email or username,
                "LastName": str((body.get("name") or {}).get("familyName") or username.split("@")[0]),
                "Alias": (str(body.get("nickName") or username) or "user")[:8],
                "ProfileId": str((ents[0] or {}).get("value") or ""),
                **{k: admin.get(k) or d for k, d in (("TimeZoneSidKey", "America/Los_Angeles"),
                                                     ("LocaleSidKey", "en_US"), ("EmailEncodingKey", "UTF-8"),
                                                     ("LanguageLocaleKey", "en_US"))}}
        try:
            uid = self.state.insert("User", vals)
        except ApiError as exc:
            # SCIM errors: {"Errors": [{"description", "code"}]} (sf reads Errors[].description)
            return self._send(exc.status, {"Errors": [{"description": exc.message, "code": exc.status}]})
        token = f"5Aep861.{self.state.org_id[:15]}.EmulatedUserRefresh.{uid}"
        self.emu.user_tokens[token] = uid
        data = json.dumps({"schemas": ["urn:scim:schemas:core:1.0"], "id": uid, "userName": username,
                           "active": True}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("auto-approve-user", token)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _partner_soap(self, raw: bytes) -> None:
        """The SOAP Partner API (``/services/Soap/u/<version>``): ``setPassword``, which ``sf org generate
        password`` and ``org create user`` (generatePassword) call through jsforce with the session in
        the SOAP header (Partner WSDL: setPassword(userId, password) -> setPasswordResponse). Other
        calls: a fault naming the call."""
        ns = "urn:partner.soap.sforce.com"
        try:
            env = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError:
            return self._send_bytes(500, mdapi.fault("INVALID_XML", "could not parse the request"), "text/xml")
        session = env.findtext(f".//{{{ns}}}sessionId") or ""
        if not session.startswith(self.state.token_prefix):
            return self._send_bytes(500, mdapi.fault("INVALID_SESSION_ID", "Invalid Session ID found in "
                                                     "SessionHeader: Illegal Session"), "text/xml")
        op = env.find(f"{{{mdapi.SOAP_NS}}}Body/*")
        name = etree.QName(op).localname if op is not None else "?"
        if op is None or name != "setPassword":
            return self._send_bytes(500, mdapi.fault("UNSUPPORTED_OPERATION", f"The Partner API call {name} is not "
                                                     "supported here"), "text/xml")
        uid = op.findtext(f"{{{ns}}}userId") or ""
        password = op.findtext(f"{{{ns}}}password") or ""
        user = self.state.get(uid)
        if user is None or not uid.startswith("005"):
            return self._send_bytes(500, mdapi.fault("INVALID_ID_FIELD", f"invalid user id: {uid}"), "text/xml")
        if len(password) < 8:   # the default password policy: at least 8 characters (Help, "Set Password Policies")
            return self._send_bytes(500, mdapi.fault("INVALID_NEW_PASSWORD", "Your password must be at least 8 "
                                                     "characters long."), "text/xml")
        self.emu.passwords_set.add(uid)
        resp = (f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{mdapi.SOAP_NS}" '
                f'xmlns="{ns}"><soapenv:Body><setPasswordResponse><result/></setPasswordResponse></soapenv:Body>'
                '</soapenv:Envelope>')
        self._send_bytes(200, resp.encode(), "text/xml;charset=UTF-8")

    def _query_text(self, url: Any) -> str:
        q = parse_qs(url.query).get("q", [""])[0]
        if not q:   # a next-page locator: the query it continues
            m = re.search(r"/query/01g(\w+)-\d+$", url.path)
            q = self.emu.cursors.get(m.group(1), "") if m else ""
        return q

    def _soap(self, raw: bytes) -> None:
        try:
            out = mdapi.handle(self.state, self.emu.jobs, raw)
        except mdapi.SoapFault as exc:
            return self._send_bytes(500, mdapi.fault(exc.code, str(exc)), "text/xml;charset=UTF-8")
        self._send_bytes(200, out, "text/xml;charset=UTF-8")

    # --- REST ----------------------------------------------------------------------------------

    def _route(self, method: str, url: Any, raw: bytes) -> None:
        if url.path.rstrip("/") == "/services/oauth2/token" and method == "POST":
            return self._token(raw)
        if url.path.rstrip("/") == "/services/oauth2/authorize" and method == "GET":
            return self._authorize(parse_qs(url.query))
        auth = self.headers.get("Authorization", "")
        issued = re.search(r"EmulatedSessionToken(\d+)$", auth)
        if not auth.startswith("Bearer " + self.state.token_prefix) or (
                issued and int(issued.group(1)) < self.emu.sessions_from):
            return self._error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        path = url.path.rstrip("/")
        if path == "/services/oauth2/userinfo":
            me = self.state.get(self._session_user()) or {}
            return self._send(200, {"user_id": me.get("Id", self.state.admin_id), "organization_id": self.state.org_id,
                                    "preferred_username": me.get("Username", self.state.username)})
        if path == "/services/scim/v1/Users" and method == "POST":
            return self._scim_create(raw)
        if path == "/services/data":
            return self._send(200, [{"version": v, "label": "Emulated", "url": f"/services/data/v{v}"}
                                    for v in self.state.api_versions])
        m = re.fullmatch(r"/services/data/v(\d+\.\d)(/tooling)?(/.*)?", path)
        if not m:
            return self._error(404, "NOT_FOUND", NOT_FOUND)
        if (m.group(3) or "") == "/composite/batch" and not m.group(2):
            return self._send(*self._batch(m.group(1), method, raw))
        if (m.group(3) or "") == "/composite" and not m.group(2):
            return self._send(*self._composite(m.group(1), method, raw))
        status, body = self._resource(m.group(1), method, m.group(3) or "", parse_qs(url.query), raw)
        self._send(status, body)

    def _resource(self, version: str, method: str, rest: str, qs: dict[str, list[str]],
                  raw: bytes | Any) -> tuple[int, Any]:
        """One REST resource below ``/services/data/vXX.X`` (REST and Tooling share one store: the same
        objects answer both): the status and the body. ``raw`` is the request body, bytes or, inside a
        batch, its parsed ``richInput``."""
        if rest == "":
            return 200, {"sobjects": f"/services/data/v{version}/sobjects", "query": f"/services/data/v{version}/query"}
        if rest == "/query" and method == "GET":
            return self._query(qs.get("q", [""])[0], qs.get("columns", [""])[0] == "true")
        pm = re.fullmatch(r"/query/01g(\w+)-(\d+)", rest)
        if pm and method == "GET":
            return self._next_page(pm.group(1), int(pm.group(2)))
        if rest == "/composite/sobjects":
            return self._collection(method, raw, qs)
        lf = re.fullmatch(r"/sobjects/EventLogFile/(\w+)/LogFile", rest)
        if lf and method == "GET" and self.state.sobject("EventLogFile"):
            from sf_intuser.emulator import eventlogs

            body = eventlogs.body_of(self.state, lf.group(1))
            if body is None:
                return 404, error_body("NOT_FOUND", NOT_FOUND)
            return 200, RawBody(body, "text/csv")
        sm = re.fullmatch(r"/sobjects/(\w+)(?:/(\w+))?", rest)
        if sm:
            return self._sobject(method, sm.group(1), sm.group(2), raw)
        return 404, error_body("NOT_FOUND", NOT_FOUND)

    def _batch(self, version: str, method: str, raw: bytes) -> tuple[int, Any]:
        """Composite Batch (REST API Developer Guide, "Composite Batch" and "Batch Request Body"): up to 25
        independent subrequests, run in order, each with its own status; ``url`` is ``vXX.X/...`` no later
        than the batch's own version; a subrequest error leaves the others (``haltOnError`` stops at it,
        the rest answering 412 BATCH_PROCESSING_HALTED). A malformed subrequest fails the whole request
        with 400 before anything runs. Tooling resources are not among the batchable ones."""
        if method != "POST":
            return 405, error_body("METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are POST")
        body = self._json(raw) or {}
        subs = body.get("batchRequests") if isinstance(body, dict) else None
        if not isinstance(subs, list) or not subs:
            return 400, error_body("JSON_PARSER_ERROR", "batchRequests is required")
        if len(subs) > BATCH_LIMIT:
            # the limit is documented; the wording is [U]
            return 400, error_body("INVALID_BATCH_REQUEST",
                                   f"A batch can contain a maximum of {BATCH_LIMIT} requests")
        parsed = []
        for sub in subs:
            m = re.fullmatch(r"v(\d+\.\d)(/[^?]*)(?:\?(.*))?", str((sub or {}).get("url", "")))
            verb = str((sub or {}).get("method", "")).upper()
            if not m or verb not in ("GET", "POST", "PATCH", "DELETE") or float(m.group(1)) < 34.0 \
                    or float(m.group(1)) > float(version):
                return 400, error_body("INVALID_BATCH_REQUEST",
                                       f"Invalid subrequest: {sub!r}: the url must be vXX.X/... (34.0 to {version}) "
                                       "and the method GET, POST, PATCH or DELETE")
            parsed.append((verb, m.group(1), m.group(2).rstrip("/"), parse_qs(m.group(3) or ""),
                           sub.get("richInput"), len(str(sub["url"]).encode())))
        results: list[dict[str, Any]] = []
        halted = False
        for verb, sub_version, rest, qs, rich, size in parsed:
            if size > URI_LIMIT:
                # a subrequest's URL under the same limit as a request's [U: the strict side]
                results.append({"statusCode": 414, "result": error_body("URI_TOO_LONG", "URI Too Long")})
                continue
            if halted:
                results.append({"statusCode": 412,
                                "result": error_body("BATCH_PROCESSING_HALTED", "Batch processing halted")})
                continue
            try:
                if rest.startswith("/tooling") or rest.startswith("/composite"):
                    # the batchable resources are listed (limits, sObject, query, search, connect,
                    # chatter, actions): no Tooling, no composite resource inside a batch
                    status, out = 404, error_body("NOT_FOUND", NOT_FOUND)
                else:
                    status, out = self._resource(sub_version, verb, rest, qs, rich)
            except ApiError as exc:
                status, out = exc.status, [exc.body()]
            except QueryError as exc:
                status, out = 400, error_body(exc.code, exc.render(qs.get("q", [""])[0]))
            results.append({"statusCode": status, "result": None if status == 204 else out})
            if status >= 400 and body.get("haltOnError"):
                halted = True
        return 200, {"hasErrors": any(r["statusCode"] >= 400 for r in results), "results": results}

    def _composite(self, version: str, method: str, raw: bytes) -> tuple[int, Any]:
        """Composite (REST API Developer Guide, "Composite" and "Composite Request Body"): up to 25
        subrequests run in order, at most 5 of them sObject Collections or queries; each ``url`` is a
        full ``/services/data/vXX.X/...`` path no later than the request's; every subrequest needs a
        unique ``referenceId``. ``allOrNone`` true: when one subrequest fails, all are rolled back and
        the others answer ``PROCESSING_HALTED``; false: the others keep their work. References between
        subrequests (``@{ref.id}``) are not modelled and are refused loudly rather than sent on."""
        if method != "POST":
            return 405, error_body("METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are POST")
        body = self._json(raw) or {}
        subs = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subs, list) or not subs:
            return 400, error_body("JSON_PARSER_ERROR", "compositeRequest is required")
        if len(subs) > COMPOSITE_LIMIT:
            return 400, error_body("INVALID_COMPOSITE_REQUEST",   # limit documented; wording [U]
                                   f"A composite request can contain a maximum of {COMPOSITE_LIMIT} subrequests")
        parsed, refs = [], set()
        for sub in subs:
            sub = sub if isinstance(sub, dict) else {}
            m = re.fullmatch(r"/services/data/v(\d+\.\d)(/[^?]*)(?:\?(.*))?", str(sub.get("url", "")))
            verb = str(sub.get("method", "")).upper()
            ref = str(sub.get("referenceId") or "")
            if not m or verb not in ("GET", "POST", "PATCH", "PUT", "DELETE") or float(m.group(1)) > float(version) \
                    or not re.fullmatch(r"[A-Za-z0-9_]+", ref) or ref in refs:
                return 400, error_body("INVALID_COMPOSITE_REQUEST",
                                       f"Invalid subrequest: {sub!r}: url must be /services/data/vXX.X/... (no later "
                                       f"than v{version}), method GET, POST, PATCH, PUT or DELETE, and referenceId "
                                       "unique letters, digits and underscores")
            if "@{" in json.dumps(sub):
                return 400, error_body("INVALID_COMPOSITE_REQUEST", "references between subrequests (@{...}) are not "
                                       "modelled by the emulated org")
            refs.add(ref)
            rest = m.group(2).rstrip("/")
            parsed.append((verb, m.group(1), rest, parse_qs(m.group(3) or ""), sub.get("body"), ref))
        heavy = sum(1 for _, _, rest, *_ in parsed if rest in ("/composite/sobjects", "/query", "/queryAll"))
        if heavy > COMPOSITE_HEAVY_LIMIT:
            return 400, error_body("INVALID_COMPOSITE_REQUEST", "A composite request can contain a maximum of "
                                   f"{COMPOSITE_HEAVY_LIMIT} sObject Collections or query subrequests")
        all_or_none = bool(body.get("allOrNone"))
        snap = self.state.snapshot() if all_or_none else None
        out: list[dict[str, Any]] = []
        for verb, sub_version, rest, qs, sub_body, ref in parsed:
            try:
                if rest.startswith("/tooling") or rest.startswith("/composite/batch") or rest == "/composite":
                    status, res = 404, error_body("NOT_FOUND", NOT_FOUND)
                else:
                    status, res = self._resource(sub_version, verb, rest, qs, sub_body)
            except ApiError as exc:
                status, res = exc.status, [exc.body()]
            except QueryError as exc:
                status, res = 400, error_body(exc.code, exc.render(qs.get("q", [""])[0]))
            out.append({"body": None if status == 204 else res, "httpHeaders": {}, "httpStatusCode": status,
                        "referenceId": ref})
        if snap is not None and any(r["httpStatusCode"] >= 400 for r in out):
            snap.restore()
            for r in out:
                if r["httpStatusCode"] < 400:
                    r.update(httpStatusCode=400, body=error_body("PROCESSING_HALTED", HALTED))
        return 200, {"compositeResponse": out}

    def _sobject(self, method: str, type_name: str, rid: str | None, raw: Any) -> tuple[int, Any]:
        obj = self.state.sobject(type_name)
        not_found = 404, error_body("NOT_FOUND", NOT_FOUND)
        if rid == "describe" and method == "GET":
            if obj is None:
                # docs/sf-wire.md row 12: exactly this 404 means "no source tracking"
                return not_found
            return 200, {"name": obj, "keyPrefix": objects.OBJECTS[obj][0], "queryable": True,
                         "fields": [{"name": f, "type": "id" if f == "Id" else "boolean"
                                     if objects.permission_of(obj, f) else "string"}
                                    for f in objects.described_fields(obj, self.state.perms.known)]}
        if obj is None:
            return not_found
        if method == "GET" and rid:
            rec = self.state.get(rid)
            if rec is None or objects.object_of_id(rec["Id"]) != obj:
                return not_found
            # sObject Rows: every field, computed ones (Permissions<X>, MaximumPermissions<X>) included
            out = {"attributes": self.state.attributes(obj, rec["Id"]), **self.state.view(obj, rec)}
            for f in objects.described_fields(obj, self.state.perms.known):
                if objects.permission_of(obj, f) is not None:
                    out[f] = self.state.field_value(obj, rec, f)
            return 200, out
        if method == "POST" and not rid:
            new = self.state.insert(obj, self._input(raw) or {})
            return 201, {"id": new, "success": True, "errors": []}
        if method == "PATCH" and rid:
            self.state.update(obj, rid, self._input(raw) or {})
            return 204, None
        if method == "DELETE" and rid:
            self.state.delete(obj, rid)
            return 204, None
        return 405, error_body("METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are GET")

    def _input(self, raw: Any) -> Any:
        return self._json(raw) if isinstance(raw, (bytes, bytearray)) else raw

    def _query(self, soql: str, columns: bool) -> tuple[int, Any]:
        q, rows, total = self.state.query(soql)
        if columns:
            return 200, column_metadata(objects.canonical(q.obj) or q.obj,
                                        [f.alias or f.path or "expr0" for f in q.fields], q.aggregate)
        return 200, self._page(rows, total, 0, soql)

    def _next_page(self, cursor: str, start: int) -> tuple[int, Any]:
        soql = self.emu.cursors.get(cursor)
        if soql is None:
            return 400, error_body("INVALID_QUERY_LOCATOR", "invalid query locator")
        _, rows, total = self.state.query(soql)
        return 200, self._page(rows, total, start, soql)

    def _page(self, rows: list, total: int, start: int, soql: str) -> dict[str, Any]:
        size = self.state.page_size
        page = rows[start:start + size]
        body: dict[str, Any] = {"totalSize": total, "done": start + size >= len(rows), "records": page}
        if not body["done"]:
            cid = f"{self.emu.cursor_base}{len(self.emu.cursors) + 1:06d}"
            self.emu.cursors[cid] = soql
            body["nextRecordsUrl"] = f"/services/data/v{self.state.api_versions[-1]}/query/01g{cid}-{start + size}"
        return body

    def _collection(self, method: str, raw: Any, qs: dict[str, list[str]]) -> tuple[int, Any]:
        """sObject Collections (REST API Developer Guide): up to 200 records, one result per record, in
        order; with allOrNone every record rolls back when one fails."""
        if method == "DELETE":
            ids = [i for i in ",".join(qs.get("ids", [""])).split(",") if i]
            all_or_none = qs.get("allOrNone", ["false"])[0].lower() == "true"
            items: list[Any] = ids
        else:
            body = self._input(raw) or {}
            if not isinstance(body, dict) or not isinstance(body.get("records"), list):
                raise ApiError(400, "JSON_PARSER_ERROR", "the body must be {\"allOrNone\": ..., \"records\": [...]}")
            items, all_or_none = body["records"], bool(body.get("allOrNone"))
        if len(items) > COLLECTION_LIMIT:
            raise ApiError(400, "EXCEEDED_ID_LIMIT",
                           f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call")
        kinds = {(objects.object_of_id(str(i)) if method == "DELETE" else
                  objects.canonical(str(((i if isinstance(i, dict) else {}).get("attributes") or {}).get("type", ""))))
                 for i in items}
        named = {k for k in kinds if k}
        setup = sorted(k for k in named if k in objects.SETUP_OBJECTS)
        other = sorted(k for k in named if k not in objects.SETUP_OBJECTS)
        if setup and other and self.state.options.refuse_mixed_dml:
            # the Apex wording of MIXED_DML_OPERATION (Apex Developer Guide) [U for a collection]
            err = {"statusCode": "MIXED_DML_OPERATION", "fields": [],
                   "message": "DML operation on setup object is not permitted after you have updated a non-setup "
                              f"object (or vice versa): {setup[0]}, original object: {other[0]}"}
            return 200, [{"id": None, "success": False, "errors": [err]} for _ in items]
        results: list[dict[str, Any]] = []
        snapshot = self.state.snapshot()
        for item in items:
            try:
                if method == "POST":
                    rid = self.state.insert(str((item.get("attributes") or {}).get("type", "")), item)
                elif method == "PATCH":
                    rid = str(item.get("Id") or item.get("id") or "")
                    self.state.update(str((item.get("attributes") or {}).get("type", "")), rid,
                                      {k: v for k, v in item.items() if k not in ("Id", "id")})
                elif method == "DELETE":
                    rid = str(item)
                    obj = objects.object_of_id(rid) or ""
                    self.state.delete(obj, rid)
                else:
                    raise ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed")
                results.append({"id": rid, "success": True, "errors": []})
            except ApiError as exc:
                results.append({"id": item if method == "DELETE" else None, "success": False,
                                "errors": [{"statusCode": exc.code, "message": exc.message, "fields": exc.fields}]})
        if all_or_none and any(not r["success"] for r in results):
            snapshot.restore()
            for r in results:
                if r["success"]:
                    r.update(success=False, id=None, errors=[{
                        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        "message": "Record rolled back because not all records were valid and the request was "
                                   "using AllOrNone header", "fields": []}])
        return 200, results


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away before its answer (killed on purpose in the fault and hostile tests,
        or a Ctrl-C) is no error of the org's: the answer is dropped quietly, as a real server would.
        Anything else is printed as the standard library does."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class EmulatedOrg:
    """Start with :meth:`start`; ``url`` is the instance URL; stops itself after ``max_seconds``."""

    def __init__(self, state: OrgState | None = None, port: int = 0, max_seconds: float = 1800) -> None:
        self.state = state or seed.load()
        self.faults: list[faults_mod.Fault] = []
        self.jobs = mdapi.Jobs()
        self.cursors: dict[str, str] = {}
        self.cursor_base = f"{int(time.time()) % 10**9:09d}"
        self.httpd = _Server(("127.0.0.1", port), Handler)
        self.httpd.emulator = self  # type: ignore[attr-defined]
        self.httpd.daemon_threads = True
        self.max_seconds = max_seconds
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self.stopped = threading.Event()
        #: a scratch org's signup auth code (good for one token exchange) and its refresh token
        self.auth_code: str | None = None
        # refresh tokens keep to [A-Za-z0-9._-], as an sfdx auth URL requires (@salesforce/core
        # AuthInfo.parseSfdxAuthUrl), so `sf org display --verbose` prints one that can be used again
        self.refresh_token = "5Aep861." + self.state.org_id[:15] + ".EmulatedRefreshToken"
        #: refresh tokens of users created through SCIM -> their user ids
        self.user_tokens: dict[str, str] = {}
        #: sessions issued before this time (seconds) are expired (:meth:`expire_sessions`)
        self.sessions_from = 0
        #: one-time codes of the web server flow (`sf org login web`)
        self.web_codes: set[str] = set()
        #: users whose password was set through the Partner API's setPassword
        self.passwords_set: set[str] = set()
        #: the scratch orgs this Dev Hub brought up (stopped with it)
        self.scratch_orgs: list["EmulatedOrg"] = []
        self.state.scratch_factory = self._new_scratch_org
        self.state.scratch_stopper = self._stop_scratch_org

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def access_token(self, user_id: str | None = None) -> str:
        """A session for the admin, or for ``user_id`` (the request's user: :meth:`Handler._session_user`)."""
        who = f"U{user_id}" if user_id and user_id != self.state.admin_id else ""
        return self.state.token_prefix + f"AQ0AQ{who}EmulatedSessionToken" + str(int(time.time()))

    def reset(self, state: OrgState) -> None:
        """Serve ``state`` from now on, with no faults and no jobs: a fresh org at the same address. Its
        org id must be the old one's, so the sf CLI's login still holds (the token is made from it)."""
        if state.token_prefix != self.state.token_prefix:
            raise ValueError("reset needs a state of the same org (same org id)")
        with self.state.lock:
            self.faults = []
            self.jobs = mdapi.Jobs()
            self.cursors = {}
            self.state = state
            state.scratch_factory = self._new_scratch_org
            state.scratch_stopper = self._stop_scratch_org

    def expire_sessions(self) -> None:
        """Every access token issued so far expires (as sessions time out): a client holding a refresh
        token gets a new one; one logged in with an access token alone must log in again."""
        self.sessions_from = int(time.time()) + 1
        time.sleep(max(0.0, self.sessions_from - time.time()))   # tokens issued from now on are valid

    def inject(self, fault: faults_mod.Fault | str) -> faults_mod.Fault:
        f = faults_mod.parse(fault) if isinstance(fault, str) else fault
        self.faults.append(f)
        return f

    def start(self) -> "EmulatedOrg":
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.max_seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def _new_scratch_org(self, request: dict[str, Any]) -> dict[str, Any]:
        """A Dev Hub's ScratchOrgInfo: a blank org (seed.scratch) of its own on a free port, which the
        CLI authorizes with AuthCode at LoginUrl; it stops with this org."""
        import secrets

        n = len(self.scratch_orgs) + 1
        name = f"scratch{n}-{self.state.org_id[3:9]}"
        child = EmulatedOrg(seed.scratch(name, str(request.get("OrgName") or "Scratch Org"),
                                         str(request.get("Edition") or "Developer")),
                            max_seconds=self.max_seconds).start()
        child.auth_code = "aPrx" + secrets.token_hex(16)
        self.scratch_orgs.append(child)
        return {"LoginUrl": child.url, "ScratchOrg": child.state.org_id[:15],
                "SignupUsername": child.state.username, "AuthCode": child.auth_code}

    def _stop_scratch_org(self, org_id15: str) -> None:
        for child in self.scratch_orgs:
            if child.state.org_id[:15] == org_id15:
                # not stopped right away: this request's own thread must answer first
                threading.Timer(0.5, child.stop).start()

    def stop(self) -> None:
        if self.stopped.is_set():
            return
        for child in self.scratch_orgs:
            child.stop()
        self.stopped.set()
        if self._timer:
            self._timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
