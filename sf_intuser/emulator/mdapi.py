"""The SOAP Metadata API of the emulated org: retrieve/checkRetrieveStatus and deploy/checkDeployStatus
with real zips (shared/spec/sf-wire.md sections 5 and 6 give the envelopes the CLI sends and accepts).

Platform rules, each with its source:

- A profile retrieve returns entries only for the component types in the same request, except
  userPermissions, loginIpRanges and loginHours, which always come back; a permission set retrieve
  returns everything (API 40+) (Metadata API doc, Profile and PermissionSet; salesforce-facts.md A4).
- A profile deploy is an overlay: what the file names changes, the rest stays (Profile doc).
- A permission set deploy replaces the whole set (PermissionSet doc, API 40+).
- A deploy that changes an existing profile's userLicense fails (salesforce-facts.md A3, ebikes-lwc
  PR 55; the problem text is not public).
- A new profile by deploy: unknown ([U], A4); refused unless ``Options.new_profile_by_deploy``.
- User permissions (:mod:`.permissions`): an unknown name, a broken dependency (user or object
  permissions) or a permission the license does not allow fails the component.
- A profile of the Salesforce Integration license stays API only and grants no standard object;
  the standard one takes login IP ranges only if ``Options.ip_ranges_on_standard_profile`` [U].
- ``rollbackOnError`` (the CLI's default) applies nothing when any component fails; ``checkOnly``
  (``--dry-run``, ``validate``) applies nothing at all.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from lxml import etree

from sf_intuser.emulator.org import INTEGRATION_LICENSE, STANDARD_API_PROFILE, Component, OrgState, sort_entries
from sf_intuser.emulator.seed import FOLDERS, LOAD_ORDER, TYPES
from sf_intuser.metadata import package_xml, schema, xml
from sf_intuser.metadata.access import SECTION_KEYS

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MD = xml.MD_NS
MAX_ZIP_BYTES = 64 * 1024 * 1024
MAX_ZIP_ENTRIES = 20000

#: profile section -> (companion metadata type, how the entry names its component)
PROFILE_COMPANIONS: dict[str, str] = {
    "classAccesses": "ApexClass", "pageAccesses": "ApexPage", "objectPermissions": "CustomObject",
    "fieldPermissions": "CustomObject", "tabVisibilities": "CustomTab", "applicationVisibilities":
    "CustomApplication", "customPermissions": "CustomPermission", "recordTypeVisibilities": "CustomObject",
    "layoutAssignments": "Layout", "customMetadataTypeAccesses": "CustomObject", "customSettingAccesses":
    "CustomObject", "flowAccesses": "Flow", "externalDataSourceAccesses": "ExternalDataSource",
}
PROFILE_ALWAYS = {"userPermissions", "loginIpRanges", "loginHours", "custom", "description", "userLicense"}


class SoapFault(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Job:
    id: str
    kind: str               # retrieve | deploy
    result: etree._Element  # the <result> of the final status
    polls_left: int = 0
    created: str = ""


@dataclass
class Jobs:
    by_id: dict[str, Job] = field(default_factory=dict)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


def _q(name: str) -> str:
    return f"{{{MD}}}{name}"


def _sub(parent: etree._Element, name: str, value: Any = None) -> etree._Element:
    el = etree.SubElement(parent, _q(name))
    if value is not None:
        el.text = str(value).lower() if isinstance(value, bool) else str(value)
    return el


def envelope(body_child: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soapenv": SOAP_NS, None: MD,
                                                           "xsi": "http://www.w3.org/2001/XMLSchema-instance"})
    body = etree.SubElement(env, f"{{{SOAP_NS}}}Body")
    body.append(body_child)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def fault(code: str, message: str) -> bytes:
    env = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soapenv": SOAP_NS, "sf": MD})
    body = etree.SubElement(env, f"{{{SOAP_NS}}}Body")
    f = etree.SubElement(body, f"{{{SOAP_NS}}}Fault")
    etree.SubElement(f, "faultcode").text = f"sf:{code}"
    etree.SubElement(f, "faultstring").text = f"{code}: {message}"
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def operation(body: bytes) -> tuple[str, etree._Element, str]:
    """(operation name, its element, session id) of a SOAP request."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise SoapFault("INVALID_XML", "DOCTYPE is not allowed")
    try:
        env = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise SoapFault("INVALID_XML", f"could not parse the request: {exc}") from None
    session = env.find(f".//{{{MD}}}SessionHeader/{{{MD}}}sessionId")
    op = env.find(f"{{{SOAP_NS}}}Body/*")
    if op is None:
        raise SoapFault("INVALID_XML", "no operation in the SOAP body")
    return etree.QName(op).localname, op, (session.text or "") if session is not None else ""


