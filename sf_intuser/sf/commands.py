"""The sf verbs the workflow needs, over :class:`SfRunner`. Shapes from docs/sf-wire.md."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from sf_intuser.sf.runner import SfAuthError, SfConnectionError, SfError, SfRunner, parse_version
from sf_intuser.sf.soql import chunks


@dataclass(frozen=True)
class OrgInfo:
    username: str
    org_id: str
    instance_url: str
    api_version: str
    alias: str | None


def version(runner: SfRunner) -> tuple[int, int, int] | None:
    return versions(runner)[0]


def versions(runner: SfRunner) -> tuple[tuple[int, int, int] | None, str | None]:
    """sf's version and the Node version it runs on (``@salesforce/cli/2.146.3 linux-x64 node-v22.20.0``)."""
    code, out, err = runner.raw(["--version"], timeout=60)
    if code != 0:
        raise SfError("SfVersionFailed", f"`sf --version` exited {code}: {(err or out).strip()[:300]}", code,
                      actions=["sf needs Node 22.19 or later; `make setup` brings one"])
    node = re.search(r"node-v(\d+\.\d+\.\d+)", out)
    return parse_version(out), node.group(1) if node else None


@dataclass(frozen=True)
class OrgAuth:
    """An org the sf CLI is logged in to, as ``sf org list auth`` lists it (local files only, no network)."""

    username: str
    alias: str | None
    instance_url: str
    org_id: str
    is_default: bool      # sf's configured target-org


def org_auths(runner: SfRunner) -> list[OrgAuth]:
    env = runner.run(["org", "list", "auth"], timeout=120)
    out = []
    for a in env.result or []:
        if isinstance(a, dict) and a.get("username"):
            out.append(OrgAuth(a["username"], a.get("alias") or None, a.get("instanceUrl", ""), a.get("orgId", ""),
                               "target-org" in (a.get("configs") or [])))
    return out


def target_org(runner: SfRunner, wanted: str | None) -> OrgAuth:
    """The org ``-o`` names (alias or username), else sf's configured ``target-org``, the way sf picks it.
    Raises :class:`SfAuthError` naming the fix when there is none."""
    auths = org_auths(runner)
    if wanted:
        for a in auths:
            if wanted in (a.alias, a.username):
                return a
        raise SfAuthError("NamedOrgNotFoundError", f"No org is logged in under the alias or username {wanted!r}", 1,
                          actions=[f"Log in first: sf org login web --alias {wanted} (or sf org login access-token)",
                                   "See the orgs sf knows: sf org list auth"])
    for a in auths:
        if a.is_default:
            return a
    raise SfAuthError("NoDefaultEnvError", "No org given and sf has no target-org configured", 1,
                      actions=["Pass -o/--target-org ALIAS", "Or set one: sf config set target-org ALIAS"])


def unreachable(instance_url: str, timeout: float = 3.0) -> str | None:
    """Why the org's instance does not answer a TCP connection within ``timeout`` seconds, or None.
    sf itself retries a dead instance for half a minute before it says so; this says it at once."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(instance_url)
    if not u.hostname:
        return f"no instance URL ({instance_url!r})"
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((u.hostname, port), timeout=timeout):
            return None
    except socket.timeout:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return exc.strerror or str(exc)


def is_local(instance_url: str) -> bool:
    from urllib.parse import urlsplit

    return (urlsplit(instance_url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def org_display(runner: SfRunner, target_org: str | None) -> OrgInfo:
    """The org's identity. ``sf org display`` exits 0 with an expired session, so
    ``connectedStatus`` is checked here (docs/sf-wire.md section 4)."""
    args = ["org", "display"] + (["--target-org", target_org] if target_org else [])
    env = runner.run(args, timeout=120)
    r = env.result or {}
    status = r.get("connectedStatus")
    if status not in (None, "Connected"):
        fix = (f"Start the emulated org again and log in: sf-intuser emulator serve --alias {target_org or 'ALIAS'}"
               if is_local(r.get("instanceUrl", "")) else
               f"Log in again: sf org login web --alias {target_org or 'ALIAS'}")
        raise SfAuthError("SessionNotConnected", f"org {r.get('username', target_org)}: {status}", 1, actions=[fix])
    return OrgInfo(r.get("username", ""), r.get("id", ""), r.get("instanceUrl", ""), r.get("apiVersion", ""),
                   r.get("alias"))


def query(runner: SfRunner, soql: str, target_org: str | None, tooling: bool = False) -> list[dict[str, Any]]:
    """All records of a SOQL query (the CLI follows ``nextRecordsUrl`` itself)."""
    args = ["data", "query", "--query", soql] + (["--target-org", target_org] if target_org else [])
    if tooling:
        args.append("--use-tooling-api")
    env = runner.run(args)
    return list((env.result or {}).get("records") or [])


def _org(target_org: str | None) -> list[str]:
    return ["--target-org", target_org] if target_org else []


# --- metadata -----------------------------------------------------------------------------------


def list_metadata(runner: SfRunner, metadata_type: str, target_org: str | None,
                  api_version: str | None = None) -> list[dict[str, Any]]:
    """The Metadata API's ``listMetadata`` for one type (``sf org list metadata``): one record per
    component with ``fullName`` (its API name, the name a retrieve, a deploy and its file use),
    ``id`` and ``fileName``. One call whatever the org's size."""
    args = ["org", "list", "metadata", "--metadata-type", metadata_type, *_org(target_org)]
    if api_version:
        args += ["--api-version", api_version]
    r = runner.run(args).result
    return [x for x in (r if isinstance(r, list) else [r] if isinstance(r, dict) else []) if isinstance(x, dict)]


