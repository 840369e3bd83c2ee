"""Hand-built inventories and metadata for the read side's unit tests (discover, plan, snapshot)."""

from __future__ import annotations

from sf_intuser.org import inventory as inv_mod

ORG = inv_mod.Org("00D000000000009AAA", "Test Org", "Enterprise Edition", False, "https://test.example",
                  "admin@test.example", "test", "60.0")

LIC_SF = inv_mod.UserLicense("100000000000001AAA", "Salesforce", 50, 10)
LIC_INT = inv_mod.UserLicense("100000000000002AAA", "Salesforce Integration", 5, 1)
PSL_API = inv_mod.Psl("0PL000000000001AAA", "SalesforceAPIIntegrationPsl", "Salesforce API Integration", 5, 1, True)
PSL_CPQ = inv_mod.Psl("0PL000000000002AAA", "SalesforceCPQ_CPQStandardPerm", "CPQ", 10, 1, False)
STD = inv_mod.NamedRecord("00e000000000099AAA", "Minimum Access - API Only Integrations",
                          license_id=LIC_INT.id)

NS = 'xmlns="http://soap.sforce.com/2006/04/metadata"'


def profile_xml(perms=("ApiEnabled", "ApiUserOnly"), ranges=(), hours=False, objects=("Account",),
                license="Salesforce") -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', f"<Profile {NS}>", "    <custom>true</custom>"]
    if hours:
        parts.append("    <loginHours><mondayEnd>1200</mondayEnd><mondayStart>360</mondayStart></loginHours>")
    for s, e in ranges:
        parts.append(f"    <loginIpRanges><endAddress>{e}</endAddress><startAddress>{s}</startAddress></loginIpRanges>")
    for o in objects:
        parts.append(f"    <objectPermissions><allowCreate>false</allowCreate><allowDelete>false</allowDelete>"
                     f"<allowEdit>true</allowEdit><allowRead>true</allowRead><modifyAllRecords>false</modifyAllRecords>"
                     f"<object>{o}</object><viewAllRecords>false</viewAllRecords></objectPermissions>")
    parts.append(f"    <userLicense>{license}</userLicense>")
    for p in sorted(perms):
        parts.append(f"    <userPermissions><enabled>true</enabled><name>{p}</name></userPermissions>")
    parts.append("</Profile>")
    return "\n".join(parts).encode()


def set_xml(label, perms=("ApiEnabled",), license=None, objects=("Contact",)) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', f"<PermissionSet {NS}>",
             "    <hasActivationRequired>false</hasActivationRequired>", f"    <label>{label}</label>"]
    if license:
        parts.append(f"    <license>{license}</license>")
    for o in objects:
        parts.append(f"    <objectPermissions><allowCreate>true</allowCreate><allowDelete>false</allowDelete>"
                     f"<allowEdit>true</allowEdit><allowRead>true</allowRead><modifyAllRecords>false</modifyAllRecords>"
                     f"<object>{o}</object><viewAllRecords>false</viewAllRecords></objectPermissions>")
    for p in sorted(perms):
        parts.append(f"    <userPermissions><enabled>true</enabled><name>{p}</name></userPermissions>")
    parts.append("</PermissionSet>")
    return "\n".join(parts).encode()


def group_xml(label, members, muting=()) -> bytes:
    body = "".join(f"<mutingPermissionSets>{m}</mutingPermissionSets>" for m in muting) + \
        "".join(f"<permissionSets>{m}</permissionSets>" for m in members)
    return (f'<?xml version="1.0" encoding="UTF-8"?><PermissionSetGroup {NS}><label>{label}</label>{body}'
            "<status>Updated</status></PermissionSetGroup>").encode()


class Builder:
    """An inventory grown user by user, with the metadata a snapshot would hold."""

    def __init__(self, int_free: int = 4, psl_free: int = 4, maximum: dict | None = None,
                 known: list[str] | None = None) -> None:
        lic_int = inv_mod.UserLicense(LIC_INT.id, LIC_INT.name, LIC_INT.used + int_free, LIC_INT.used)
        psl = inv_mod.Psl(PSL_API.id, PSL_API.name, PSL_API.label, PSL_API.used + psl_free, PSL_API.used, True)
        self.inv = inv_mod.Inventory(ORG, 90, user_licenses=[LIC_SF, lic_int], psls=[psl, PSL_CPQ],
                                     api_profiles=[STD], org_permissions=known, psl_maximum=maximum)
        self.metadata: dict[str, dict[str, bytes]] = {"Profile": {}, "PermissionSet": {}, "PermissionSetGroup": {}}
        self.n = 0

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n:012d}AAA"

    def profile(self, name: str, xml: bytes | None = None, **kw) -> str:
        pid = self._id("00e")
        self.metadata["Profile"][name] = xml or profile_xml(**kw)
        self.inv.profile_sets.append(inv_mod.NamedRecord(self._id("0PS"), name.replace(" ", ""), name,
                                                         profile_id=pid))
        self._profiles = getattr(self, "_profiles", {})
        self._profiles[name] = pid
        return pid

    def user(self, username: str, profile: str, *, logins=(("Remote Access 2.0", "Middleware", 10),),
             active: bool = True, license: inv_mod.UserLicense = LIC_SF, sets=(), groups=(), psls=(),
             packages=()) -> inv_mod.User:
        if profile not in getattr(self, "_profiles", {}):
            self.profile(profile)
        u = inv_mod.User(self._id("005"), username, username.split("@")[0], active, "Standard",
                         self._profiles[profile], profile, license.id, license.name, None, None)
        self.inv.users.append(u)
        for t, app, n in logins:
            self.inv.logins.append(inv_mod.Login(u.id, t, app, n, "2026-11-20T10:00:00.000+0000"))
        for name, lic in sets:
            ps_id = self._id("0PS")
            self.inv.assignments.append(inv_mod.Assignment(self._id("0Pa"), u.id, ps_id, name, name, lic, False,
                                                           None, "Regular", None, None, None, None, None))
        for gname, members in groups:
            gid = self._id("0PG")
            self.inv.assignments.append(inv_mod.Assignment(self._id("0Pa"), u.id, self._id("0PS"), gname, gname,
                                                           None, False, None, "Group", gid, gname, gname, "Updated",
                                                           None))
            for name, lic in members:
                self.inv.components.append(inv_mod.Component(self._id("0PC"), gid, self._id("0PS"), name, name,
                                                             lic, "Regular", None))
        for psl in psls:
            self.inv.psl_assignments.append(inv_mod.PslAssignment(self._id("2LA"), u.id, psl.id, psl.name))
        for ns in packages:
            self.inv.package_assignments.append(inv_mod.PackageAssignment(self._id("051"), u.id, self._id("050"), ns))
        return u
