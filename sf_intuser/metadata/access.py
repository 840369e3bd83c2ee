"""The access a Profile or PermissionSet grants, as comparable values, and the change records.

``grants(root)`` flattens a file into a set of ``Grant(section, key, what)`` tuples, in permission
set vocabulary (a profile's ``tabVisibilities`` DefaultOn/DefaultOff become the ``tabSettings``
Visible/Available they map to). Least privilege is then a subset test: what the tool writes must
grant nothing that the input did not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from lxml import etree

from sf_intuser.metadata import schema
from sf_intuser.metadata.xml import children, local

if TYPE_CHECKING:
    from sf_intuser.metadata.license_rules import Rule

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

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k in _CHANGE_FIELDS if (v := getattr(self, k)) not in ("", None)}


_CHANGE_FIELDS = ("action", "section", "name", "reason", "rule", "source", "status", "count", "file")


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


#: One line for many record-type-default warnings of one file (see :func:`dropped_field_changes`).
RECORD_TYPE_DEFAULTS_SUMMARY = (
    "were the profile's default record types; a permission set can't carry a default, so API inserts of those "
    "objects without a RecordTypeId will get the API-only profile's default record type instead (the master record "
    "type unless set there)")


def dropped_field_changes(section: str, key: str, dropped: Mapping[str, str | None], file: str) -> list[Change]:
    """What leaving out an entry's fields that a permission set does not have means.

    ``default`` and ``personAccountDefault`` choose a default (the Metadata API's PermissionSet
    RecordTypeVisibility and ApplicationVisibility have no such field, WSDL v66): only a default
    that was *on* is reported. A default record type matters to the API: an insert without a
    RecordTypeId gets the user's default record type, which now comes from the API-only profile."""
    out: list[Change] = []
    other = sorted(n for n in dropped if n not in NON_GRANT_FLAGS)
    for flag_name in sorted(n for n in dropped if n in NON_GRANT_FLAGS and is_true(dropped[n])):
        if section == "recordTypeVisibilities":
            obj = key.split(".")[0]
            what = "person account" if flag_name == "personAccountDefault" else obj
            out.append(Change(
                "warning", section, key,
                f"{key} was the profile's default record type for {what}; a permission set can't carry a default, "
                f"so API inserts of {obj} without a RecordTypeId will get the API-only profile's default record "
                "type instead (the master record type unless set there)",
                "record-type-default", schema.WSDL_SOURCE, "V", file=file))
        else:
            out.append(Change("mapped", section, key, f"dropped {flag_name}=true: a default only chooses what the "
                              "UI opens, and API-only users have no UI", "default-only", schema.WSDL_SOURCE, "V",
                              file=file))
    if other:
        out.append(Change("mapped", section, key, f"dropped {', '.join(other)} (not a PermissionSet field)",
                          "not-in-permission-set", schema.WSDL_SOURCE, "V", file=file))
    return out


def tab_map_changes(counts: Mapping[str, int], file: str) -> list[Change]:
    """One change per tab visibility mapped to a tab setting, with how many tabs it concerned
    (shane-sfdx-plugins permsetProfileMetadata.ts: DefaultOn -> Visible, DefaultOff -> Available)."""
    return [Change("mapped", "tabVisibilities", "*", f"tabVisibilities {vis} -> tabSettings {TAB_VISIBILITY_MAP[vis]}",
                   "tab-map", "shane-sfdx-plugins permsetProfileMetadata.ts", "V-3P", count=n, file=file)
            for vis, n in sorted(counts.items()) if vis in TAB_VISIBILITY_MAP]


def permission_changes(name: str, rule: "Rule", file: str) -> list[Change]:
    """What a user permission's rule (``license_rules.Rule``) means for the report: dropped, a
    warning, kept because another permission requires it, or nothing to say."""
    action = {"drop": "dropped", "warn": "warning"}.get(rule.action, "kept" if rule.id == "required" else "")
    return [Change(action, "userPermissions", name, rule.reason, rule.id, rule.source, rule.status, file=file)] \
        if action else []