def handle(state: OrgState, jobs: Jobs, body: bytes) -> bytes:
    """Answer one Metadata API call (raises :class:`SoapFault`)."""
    name, op, session = operation(body)
    if not session.startswith(state.token_prefix):
        raise SoapFault("INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session")
    if name == "retrieve":
        return _queued("retrieveResponse", _start(state, jobs, "retrieve", retrieve(state, op)))
    if name == "deploy":
        return _queued("deployResponse", _start(state, jobs, "deploy", deploy(state, op)))
    if name in ("checkRetrieveStatus", "checkDeployStatus"):
        pid = op.findtext(_q("asyncProcessId")) or ""
        job = jobs.by_id.get(pid)
        if job is None:
            raise SoapFault("INVALID_ID_FIELD", f"Invalid Id: {pid}")
        resp = etree.Element(_q(name + "Response"))
        if job.polls_left > 0:
            job.polls_left -= 1
            r = _sub(resp, "result")
            _sub(r, "done", False)
            _sub(r, "id", job.id)
            _sub(r, "status", "InProgress")
            _sub(r, "success", False)
        else:
            resp.append(etree.fromstring(etree.tostring(job.result)))
        return envelope(resp)
    if name == "listMetadata":
        return envelope(list_metadata(state, op))
    if name == "cancelDeploy":
        resp = etree.Element(_q("cancelDeployResponse"))
        r = _sub(resp, "result")
        _sub(r, "done", True)
        _sub(r, "id", op.findtext(_q("String")) or "")
        return envelope(resp)
    raise SoapFault("UNSUPPORTED_OPERATION", f"The Metadata API call {name} is not supported here")


def _start(state: OrgState, jobs: Jobs, kind: str, result: etree._Element) -> Job:
    job_id = result.findtext(_q("id")) or ""
    job = Job(job_id, kind, result, polls_left=state.options.metadata_polls_in_progress)
    jobs.by_id[job_id] = job
    return job


def _queued(resp_name: str, job: Job) -> bytes:
    resp = etree.Element(_q(resp_name))
    r = _sub(resp, "result")
    _sub(r, "done", False)
    _sub(r, "id", job.id)
    _sub(r, "state", "Queued")
    return envelope(resp)


# --- retrieve -----------------------------------------------------------------------------------


def file_path(mtype: str, name: str, meta: bool = False) -> str:
    """A component's file: a profile's API name is its file name as it is (Salesforce encodes it
    already: :mod:`.profiles`); other names are quoted where a file name could not hold them."""
    folder, suffix, _ = TYPES[mtype]
    stem = name if mtype == "Profile" else quote(name, safe=' -_.()&,')
    return f"{folder}/{stem}.{suffix}" + ("-meta.xml" if meta else "")