@dataclass
class RetrieveResult:
    root: Path                     # the folder holding package.xml and the type folders (mdapi format)
    files: list[Path]
    missing: list[str]             # result.messages: components the org does not have


def retrieve(runner: SfRunner, manifest: Path, target_org: str | None, output_dir: Path) -> RetrieveResult:
    """Retrieve a manifest in mdapi format into ``output_dir``.

    ``--target-metadata-dir`` needs no SFDX project and skips the SourceMember describe
    (docs/sf-wire.md section 5). The CLI unzips into ``<dir>/unpackaged/unpackaged/``. A component the
    org lacks does not fail the command: it is only in ``result.messages``, surfaced as ``missing``."""
    env = runner.run(["project", "retrieve", "start", "--manifest", str(manifest), "--target-metadata-dir",
                      str(output_dir), "--unzip", "--wait", "30", *_org(target_org)])
    r = env.result or {}
    messages = r.get("messages") or []
    if isinstance(messages, dict):
        messages = [messages]
    root = next((p.parent for p in sorted(output_dir.rglob("package.xml"))), output_dir)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return RetrieveResult(root, files, [str(m.get("problem", m)) for m in messages])


@dataclass(frozen=True)
class ComponentFailure:
    type: str
    name: str
    file: str
    problem: str
    line: int | None = None
    column: int | None = None


@dataclass
class DeployResult:
    id: str
    status: str                    # Succeeded | SucceededPartial | Failed | Canceled
    check_only: bool
    deployed: list[tuple[str, str]]   # (type, name)
    failures: list[ComponentFailure]
    #: (type, name) -> record id, from each DeployMessage's ``id`` (Metadata API, DeployMessage)
    ids: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.status == "Succeeded"


def _as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [] if v is None else [v]


def deploy(runner: SfRunner, metadata_dir: Path, target_org: str | None, dry_run: bool = False,
           validate: bool = False) -> DeployResult:
    """Deploy an mdapi folder. ``dry_run`` (``--dry-run``) and ``validate`` (``sf project deploy
    validate``, which also runs local tests) check everything and save nothing: ``checkOnly``.

    A component failure makes ``deploy start`` exit 1 with a *success-style* envelope holding the
    full result (docs/sf-wire.md section 6); it is parsed into per-file :class:`ComponentFailure`
    records. ``validate`` reports a failure as an error envelope carrying only the deploy id, so the
    full result is then read with ``sf project deploy report``. Any other error is raised."""
    verb = "validate" if validate else "start"
    args = ["project", "deploy", verb, "--metadata-dir", str(metadata_dir), "--wait", "30", *_org(target_org)]
    if dry_run and not validate:
        args.append("--dry-run")
    try:
        r = runner.run(args, ok=(0, 1, 68)).result
    except SfError as exc:
        job = exc.data.get("deployId") if isinstance(exc.data, dict) else None
        if exc.name != "FailedValidationError" or not job:
            raise
        r = runner.run(["project", "deploy", "report", "--job-id", str(job), *_org(target_org)], ok=(0, 1, 68)).result
    if not isinstance(r, dict) or "status" not in r:
        raise SfError("SfBadOutput", f"sf project deploy {verb} gave no deploy result: {str(r)[:300]}")
    details = r.get("details") or {}
    failures = [ComponentFailure(f.get("componentType", ""), f.get("fullName", ""), f.get("fileName", ""),
                                 f.get("problem", ""), _int(f.get("lineNumber")), _int(f.get("columnNumber")))
                for f in _as_list(details.get("componentFailures"))]
    deployed = [(s.get("componentType", ""), s.get("fullName", "")) for s in _as_list(details.get("componentSuccesses"))
                if s.get("componentType") not in ("Package", "", None)]
    ids = {(s.get("componentType", ""), s.get("fullName", "")): str(s["id"])
           for s in _as_list(details.get("componentSuccesses")) if s.get("id")}
    return DeployResult(str(r.get("id", "")), str(r.get("status", "")), str(r.get("checkOnly")).lower() == "true",
                        deployed, failures, ids)


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


