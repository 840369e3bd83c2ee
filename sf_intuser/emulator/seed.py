"""Build an emulated org from a declarative seed file (JSON).

A seed names the org, its user licenses and permission set licenses with their seats, its standard
profiles (name and license; what the license requires, plus the user permissions and full object
access the seed lists), folders of
metadata (source or mdapi format: profiles, permission sets and groups, connected apps, Apex
classes, Visualforce pages), managed package licenses, the users with their profiles, assignments,
package licenses, OAuth tokens and login history, and the
options for unknown platform behaviour. Profile, PermissionSet, ApexClass, ConnectedApplication and
SetupEntityAccess records are derived from the metadata, so the records and a retrieve agree.

Times are relative to now (``"-3d"``, ``"-12h"``) or ISO datetimes. See ``seeds/acme.json``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sf_intuser.emulator import org as org_mod
from sf_intuser.emulator import profiles
from sf_intuser.emulator.org import Component, OrgState, Options
from sf_intuser.emulator.permissions import allowed_set

SEEDS = Path(__file__).resolve().parent / "seeds"
DEFAULT_SEED = SEEDS / "acme.json"

#: metadata type -> (folder, suffix, has a separate -meta.xml beside a source body)
TYPES: dict[str, tuple[str, str, bool]] = {
    "Profile": ("profiles", "profile", False),
    "PermissionSet": ("permissionsets", "permissionset", False),
    "PermissionSetGroup": ("permissionsetgroups", "permissionsetgroup", False),
    "ConnectedApp": ("connectedApps", "connectedApp", False),
    "ApexClass": ("classes", "cls", True),
    "ApexPage": ("pages", "page", True),
    "CustomObject": ("objects", "object", False),
    "CustomTab": ("tabs", "tab", False),
    "CustomApplication": ("applications", "app", False),
    "CustomPermission": ("customPermissions", "customPermission", False),
}
FOLDERS = {folder: t for t, (folder, _, _) in TYPES.items()}
#: the order components are loaded in: what others refer to comes first
LOAD_ORDER = ["ApexClass", "ApexPage", "CustomObject", "CustomTab", "CustomApplication", "CustomPermission",
              "Profile", "PermissionSet", "PermissionSetGroup", "ConnectedApp"]


class SeedError(ValueError):
    pass


def read_components(folder: Path) -> list[Component]:
    """Components from a metadata folder in source (``X.profile-meta.xml``) or mdapi (``X.profile``) form;
    custom objects also decomposed as SFDX projects hold them (``objects/X/X.object-meta.xml``,
    ``objects/X/fields/F.field-meta.xml``, ...), composed into one object as the Metadata API holds it."""
    found: dict[tuple[str, str], Component] = {}
    found.update({("CustomObject", c.name): c for c in _decomposed_objects(folder)})
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.parent.name not in FOLDERS:
            continue
        mtype = FOLDERS[path.parent.name]
        _, suffix, has_body = TYPES[mtype]
        name = path.name
        is_meta = name.endswith("-meta.xml")
        base = name[:-len("-meta.xml")] if is_meta else name
        if not base.endswith("." + suffix):
            continue
        stem = base[:-len(suffix) - 1]
        full = stem if mtype == "Profile" else unquote(stem)   # a profile's file name is its API name
        comp = found.setdefault((mtype, full), Component(mtype, full, b""))
        if has_body and is_meta:
            comp.meta = path.read_bytes()
        else:
            comp.body = path.read_bytes()
    return [c for c in found.values() if c.body or c.meta]


def _decomposed_objects(folder: Path) -> list[Component]:
    """Objects in source format: the object's own file and one file per child (SDR's registry: a
    CustomObject's children sit in folders named as their element, ``fields/``, ``recordTypes/``, ...)."""
    from lxml import etree

    from sf_intuser.emulator import registry
    from sf_intuser.metadata import xml

    children = registry.types()["CustomObject"].children
    out = []
    for obj_dir in sorted(p for p in folder.rglob("*") if p.is_dir() and p.parent.name == "objects"):
        own = obj_dir / f"{obj_dir.name}.object-meta.xml"
        root = xml.parse(own.read_bytes(), str(own)).root if own.exists() else xml.new_root("CustomObject")
        for sub in sorted(p for p in obj_dir.iterdir() if p.is_dir() and p.name in children):
            for f in sorted(sub.glob("*-meta.xml")):
                child = xml.parse(f.read_bytes(), str(f)).root
                el = etree.SubElement(root, f"{{{xml.MD_NS}}}{sub.name}")
                if xml.child(child, "fullName") is None:
                    xml.add(el, "fullName", f.name.split(".")[0])
                for c in child:
                    el.append(c)
        out.append(Component("CustomObject", obj_dir.name, xml.serialize(root, fresh=True)))
    return out


