"""Seeds at scale: a seed with N generated integration users added, for benchmarks and load tests.

The users look like the integrations of a real org: they share a few profiles (one for every four
users), some of which carry login IP ranges (a range shared by two profiles, others of their own)
or login hours; they hold one to three permission sets, license-less, bound to the Salesforce
license (so they must be rewritten) or to the Salesforce API Integration permission set license;
one user in ten also holds a permission set group; their logins in the last 90 days are OAuth and
API logins of one application each. Everything generated respects the org's rules (known
permission names, dependencies met), as a real org's data would. Seats grow with N so that the
whole set fits: N more Salesforce seats, and N more Salesforce Integration and API Integration seats.

The same N always gives the same org (a seeded random generator).
"""

from __future__ import annotations

import copy
import random
from typing import Any

from sf_intuser.metadata import schema, xml

#: user permissions an integration's profile or permission set may grant; none of them requires
#: another (metadata/data/permission_dependencies.json)
POOL = ("ApiEnabled", "ApexRestServices", "ViewSetup", "RunReports", "ConvertLeads", "EditTask", "EditEvent",
        "ImportLeads", "ManageCases", "ManageLeads", "TransferAnyLead", "ScheduleJob", "RunFlow", "ViewRoles",
        "ViewAllUsers", "QueryAllFiles", "ManageDataIntegrations", "ViewEventLogFiles", "ExportReport",
        "LightningExperienceUser", "EmailMass", "ChatterOwnGroups")
OBJECTS = ("Account", "Contact", "Lead", "Opportunity", "Case", "Order", "Product2")
def _object(name: str) -> str:
    """A custom object (or a standard one's custom fields) with the fields the generated access names."""
    head = ("<deploymentStatus>Deployed</deploymentStatus>" if name.endswith("__c") else "")
    fields = "".join(f"<fields><fullName>{f}</fullName><label>{f[:-3].replace('_', ' ')}</label><length>80</length>"
                     "<type>Text</type></fields>" for f in ("External_Id__c", "Status__c"))
    tail = (f"<label>{name[:-3].replace('_', ' ')}</label><nameField><label>Name</label><type>Text</type></nameField>"
            f"<pluralLabel>{name[:-3].replace('_', ' ')}s</pluralLabel><sharingModel>ReadWrite</sharingModel>"
            if name.endswith("__c") else "")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<CustomObject xmlns="http://soap.sforce.com/2006/04/metadata">'
            f"{head}{fields}{tail}</CustomObject>\n")


APEX_META = ('<?xml version="1.0" encoding="UTF-8"?>\n<ApexClass xmlns="http://soap.sforce.com/2006/04/metadata">\n'
             "    <apiVersion>62.0</apiVersion>\n    <status>Active</status>\n</ApexClass>\n")


def _profile(rng: random.Random, i: int, ranges: list[tuple[str, str]], hours: bool) -> str:
    root = xml.new_root("Profile")
    xml.add(root, "custom", "true")
    for k in range(3):
        ca = xml.add(root, "classAccesses")
        xml.add(ca, "apexClass", f"IntegrationService{(i + k) % 7}")
        xml.add(ca, "enabled", "true" if k < 2 else "false")
    objs = sorted(rng.sample(OBJECTS, 3)) + [f"Sync_Record_{i % 5}__c"]
    for obj in sorted(objs):
        for fld in ("External_Id__c", "Status__c"):
            fp = xml.add(root, "fieldPermissions")
            xml.add(fp, "editable", "true" if fld == "Status__c" else "false")
            xml.add(fp, "field", f"{obj}.{fld}")
            xml.add(fp, "readable", "true")
    if hours:
        lh = xml.add(root, "loginHours")
        for day in ("friday", "monday", "thursday", "tuesday", "wednesday"):
            xml.add(lh, f"{day}End", "1200")
            xml.add(lh, f"{day}Start", "360")
    for start, end in ranges:
        r = xml.add(root, "loginIpRanges")
        xml.add(r, "endAddress", end)
        xml.add(r, "startAddress", start)
    for obj in sorted(objs):
        op = xml.add(root, "objectPermissions")
        edit = rng.random() < 0.6
        for flag, value in (("allowCreate", edit), ("allowDelete", False), ("allowEdit", edit), ("allowRead", True),
                            ("modifyAllRecords", False)):
            xml.add(op, flag, "true" if value else "false")
        xml.add(op, "object", obj)
        xml.add(op, "viewAllRecords", "false")
    xml.add(root, "userLicense", "Salesforce")
    perms = {"ApiEnabled", "ApiUserOnly", *rng.sample(POOL, 5)}
    for p in sorted(perms):
        up = xml.add(root, "userPermissions")
        xml.add(up, "enabled", "true")
        xml.add(up, "name", p)
    schema.sort_children(root, "Profile")
    return xml.serialize(root, fresh=True).decode()


