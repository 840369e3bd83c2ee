"""The snapshot: everything a move would destroy or a rollback needs, read before anything changes.

For each user: the User record's access fields, permission set, group, permission set license and
package license assignments (with expiration dates), the profile's login IP ranges and hours and its
SetupEntityAccess rows (connected apps, Apex classes, Visualforce pages, custom permissions), the
connected apps that pre-authorize the profile or the user's sets, and the retrieved XML of every
profile, permission set and group concerned. The retrieve names every object the org's
ObjectPermissions and FieldPermissions rows name (a profile retrieve carries object and field access
only for the objects in the same manifest, and ``CustomObject:*`` leaves out standard objects), and
the retrieved entries are then counted against those rows: a file holding fewer than the org stops
the snapshot, naming the file and the objects.

On disk a snapshot is a folder ``snapshot/`` of the run folder, written and read by
:mod:`sf_intuser.runs.snapshot` (the run folder's files have one owner: :mod:`sf_intuser.runs`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from sf_intuser import __version__
from sf_intuser.metadata import package_xml
from sf_intuser.metadata.access import is_true
from sf_intuser.metadata.xml import MetadataXmlError, children, parse, text
from sf_intuser.org import discover as discover_mod
from sf_intuser.metadata.naming import retrievable
from sf_intuser.org import inventory, read
from sf_intuser.org.model import Component, Inventory, Org
from sf_intuser.sf import commands
from sf_intuser.sf.runner import SfRunner
from sf_intuser.sf.soql import in_list

SCHEMA = "sf-intuser/snapshot"
#: 2: profiles under their Metadata API names (files and keys), ``inventory.profile_api``
VERSION = 2


class SnapshotError(Exception):
    """A snapshot that cannot be taken or trusted; the message names the thing and the fix."""

    def __init__(self, name: str, message: str, actions: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.actions = list(actions)


@dataclass
class Snapshot:
    inventory: Inventory
    metadata: dict[str, dict[str, bytes]]           # type -> name -> bytes, as retrieved
    meta: dict[str, Any] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)  # the users it was taken for (usernames)


# --- taking -------------------------------------------------------------------------------------


def take(runner: SfRunner, org: Org, *, usernames: list[str] | None, opts: discover_mod.Options,
         names: Iterable[str] = (), now: str = "", progress: Callable[[str], None] = lambda _m: None
         ) -> tuple[Snapshot, discover_mod.Discovery | None]:
    """Read a snapshot of ``usernames``, or of every candidate :mod:`.discover` finds when None.
    ``names``: permission set names a config asks for (so a clash with the org's sets is known)."""
    discovery = None
    with ThreadPoolExecutor(max_workers=2) as pool:
        version = pool.submit(commands.versions, runner)
        listed = pool.submit(read.profile_names, runner, org)
        apps = None
        if usernames is None:
            apps = pool.submit(read.retrieve, runner, org,
                               package_xml.build({"ConnectedApp": ["*"]}, org.api_version))
        progress("Reading the org: licenses, seats, users" + ("" if usernames else " and API logins"))
        inv = inventory.read_org(runner, org, days=opts.days, api_login_types=opts.api_login_types,
                                 usernames=usernames, describe=True, names=names)
        run_as = read.run_as_users(apps.result().files.get("ConnectedApp", {})) if apps else {}
        sf_version, node = version.result()
        inv.set_profile_names(listed.result())
    if usernames is None:
        ids = read.with_evidence(inv, run_as)
    else:
        ids = [u.id for u in inv.users if u.active]
    progress(f"Reading {len(ids)} user(s): assignments, licenses, logins, access")
    inventory.read_users(runner, inv, ids, deep=True)
    if usernames is None:
        discovery = discover_mod.discover(inv, opts, run_as=run_as)
        chosen = [c.user.username for c in discovery.candidates]
    else:
        chosen = [u.username for u in inv.users]
    users = [u for u in inv.users if u.username in set(chosen) and u.active]
    mine = {u.id for u in users}
    # a profile whose file name could not be written is left out (its users are blocked by the plan)
    profiles = sorted(p for p in read.profiles_by_api_name(inv, mine) if retrievable(p))
    sets = sorted({a.ps_name for a in inv.assignments if a.user_id in mine and not a.owned and not a.group_id}
                  | {c.ps_name for c in inv.components if (c.ps_type or "") != "Muting" and _group_of(inv, c, mine)})
    groups = sorted({a.group_name for a in inv.assignments if a.user_id in mine and a.group_id and a.group_name})
    manifest = package_xml.retrieve_manifest(profiles, sets, groups=groups, standard_objects=inv.objects,
                                             version=org.api_version)
    progress(f"Retrieving {len(profiles)} profile(s), {len(sets)} permission set(s), {len(groups)} group(s)")
    got = read.retrieve(runner, org, manifest) if (profiles or sets or groups) else read.Retrieved()
    got.files.setdefault("ConnectedApp", {})
    snap = Snapshot(inv, got.files, users=chosen)
    mismatches = cross_check(snap, mine)
    if mismatches:
        problems = name_missing(runner, org, mismatches)
        raise SnapshotError("SnapshotIncomplete", "The retrieve holds less than the org: " + "; ".join(problems)
                            + ". Nothing was written.",
                            ["Run the plan again (a retrieve can miss what changed while it ran)",
                             "If it stays, retrieve the named files with every object named (-m CustomObject:NAME) "
                             "and report it"])
    snap.meta = {"schema": SCHEMA, "version": VERSION, "takenAt": now, "org": inv.org.__dict__,
                 "sf": ".".join(map(str, sf_version)) if sf_version else None, "node": node,
                 "sfIntuser": __version__, "users": chosen, "days": opts.days, "apiVersion": org.api_version,
                 "retrieve": {"manifest": package_xml.read(manifest), "missing": got.missing},
                 "crossCheck": "every retrieved object and field entry matches the org's rows"}
    return snap, discovery


def _group_of(inv: Inventory, comp: Component, users: set[str]) -> bool:
    return any(a.group_id and a.group_id[:15] == comp.group_id[:15] and a.user_id in users for a in inv.assignments)


def _counts(data: bytes, name: str) -> tuple[dict[str, int], dict[str, int]]:
    """Per object: the object entries granting something, and the readable field entries."""
    root = parse(data, name).root
    objects: dict[str, int] = {}
    for op in children(root, "objectPermissions"):
        if any(is_true(text(op, f)) for f in ("allowRead", "allowCreate", "allowEdit", "allowDelete",
                                               "viewAllRecords", "modifyAllRecords", "viewAllFields")):
            key = text(op, "object") or ""
            objects[key] = objects.get(key, 0) + 1
    fields_: dict[str, int] = {}
    for fp in children(root, "fieldPermissions"):
        if is_true(text(fp, "readable")) or is_true(text(fp, "editable")):
            key = (text(fp, "field") or "").split(".")[0]
            fields_[key] = fields_.get(key, 0) + 1
    return objects, fields_


@dataclass
class Mismatch:
    type: str
    name: str
    parent: str
    objects: dict[str, int]      # in the file, per object
    fields: dict[str, int]
    want_objects: int            # rows in the org
    want_fields: int
    problem: str = ""

    def message(self) -> str:
        return self.problem or (f"{self.type} {self.name}: the org holds {self.want_objects} object and "
                                f"{self.want_fields} field permission rows, the retrieved file "
                                f"{sum(self.objects.values())} and {sum(self.fields.values())}")


def cross_check(snap: Snapshot, user_ids: set[str]) -> list[Mismatch]:
    """Each retrieved profile and permission set against the org's ObjectPermissions and
    FieldPermissions rows: the files that hold fewer entries than the org has rows."""
    inv = snap.inventory
    parents: dict[tuple[str, str], str] = {}
    for u in inv.users:
        if u.id in user_ids:
            own = inv.profile_set(u.profile_id)
            api = inv.profile_api_name(u.profile_id, u.profile)
            if own is not None and retrievable(api):
                parents[("Profile", api)] = own.id
    for a in inv.assignments:
        if a.user_id in user_ids and not a.owned and not a.group_id:
            parents[("PermissionSet", a.ps_name)] = a.ps_id
    for c in inv.components:
        if (c.ps_type or "") != "Muting" and _group_of(inv, c, user_ids):
            parents[("PermissionSet", c.ps_name)] = c.ps_id
    out = []
    for (mtype, name), parent in sorted(parents.items()):
        want_o, want_f = inv.object_counts.get(parent, 0), inv.field_counts.get(parent, 0)
        data = snap.metadata.get(mtype, {}).get(name)
        if data is None:
            out.append(Mismatch(mtype, name, parent, {}, {}, want_o, want_f,
                                f"{mtype} {name} was not retrieved (the org did not return it)"))
            continue
        try:
            objects, fields_ = _counts(data, f"{mtype} {name}")
        except MetadataXmlError as exc:
            out.append(Mismatch(mtype, name, parent, {}, {}, want_o, want_f, str(exc)))
            continue
        if sum(objects.values()) < want_o or sum(fields_.values()) < want_f:
            out.append(Mismatch(mtype, name, parent, objects, fields_, want_o, want_f))
    return out


def name_missing(runner: SfRunner, org: Org, mismatches: list[Mismatch]) -> list[str]:
    """What each mismatching file lacks, object by object (one more call, only when something is missing)."""
    todo = [m for m in mismatches if not m.problem]
    q = {}
    for i, m in enumerate(todo):
        q[f"o{i}"] = (f"SELECT SobjectType, COUNT(Id) n FROM ObjectPermissions WHERE ParentId IN {in_list([m.parent])} "
                      "GROUP BY SobjectType")
        q[f"f{i}"] = (f"SELECT SobjectType, COUNT(Id) n FROM FieldPermissions WHERE ParentId IN {in_list([m.parent])} "
                      "GROUP BY SobjectType")
    rows = commands.query_all(runner, q, org.alias or org.username, org.api_version) if q else {}
    out = [m.problem for m in mismatches if m.problem]
    for i, m in enumerate(todo):
        lacking = []
        for key, have, label in ((f"o{i}", m.objects, "object access"), (f"f{i}", m.fields, "field access")):
            for r in rows.get(key, []):
                obj, n = str(r.get("SobjectType")), int(r.get("n") or 0)
                if have.get(obj, 0) < n:
                    lacking.append(f"{label} on {obj} ({n - have.get(obj, 0)} of {n})")
        out.append(f"{m.type} {m.name} lacks " + (", ".join(lacking) if lacking else m.message()))
    return out


def restrict(snap: Snapshot, usernames: Iterable[str]) -> None:
    """Keep ``usernames`` only (a plan of some of the snapshot's users)."""
    keep = {u.lower() for u in usernames}
    snap.users = [u for u in snap.users if u.lower() in keep]


