"""Least privilege from observed use: a plan's generated permission sets narrowed, per user, to what the
org's event logs show the user did (:mod:`sf_intuser.org.evidence`). Pure: a plan, its files, the
sources' metadata and the evidence in; a new plan, its files and the reviewable diff out.

What a narrowed set keeps (each rule named in the diff, with its evidence):

- **objects**: read where the user read the object; create, edit and delete where it did those (a write
  whose kind the log can't tell keeps all three, an operation that may be either keeps everything the
  set had on the object). Salesforce's object dependencies are kept with them (edit and create need
  read, delete needs edit, ObjectPermissions reference). Objects the user did not touch are dropped,
  with their fields, record types and tabs. A row that names no object (a REST query) narrows nothing
  for that kind of access: it is kept on every object the set grants.
- **record visibility**: View All on an object the user read where the set had View All on it, or View
  All Data, so an integration that reads all records still sees the same rows (View All Data narrows
  to the objects it read). Modify All only where the user also deleted: it requires Delete
  (ObjectPermissions reference), and Delete that was not recorded is not kept; the diff says so.
- **fields** of a kept object stay as they were (read, and edit where the object keeps create or edit).
- **user permissions**: only those a rule needs, and their dependencies where the set holds them
  (:data:`RULES`); the rest are dropped, each with its reason.
- **Apex classes, Visualforce pages, custom permissions and everything else**: kept as they were; the
  event logs do not show their use.
- ``keep-access`` (sf-intuser.toml) names objects and permissions that are never narrowed.

Nothing is ever widened: every flag of a narrowed set was granted by its source (directly, or through
View All Data or Modify All Data for that object); :func:`grants` and the property test hold it.
A user with no recorded call in the window is not narrowed: an integration that did not run can't
show what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from lxml import etree

from sf_intuser.metadata import license_rules as rules
from sf_intuser.metadata import naming, package_xml
from sf_intuser.metadata import permission_set as ps_md
from sf_intuser.metadata import profile as profile_md
from sf_intuser.metadata.xml import DEFAULT_STYLE, add, child, children, flag, parse, serialize, text
from sf_intuser.metadata.xml import local as local_name
from sf_intuser.org.usage import CREATE, DELETE, EDIT, METADATA, READ, UNKNOWN, WRITE, Evidence, Use

SUFFIX = "_Tight"
OBJECT_FLAGS = ("allowRead", "allowCreate", "allowEdit", "allowDelete", "viewAllRecords", "modifyAllRecords")
WRITES = ("allowCreate", "allowEdit", "allowDelete")
#: operation -> the object flags it needs (with their dependencies: ObjectPermissions reference, "Delete"
#: requires Read and Edit; "Create" and "Edit" require Read)
NEEDS: dict[str, frozenset[str]] = {
    READ: frozenset({"allowRead"}),
    CREATE: frozenset({"allowRead", "allowCreate"}),
    EDIT: frozenset({"allowRead", "allowEdit"}),
    DELETE: frozenset({"allowRead", "allowEdit", "allowDelete"}),
    WRITE: frozenset({"allowRead", "allowCreate", "allowEdit", "allowDelete"}),
    UNKNOWN: frozenset({"allowRead", "allowCreate", "allowEdit", "allowDelete"}),
}


@dataclass(frozen=True)
class Rule:
    """A user permission kept because evidence or a documented dependency needs it."""
    permission: str
    why: str
    source: str


#: the rules that keep a user permission (docs/salesforce-facts.md A10). ``when`` is read by
#: :func:`_rule_hits`.
RULES: tuple[Rule, ...] = (
    Rule("ApiEnabled", "every integration reaches the org through the API",
         "Salesforce Help, User Permissions: API Enabled, \"Access any Salesforce.com API\""),
    Rule("ModifyMetadata", "the user made Metadata API calls",
         "Metadata API Developer Guide, Permissions: Modify Metadata Through Metadata API Functions, or Modify All Data"),
    Rule("BulkApiHardDelete", "the user hard-deleted records through the Bulk API",
         "Bulk API 2.0 Developer Guide, hardDelete: needs the Bulk API Hard Delete permission"),
    Rule("EditTask", "the user created or changed tasks or events",
         "Object Reference, Task and Event: creating or editing them needs Edit Tasks / Edit Events [U]"),
    Rule("EditEvent", "the user created or changed events",
         "Object Reference, Event: creating or editing events needs Edit Events [U]"),
    Rule("ManageUsers", "the user created or changed users",
         "Salesforce Help, User Permissions: Manage Users, \"Create, edit, and deactivate users\""),
    Rule("ManageInternalUsers", "the user created or changed users",
         "Salesforce Help, User Permissions: Manage Internal Users"),
    Rule("ConvertLeads", "the user converted leads",
         "SOAP API Developer Guide, convertLead(): needs Convert Leads"),
)
RULE_SOURCE = {r.permission: r for r in RULES}
MODIFY_ALL_NOTE = ("; Modify All dropped: it requires Delete, which was not recorded (if the integration edits records "
                   "the sharing model hides from it, list the object in keep-access)")
#: system permissions turned into per-object record access rather than kept
WIDE = {"ViewAllData": "viewAllRecords", "ModifyAllData": "modifyAllRecords"}


# --- reading a set ---------------------------------------------------------------------------------


def object_grants(root: etree._Element) -> dict[str, set[str]]:
    """object -> the flags a set's objectPermissions grant."""
    return {text(op, "object") or "": {f for f in OBJECT_FLAGS if flag(op, f)}
            for op in children(root, "objectPermissions")}