# --- assignments --------------------------------------------------------------------------------


@dataclass
class AssignResult:
    done: list[tuple[str, str]] = field(default_factory=list)      # (username, name) newly assigned
    already: list[tuple[str, str]] = field(default_factory=list)   # (username, name) that was there before
    failures: list[tuple[str, str]] = field(default_factory=list)  # (username, message)

    @property
    def ok(self) -> bool:
        return not self.failures


def assign_permsets(runner: SfRunner, names: list[str], users: list[str], target_org: str | None) -> AssignResult:
    """``sf org assign permset``: one call for many sets and users. An existing assignment makes sf
    fail ("Duplicate PermissionSetAssignment", docs/sf-wire.md section 8); that counts as done here."""
    args = ["org", "assign", "permset", *[a for n in names for a in ("--name", n)],
            *[a for u in users for a in ("--on-behalf-of", u)], *_org(target_org)]
    return _assign(runner, args, names)


def assign_permset_licenses(runner: SfRunner, names: list[str], users: list[str],
                            target_org: str | None) -> AssignResult:
    """``sf org assign permsetlicense``: an existing assignment is a success with a warning."""
    args = ["org", "assign", "permsetlicense", *[a for n in names for a in ("--name", n)],
            *[a for u in users for a in ("--on-behalf-of", u)], *_org(target_org)]
    return _assign(runner, args, names)


_ALREADY_WARNING = re.compile(r'The user "(?P<user>[^"]+)" already has the Permission Set License "(?P<name>[^"]+)"')


def _assign(runner: SfRunner, args: list[str], names: list[str]) -> AssignResult:
    try:
        env = runner.run(args, ok=(0, 1, 68))
        result, warnings = env.result, env.warnings
    except SfError as exc:
        if not (isinstance(exc.data, dict) and "failures" in exc.data):
            raise
        result, warnings = exc.data, []
    out = AssignResult()
    for s in (result or {}).get("successes") or []:
        out.done.append((s.get("name", ""), s.get("value", "")))
    for w in warnings:
        m = _ALREADY_WARNING.search(str(w))
        if m:
            out.already.append((m.group("user"), m.group("name")))
    for f in (result or {}).get("failures") or []:
        msg = str(f.get("message", ""))
        if msg.startswith("Duplicate PermissionSetAssignment"):
            # sf does not say which set was the duplicate; with one name it can only be that one
            out.already.append((f.get("name", ""), names[0] if len(names) == 1 else ""))
        else:
            out.failures.append((f.get("name", ""), msg))
    return out


# --- records ------------------------------------------------------------------------------------

_SAFE_VALUE = re.compile(r"^[\w.@:+-]*$")


def _values(values: dict[str, Any]) -> str:
    """sf's ``--values "A=x B='y z'"``. Only simple values go this way (ids, booleans, names);
    anything with quotes or spaces inside must use :func:`collection`, which sends JSON."""
    parts = []
    for k, v in values.items():
        text = "true" if v is True else "false" if v is False else str(v)
        if not re.fullmatch(r"\w+", k) or not _SAFE_VALUE.match(text.replace(" ", "")):
            raise ValueError(f"value of {k} is not safe for --values; use commands.collection()")
        # sf data create record --help: "--values \"Name='Acme Inc' Website=www.example.com\""
        parts.append(f"{k}='{text}'" if " " in text or not text else f"{k}={text}")
    return " ".join(parts)