def retrieve(state: OrgState, op: etree._Element) -> etree._Element:
    req = op.find(_q("request"))
    if req is None:
        req = op.find(_q("retrieveRequest"))
    if req is None:
        raise SoapFault("INVALID_XML", "retrieve needs a <request>")
    single = (req.findtext(_q("singlePackage")) or "").lower() == "true"
    version = req.findtext(_q("apiVersion")) or state.api_versions[-1]
    wanted: dict[str, list[str]] = {}
    for t in req.iterfind(f"{_q('unpackaged')}/{_q('types')}"):
        wanted.setdefault(t.findtext(_q("name")) or "", []).extend(m.text or "" for m in t.iterfind(_q("members")))
    prefix = "" if single else "unpackaged/"
    files: dict[str, bytes] = {}
    props: list[tuple[str, str, str, str]] = []   # fileName, fullName, type, id
    messages: list[str] = []
    for mtype, members in sorted(wanted.items()):
        if mtype not in TYPES:
            continue  # companion types we hold no files for (Layout, Flow, ...): nothing to send
        names = sorted(n for (t, n) in state.components if t == mtype) if "*" in members else members
        for name in names:
            comp = state.components.get((mtype, name))
            if comp is None:
                if mtype in ("CustomObject", "CustomTab", "CustomApplication") and "__" not in name:
                    continue  # standard objects, tabs and apps: no file in the emulated org
                messages.append(f"Entity of type '{mtype}' named '{name}' cannot be found")
                continue
            body = comp.body
            if mtype == "Profile":
                body = _profile_for_retrieve(comp.body, wanted)
            path = file_path(mtype, name)
            files[prefix + path] = body
            if comp.meta is not None:
                files[prefix + path + "-meta.xml"] = comp.meta
            rec = _record_for(state, mtype, name)
            props.append((prefix + path, name, mtype, rec.get("Id", "") if rec else ""))
    files[prefix + "package.xml"] = package_xml.build({t: sorted(set(m)) for t, m in wanted.items()}, version)
    props.append((prefix + "package.xml", "unpackaged", "Package", ""))
    result = etree.Element(_q("result"))
    _sub(result, "done", True)
    for fname, full, mtype, rid in sorted(props):
        _file_properties(state, result, "fileProperties", fname, full, mtype, rid)
    _sub(result, "id", state.new_record_id("09S"))
    for problem in messages:
        m = _sub(result, "messages")
        _sub(m, "fileName", prefix + "package.xml")
        _sub(m, "problem", problem)
    _sub(result, "status", "Succeeded")
    _sub(result, "success", True)
    _sub(result, "zipFile", base64.b64encode(_zip(files)).decode())
    return result


def _file_properties(state: OrgState, parent: etree._Element, tag: str, file_name: str, full: str, mtype: str,
                     rid: str) -> None:
    """A FileProperties element (Metadata API, FileProperties: the same shape for a retrieve's
    ``fileProperties`` and each ``listMetadata`` result)."""
    now = _now(state)
    fp = _sub(parent, tag)
    for k, v in (("createdById", state.admin_id), ("createdByName", "Admin User"), ("createdDate", now),
                 ("fileName", file_name), ("fullName", full), ("id", rid), ("lastModifiedById", state.admin_id),
                 ("lastModifiedByName", "Admin User"), ("lastModifiedDate", now),
                 ("manageableState", "unmanaged"), ("type", mtype)):
        _sub(fp, k, v)


def list_metadata(state: OrgState, op: etree._Element) -> etree._Element:
    """``listMetadata`` (what ``sf org list metadata -m TYPE`` calls through jsforce's
    ``metadata.list``): one FileProperties per component of each queried type, with the record id
    where the type has records. A type the org holds nothing of answers an empty list."""
    resp = etree.Element(_q("listMetadataResponse"))
    for query in op.iterfind(_q("queries")):
        mtype = query.findtext(_q("type")) or ""
        if mtype not in TYPES:
            continue
        for (t, name) in sorted(k for k in state.components if k[0] == mtype):
            rec = _record_for(state, t, name)
            _file_properties(state, resp, "result", file_path(t, name), name, t, rec.get("Id", "") if rec else "")
    return resp