#: the user permissions a set (or profile) enables
enabled_permissions = profile_md.enabled_user_permissions


def grants(root: etree._Element, objects: Iterable[str] = ()) -> set[tuple[str, str]]:
    """What a set effectively grants, as (kind, name) pairs: each enabled user permission, each object
    flag, and for View All Data and Modify All Data what they imply on ``objects`` (and on each object
    the set names). Used to check that a narrowed set grants nothing its source did not."""
    perms = enabled_permissions(root)
    objs = object_grants(root)
    out = {("perm", p) for p in perms}
    for obj, flags in objs.items():
        out |= {("object", f"{obj}.{f}") for f in flags}
    for obj in set(objects) | set(objs):
        if "ViewAllData" in perms or "ModifyAllData" in perms:
            out |= {("object", f"{obj}.allowRead"), ("object", f"{obj}.viewAllRecords")}
        if "ModifyAllData" in perms:
            out |= {("object", f"{obj}.{f}") for f in OBJECT_FLAGS}
    for fp in children(root, "fieldPermissions"):
        name = text(fp, "field") or ""
        if flag(fp, "readable"):
            out.add(("field", f"{name}.read"))
        if flag(fp, "editable"):
            out.add(("field", f"{name}.edit"))
    return out


# --- narrowing one set -----------------------------------------------------------------------------


@dataclass
class Narrowed:
    """One set narrowed for one user: the new XML and the diff."""
    data: bytes
    objects: list[dict[str, Any]] = field(default_factory=list)      # per object: before, after, evidence
    permissions: list[dict[str, Any]] = field(default_factory=list)  # per user permission: kept or dropped, why
    other: dict[str, int] = field(default_factory=dict)               # sections kept as they were, by count
    fields_dropped: int = 0


def _evidence_line(uses: list[Use]) -> str:
    by: dict[str, int] = {}
    for u in uses:
        by[u.operation] = by.get(u.operation, 0) + u.count
    seen = [u.last for u in uses if u.last]
    return ", ".join(f"{op} x{n}" for op, n in sorted(by.items())) + (f" (last {max(seen)[:10]})" if seen else "")


