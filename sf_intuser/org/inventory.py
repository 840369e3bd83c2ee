"""What the org holds about its users and their access, read through the sf CLI into plain records.

Everything is read with SOQL in Composite Batch calls (:func:`commands.query_all`): a fixed number of
sf calls whatever the number of users, because users go into ``IN`` lists of up to 200 ids and
per-user figures come from aggregates. The reads come in rounds, each one sf call for up to 200 users
(25 subrequests; pages beyond 2,000 rows cost one more call per round):

1. :func:`read_org`: the organization, user licenses and permission set licenses with their seats,
   package licenses, connected applications, the API-only profiles and the permission sets
   sf-intuser generated before, the users (all active internal users, or the ones named), the
   evidence of API use (API logins in the window, API Only User through profile or permission set),
   and, for a plan, the permission names the org knows (PermissionSet describe) and what the
   ``SalesforceAPIIntegrationPsl`` allows (PermissionSetLicense describe);
2. :func:`read_users`: for the users in question, their logins by type and application, OAuth
   tokens, permission set, group, permission set license and package license assignments, group
   components, SetupEntityAccess rows of their profiles and sets, and (``deep``) how many object
   and field permission rows each profile and set holds, with the objects they name;
   a plan also reads the permission set license's ``MaximumPermissions`` and the figures of the sets
   inside permission set groups (all groups: SOQL allows one level of semi-join, and the users' groups
   are not known before this round).

Field and object names follow the object reference (docs/salesforce-facts.md A5). Some facts are
unknown [U] and both possibilities are handled: whether every user has a PermissionSetAssignment
for its profile's own set (the profile's access is read by ``ProfileId``, not through one), and
whether ``MaximumPermissions<X>`` exists for every permission (only the fields the describe lists
are read; a missing list means "not known", never "allowed").
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from sf_intuser.metadata.license_rules import INTEGRATION_USER_LICENSE
from sf_intuser.sf import commands
from sf_intuser.sf.runner import SfRunner
from sf_intuser.sf.soql import chunks, field_path, in_list, quote

# the records it builds (org/model.py)
from sf_intuser.org.model import (
    ENTITY_TYPES,
    Org,
    UserLicense,
    Psl,
    Package,
    User,
    Login,
    Token,
    Assignment,
    PslAssignment,
    PackageAssignment,
    Component,
    Access,
    UserRecord,
    Membership,
    NamedRecord,
    Inventory,
)

#: REST API version of the reads: old enough for any org in support, new enough for everything read
#: here (PermissionSetAssignment.ExpirationDate needs 52.0; Composite Batch 34.0)
API_VERSION = "60.0"
#: ids per IN list: 300 quoted ids take about 8,100 bytes URL-encoded, half the 16,384 bytes a REST call's
#: URI and headers may take (Salesforce KB 000386264), leaving room for the rest of the query
IDS_PER_QUERY = 300


def _s(v: Any) -> str:
    return "" if v is None else str(v)


_rel = field_path     # a relationship field of a SOQL row (sf/soql.py)


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


USER_FIELDS = ("Id, Username, Name, IsActive, UserType, ProfileId, Profile.Name, Profile.UserLicenseId, "
               "LastLoginDate, CreatedDate")


def read_org(runner: SfRunner, org: Org, *, days: int, api_login_types: Iterable[str],
             usernames: Iterable[str] | None = None, describe: bool = False, names: Iterable[str] = ()) -> Inventory:
    """Round 1 (one sf call, more only for pages beyond 2,000 rows). With ``usernames`` the users read
    are those (active or not); else every active internal user, with the evidence of API use."""
    target = org.alias or org.username
    types = list(api_login_types)
    names = sorted(set(names))
    q: dict[str, str] = {
        "org": "SELECT Id, Name, OrganizationType, IsSandbox, InstanceName FROM Organization",
        "licenses": "SELECT Id, Name, LicenseDefinitionKey, TotalLicenses, UsedLicenses FROM UserLicense",
        "psls": "SELECT Id, DeveloperName, MasterLabel, TotalLicenses, UsedLicenses, IsAvailableForIntegrations, "
                "Status FROM PermissionSetLicense",
        "packages": "SELECT Id, NamespacePrefix, AllowedLicenses, UsedLicenses FROM PackageLicense",
        "apps": "SELECT Id, Name FROM ConnectedApplication",
        "apiProfiles": "SELECT Id, Name, Description, UserLicenseId FROM Profile WHERE UserLicense.Name = "
                       + quote(INTEGRATION_USER_LICENSE) + " OR Name LIKE 'API Only - %'",
        "generated": "SELECT Id, Name, Label, Description FROM PermissionSet WHERE IsOwnedByProfile = false AND "
                     "(Name LIKE '%Intuser%'" + (f" OR Name IN {in_list(names)})" if names else ")"),
        "generatedGroups": "SELECT Id, DeveloperName, MasterLabel, Description FROM PermissionSetGroup WHERE "
                           "DeveloperName LIKE '%Intuser%'",
        "apiOnlyProfiles": "SELECT ProfileId FROM PermissionSet WHERE IsOwnedByProfile = true "
                           "AND PermissionsApiUserOnly = true",
    }
    wanted = sorted(set(usernames or ()))
    if usernames is not None:
        for i, group in enumerate(chunks(wanted, IDS_PER_QUERY)):
            q[f"users{i}"] = f"SELECT {USER_FIELDS} FROM User WHERE Username IN {in_list(group)}"
    else:
        q["users0"] = f"SELECT {USER_FIELDS} FROM User WHERE IsActive = true AND UserType = 'Standard'"
        q["apiOnlyUsers"] = ("SELECT AssigneeId FROM PermissionSetAssignment WHERE PermissionSet.PermissionsApiUserOnly"
                             " = true AND PermissionSet.IsOwnedByProfile = false AND Assignee.IsActive = true")
        q["apiLogins"] = (f"SELECT UserId, COUNT(Id) n FROM LoginHistory WHERE LoginTime = LAST_N_DAYS:{int(days)} "
                          f"AND LoginType IN {in_list(types)} GROUP BY UserId")
    describes = {"psDescribe": "PermissionSet", "pslDescribe": "PermissionSetLicense",
                 "userDescribe": "User"} if describe else {}
    try:
        r = commands.query_all(runner, q, target, org.api_version, describes)
    except commands.QueryFailed as exc:
        if exc.key != "apiLogins" or "queryMore" not in exc.message:
            raise
        # more than 2,000 users with API logins: an aggregate cannot page, so count them per group of users
        r = commands.query_all(runner, {k: v for k, v in q.items() if k != "apiLogins"}, target, org.api_version,
                               describes)
        ids = [u["Id"] for k in r if k.startswith("users") for u in r[k]]
        per = {f"apiLogins{i}": f"SELECT UserId, COUNT(Id) n FROM LoginHistory WHERE LoginTime = LAST_N_DAYS:"
                                f"{int(days)} AND LoginType IN {in_list(types)} AND UserId IN {in_list(g)} GROUP BY UserId"
               for i, g in enumerate(chunks(ids, IDS_PER_QUERY))}
        more = commands.query_all(runner, per, target, org.api_version) if per else {}
        r["apiLogins"] = [row for k in more for row in more[k]]
    o = (r["org"] or [{}])[0]
    inv = Inventory(Org(org.id or _s(o.get("Id")), _s(o.get("Name")), _s(o.get("OrganizationType")),
                        bool(o.get("IsSandbox")), org.instance_url, org.username, org.alias, org.api_version),
                    days)
    inv.user_licenses = [UserLicense(x["Id"], _s(x.get("Name")), _int(x.get("TotalLicenses")),
                                     _int(x.get("UsedLicenses")), x.get("LicenseDefinitionKey"))
                         for x in r["licenses"]]
    inv.psls = [Psl(x["Id"], _s(x.get("DeveloperName")), _s(x.get("MasterLabel")), _int(x.get("TotalLicenses")),
                    _int(x.get("UsedLicenses")), x.get("IsAvailableForIntegrations"), _s(x.get("Status")))
                for x in r["psls"]]
    inv.packages = [Package(x["Id"], _s(x.get("NamespacePrefix")), _int(x.get("AllowedLicenses")),
                            _int(x.get("UsedLicenses"))) for x in r["packages"]]
    inv.connected_apps = {x["Id"]: _s(x.get("Name")) for x in r["apps"]}
    inv.api_profiles = [NamedRecord(x["Id"], _s(x.get("Name")), description=x.get("Description"),
                                    license_id=x.get("UserLicenseId")) for x in r["apiProfiles"]]
    inv.generated_sets = [NamedRecord(x["Id"], _s(x.get("Name")), _s(x.get("Label")), x.get("Description"))
                          for x in r["generated"]]
    inv.generated_groups = [NamedRecord(x["Id"], _s(x.get("DeveloperName")), _s(x.get("MasterLabel")),
                                        x.get("Description")) for x in r["generatedGroups"]]
    inv.api_only_profiles = sorted({_s(x.get("ProfileId")) for x in r["apiOnlyProfiles"]})
    inv.api_only_users = sorted({_s(x.get("AssigneeId")) for x in r.get("apiOnlyUsers", [])})
    inv.api_login_users = sorted({_s(x.get("UserId")) for x in r.get("apiLogins", [])})
    for k in sorted(k for k in r if k.startswith("users")):
        for x in r[k]:
            lic_id = _s(_rel(x, "Profile.UserLicenseId"))
            inv.users.append(User(x["Id"], _s(x.get("Username")), _s(x.get("Name")), bool(x.get("IsActive")),
                                  _s(x.get("UserType")), _s(x.get("ProfileId")), _s(_rel(x, "Profile.Name")),
                                  lic_id, inv.license_name(lic_id) or "", x.get("LastLoginDate"),
                                  x.get("CreatedDate")))
    if usernames is not None:
        found = {u.username.lower() for u in inv.users}
        inv.not_found = [n for n in wanted if n.lower() not in found]
    if describe:
        inv.org_permissions = _permission_fields(r.get("psDescribe"), "Permissions")
        inv.maximum_fields = _permission_fields(r.get("pslDescribe"), "MaximumPermissions") if inv.psl() else None
        # only the feature license fields this org has: querying one it lacks fails the whole batch
        features = _permission_fields(r.get("userDescribe"), "UserPermissions")
        inv.feature_fields = None if features is None else ["UserPermissions" + f for f in features]
    return inv


def _permission_fields(describe: Any, prefix: str) -> list[str] | None:
    if not isinstance(describe, Mapping):
        return None
    names = [_s(f.get("name")) for f in describe.get("fields") or [] if isinstance(f, Mapping)]
    return sorted(n[len(prefix):] for n in names if n.startswith(prefix) and len(n) > len(prefix))


def _maximum(rec: Any, fields: Iterable[str]) -> dict[str, bool]:
    """The license's ``MaximumPermissions<X>`` for each of ``fields`` (its describe's), from its record."""
    rec = rec if isinstance(rec, Mapping) else {}
    return {p: bool(rec.get("MaximumPermissions" + p)) for p in fields}


def read_users(runner: SfRunner, inv: Inventory, user_ids: Iterable[str], *, deep: bool = False) -> None:
    """Round 2: everything about ``user_ids`` a discovery shows or a snapshot keeps, into ``inv``."""
    ids = sorted(set(user_ids))
    if not ids:
        return
    profiles = sorted({u.profile_id for u in inv.users if u.id in set(ids) and u.profile_id})
    q: dict[str, str] = {}
    for i, g in enumerate(chunks(ids, IDS_PER_QUERY)):
        u = in_list(g)
        assigned = f"SELECT PermissionSetId FROM PermissionSetAssignment WHERE AssigneeId IN {u}"
        q[f"logins{i}"] = (f"SELECT UserId, LoginType, Application, COUNT(Id) n, MAX(LoginTime) latest FROM "
                           f"LoginHistory WHERE LoginTime = LAST_N_DAYS:{int(inv.days)} AND UserId IN {u} "
                           "GROUP BY UserId, LoginType, Application")
        q[f"tokens{i}"] = f"SELECT UserId, AppName, UseCount, LastUsedDate FROM OauthToken WHERE UserId IN {u}"
        q[f"psa{i}"] = ("SELECT Id, AssigneeId, PermissionSetId, PermissionSet.Name, PermissionSet.Label, "
                        "PermissionSet.LicenseId, PermissionSet.IsOwnedByProfile, PermissionSet.NamespacePrefix, "
                        "PermissionSet.Type, PermissionSetGroupId, PermissionSetGroup.DeveloperName, "
                        "PermissionSetGroup.MasterLabel, PermissionSetGroup.Status, ExpirationDate FROM "
                        f"PermissionSetAssignment WHERE AssigneeId IN {u}")
        q[f"psla{i}"] = ("SELECT Id, AssigneeId, PermissionSetLicenseId, PermissionSetLicense.DeveloperName FROM "
                         f"PermissionSetLicenseAssign WHERE AssigneeId IN {u}")
        q[f"upl{i}"] = ("SELECT Id, UserId, PackageLicenseId, PackageLicense.NamespacePrefix FROM UserPackageLicense "
                        f"WHERE UserId IN {u}")
        q[f"components{i}"] = ("SELECT Id, PermissionSetGroupId, PermissionSetId, PermissionSet.Name, "
                               "PermissionSet.Label, PermissionSet.LicenseId, PermissionSet.Type, "
                               "PermissionSet.NamespacePrefix FROM PermissionSetGroupComponent WHERE "
                               "PermissionSetGroupId IN (SELECT PermissionSetGroupId FROM PermissionSetAssignment "
                               f"WHERE AssigneeId IN {u})")
        _access_queries(q, "set", i, assigned, ENTITY_TYPES, deep)
        if deep:
            features = "".join(", " + f for f in inv.feature_fields or ())
            q[f"userRecords{i}"] = f"SELECT Id, UserRoleId, UserRole.Name{features} FROM User WHERE Id IN {u}"
            q[f"members{i}"] = ("SELECT Id, GroupId, Group.Name, Group.Type, UserOrGroupId FROM GroupMember WHERE "
                                f"UserOrGroupId IN {u}")
    for i, g in enumerate(chunks(profiles, IDS_PER_QUERY)):
        owned = f"SELECT Id FROM PermissionSet WHERE ProfileId IN {in_list(g)}"
        q[f"profileSets{i}"] = f"SELECT Id, Name, Label, ProfileId FROM PermissionSet WHERE ProfileId IN {in_list(g)}"
        _access_queries(q, "profile", i, owned, ENTITY_TYPES, deep)
    records: dict[str, str] = {}      # key -> sObject path, each read as one record
    if deep:
        psl = inv.psl()
        if inv.maximum_fields and inv.psl_maximum is None and psl is not None:
            # a real org has some 1,800 MaximumPermissions fields: named in SOQL they take six queries
            # (each URI under the 16,384 bytes of KB 000386264); the record itself is one subrequest
            records["max"] = f"PermissionSetLicense/{psl.id}"
        # the sets inside groups, whichever groups: one level of semi-join is all SOQL allows, and the
        # groups are not known yet (few sets sit in groups; this spares a round). Only their connected
        # apps matter: their Apex and page access travels in their metadata.
        _access_queries(q, "groupSet", 0, "SELECT PermissionSetId FROM PermissionSetGroupComponent",
                        ("ConnectedApplication",), deep)
    r = commands.query_all(runner, q, inv.org.alias or inv.org.username, inv.org.api_version, rows=records)

    def rows(prefix: str) -> list[dict[str, Any]]:
        return [x for k in sorted(r) if k.startswith(prefix) and k[len(prefix):].isdigit() for x in r[k]]

    if "max" in r:
        inv.psl_maximum = _maximum(r["max"], inv.maximum_fields or ())
    inv.logins += [Login(_s(x.get("UserId")), _s(x.get("LoginType")), x.get("Application"), _int(x.get("n")),
                         x.get("latest")) for x in rows("logins")]
    inv.tokens += [Token(_s(x.get("UserId")), _s(x.get("AppName")), _int(x.get("UseCount")), x.get("LastUsedDate"))
                   for x in rows("tokens")]
    inv.assignments += [Assignment(
        x["Id"], _s(x.get("AssigneeId")), _s(x.get("PermissionSetId")), _s(_rel(x, "PermissionSet.Name")),
        _s(_rel(x, "PermissionSet.Label")), _rel(x, "PermissionSet.LicenseId"),
        bool(_rel(x, "PermissionSet.IsOwnedByProfile")), _rel(x, "PermissionSet.NamespacePrefix"),
        _rel(x, "PermissionSet.Type"), x.get("PermissionSetGroupId"), _rel(x, "PermissionSetGroup.DeveloperName"),
        _rel(x, "PermissionSetGroup.MasterLabel"), _rel(x, "PermissionSetGroup.Status"), x.get("ExpirationDate"))
        for x in rows("psa")]
    inv.psl_assignments += [PslAssignment(x["Id"], _s(x.get("AssigneeId")), _s(x.get("PermissionSetLicenseId")),
                                          _s(_rel(x, "PermissionSetLicense.DeveloperName"))) for x in rows("psla")]
    inv.package_assignments += [PackageAssignment(x["Id"], _s(x.get("UserId")), _s(x.get("PackageLicenseId")),
                                                  _s(_rel(x, "PackageLicense.NamespacePrefix"))) for x in rows("upl")]
    seen = {c.id for c in inv.components}
    inv.components += [c for c in (_component(x) for x in rows("components")) if c.id not in seen]
    _add_access(inv, rows("setAccess") + rows("profileAccess") + rows("groupSetAccess"))
    known = {p.id for p in inv.profile_sets}
    inv.profile_sets += [NamedRecord(x["Id"], _s(x.get("Name")), _s(x.get("Label")), profile_id=x.get("ProfileId"))
                         for x in rows("profileSets") if x["Id"] not in known]
    if deep:
        known = {x.user_id for x in inv.user_records}
        inv.user_records += [UserRecord(x["Id"], x.get("UserRoleId"), _rel(x, "UserRole.Name"),
                                        tuple(sorted(f for f in inv.feature_fields or () if x.get(f))))
                             for x in rows("userRecords") if x["Id"] not in known]
        seen_m = {m.id for m in inv.memberships}
        inv.memberships += [Membership(x["Id"], _s(x.get("UserOrGroupId")), _s(x.get("GroupId")),
                                       _s(_rel(x, "Group.Name")), _s(_rel(x, "Group.Type")))
                            for x in rows("members") if x["Id"] not in seen_m]
        kinds = ("set", "profile", "groupSet")
        for k in kinds:
            for x in rows(f"{k}Objects"):
                inv.object_counts[_s(x.get("ParentId"))] = _int(x.get("n"))
            for x in rows(f"{k}Fields"):
                inv.field_counts[_s(x.get("ParentId"))] = _int(x.get("n"))
        inv.objects = sorted({*inv.objects, *(_s(x.get("SobjectType")) for k in kinds
                                              for x in rows(f"{k}ObjectNames") + rows(f"{k}FieldObjects"))})


def _access_queries(q: dict[str, str], kind: str, i: int, parents: str, entity_types: Iterable[str],
                    deep: bool) -> None:
    """The SetupEntityAccess rows of the permission sets ``parents`` (a semi-join) selects and, when
    ``deep``, how many object and field permission rows each holds and the objects they name."""
    within = f"ParentId IN ({parents})"
    q[f"{kind}Access{i}"] = ("SELECT Id, ParentId, SetupEntityId, SetupEntityType FROM SetupEntityAccess WHERE "
                             f"SetupEntityType IN {in_list(entity_types)} AND {within}")
    if deep:
        q[f"{kind}Objects{i}"] = f"SELECT ParentId, COUNT(Id) n FROM ObjectPermissions WHERE {within} GROUP BY ParentId"
        q[f"{kind}Fields{i}"] = f"SELECT ParentId, COUNT(Id) n FROM FieldPermissions WHERE {within} GROUP BY ParentId"
        q[f"{kind}ObjectNames{i}"] = f"SELECT SobjectType FROM ObjectPermissions WHERE {within} GROUP BY SobjectType"
        q[f"{kind}FieldObjects{i}"] = f"SELECT SobjectType FROM FieldPermissions WHERE {within} GROUP BY SobjectType"


def _component(x: Mapping[str, Any]) -> Component:
    return Component(x["Id"], _s(x.get("PermissionSetGroupId")), _s(x.get("PermissionSetId")),
                     _s(_rel(x, "PermissionSet.Name")), _s(_rel(x, "PermissionSet.Label")),
                     _rel(x, "PermissionSet.LicenseId"), _rel(x, "PermissionSet.Type"),
                     _rel(x, "PermissionSet.NamespacePrefix"))


def _add_access(inv: Inventory, rows: Sequence[Mapping[str, Any]]) -> None:
    seen = {a.id for a in inv.access}
    for x in rows:
        if x["Id"] not in seen:
            seen.add(x["Id"])
            inv.access.append(Access(x["Id"], _s(x.get("ParentId")), _s(x.get("SetupEntityId")),
                                     _s(x.get("SetupEntityType"))))
