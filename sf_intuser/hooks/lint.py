"""The pre-deploy check: what must not reach an org that runs integration users.

Findings (each names the file, the element and the fix):

- error: an API-only profile (``userLicense`` Salesforce Integration) granting object access or a
  UI-only permission (object permissions cannot be edited on the API-only profile; access belongs
  in permission sets: help "Give Integration Users API Only Access");
- error: a permission set meant for integration users bound to another user license (it cannot be
  assigned: PermissionSetAssignment doc);
- error: a profile whose ``userLicense`` differs from its last committed version (a profile's
  license can never change; the deploy fails: trailheadapps/ebikes-lwc PR #55);
- error: unknown elements and invalid values (Metadata API schema v66), malformed or hostile XML;
- warning: elements out of schema order (deploys tolerate it, strict WSDL clients do not).

Pure: committed versions come through a callable so tests need no git.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

from sf_intuser.metadata import license_rules as rules
from sf_intuser.metadata import schema
from sf_intuser.metadata.access import entry_grants
from sf_intuser.metadata.permission_set import is_generated, license_of
from sf_intuser.metadata.xml import MetadataXmlError, children, flag, parse, text

INTEGRATION_NAME = re.compile(r"integration|intuser|api[ _-]?(only|user)", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning
    file: str
    element: str
    message: str
    fix: str
    rule: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LintInput:
    file: str
    type: str
    name: str
    data: bytes


def _meant_for_integration(name: str, label: str, root, explicit: set[str]) -> bool:
    return name in explicit or is_generated(root) or bool(INTEGRATION_NAME.search(name) or INTEGRATION_NAME.search(label))


def lint(
    items: Iterable[LintInput],
    *,
    committed: Callable[[str], bytes | None] = lambda _f: None,
    integration_permsets: Iterable[str] = (),
) -> list[Finding]:
    explicit = set(integration_permsets)
    out: list[Finding] = []
    for item in items:
        try:
            doc = parse(item.data, item.file)
        except MetadataXmlError as exc:
            out.append(Finding("error", item.file, "(file)", exc.problem, exc.fix, "xml"))
            continue
        root = doc.root
        if doc.type_name != item.type:
            out.append(Finding("error", item.file, doc.type_name,
                               f"root element is <{doc.type_name}>, expected <{item.type}> for this file name",
                               "Rename the file or fix its root element", "schema"))
            continue
        for p in schema.check(root, item.type):
            sev = "warning" if p.kind == "out-of-order" else "error"
            fix = {
                "unknown-element": "Remove the element or re-retrieve the file with a current API version",
                "out-of-order": "Reorder the elements as the Metadata API schema does (sf-intuser convert writes them in order)",
                "bad-value": "Use a value the schema allows",
            }[p.kind]
            out.append(Finding(sev, item.file, p.path, p.message, fix, "schema-" + p.kind))

        if item.type == "Profile":
            lic = text(root, "userLicense")
            api_only = lic == rules.INTEGRATION_USER_LICENSE
            if api_only:
                for i, op in enumerate(children(root, "objectPermissions"), 1):
                    if entry_grants(op, "Profile", "objectPermissions"):
                        obj = text(op, "object") or "?"
                        out.append(Finding(
                            "error", item.file, f"Profile/objectPermissions[{i}] ({obj})",
                            f"API-only profile on the Salesforce Integration license grants access to {obj}",
                            "Object access cannot live on the API-only profile: grant it in a permission set "
                            "(sf-intuser convert builds one) and set every flag here to false", "api-profile-objects"))
                for i, up in enumerate(children(root, "userPermissions"), 1):
                    pname = text(up, "name") or ""
                    if flag(up, "enabled") and rules.user_permission_rule(pname).id == "ui-only":
                        out.append(Finding(
                            "error", item.file, f"Profile/userPermissions[{i}] ({pname})",
                            f"API-only profile enables the UI permission {pname}",
                            "API-only users cannot log in to the UI: set it to false", "api-profile-ui"))
            before = committed(item.file)
            if before is not None and lic is not None:
                try:
                    old = text(parse(before, item.file + "@HEAD").root, "userLicense")
                except MetadataXmlError:
                    old = None
                if old is not None and old != lic:
                    out.append(Finding(
                        "error", item.file, "Profile/userLicense",
                        f"userLicense changed from {old!r} to {lic!r}; a profile's license can never change",
                        f"Restore {old!r} and create a new profile on {lic!r} instead "
                        "(sf-intuser convert writes API-only profiles)", "profile-license-change"))
        elif item.type == "PermissionSet":
            lic = license_of(root)
            label = text(root, "label") or ""
            if lic and _meant_for_integration(item.name, label, root, explicit):
                v = rules.classify_license(lic, item.name)
                if v.verdict == "needs-rewrite":
                    out.append(Finding(
                        "error", item.file, "PermissionSet/license",
                        f"permission set for integration users is bound to the {lic!r} user license: {v.reason}",
                        "Remove <license> (license-less) or use SalesforceAPIIntegrationPsl; "
                        "sf-intuser convert writes a license-less copy", "integration-permset-license"))
                elif v.verdict == "blocked":
                    out.append(Finding("warning", item.file, "PermissionSet/license", v.reason,
                                       "Check the license in the org before assigning it to integration users",
                                       "integration-permset-psl"))
    return out