def _record_for(state: OrgState, mtype: str, name: str) -> dict[str, Any] | None:
    if mtype == "Profile":
        return state.profile_by_api_name(name)
    if mtype == "PermissionSet":
        return state.one("PermissionSet", Name=name, IsOwnedByProfile=False)
    if mtype == "PermissionSetGroup":
        return state.one("PermissionSetGroup", DeveloperName=name)
    if mtype in ("ApexClass", "ApexPage"):
        return state.one(mtype, Name=name)
    return None


def _profile_for_retrieve(body: bytes, wanted: dict[str, list[str]]) -> bytes:
    doc = xml.parse(body, "profile")
    for el in list(doc.root):
        section = xml.local(el)
        if section in PROFILE_ALWAYS:
            continue
        companion = PROFILE_COMPANIONS.get(section)
        members = wanted.get(companion or "", [])
        key_field = SECTION_KEYS.get(section)
        key = (xml.text(el, key_field) or "") if key_field else ""
        if section in ("fieldPermissions", "recordTypeVisibilities"):
            key = key.split(".")[0]
        if section == "layoutAssignments":
            key = xml.text(el, "layout") or ""
        if not members or ("*" not in members and key not in members):
            doc.root.remove(el)
        elif "*" in members and companion == "CustomObject" and "__" not in key and key not in members:
            doc.root.remove(el)   # CustomObject:* leaves out standard objects (A4)
    return doc.to_bytes()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            z.writestr(name, files[name])
    return buf.getvalue()


def _now(state: OrgState) -> str:
    return state.now().astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- deploy -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    type: str
    name: str
    file: str
    created: bool = False
    problem: str | None = None


def read_zip(data: bytes) -> dict[str, bytes]:
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise SoapFault("INVALID_ZIP", "the ZipFile is not a zip archive") from None
    infos = [i for i in z.infolist() if not i.is_dir()]
    if len(infos) > MAX_ZIP_ENTRIES or sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
        raise SoapFault("INVALID_ZIP", "the deploy zip is too large")
    out = {}
    for i in infos:
        if i.filename.startswith("/") or ".." in i.filename.split("/"):
            raise SoapFault("INVALID_ZIP", f"unsafe path in zip: {i.filename}")
        out[i.filename] = z.read(i)
    return out


def deploy(state: OrgState, op: etree._Element) -> etree._Element:
    raw = op.findtext(_q("ZipFile")) or ""
    opts = op.find(_q("DeployOptions"))

    def opt(name: str, default: bool) -> bool:
        v = opts.findtext(_q(name)) if opts is not None else None
        return default if v is None else v.lower() == "true"

    check_only, rollback = opt("checkOnly", False), opt("rollbackOnError", True)
    files = read_zip(base64.b64decode(raw))
    comps = _components(files)
    outcomes: list[Outcome] = []
    with state.lock:
        snapshot = state.snapshot()
        try:
            for mtype in LOAD_ORDER + sorted(set(TYPES) - set(LOAD_ORDER)):
                for (t, name), (comp, path) in sorted(comps.items()):
                    if t == mtype:
                        outcomes.append(_apply(state, comp, path))
        except BaseException:
            snapshot.restore()
            raise
        if check_only or (rollback and any(o.problem for o in outcomes)):
            snapshot.restore()
    return _deploy_result(state, outcomes, check_only, rollback, opts)


def _components(files: dict[str, bytes]) -> dict[tuple[str, str], tuple[Component, str]]:
    out: dict[tuple[str, str], tuple[Component, str]] = {}
    for path, data in files.items():
        parts = path.split("/")
        if len(parts) >= 2 and parts[-2] in FOLDERS:
            mtype = FOLDERS[parts[-2]]
            _, suffix, has_meta = TYPES[mtype]
            fname = parts[-1]
            is_meta = fname.endswith("-meta.xml")
            base = fname[:-len("-meta.xml")] if is_meta else fname
            if not base.endswith("." + suffix):
                continue
            stem = base[:-len(suffix) - 1]
            name = stem if mtype == "Profile" else unquote(stem)   # a profile's file name is its API name
            comp, first = out.get((mtype, name), (Component(mtype, name, b""), path))
            if has_meta and is_meta:
                comp.meta = data
            else:
                comp.body = data
                first = path
            out[(mtype, name)] = (comp, first)
    return out