def load(path: Path | str | None = None, instance: str | None = None, scale: int = 0) -> OrgState:
    """The org a seed file describes. ``instance`` names this copy of it: its org id and admin username
    are made from the name, so that two emulated orgs can run side by side (the sf CLI keys its auth
    files by username). ``scale`` adds that many generated integration users (:mod:`.scale`)."""
    path = Path(path) if path else DEFAULT_SEED
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SeedError(f"cannot read seed {path}: {exc}") from None
    if scale:
        from sf_intuser.emulator.scale import scaled

        spec = scaled(spec, scale)
    if instance:
        spec = for_instance(spec, instance)
    return build(spec, path.parent)


def scratch(instance: str, name: str = "Scratch Org", edition: str = "Developer") -> OrgState:
    """A blank org as a scratch org starts: the bundled seed's licenses, permission set licenses and
    standard profiles, an admin, and nothing else (no custom profiles, sets, code, apps or users)."""
    spec = json.loads(DEFAULT_SEED.read_text(encoding="utf-8"))
    # a new org: no standard Read Only profile since Spring '21 (KB "Read Only Profile Conversion to Custom
    # Profile"); a Developer Edition has two Salesforce licenses and one Salesforce Integration license
    # (Help, "Give Integration Users API Only Access": five in Enterprise, one in Developer Edition)
    seats = {"Salesforce": 2, "Salesforce Integration": 1} if edition.lower() == "developer" else {}
    spec = {**spec, "metadata": [], "users": [], "packageLicenses": [],
            "options": {**spec.get("options", {}), "source_tracking": True},
            "standardProfiles": [p for p in spec.get("standardProfiles", []) if p["name"] != "Read Only"],
            "userLicenses": [{**lic, "total": seats.get(lic["name"], lic["total"])} for lic in spec["userLicenses"]],
            "org": {**spec.get("org", {}), "name": name, "edition": f"{edition.title()} Edition",
                    # how sf tells a scratch org from a sandbox (@salesforce/core org.ts determineIfScratch)
                    "isSandbox": True, "trialExpirationDate": "2099-12-31T00:00:00.000+0000"}}
    return build(for_instance(spec, instance), DEFAULT_SEED.parent)


def for_instance(spec: dict[str, Any], instance: str) -> dict[str, Any]:
    """The seed with an org id and admin username of its own, made from ``instance``."""
    digest = hashlib.sha256(instance.encode("utf-8")).hexdigest()
    slug = "".join(ch if ch.isalnum() else "-" for ch in instance.lower()).strip("-") or "org"
    org = {**spec.get("org", {}), "id": f"00D{int(digest[:15], 16) % 10 ** 12:012d}AAA"}
    admin = {**spec["admin"], "username": f"admin@{slug}.emulated"}
    return {**spec, "org": org, "admin": admin}


