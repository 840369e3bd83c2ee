"""``package.xml`` manifests.

A Profile retrieve returns entries only for components of types in the same request, except
userPermissions, loginIpRanges and loginHours, which always come back; ``CustomObject:*`` does not
include standard objects, so they are listed by name (Metadata API Profile doc; docs/salesforce-facts.md
A4). :func:`retrieve_manifest` therefore sends, with the profiles, every type a profile section
refers to.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from sf_intuser.metadata import schema
from sf_intuser.metadata.xml import DEFAULT_STYLE, add, children, new_root, parse, serialize, text

#: Types whose access a profile or permission set records, so they travel with it in a retrieve.
PROFILE_COMPANION_TYPES = (
    "ApexClass",            # classAccesses
    "ApexPage",             # pageAccesses
    "CustomApplication",    # applicationVisibilities
    "CustomObject",         # objectPermissions, fieldPermissions, custom settings and metadata types
    "CustomPermission",     # customPermissions
    "CustomTab",            # tabVisibilities
    "ExternalDataSource",   # externalDataSourceAccesses
    "Flow",                 # flowAccesses
    "Layout",               # layoutAssignments
    "RecordType",           # recordTypeVisibilities
)

#: Standard objects an integration typically touches; always listed explicitly.
DEFAULT_STANDARD_OBJECTS = (
    "Account", "Asset", "Campaign", "CampaignMember", "Case", "Contact", "Contract", "Event", "Lead",
    "Opportunity", "OpportunityLineItem", "Order", "OrderItem", "Pricebook2", "PricebookEntry", "Product2",
    "Quote", "Task", "User",
)


def build(members: Mapping[str, Iterable[str]], version: str | None = None) -> bytes:
    """A package.xml with types sorted by name and members sorted, as the CLI writes it."""
    root = new_root("Package")
    for type_name in sorted(members):
        names = sorted(set(members[type_name]))
        if not names:
            continue
        t = add(root, "types")
        for m in names:
            add(t, "members", m)
        add(t, "name", type_name)
    add(root, "version", version or schema.api_version())
    return serialize(root, DEFAULT_STYLE, fresh=True)


def retrieve_manifest(
    profiles: Iterable[str] = (),
    permission_sets: Iterable[str] = (),
    *,
    groups: Iterable[str] = (),
    standard_objects: Iterable[str] = DEFAULT_STANDARD_OBJECTS,
    connected_apps: Iterable[str] = ("*",),
    version: str | None = None,
) -> bytes:
    members: dict[str, list[str]] = {t: ["*"] for t in PROFILE_COMPANION_TYPES}
    members["CustomObject"] = ["*", *standard_objects]
    members["Profile"] = list(profiles)
    members["PermissionSet"] = list(permission_sets)
    members["PermissionSetGroup"] = list(groups)
    members["ConnectedApp"] = list(connected_apps)
    return build(members, version)


def read(data: bytes, source: str = "package.xml") -> dict[str, list[str]]:
    doc = parse(data, source)
    out: dict[str, list[str]] = {}
    for t in children(doc.root, "types"):
        out.setdefault(text(t, "name") or "", []).extend(m.text or "" for m in children(t, "members"))
    return out


def version_of(data: bytes) -> str | None:
    return text(parse(data).root, "version")