def _apply(state: OrgState, comp: Component, path: str) -> Outcome:
    o = Outcome(comp.type, comp.name, path)
    existing = state.components.get((comp.type, comp.name))
    o.created = existing is None
    try:
        if comp.type in ("ApexClass", "ApexPage"):
            state.add_component(comp)
            return o
        doc = xml.parse(comp.body, path)
    except xml.MetadataXmlError as exc:
        o.problem = f"Error parsing file: {exc.problem}"
        return o
    if comp.type in ("Profile", "PermissionSet"):
        o.problem = _missing_reference(state, doc.root)
        if o.problem:
            return o
    if comp.type == "Profile":
        o.problem = _deploy_profile(state, comp, doc, existing)
    elif comp.type == "PermissionSet":
        o.problem = _deploy_permission_set(state, comp, doc, existing)
    elif comp.type == "PermissionSetGroup":
        missing = [e.text for e in xml.children(doc.root, "permissionSets")
                   if not state.one("PermissionSet", Name=(e.text or "").strip(), IsOwnedByProfile=False)]
        o.problem = f"no PermissionSet named {missing[0]} found" if missing else None
        if not missing:
            state.add_component(comp)
    else:
        state.add_component(comp)
    return o


#: access entries that name another component: the deploy fails when it is neither in the org nor in
#: the same deploy (applied earlier: LOAD_ORDER), e.g. "profiles/Admin.profile(Admin):In field:
#: apexClass - no ApexClass named LogHandler found" (jongpie/NebulaLogger issue 122)
REFERENCES = (("classAccesses", "apexClass", "ApexClass"), ("pageAccesses", "apexPage", "ApexPage"))


def _missing_reference(state: OrgState, root: etree._Element) -> str | None:
    for section, field_name, mtype in REFERENCES:
        for entry in xml.children(root, section):
            name = (xml.text(entry, field_name) or "").strip()
            # a namespaced name belongs to a managed package, whose code the emulated org does not hold
            if name and "__" not in name and (mtype, name) not in state.components:
                return f"In field: {field_name} - no {mtype} named {name} found"
    return None


def _permission_problem(state: OrgState, sent: etree._Element, content: etree._Element,
                        allowed: frozenset[str] | None) -> str | None:
    """What the permission model refuses in a profile or permission set deploy: a name it does not
    know (in the file sent), a broken dependency or a permission the license does not allow (in
    what the component holds once deployed: for a profile, the overlay)."""
    model = state.perms
    problem = model.unknown(model.user_permissions(sent))
    if problem:
        return problem
    enabled = {n for n, on in model.user_permissions(content).items() if on}
    return (model.broken_dependency(enabled) or model.broken_object_dependency(content)
            or model.not_allowed(enabled, allowed))


def _integration_profile_problem(state: OrgState, name: str, merged: etree._Element) -> str | None:
    """A profile of the Salesforce Integration license stays API only, grants no standard object,
    and (the standard one) may not hold login IP ranges unless the option says so."""
    perms = state.perms.user_permissions(merged)
    if not perms.get("ApiUserOnly"):
        # Help "Give Integration Users API Only Access": API Only can't be turned off on this
        # license's profile [V]; the error text is not public [U]
        return "API Only User can't be disabled on a profile of the Salesforce Integration user license"
    for op in xml.children(merged, "objectPermissions"):
        obj = xml.text(op, "object") or ""
        if "__" in obj:
            continue   # custom objects may be granted
        for flag, word in (("allowRead", "Read"), ("allowCreate", "Create"), ("allowEdit", "Edit"),
                           ("allowDelete", "Delete"), ("viewAllRecords", "View All"),
                           ("modifyAllRecords", "Modify All")):
            if (xml.text(op, flag) or "").strip().lower() == "true":
                # salesforce-facts.md A2: the license offers no standard objects on the profile; the
                # text is the one Salesforce gives for object access a license lacks (DLRS issue 967)
                return f"The user license doesn't allow the permission: {word} {obj}"
    if name == STANDARD_API_PROFILE and not state.options.ip_ranges_on_standard_profile \
            and xml.child(merged, "loginIpRanges") is not None:
        # salesforce-facts.md A7 q3 [U]: whether the standard profile takes IP ranges; off: clone it
        return (f"You can't set login IP ranges on the standard profile {name}; clone it and set them on the "
                "clone")
    return None