def build(spec: dict[str, Any], base: Path) -> OrgState:
    o = spec.get("org", {})
    state = OrgState(org_id=o.get("id", "00D000000000001AAA"), username=spec["admin"]["username"],
                     api_versions=tuple(o.get("apiVersions", ("60.0", "61.0", "62.0"))),
                     options=Options(**spec.get("options", {})))
    model = state.perms
    if isinstance(spec.get("knownPermissions"), list):
        model.known = frozenset(spec["knownPermissions"])
    now = state.now()
    state.seeding = {"005": len(spec.get("users", [])) + 1}   # users get 005...001, 002, ... below
    state.put("Organization", {"Name": o.get("name", "Emulated Org"), "InstanceName": "EMU1",
                               "IsSandbox": bool(o.get("isSandbox", False)), "TrialExpirationDate": o.get("trialExpirationDate"),
                               "NamespacePrefix": None, "OrganizationType": o.get("edition", "Enterprise Edition")},
              record_id=state.org_id)
    for lic in spec.get("userLicenses", []):
        state.put("UserLicense", {"Name": lic["name"], "MasterLabel": lic["name"],
                                  "LicenseDefinitionKey": lic.get("key"), "Status": "Active",
                                  "TotalLicenses": lic["total"]})
        model.license_allowed[lic["name"]] = allowed_set(lic.get("allowedPermissions", "*"), model.known)
    for psl in spec.get("permissionSetLicenses", []):
        state.put("PermissionSetLicense", {"DeveloperName": psl["developerName"], "MasterLabel": psl["label"],
                                           "PermissionSetLicenseKey": psl.get("key", psl["developerName"]),
                                           "Status": "Active", "TotalLicenses": psl["total"],
                                           "IsAvailableForIntegrations": bool(psl.get("availableForIntegrations"))})
        model.psl_max[psl["developerName"]] = allowed_set(psl.get("maximumPermissions", []), model.known) \
            or frozenset()
        if psl.get("userLicenses") is not None:
            model.psl_user_licenses[psl["developerName"]] = frozenset(psl["userLicenses"])
    for pkg in spec.get("packageLicenses", []):
        state.put("PackageLicense", {"NamespacePrefix": pkg["namespace"], "AllowedLicenses": pkg.get("allowed", -1),
                                     "UsedLicenses": 0, "Status": "Active"})
    for role in spec.get("roles", []):
        state.put("UserRole", {"Name": role["name"], "DeveloperName": role.get("developerName") or
                               "".join(ch if ch.isalnum() else "_" for ch in role["name"])})
    for group in spec.get("groups", []):
        state.put("Group", {"Name": group["name"], "DeveloperName": group.get("developerName") or
                            "".join(ch if ch.isalnum() else "_" for ch in group["name"]),
                            "Type": group.get("type", "Regular")})
    for perm, requires in sorted(model.dependencies.items()):
        for req in requires:
            state.put("PermissionDependency", {"Permission": perm, "PermissionType": "User Permission",
                                               "RequiredPermission": req,
                                               "RequiredPermissionType": "User Permission"})
    unknown = [(where, n) for where, names in _named_permissions(spec) for n in names if n not in model.known]
    if unknown:
        raise SeedError(f"{unknown[0][0]}: unknown user permission {unknown[0][1]!r}")
    comps: dict[tuple[str, str], Component] = {}
    for std in spec.get("standardProfiles", []):
        # a standard profile holds what its license requires, and what the seed lists
        api = profiles.api_name(std["name"])
        comps[("Profile", api)] = Component("Profile", api, org_mod.blank_profile(
            std["license"], custom=False, permissions=std.get("userPermissions", ()),
            full_objects=std.get("fullAccessObjects", ())))
    for folder in spec.get("metadata", []):
        for c in read_components((base / folder).resolve()):
            comps[(c.type, c.name)] = c
    for c in spec.get("components", []):   # generated in memory (:mod:`.scale`)
        body = c["body"].encode("utf-8")
        old = comps.get((c["type"], c["name"]))
        if old is not None and c["type"] == "CustomObject":
            # an object's fields are components of their own: both sources' fields stay
            from sf_intuser.emulator import mdapi, registry

            body = mdapi.merge_children(old.body, body, registry.types()["CustomObject"])
        comps[(c["type"], c["name"])] = Component(c["type"], c["name"], body,
                                                  c["meta"].encode("utf-8") if c.get("meta") else None)
    for mtype in LOAD_ORDER:
        for key in sorted(k for k in comps if k[0] == mtype):
            state.add_component(comps[key])
    users = [spec["admin"], *spec.get("users", [])]
    for i, u in enumerate(users, start=1):
        _add_user(state, u, f"005{i:012d}AAA", now)
    state.seeding = None
    return state


def _named_permissions(spec: dict[str, Any]):
    for lic in spec.get("userLicenses", []):
        yield f"user license {lic['name']}", _names(lic.get("allowedPermissions"))
    for psl in spec.get("permissionSetLicenses", []):
        yield f"permission set license {psl['developerName']}", _names(psl.get("maximumPermissions"))
    for std in spec.get("standardProfiles", []):
        yield f"standard profile {std['name']}", std.get("userPermissions", [])


def _names(allowed: Any) -> list[str]:
    if isinstance(allowed, list):
        return allowed
    if isinstance(allowed, dict):
        return [*allowed.get("sourced", {}), *allowed.get("assumed", [])]
    return []