def create_record(runner: SfRunner, sobject: str, values: dict[str, Any], target_org: str | None) -> str:
    env = runner.run(["data", "create", "record", "--sobject", sobject, "--values", _values(values),
                      *_org(target_org)])
    return str((env.result or {}).get("id", ""))


def update_record(runner: SfRunner, sobject: str, record_id: str, values: dict[str, Any],
                  target_org: str | None) -> None:
    runner.run(["data", "update", "record", "--sobject", sobject, "--record-id", record_id, "--values",
                _values(values), *_org(target_org)])


def delete_record(runner: SfRunner, sobject: str, record_id: str, target_org: str | None) -> None:
    runner.run(["data", "delete", "record", "--sobject", sobject, "--record-id", record_id, *_org(target_org)])


@dataclass(frozen=True)
class RecordResult:
    id: str | None
    success: bool
    code: str = ""
    message: str = ""


def collection(runner: SfRunner, method: str, records: list[dict[str, Any]], target_org: str | None,
               api_version: str, all_or_none: bool = False) -> list[RecordResult]:
    """sObject Collections through ``sf api request rest`` (beta; no ``--json``): up to 200 records a
    call, in as many calls as needed. The command exits 0 on any 2xx even when records failed, so the
    body is parsed per record (docs/sf-wire.md section 8); an HTTP error (exit 1) raises :class:`SfError`.
    ``method`` is POST (create), PATCH (update, records carry ``Id``) or DELETE (records are ``{"Id"}``)."""
    out: list[RecordResult] = []
    base = f"/services/data/v{api_version}/composite/sobjects"
    for batch_ in chunks(records, 200):
        if method == "DELETE":
            ids = ",".join(str(r["Id"]) for r in batch_)
            # plugin-api 1.3.54 reads a request body for every method but GET and fails without one
            data = rest(runner, f"{base}?ids={ids}&allOrNone={str(all_or_none).lower()}", target_org,
                        method="DELETE", body={})
        else:
            data = rest(runner, base, target_org, method=method, body={"allOrNone": all_or_none, "records": batch_})
        if not isinstance(data, list):
            raise SfError("SfBadOutput", f"sObject Collections gave no list of results: {str(data)[:300]}")
        for item in data:
            errs = item.get("errors") or []
            e = errs[0] if errs else {}
            out.append(RecordResult(item.get("id"), bool(item.get("success")), str(e.get("statusCode", "")),
                                    str(e.get("message", ""))))
    return out