def _needs(ops: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for op in ops:
        out |= NEEDS.get(op, NEEDS[UNKNOWN])
    return out


def narrow(data: bytes, name: str, new_name: str, uses: list[Use], keep: Iterable[str] = (),
           label: str | None = None, description: str | None = None) -> Narrowed:
    """``data`` (a permission set) narrowed to ``uses``; ``keep`` names objects and user permissions that
    stay as they are."""
    keep_low = {k.lower() for k in keep}
    doc = parse(data, f"PermissionSet {name}")
    root = doc.root
    perms = enabled_permissions(root)
    objs = object_grants(root)
    wild = {u.operation for u in uses if u.object is None and u.operation != METADATA}
    by_object: dict[str, list[Use]] = {}
    for u in uses:
        if u.object:
            by_object.setdefault(u.object.lower(), []).append(u)
    out = Narrowed(b"")
    kept_objects: dict[str, set[str]] = {}
    # 1. objects the set names
    for op in list(children(root, "objectPermissions")):
        obj = text(op, "object") or ""
        src = objs.get(obj, set())
        mine = by_object.get(obj.lower(), [])
        if obj.lower() in keep_low:
            new, why = set(src), "keep-access in sf-intuser.toml"
        else:
            avail = src | _reach(perms)
            need = _needs([u.operation for u in mine] + sorted(wild))
            new = avail & need
            if "allowRead" in new and "viewAllRecords" in avail:
                new.add("viewAllRecords")
            # Modify All requires Delete (ObjectPermissions reference): kept only where deletes were seen
            if "allowDelete" in new and "modifyAllRecords" in avail:
                new.add("modifyAllRecords")
            new = _closed(new, avail)
            why = _evidence_line(mine) if mine else (
                "no recorded call on it" + (f"; kept for calls that name no object ({', '.join(sorted(wild))})"
                                            if new else ""))
            if "modifyAllRecords" in avail and new & {"allowCreate", "allowEdit"} and "modifyAllRecords" not in new:
                why += MODIFY_ALL_NOTE
        kept_objects[obj] = new
        out.objects.append({"object": obj, "before": sorted(src), "after": sorted(new), "evidence": why})
        if not new:
            root.remove(op)
            continue
        for f in OBJECT_FLAGS:
            el = child(op, f)
            if el is not None:
                el.text = "true" if f in new else "false"
    # 2. objects used that the set reaches only through View All Data / Modify All Data
    named = {o.lower() for o in objs}
    for low, mine in sorted(by_object.items()):
        if low in named or not (perms & set(WIDE)):
            continue
        obj = mine[0].object or low
        reach = _reach(perms)
        new = _needs(u.operation for u in mine) & reach
        if "allowRead" in new:
            new.add("viewAllRecords")
        if "allowDelete" in new:
            new.add("modifyAllRecords")
        new = _closed(new & reach, reach)
        if not new:
            continue
        kept_objects[obj] = new
        out.objects.append({"object": obj, "before": sorted(reach), "after": sorted(new),
                            "evidence": _evidence_line(mine) + "; granted through "
                            + " and ".join(sorted(perms & set(WIDE))) + ", now on this object alone"})
        el = etree.Element(root.tag.replace(local_name(root), "objectPermissions"))
        for f in sorted(OBJECT_FLAGS + ("object",)):
            add(el, f, obj if f == "object" else "true" if f in new else "false")
        _insert_sorted(root, el, ("objectPermissions", obj.lower()))
    # 3. fields, record types and tabs follow their object
    low_kept = {o.lower(): flags for o, flags in kept_objects.items()}
    for fp in list(children(root, "fieldPermissions")):
        obj = (text(fp, "field") or "").split(".")[0].lower()
        flags = low_kept.get(obj)
        if obj in keep_low:
            continue
        if not flags or "allowRead" not in flags:
            root.remove(fp)
            out.fields_dropped += 1
            continue
        if not flags & {"allowCreate", "allowEdit"}:
            el = child(fp, "editable")
            if el is not None and flag(fp, "editable"):
                el.text = "false"
    for section, key in (("recordTypeVisibilities", "recordType"), ("tabSettings", "tab")):
        for el in list(children(root, section)):
            value = text(el, key) or ""
            obj = value.split(".")[0] if section == "recordTypeVisibilities" else value.removeprefix("standard-")
            if obj.lower() in named and not low_kept.get(obj.lower()) and obj.lower() not in keep_low:
                root.remove(el)
    # 4. user permissions
    hits = _rule_hits(uses)
    keep_perms = {p for p in perms if p.lower() in keep_low} | {p for p in hits if p in perms}
    if hits.get("ModifyMetadata") and "ModifyMetadata" not in perms and "ModifyAllData" in perms:
        keep_perms.add("ModifyAllData")
        hits["ModifyAllData"] = "the user made Metadata API calls, and the set grants them only through Modify All Data"
    kept, why_dropped = _with_dependencies(keep_perms, perms)
    for p in sorted(perms):
        if p in kept:
            reason = ("keep-access in sf-intuser.toml" if p.lower() in keep_low else hits.get(p)
                      or "a kept permission requires it")
            out.permissions.append({"name": p, "kept": True, "why": reason,
                                    "source": RULE_SOURCE[p].source if p in RULE_SOURCE else ""})
        else:
            reason = why_dropped.get(p) or (
                f"narrowed to record access on the {len([o for o, f in kept_objects.items() if f])} object(s) the "
                "user touched"
                if p in WIDE else "no recorded call needs it, and no kept permission requires it")
            out.permissions.append({"name": p, "kept": False, "why": reason})
    for up in list(children(root, "userPermissions")):
        if (text(up, "name") or "") not in kept:
            root.remove(up)
    # 5. the rest stays; the header names the new set
    for section in ("classAccesses", "pageAccesses", "customPermissions", "customMetadataTypeAccesses",
                    "customSettingAccesses", "externalDataSourceAccesses", "flowAccesses", "applicationVisibilities"):
        n = len(list(children(root, section)))
        if n:
            out.other[section] = n
    _header(root, new_name, label, description)
    out.data = serialize(root, DEFAULT_STYLE)
    return out


def _reach(perms: set[str]) -> set[str]:
    """The object flags View All Data and Modify All Data give on every object."""
    if "ModifyAllData" in perms:
        return set(OBJECT_FLAGS)
    return {"allowRead", "viewAllRecords"} if "ViewAllData" in perms else set()


def _sort_key(el: etree._Element) -> tuple[str, str]:
    name = local_name(el)
    return (name, (text(el, "object") or "").lower()) if name == "objectPermissions" else (name, "")


def _insert_sorted(root: etree._Element, el: etree._Element, key: tuple[str, str]) -> None:
    """``el`` among ``root``'s children where Salesforce's alphabetical order puts it."""
    for c in children(root):
        if _sort_key(c) > key:
            root.insert(root.index(c), el)
            return
    root.append(el)


def _closure(wanted: Iterable[str], available: set[str],
             requires: Callable[[str], Iterable[str]]) -> tuple[set[str], dict[str, str]]:
    """``wanted`` with what each of them requires, where ``available`` has it; one whose requirement
    is not available goes (and what it missed is said). Salesforce refuses a set that breaks a
    dependency, and nothing is added that the source did not grant."""
    out = set(wanted)
    missed: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for f in sorted(out):
            for r in requires(f):
                if r in out:
                    continue
                if r in available:
                    out.add(r)
                else:
                    out.discard(f)
                    missed[f] = r
                changed = True
                break
    return out, missed


def _closed(new: set[str], available: set[str]) -> set[str]:
    """Object flags with the flags they require (ObjectPermissions dependencies) where ``available``
    (what the source grants on the object) has them."""
    deps = rules.object_dependencies()
    return _closure(new, available, lambda f: deps.get(f, ()))[0]


def _rule_hits(uses: list[Use]) -> dict[str, str]:
    """User permission -> why evidence needs it."""
    hits = {"ApiEnabled": RULE_SOURCE["ApiEnabled"].why}
    calls = {(u.call or "").lower() for u in uses}
    if any(u.operation == METADATA for u in uses):
        hits["ModifyMetadata"] = RULE_SOURCE["ModifyMetadata"].why
    if "harddelete" in calls:
        hits["BulkApiHardDelete"] = RULE_SOURCE["BulkApiHardDelete"].why
    if "convertlead" in calls:
        hits["ConvertLeads"] = RULE_SOURCE["ConvertLeads"].why
    written = {(u.object or "").lower() for u in uses if u.operation not in (READ, METADATA)}
    if written & {"task", "event"}:
        hits["EditTask"] = RULE_SOURCE["EditTask"].why
    if "event" in written:
        hits["EditEvent"] = RULE_SOURCE["EditEvent"].why
    if "user" in written:
        hits["ManageUsers"] = RULE_SOURCE["ManageUsers"].why
        hits["ManageInternalUsers"] = RULE_SOURCE["ManageInternalUsers"].why
    return hits


def _with_dependencies(wanted: set[str], enabled: set[str]) -> tuple[set[str], dict[str, str]]:
    """User permissions with what each requires (license_rules.PERMISSION_DEPENDENCIES) where the set
    grants it; one whose requirement the set lacks goes, with why."""
    def requires(p: str) -> Iterable[str]:
        dep = rules.PERMISSION_DEPENDENCIES.get(p)
        return dep.requires if dep else ()

    kept, missed = _closure(wanted, enabled, requires)
    return kept, {p: f"requires {r}, which the set does not grant" for p, r in missed.items()}


def _header(root: etree._Element, name: str, label: str | None, description: str | None) -> None:
    for tag, value in (("label", label), ("description", description)):
        if value is None:
            continue
        el = child(root, tag)
        if el is None:
            el = add(root, tag, value)
        el.text = value
    fn = child(root, "fullName")
    if fn is not None:
        fn.text = name


# --- the whole plan --------------------------------------------------------------------------------


@dataclass
class Request:
    created_at: str
    run: str
    origin: str                                 # the run folder the plan came from
    keep: Mapping[str, tuple[str, ...]] = field(default_factory=dict)   # lower-case username -> keep-access
    keep_all: tuple[str, ...] = ()             # [tighten] keep-access
    login_days: int = 0                        # the window login history covers
    logins: Mapping[str, int] = field(default_factory=dict)             # user id (15) -> API logins in it
    ours: frozenset[str] = frozenset()         # lower-case names of sets the org holds that sf-intuser made
    foreign: frozenset[str] = frozenset()      # lower-case names the org's other sets hold: never taken


@dataclass
class Tightened:
    data: dict[str, Any]                 # the new plan.json
    files: dict[str, bytes]              # its metadata/
    narrowed: int


def tighten(plan: dict[str, Any], files: Mapping[str, bytes], sources: Mapping[str, bytes], ev: Evidence,
            req: Request) -> Tightened:
    """The plan with each planned user's generated sets narrowed to its evidence. ``files`` are the run's
    metadata/ (by path below it), ``sources`` the snapshot's metadata by source (``profile X``,
    ``permission set Y``) for the "before" counts."""
    import copy

    new = copy.deepcopy(plan)
    by_name = {g["name"]: g for g in plan["generated"] if g["type"] == "PermissionSet"}
    out_files = dict(files)
    generated = [g for g in new["generated"]]
    users_out: list[dict[str, Any]] = []
    start, end = ev.window()
    covered = ev.covered_days
    narrowed = 0
    renames: dict[tuple[str, str], str] = {}        # (user id, old set) -> new set
    taken = {g["name"].lower() for g in plan["generated"]} | set(req.foreign)
    for e in new["users"]:
        if e.get("status") != "planned":
            continue
        uses = ev.of(e["id"])
        keep = (*req.keep.get(e["username"].lower(), ()), *req.keep_all)
        entry: dict[str, Any] = {"username": e["username"], "userId": e["id"], "evidence": [u.to_dict() for u in uses],
                                 "sets": [], "warnings": [], "narrowed": False}
        users_out.append(entry)
        logins = req.logins.get(e["id"][:15], 0)
        if logins and req.login_days:
            every = req.login_days / logins
            if covered is not None and covered < 2 * every:
                entry["warnings"].append(
                    f"the evidence covers {covered} day(s), and login history shows an API login about every "
                    f"{every:.0f} day(s): a run outside the window would not show; widen the window (--days) or "
                    "list what it needs in keep-access")
        if not uses:
            entry["warnings"].append("no recorded call in the window: nothing narrowed (an integration that did not "
                                     "run can't show what it needs)")
            entry["counts"] = _user_counts(e, by_name, files, sources, None)
            continue
        mine = _narrowable(e, by_name)
        after: dict[str, bytes] = {}
        for old in mine:
            g = by_name[old]
            rel = _rel(g)
            new_name = _new_name(old, e["username"], taken)
            taken.add(new_name.lower())
            label = f"{old} (tightened for {e['username']})"[:80]
            desc = (f"{ps_md.MARKER} from {g['source']} for {e['username']}, narrowed to the use recorded "
                    f"{start or '?'} to {end or '?'}")[:255]
            n = narrow(files[rel], old, new_name, uses, keep, label=label, description=desc)
            renames[(e["id"], old)] = new_name
            path = f"permissionsets/{new_name}.permissionset"
            out_files[path] = n.data
            after[old] = n.data
            generated.append({"type": "PermissionSet", "name": new_name, "source": f"{g['source']} for {e['username']}",
                              "kind": "tightened", "file": f"metadata/{path}",
                              "exists": new_name.lower() in req.ours, "from": old})
            entry["sets"].append({"from": old, "into": new_name, "objects": n.objects, "permissions": n.permissions,
                                  "keptAsTheyWere": n.other, "fieldsDropped": n.fields_dropped})
        entry["narrowed"] = bool(mine)
        entry["counts"] = _user_counts(e, by_name, files, sources, after)
        narrowed += bool(mine)
        for a in e["to"]["assign"]:
            a["permissionSet"] = renames.get((e["id"], a["permissionSet"]), a["permissionSet"])
            if a["permissionSet"] in {renames.get((e["id"], o)) for o in mine}:
                a["why"] = f"tightened from {next(o for o in mine if renames[(e['id'], o)] == a['permissionSet'])}"
        if e["to"]["permissionSet"] in mine:
            e["to"]["permissionSet"] = renames[(e["id"], e["to"]["permissionSet"])]
        for g in e["to"].get("access", []):
            g["permissionSet"] = renames.get((e["id"], g["permissionSet"]), g["permissionSet"])
    # what no one is given any more is neither deployed nor kept
    live = {a["permissionSet"] for e in new["users"] if e.get("status") == "planned" for a in e["to"]["assign"]}
    live |= {x["group"] for e in new["users"] if e.get("status") == "planned" for x in e["to"]["groups"]}
    live |= {e["to"]["profile"] for e in new["users"] if e.get("status") == "planned"}
    group_members = _group_members(plan, files)
    for gname in list(live):
        live |= set(group_members.get(gname, ()))
    new["generated"] = [g for g in generated if g["name"] in live]
    keep_paths = {_rel(g) for g in new["generated"]}
    out_files = {k: v for k, v in out_files.items() if k in keep_paths}
    members: dict[str, list[str]] = {}
    for g in new["generated"]:
        members.setdefault(g["type"], []).append(g["name"])
    if out_files:
        out_files["package.xml"] = package_xml.build({t: sorted(m) for t, m in members.items()},
                                                     new["org"]["apiVersion"])
    new["steps"] = _steps(new, renames)
    new["createdAt"] = req.created_at
    new["run"] = req.run
    new["summary"]["generated"] = len(new["generated"])
    new["tightened"] = {"from": req.origin, "evidence": ev.to_dict(), "users": users_out}
    new["warnings"] = list(new.get("warnings", [])) + [f"{u['username']}: {w}" for u in users_out for w in u["warnings"]]
    return Tightened(new, out_files, narrowed)


def _new_name(old: str, username: str, taken: set[str]) -> str:
    n = 4
    while True:
        name = naming.api_name(old.removesuffix("_Intuser"), SUFFIX, tag=naming.short_hash(f"{old} {username}", n))
        if name.lower() not in taken:
            return name
        n += 1


def _group_members(plan: dict[str, Any], files: Mapping[str, bytes]) -> dict[str, list[str]]:
    out = {}
    for g in plan["generated"]:
        if g["type"] == "PermissionSetGroup":
            root = parse(files[_rel(g)], g["name"]).root
            out[g["name"]] = [c.text or "" for c in children(root, "permissionSets")]
    return out


def _narrowable(e: dict[str, Any], by_name: Mapping[str, Any]) -> list[str]:
    """The sets the plan generates for one user from its own sources (its profile, copies of its sets):
    the ones tighten narrows. Sets assigned as they are, and groups, are shared and stay."""
    return [a["permissionSet"] for a in e["to"]["assign"] if a["permissionSet"] in by_name
            and by_name[a["permissionSet"]]["kind"] in ("from-profile", "copy")]


def _rel(g: Mapping[str, Any]) -> str:
    """A generated component's file below metadata/ (plan.json names it from the run folder)."""
    return str(g["file"]).removeprefix("metadata/")


def _user_counts(e: dict[str, Any], by_name: Mapping[str, Any], files: Mapping[str, bytes],
                 sources: Mapping[str, bytes], after: Mapping[str, bytes] | None) -> dict[str, dict[str, int]]:
    """Objects read, objects written and user permissions in the sets sf-intuser makes for the user:
    before the move (the profile and copied sets as they are), after it, after tightening."""
    def total(datas: list[bytes]) -> dict[str, int]:
        roots = [parse(d, "set").root for d in datas]
        names = set().union(*(object_grants(r) for r in roots)) if roots else set()
        read: set[str] = set()
        write: set[str] = set()
        perms: set[str] = set()
        for r in roots:
            p = enabled_permissions(r)
            objs = object_grants(r)
            perms |= p
            read |= {o for o in names if "allowRead" in objs.get(o, set()) or p & set(WIDE)}
            write |= {o for o in names if objs.get(o, set()) & set(WRITES) or "ModifyAllData" in p}
        return {"objectsRead": len(read), "objectsWrite": len(write), "systemPermissions": len(perms)}

    mine = _narrowable(e, by_name)
    moved = [files[_rel(by_name[n])] for n in mine]
    before = [sources[by_name[n]["source"]] for n in mine if by_name[n]["source"] in sources]
    tight = [after.get(n, files[_rel(by_name[n])]) for n in mine] if after else moved
    return {"before": total(before), "moved": total(moved), "tightened": total(tight)}


def _steps(plan: dict[str, Any], renames: Mapping[tuple[str, str], str]) -> list[dict[str, Any]]:
    """The plan's steps with the tightened sets in place of the ones they narrow."""
    steps = []
    planned = [e for e in plan["users"] if e.get("status") == "planned"]
    for s in plan["steps"]:
        s = dict(s)
        if s["action"] == "deploy":
            s["records"] = [{"type": g["type"], "name": g["name"], "file": g["file"], "new": not g["exists"]}
                            for g in plan["generated"]]
            s["inverse"] = {**s["inverse"], "records": [{"type": g["type"], "name": g["name"]} for g in plan["generated"]
                                                        if g["type"] in ("PermissionSet", "PermissionSetGroup")
                                                        and not g["exists"]]}
        elif s["action"] == "assign-permission-sets":
            recs = [{**r, "permissionSet": renames.get((r["userId"], r["permissionSet"]), r["permissionSet"])}
                    for r in s["records"]]
            s["records"] = recs
            s["inverse"] = {**s["inverse"], "records": recs}
        elif s["action"] == "grant-access":
            recs = list({(a["permissionSet"], a["entityId"]): a for e in planned
                         for a in e["to"].get("access", [])}.values())
            s["records"] = recs
            s["inverse"] = {**s["inverse"], "records": recs}
        steps.append(s)
    return steps