def _deploy_profile(state: OrgState, comp: Component, doc: xml.Document, existing: Component | None) -> str | None:
    new_license = xml.text(doc.root, "userLicense")
    if existing is None:
        if not state.options.new_profile_by_deploy:
            # salesforce-facts.md A4 [U]; the Metadata API doc recommends creating profiles as records
            return (f"Profile '{comp.name}' does not exist in this org. Create it as a Profile record (Name, "
                    "UserLicenseId) first, then deploy its settings")
        lic = new_license or "Salesforce"
        if not state.one("UserLicense", Name=lic):
            return f"Invalid user license: {lic}"
        problem = _permission_problem(state, doc.root, doc.root, state.perms.license_allowed.get(lic))
        if not problem and lic == INTEGRATION_LICENSE:
            problem = _integration_profile_problem(state, comp.name, doc.root)
        if problem:
            return problem
        state.add_component(Component("Profile", comp.name, comp.body))
        return None
    old = xml.parse(existing.body, comp.name)
    old_license = xml.text(old.root, "userLicense") or "Salesforce"
    if new_license and new_license != old_license:
        # salesforce-facts.md A3 (IdeaExchange, ebikes-lwc PR 55); the text is not public [U]
        return (f"Cannot change the user license of profile {comp.name} from {old_license} to {new_license}: "
                "clone the profile or create a new one")
    merged = overlay(old.root, doc.root)
    problem = _permission_problem(state, doc.root, merged, state.perms.license_allowed.get(old_license))
    if not problem and old_license == INTEGRATION_LICENSE:
        problem = _integration_profile_problem(state, comp.name, merged)
    if problem:
        return problem
    state.add_component(Component("Profile", comp.name, xml.serialize(merged, old.style)))
    return None


def overlay(old: etree._Element, new: etree._Element) -> etree._Element:
    """A profile deploy: entries named in ``new`` replace those with the same key in ``old``; single
    fields replace; ``loginIpRanges`` and ``loginHours`` in ``new`` replace the old ones (an empty
    ``<loginHours/>`` removes them)."""
    out = etree.fromstring(etree.tostring(old))
    replaced_sections: set[str] = set()
    for el in new:
        section = xml.local(el)
        key_field = SECTION_KEYS.get(section)
        if key_field:
            key = xml.text(el, key_field)
            for cur in list(xml.children(out, section)):
                if xml.text(cur, key_field) == key:
                    out.remove(cur)
            out.append(etree.fromstring(etree.tostring(el)))
        else:
            if section not in replaced_sections:
                for cur in list(xml.children(out, section)):
                    out.remove(cur)
                replaced_sections.add(section)
            if not (section == "loginHours" and len(el) == 0):
                out.append(etree.fromstring(etree.tostring(el)))
    sort_entries(out)
    schema.sort_children(out, "Profile")
    return out