def rest(runner: SfRunner, path: str, target_org: str | None, method: str = "GET", body: Any = None,
         text: bool = False) -> Any:
    """One REST API call through ``sf api request rest`` (beta, no ``--json``: stdout is the response
    body; exit 0 on any 2xx, 1 on an HTTP error with the error body on stdout; docs/sf-wire.md section 8).
    A JSON ``body`` travels in a private temporary file. Returns the parsed body of a 2xx answer;
    an HTTP error, a lost connection, an unknown org or an expired session raise typed errors. With
    ``text``, a 2xx answer's body is returned as it came (a CSV file, a blob)."""
    body_file = runner.temp_json(body) if body is not None else None
    args = ["api", "request", "rest", path, "--method", method, *(["--body", f"@{body_file}"] if body_file else []),
            *_org(target_org)]
    try:
        code, stdout, stderr = runner.raw(args)
    finally:
        if body_file:
            Path(body_file).unlink(missing_ok=True)
    if code == 0 and text:
        return stdout
    data = _json_body(stdout)
    if code == 0 and data is not None:
        return data
    first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
    plain = _plain(stderr or stdout)
    if first:
        name, message = str(first.get("errorCode") or "SfApiRequestFailed"), str(first.get("message") or plain)
    else:
        m = re.search(r"Error \(([^)]+)\):\s*(.*)", plain)
        name, message = (m.group(1), m.group(2)) if m else ("SfApiRequestFailed", plain)
    if name == "INVALID_SESSION_ID" or "Session expired or invalid" in message:
        raise SfAuthError("INVALID_SESSION_ID", f"org {target_org or '(default)'}: session expired or invalid",
                          code or 1, actions=[_login_again(runner, target_org)], argv=args)
    if name in ("NamedOrgNotFoundError", "NoDefaultEnvError", "NoAuthInfoFound"):
        raise SfAuthError(name, message.split("See more help")[0].strip(), code or 1,
                          actions=[f"Log in first: sf org login web --alias {target_org or 'ALIAS'}",
                                   "See the orgs sf knows: sf org list auth"], argv=args)
    if any(t in plain for t in ("fetch failed", "ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "socket hang up")):
        raise SfConnectionError("SfConnectionError", f"org {target_org or '(default)'} did not answer: {message}",
                                code or 1, actions=["Check that the org is reachable, then run the command again"],
                                argv=args)
    raise SfError(name, message, code or 1, data=data, argv=args)


def _login_again(runner: SfRunner, target_org: str | None) -> str:
    alias = target_org or "ALIAS"
    return f"Log in again: sf org login web --alias {alias} (for the emulated org: sf-intuser emulator serve " \
           f"--alias {alias})"


#: Subrequests in one Composite Batch call (REST API Developer Guide, "Composite Batch")
BATCH_LIMIT = 25


@dataclass(frozen=True)
class SubResult:
    status: int
    body: Any


def batch(runner: SfRunner, requests: list[tuple[str, str]], target_org: str | None,
          api_version: str) -> list[SubResult]:
    """Independent REST subrequests, 25 to a Composite Batch call, in as many calls as needed.

    ``requests`` are ``(method, path)`` with ``path`` below ``/services/data/vXX.X/`` (``query?q=...``,
    ``sobjects/User/describe``). Each subrequest answers on its own (status and body); a failed one
    does not stop the others. Query and describe only: the batch resource takes no Tooling API."""
    out: list[SubResult] = []
    for group in chunks(requests, BATCH_LIMIT):
        body = {"batchRequests": [{"method": m, "url": f"v{api_version}/{p}"} for m, p in group]}
        data = rest(runner, f"/services/data/v{api_version}/composite/batch", target_org, method="POST", body=body)
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list) or len(results) != len(group):
            raise SfError("SfBadOutput", f"Composite Batch gave no result per subrequest: {str(data)[:300]}")
        out.extend(SubResult(int(r.get("statusCode") or 0), r.get("result")) for r in results)
    return out


class QueryFailed(SfError):
    """A query the org refused; ``key`` names it, ``soql`` is the query."""

    def __init__(self, key: str, soql: str, code: str, message: str) -> None:
        super().__init__(code, f"query {key!r} failed: {message}", 1,
                         actions=["This is a bug in sf-intuser or an org it does not know yet; please report it "
                                  "with this message"], data={"query": soql})
        self.key = key
        self.soql = soql


def query_all(runner: SfRunner, queries: Mapping[str, str], target_org: str | None, api_version: str,
              describes: Mapping[str, str] | None = None, rows: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Many SOQL queries (and sObject describes and records) in as few sf calls as Composite Batch allows.

    ``rows`` maps a key to ``"Object/Id"``: the whole record, every field, through REST's sObject Rows
    resource (REST API Developer Guide, "sObject Rows": GET returns all the record's fields), for a
    record whose fields are too many to name in a query's URI.

    Every query is a subrequest; a result with more pages (``nextRecordsUrl``) is followed in the
    next call, together with the other queries' next pages, so N queries of up to 2,000 rows take
    ceil(N/25) calls. Returns ``{key: records}`` for queries and ``{key: describe}`` for describes.
    A refused query raises :class:`QueryFailed` naming it."""
    from urllib.parse import quote as url_quote

    pending: list[tuple[str, str, str]] = [(k, "GET", "query?q=" + url_quote(q, safe="")) for k, q in queries.items()]
    pending += [(k, "GET", f"sobjects/{obj}/describe") for k, obj in (describes or {}).items()]
    pending += [(k, "GET", f"sobjects/{row}") for k, row in (rows or {}).items()]
    records: dict[str, list[dict[str, Any]]] = {k: [] for k in queries}
    out: dict[str, Any] = {}
    prefix = f"/services/data/v{api_version}/"
    while pending:
        results = batch(runner, [(m, p) for _, m, p in pending], target_org, api_version)
        nxt: list[tuple[str, str, str]] = []
        for (key, _, _), res in zip(pending, results):
            if res.status >= 400:
                err = res.body[0] if isinstance(res.body, list) and res.body and isinstance(res.body[0], dict) else {}
                code = str(err.get("errorCode") or res.status)
                if code == "INVALID_SESSION_ID":
                    raise SfAuthError(code, f"org {target_org or '(default)'}: session expired or invalid", 1,
                                      actions=[_login_again(runner, target_org)])
                raise QueryFailed(key, queries.get(key, (describes or {}).get(key, (rows or {}).get(key, ""))), code,
                                  str(err.get("message") or res.body))
            if key not in records:
                out[key] = res.body
                continue
            body = res.body or {}
            records[key].extend(body.get("records") or [])
            url = body.get("nextRecordsUrl")
            if url and not body.get("done", True):
                path = url[url.index(prefix) + len(prefix):] if prefix in url else url.split("/", 4)[-1]
                nxt.append((key, "GET", path))
        pending = nxt
    out.update(records)
    return out


def _plain(text: str) -> str:
    """Terminal text without colour codes and the beta warning, shortened."""
    lines = [ln for ln in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()
             if ln.strip() and "currently in beta" not in ln]
    return " ".join(lines)[:500]


def _json_body(stdout: str) -> Any:
    text = stdout.strip()
    start = min([i for i in (text.find("["), text.find("{")) if i >= 0], default=-1)
    if start < 0:
        return None
    try:
        return json.loads(text[start:])
    except ValueError:
        return None


#: Composite (REST API Developer Guide, "Composite"): 25 subrequests, at most 5 of them sObject
#: Collections or queries; a collection holds up to 200 records
COMPOSITE_LIMIT = 25
COMPOSITE_HEAVY_LIMIT = 5
COLLECTION_SIZE = 200


@dataclass(frozen=True)
class Write:
    """One sObject Collections operation: ``method`` POST (create), PATCH (update, records carry
    ``Id``) or DELETE (records are ``{"Id": ...}``); ``key`` names it in the results."""
    key: str
    method: str
    sobject: str
    records: list[dict[str, Any]]


def writes(runner: SfRunner, ops: list[Write], target_org: str | None, api_version: str) -> dict[str, list[RecordResult]]:
    """Many record writes in as few sf calls as Composite allows: each operation is cut into
    collections of 200 records, five collections to a Composite call, run in the order given
    (``allOrNone`` false: a record that fails leaves the others). Returns per operation one
    :class:`RecordResult` per record, in order. A whole call that fails raises :class:`SfError`
    (nothing after it was sent)."""
    subs: list[tuple[str, int, dict[str, Any]]] = []
    base = f"/services/data/v{api_version}/composite/sobjects"
    for op in ops:
        for part in chunks(op.records, COLLECTION_SIZE):
            if op.method == "DELETE":
                ids = ",".join(str(r["Id"]) for r in part)
                sub: dict[str, Any] = {"method": "DELETE", "url": f"{base}?ids={ids}&allOrNone=false"}
            else:
                recs = [{"attributes": {"type": op.sobject}, **r} for r in part]
                sub = {"method": op.method, "url": base, "body": {"allOrNone": False, "records": recs}}
            subs.append((op.key, len(part), sub))
    out: dict[str, list[RecordResult]] = {op.key: [] for op in ops}
    for group in chunks(subs, COMPOSITE_HEAVY_LIMIT):
        body = {"allOrNone": False, "compositeRequest": [{**sub, "referenceId": f"r{i}"}
                                                         for i, (_, _, sub) in enumerate(group)]}
        data = rest(runner, f"/services/data/v{api_version}/composite", target_org, method="POST", body=body)
        answers = data.get("compositeResponse") if isinstance(data, dict) else None
        if not isinstance(answers, list) or len(answers) != len(group):
            raise SfError("SfBadOutput", f"Composite gave no answer per subrequest: {str(data)[:300]}")
        for (key, size, _), ans in zip(group, answers):
            status, res = int(ans.get("httpStatusCode") or 0), ans.get("body")
            if status < 400 and isinstance(res, list):
                for item in res:
                    errs = item.get("errors") or []
                    e = errs[0] if errs else {}
                    out[key].append(RecordResult(item.get("id"), bool(item.get("success")),
                                                 str(e.get("statusCode", "")), str(e.get("message", ""))))
                continue
            err = res[0] if isinstance(res, list) and res and isinstance(res[0], dict) else {}
            code = str(err.get("errorCode") or status)
            if code == "INVALID_SESSION_ID":
                raise SfAuthError(code, f"org {target_org or '(default)'}: session expired or invalid", 1,
                                  actions=[_login_again(runner, target_org)])
            out[key].extend(RecordResult(None, False, code, str(err.get("message") or res)) for _ in range(size))
    return out