def _add_user(state: OrgState, u: dict[str, Any], uid: str, now: Any) -> None:
    prof = state.one("Profile", Name=u["profile"])
    if prof is None:
        raise SeedError(f"user {u['username']}: no profile named {u['profile']!r} in the seed's metadata")
    first, _, last = u.get("name", u["username"].split("@")[0]).rpartition(" ")
    state.put("User", {"Username": u["username"], "Name": u.get("name", last), "FirstName": first or None,
                       "LastName": last, "Alias": u["username"][:8], "Email": u.get("email", u["username"]),
                       "IsActive": u.get("active", True), "UserType": "Standard", "ProfileId": prof["Id"],
                       "LastLoginDate": (org_mod.relative_time(u["lastLogin"], now) if u.get("lastLogin") else None),
                       "CreatedDate": org_mod.relative_time(u.get("created", "-400d"), now),
                       "TimeZoneSidKey": "America/Los_Angeles", "LocaleSidKey": "en_US",
                       "EmailEncodingKey": "UTF-8", "LanguageLocaleKey": "en_US"}, record_id=uid)
    state.own_assignment(uid, prof["Id"])
    rec = state.get(uid)
    if rec is None:
        raise SeedError(f"user {u['username']}: not in the org after it was made")
    if u.get("role"):
        role = state.one("UserRole", Name=u["role"])
        if role is None:
            raise SeedError(f"user {u['username']}: no role {u['role']!r} in the seed's roles")
        rec["UserRoleId"] = role["Id"]
    for name in u.get("featureLicenses", []):
        field = "UserPermissions" + name
        if field not in org_mod.objects.FEATURE_LICENSES:
            raise SeedError(f"user {u['username']}: unknown feature license {name!r}")
        rec[field] = True
    for name in u.get("groups", []):
        group = state.one("Group", Name=name)
        if group is None:
            raise SeedError(f"user {u['username']}: no group or queue {name!r} in the seed's groups")
        state.put("GroupMember", {"GroupId": group["Id"], "UserOrGroupId": uid})
    for name in u.get("permissionSetLicenses", []):
        psl = state.one("PermissionSetLicense", DeveloperName=name)
        if psl is None:
            raise SeedError(f"user {u['username']}: no permission set license {name!r}")
        state.put("PermissionSetLicenseAssign", {"AssigneeId": uid, "PermissionSetLicenseId": psl["Id"]})
    for name in u.get("permissionSets", []):
        ps = state.one("PermissionSet", Name=name, IsOwnedByProfile=False)
        if ps is None:
            raise SeedError(f"user {u['username']}: no permission set {name!r} in the seed's metadata")
        state.put("PermissionSetAssignment", {"AssigneeId": uid, "PermissionSetId": ps["Id"],
                                              "PermissionSetGroupId": ps.get("PermissionSetGroupId"),
                                              "IsActive": True})
    for ns in u.get("packageLicenses", []):
        pkg = state.one("PackageLicense", NamespacePrefix=ns)
        if pkg is None:
            raise SeedError(f"user {u['username']}: no package license {ns!r} in the seed's packageLicenses")
        state.put("UserPackageLicense", {"PackageLicenseId": pkg["Id"], "UserId": uid})
        pkg["UsedLicenses"] = int(pkg.get("UsedLicenses") or 0) + 1
    for tok in u.get("oauthTokens", []):
        state.put("OauthToken", {"AppName": tok["app"], "UserId": uid, "UseCount": int(tok.get("useCount", 1)),
                                 "LastUsedDate": org_mod.relative_time(tok.get("lastUsed", "-1d"), now),
                                 "CreatedDate": org_mod.relative_time(tok.get("created", "-300d"), now)})
    if u.get("apiUsage"):
        from sf_intuser.emulator import eventlogs

        eventlogs.add_usage(state, uid, u["apiUsage"], now, u["username"])
    for spec in u.get("logins", []):
        # spread `count` logins evenly over the last `days` days
        count, days = int(spec.get("count", 10)), int(spec.get("days", 30))
        for k in range(count):
            hours = int((k + 0.5) * days * 24 / count)
            state.put("LoginHistory", {"UserId": uid, "LoginTime": org_mod.relative_time(f"-{hours}h", now),
                                       "LoginType": spec["type"], "Application": spec.get("application"),
                                       "ApiType": spec.get("apiType"), "ApiVersion": spec.get("apiVersion"),
                                       "Status": spec.get("status", "Success"), "SourceIp": spec.get("ip"),
                                       "LoginSubType": spec.get("subType"), "Browser": spec.get("browser"),
                                       "Platform": spec.get("platform")})
