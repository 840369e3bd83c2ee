"""The access a Profile or PermissionSet grants, as comparable values, and the change records.

``grants(root)`` flattens a file into a set of ``Grant(section, key, what)`` tuples, in permission
set vocabulary (a profile's ``tabVisibilities`` DefaultOn/DefaultOff become the ``tabSettings``
Visible/Available they map to). Least privilege is then a subset test: what the tool writes must
grant nothing that the input did not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from lxml import etree

from sf_intuser.metadata import schema
from sf_intuser.metadata.xml import children, local

#: The field that names an entry, per repeated section (retrieve order sorts on it).
SECTION_KEYS: dict[str, str] = {
    "agentAccesses": "agentName",
    "applicationVisibilities": "application",
    "classAccesses": "apexClass",
    "customMetadataTypeAccesses": "name",
    "customPermissions": "name",
    "customSettingAccesses": "name",
    "dataspaceScopes": "dataspaceScope",
    "emailRoutingAddressAccesses": "name",
    "externalCredentialPrincipalAccesses": "externalCredentialPrincipal",
    "externalDataSourceAccesses": "externalDataSource",
    "fieldPermissions": "field",
    "flowAccesses": "flow",
    "genComputingSummaryDefAccesses": "configName",
    "objectPermissions": "object",
    "pageAccesses": "apexPage",
    "recordTypeVisibilities": "recordType",
    "servicePresenceStatusAccesses": "servicePresenceStatus",
    "tabSettings": "tab",
    "tabVisibilities": "tab",
    "userPermissions": "name",
    "layoutAssignments": "layout",
}

#: Boolean fields that choose a default rather than grant access.
NON_GRANT_FLAGS = frozenset({"default", "personAccountDefault"})

#: Profile tabVisibilities -> PermissionSet tabSettings (shane-sfdx-plugins permsetProfileMetadata.ts).
TAB_VISIBILITY_MAP = {"DefaultOn": "Visible", "DefaultOff": "Available", "Hidden": "None"}
TAB_GRANTS = frozenset({"Visible", "Available"})


@dataclass(frozen=True, order=True)
class Grant:
    section: str
    key: str
    what: str


@dataclass(frozen=True)
class Change:
    """One thing a rewrite kept, mapped, dropped, added or warns about, and why."""

    action: str  # kept | mapped | dropped | added | warning
    section: str
    name: str
    reason: str
    rule: str = ""
    source: str = ""
    status: str = ""
    count: int = 1
    file: str = ""

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in ("", None)}


def is_true(value: str | None) -> bool:
    """xsd:boolean truth ("true" or "1"); hand-edited files also say "True", which counts as granted."""
    return (value or "").strip().lower() in ("true", "1")


def entry_key(entry: etree._Element, section: str) -> str:
    key_field = SECTION_KEYS.get(section)
    if key_field:
        for c in children(entry, key_field):
            return c.text or ""
    # unknown section: the entry's whole content names it
    return "|".join(f"{local(c)}={c.text or ''}" for c in children(entry))


def entry_type(root_type: str, section: str) -> str | None:
    f = schema.field_map(root_type).get(section) if schema.is_known_type(root_type) else None
    return f.type if f is not None and schema.is_known_type(f.type) else None


def grant_flags(entry: etree._Element, etype: str | None) -> list[str]:
    """Names of the boolean grant fields that are true in ``entry``."""
    bools = None
    if etype:
        bools = {f.name for f in schema.fields(etype) if f.type == "xsd:boolean"} - NON_GRANT_FLAGS
    out = []
    for c in children(entry):
        name = local(c)
        if name in NON_GRANT_FLAGS:
            continue
        if bools is not None and name not in bools:
            continue
        if is_true(c.text):
            out.append(name)
    return out


def entry_grants(entry: etree._Element, root_type: str, section: str) -> list[Grant]:
    key = entry_key(entry, section)
    if section in ("tabVisibilities", "tabSettings"):
        vis = next((c.text for c in children(entry, "visibility")), None) or ""
        vis = TAB_VISIBILITY_MAP.get(vis, vis) if section == "tabVisibilities" else vis
        return [Grant("tabSettings", key, vis)] if vis in TAB_GRANTS else []
    etype = entry_type(root_type, section)
    grants = [Grant(section, key, flag) for flag in grant_flags(entry, etype)]
    # non-boolean access levels (dataspaceScopes) grant by value
    if etype:
        for f in schema.fields(etype):
            if f.type not in ("xsd:boolean",) and f.name != SECTION_KEYS.get(section) and f.name.endswith("AccessLevel"):
                for c in children(entry, f.name):
                    grants.append(Grant(section, key, f"{f.name}={c.text}"))
    return grants


def grants(root: etree._Element, type_name: str | None = None) -> set[Grant]:
    """Everything a Profile or PermissionSet grants (profile-only sections excluded)."""
    type_name = type_name or local(root)
    out: set[Grant] = set()
    for section_el in children(root):
        section = local(section_el)
        if section in SECTION_KEYS and section != "layoutAssignments":
            out.update(entry_grants(section_el, type_name, section))
    return out
