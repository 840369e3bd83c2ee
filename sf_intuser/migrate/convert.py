"""Offline conversion: profiles and permission sets in, integration-ready metadata out. Pure.

For every profile not already on the Salesforce Integration license: a license-less permission set
with what it grants, and an API-only profile per distinct login policy. For every permission set:
a classification, and a license-less copy where it is bound to another user license. Permission set
groups are classified from their components. Connected apps are read for what they pre-authorize.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from sf_intuser.metadata import connected_app, profile as profile_md
from sf_intuser.metadata import permission_set as ps_md
from sf_intuser.metadata.access import Change
from sf_intuser.metadata.permission_set import Classification, Rewrite
from sf_intuser.metadata.xml import Document, MetadataXmlError, parse


@dataclass(frozen=True)
class Input:
    type: str
    name: str
    data: bytes
    origin: str = ""  # where it came from, for messages


@dataclass
class ConvertResult:
    outputs: list[Rewrite] = field(default_factory=list)
    classifications: list[Classification] = field(default_factory=list)
    profile_targets: dict[str, dict] = field(default_factory=dict)
    connected_apps: list[dict] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    errors: list[MetadataXmlError] = field(default_factory=list)


def convert(
    inputs: list[Input],
    *,
    psl: bool = False,
    user_licenses: frozenset[str] | None = None,
    psl_available: Mapping[str, bool] | None = None,
) -> ConvertResult:
    """Plan the rewrites for ``inputs``. Files that fail to parse land in ``errors``; nothing else stops."""
    res = ConvertResult()
    license = ps_md.rules.INTEGRATION_PSL if psl else None
    docs: dict[tuple[str, str], Document] = {}
    for item in inputs:
        try:
            docs[(item.type, item.name)] = parse(item.data, item.origin or item.name)
        except MetadataXmlError as exc:
            res.errors.append(exc)

    # permission sets first: groups need their components' verdicts
    verdicts: dict[str, Classification] = {}
    for (type_name, name), doc in sorted(docs.items()):
        if type_name != "PermissionSet":
            continue
        c = ps_md.classify(doc, name, user_licenses=user_licenses, psl_available=psl_available)
        verdicts[name] = c
        res.classifications.append(c)
        if c.verdict == "needs-rewrite":
            rw = ps_md.license_less_copy(doc, name, license=license)
            res.outputs.append(rw)
            res.changes.extend(rw.changes)
    for (type_name, name), doc in sorted(docs.items()):
        if type_name == "PermissionSetGroup":
            res.classifications.append(ps_md.classify_group(doc, name, verdicts))
        elif type_name == "ConnectedApp":
            res.connected_apps.append(connected_app.read(doc, name).to_dict())

    to_convert: dict[str, Document] = {}
    for (type_name, name), doc in sorted(docs.items()):
        if type_name != "Profile":
            continue
        lic = profile_md.user_license(doc)
        if lic == ps_md.rules.INTEGRATION_USER_LICENSE:
            res.skipped.append({"type": "Profile", "name": name, "reason": "already on the Salesforce Integration license"})
            continue
        to_convert[name] = doc
        rw = profile_md.to_permission_set(doc, name, license=license)
        res.outputs.append(rw)
        res.changes.extend(rw.changes)
    if to_convert:
        plan = profile_md.plan_api_profiles(to_convert)
        res.outputs.extend(plan.profiles)
        res.changes.extend(plan.changes)
        for name in to_convert:
            res.profile_targets[name] = {
                "apiOnlyProfile": plan.targets[name],
                "permissionSet": ps_md.api_name(name, "_Intuser"),
            }
    return res