def _deploy_permission_set(state: OrgState, comp: Component, doc: xml.Document,
                           existing: Component | None) -> str | None:
    lic_name = xml.text(doc.root, "license")
    if not xml.text(doc.root, "label"):
        return "Required field is missing: label"
    lic = state.license_by_name(lic_name) if lic_name else None
    if lic_name and lic is None:
        return f"Invalid license: {lic_name}"
    # bound to a user license: what that license allows; to a permission set license: its maximum
    # permissions (PermissionSetLicense.MaximumPermissions<X>) [V]; license-less: checked on assignment
    if lic is None:
        allowed = None
    elif lic.get("Id", "").startswith("100"):
        allowed = state.perms.license_allowed.get(lic["Name"])
    else:
        allowed = state.perms.psl_max.get(lic["DeveloperName"], frozenset())
    problem = _permission_problem(state, doc.root, doc.root, allowed)
    if problem:
        return problem
    if existing is not None:
        ps = state.one("PermissionSet", Name=comp.name, IsOwnedByProfile=False)
        if ps and (ps.get("LicenseId") or None) != (lic["Id"] if lic else None) and \
                state.find("PermissionSetAssignment", PermissionSetId=ps["Id"]):
            # salesforce-facts.md A4 [I]: the license of an assigned permission set can't be changed
            return f"Can't change the license of permission set {comp.name}: it is assigned to users"
    state.add_component(Component("PermissionSet", comp.name, comp.body))  # full replace (API 40+)
    return None


def _deploy_result(state: OrgState, outcomes: list[Outcome], check_only: bool, rollback: bool,
                   opts: etree._Element | None) -> etree._Element:
    now = _now(state)
    failures = [o for o in outcomes if o.problem]
    ok = [o for o in outcomes if not o.problem]
    result = etree.Element(_q("result"))
    _sub(result, "checkOnly", check_only)
    _sub(result, "completedDate", now)
    _sub(result, "createdBy", state.admin_id[:15])
    _sub(result, "createdByName", "Admin User")
    _sub(result, "createdDate", now)
    details = _sub(result, "details")
    for o in failures:
        f = _sub(details, "componentFailures")
        for k, v in (("changed", False), ("columnNumber", 1), ("componentType", o.type), ("created", False),
                     ("createdDate", now), ("deleted", False), ("fileName", o.file), ("fullName", o.name),
                     ("lineNumber", 1), ("problem", o.problem), ("problemType", "Error"), ("success", False)):
            _sub(f, k, v)
    pkg = _sub(details, "componentSuccesses")
    for k, v in (("changed", False), ("componentType", "Package"), ("created", False), ("createdDate", now),
                 ("deleted", False), ("fileName", "package.xml"), ("fullName", "package.xml"), ("success", True)):
        _sub(pkg, k, v)
    for o in ok:
        s = _sub(details, "componentSuccesses")
        rec = _record_for(state, o.type, o.name)
        for k, v in (("changed", not o.created), ("componentType", o.type), ("created", o.created),
                     ("createdDate", now), ("deleted", False), ("fileName", o.file), ("fullName", o.name)):
            _sub(s, k, v)
        if rec:
            _sub(s, "id", rec["Id"])
        _sub(s, "success", True)
    rtr = _sub(details, "runTestResult")
    _sub(rtr, "numFailures", 0)
    _sub(rtr, "numTestsRun", 0)
    _sub(rtr, "totalTime", "0.0")
    _sub(result, "done", True)
    _sub(result, "id", state.new_record_id("0Af"))
    _sub(result, "ignoreWarnings", (opts.findtext(_q("ignoreWarnings")) if opts is not None else None) == "true")
    _sub(result, "lastModifiedDate", now)
    _sub(result, "numberComponentErrors", len(failures))
    _sub(result, "numberComponentsDeployed", len(ok))
    _sub(result, "numberComponentsTotal", len(outcomes))
    _sub(result, "numberTestErrors", 0)
    _sub(result, "numberTestsCompleted", 0)
    _sub(result, "numberTestsTotal", 0)
    _sub(result, "rollbackOnError", rollback)
    _sub(result, "runTestsEnabled", False)
    _sub(result, "startDate", now)
    status = "Failed" if failures and (rollback or not ok) else "SucceededPartial" if failures else "Succeeded"
    _sub(result, "status", status)
    _sub(result, "success", status != "Failed")
    return result