def _permission_set(rng: random.Random, i: int, license: str | None) -> str:
    root = xml.new_root("PermissionSet")
    xml.add(root, "description", f"Integration access set {i}")
    xml.add(root, "hasActivationRequired", "false")
    xml.add(root, "label", f"Integration Access {i:03d}")
    if license:
        xml.add(root, "license", license)
    obj = f"Sync_Record_{i % 5}__c"
    op = xml.add(root, "objectPermissions")
    for flag in ("allowCreate", "allowDelete", "allowEdit", "allowRead", "modifyAllRecords"):
        xml.add(op, flag, "true" if flag in ("allowCreate", "allowEdit", "allowRead") else "false")
    xml.add(op, "object", obj)
    xml.add(op, "viewAllRecords", "false")
    pool = [p for p in POOL if p not in ("LightningExperienceUser", "EmailMass", "ChatterOwnGroups")] \
        if license == "SalesforceAPIIntegrationPsl" else POOL
    for p in sorted(rng.sample(pool, 3)):
        up = xml.add(root, "userPermissions")
        xml.add(up, "enabled", "true")
        xml.add(up, "name", p)
    return xml.serialize(root, fresh=True).decode()


def _group(members: list[str], i: int) -> str:
    root = xml.new_root("PermissionSetGroup")
    xml.add(root, "label", f"Integration Bundle {i:03d}")
    for m in members:
        xml.add(root, "permissionSets", m)
    xml.add(root, "status", "Updated")
    return xml.serialize(root, fresh=True).decode()


def scaled(spec: dict[str, Any], n: int) -> dict[str, Any]:
    """``spec`` with ``n`` generated integration users (and their profiles, sets, groups) added."""
    rng = random.Random(n)
    out = copy.deepcopy(spec)
    components: list[dict[str, str]] = list(out.get("components", []))
    # the Apex classes the generated profiles grant: a profile naming a class the org lacks is refused
    # on deploy (mdapi.REFERENCES), so without them no plan of a scaled org could be applied
    for k in range(7):
        components.append({"type": "ApexClass", "name": f"IntegrationService{k}",
                           "body": f"public with sharing class IntegrationService{k} {{}}\n", "meta": APEX_META})
    # the objects and fields the generated profiles and sets grant: a reference to an object or a custom
    # field the org lacks is refused on deploy too (mdapi._missing_reference)
    for obj in [*OBJECTS, *(f"Sync_Record_{k}__c" for k in range(5))]:
        components.append({"type": "CustomObject", "name": obj, "body": _object(obj)})
    n_profiles = max(1, (n + 3) // 4)
    shared = ("198.51.100.128", "198.51.100.191")
    profiles = []
    for i in range(n_profiles):
        ranges = [shared] if i % 4 == 1 or i % 4 == 2 else \
            [(f"203.0.{100 + i % 100}.0", f"203.0.{100 + i % 100}.255")] if i % 4 == 3 else []
        name = f"Integration Profile {i:03d}"
        components.append({"type": "Profile", "name": name,
                           "body": _profile(rng, i, ranges, hours=i % 5 == 4)})
        profiles.append(name)
    n_sets = max(2, n // 2)
    sets = []
    for i in range(n_sets):
        license = ("Salesforce", None, "SalesforceAPIIntegrationPsl")[i % 3]
        name = f"Integration_Access_{i:03d}"
        components.append({"type": "PermissionSet", "name": name, "body": _permission_set(rng, i, license)})
        sets.append((name, license))
    free_sets = [s for s, lic in sets if lic != "SalesforceAPIIntegrationPsl"]
    groups = []
    for i in range(max(1, n // 10)):
        members = sorted(rng.sample(free_sets, min(2, len(free_sets))))
        name = f"Integration_Bundle_{i:03d}"
        components.append({"type": "PermissionSetGroup", "name": name, "body": _group(members, i)})
        groups.append(name)
    out["components"] = components
    apps = ("Middleware", "Informatica Cloud", "Backup Connector", "Marketing Connector", "ERP Connector")
    users = list(out.get("users", []))
    for i in range(n):
        chosen = rng.sample(sets, rng.randint(1, 3))
        user: dict[str, Any] = {
            "username": f"integration.{i:03d}@scale.emulated", "name": f"Integration {i:03d}",
            "profile": profiles[i % n_profiles], "lastLogin": "-2h",
            "permissionSets": sorted(s for s, _ in chosen) + ([groups[i // 10 % len(groups)]] if i % 10 == 0 else []),
            "logins": [{"type": "Remote Access 2.0", "application": apps[i % len(apps)], "count": 12, "days": 60,
                        "ip": f"203.0.113.{i % 250}", "apiType": "REST", "apiVersion": "62.0"}]}
        if any(lic == "SalesforceAPIIntegrationPsl" for _, lic in chosen):
            user["permissionSetLicenses"] = ["SalesforceAPIIntegrationPsl"]
        users.append(user)
    out["users"] = users
    for lic in out.get("userLicenses", []):
        if lic["name"] in ("Salesforce", "Salesforce Integration"):
            lic["total"] = int(lic["total"]) + n
    for psl in out.get("permissionSetLicenses", []):
        if psl["developerName"] == "SalesforceAPIIntegrationPsl":
            psl["total"] = int(psl["total"]) + n
    return out
