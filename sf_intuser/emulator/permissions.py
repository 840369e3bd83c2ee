"""The emulated org's permission model: which user permissions exist, which need others, and what
each user license and permission set license allows. Each rule names its source; the exact lists
Salesforce applies are not public ([U] in docs/salesforce-facts.md A2, A7 q6), so they are seed data,
with the entries taken from a source kept apart from those assumed.

Rules and the errors they raise (the texts as Salesforce words them, where it is known):

- an unknown user permission fails the component: ``Unknown user permission: X`` (deploy errors
  quoted in SFDO-Community/declarative-lookup-rollup-summaries issue 58 and forcedotcom/cli issue
  1529) [V-3P];
- a permission without one it depends on fails the component: ``Permission X depends on
  permission(s): Y, Z`` (jsforce issue 749; Tooling API PermissionDependency) [V-3P]; object
  permissions the same way, per object (``Permission Delete X depends on permission(s): Edit X``;
  ObjectPermissions reference) [V];
- a permission a license does not allow: ``The user license doesn't allow the permission: X``
  (forcedotcom/devops-center issue 290, for a profile) [V-3P], and for object access
  ``... the permission: Read Account`` (declarative-lookup-rollup-summaries issue 967) [V-3P].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from lxml import etree

from sf_intuser.metadata import license_rules
from sf_intuser.metadata import xml

#: ObjectPermissions flag -> the word Salesforce uses in a dependency error
OBJECT_FLAG_WORDS = {"allowRead": "Read", "allowCreate": "Create", "allowEdit": "Edit", "allowDelete": "Delete",
                     "viewAllRecords": "View All", "modifyAllRecords": "Modify All"}


def allowed_set(spec: Any, known: frozenset[str]) -> frozenset[str] | None:
    """A seed's ``allowedPermissions``/``maximumPermissions``: ``"*"`` (everything: None), a list, or
    ``{"sourced": {name: source}, "assumed": [names]}``."""
    if spec in (None, "*"):
        return None
    if isinstance(spec, list):
        return frozenset(spec)
    return frozenset(spec.get("sourced", {})) | frozenset(spec.get("assumed", []))


@dataclass
class PermissionModel:
    known: frozenset[str]
    dependencies: Mapping[str, tuple[str, ...]]
    object_dependencies: Mapping[str, tuple[str, ...]]
    #: user license name -> the user permissions it allows (None: all)
    license_allowed: dict[str, frozenset[str] | None] = field(default_factory=dict)
    #: permission set license DeveloperName -> its maximum permissions (MaximumPermissions<X> true)
    psl_max: dict[str, frozenset[str]] = field(default_factory=dict)
    #: permission set license DeveloperName -> the user licenses whose users may hold it (absent: any)
    psl_user_licenses: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def builtin(cls) -> "PermissionModel":
        return cls(license_rules.known_user_permissions(),
                   {p: d.requires for p, d in license_rules.PERMISSION_DEPENDENCIES.items()},
                   license_rules.object_dependencies())

    # --- reading a file ------------------------------------------------------------------------

    @staticmethod
    def user_permissions(root: etree._Element) -> dict[str, bool]:
        """``{name: enabled}`` of a profile's or permission set's userPermissions."""
        return {xml.text(u, "name") or "": (xml.text(u, "enabled") or "").strip().lower() == "true"
                for u in xml.children(root, "userPermissions")}

    # --- the checks (each returns the problem text, or None) -----------------------------------

    def unknown(self, names: Iterable[str]) -> str | None:
        for n in sorted(names):
            if n not in self.known:
                return f"Unknown user permission: {n}"
        return None

    def broken_dependency(self, enabled: Iterable[str]) -> str | None:
        on = set(enabled)
        for p in sorted(on):
            missing = [r for r in self.dependencies.get(p, ()) if r not in on]
            if missing:
                return f"Permission {p} depends on permission(s): {', '.join(missing)}"
        return None

    def broken_object_dependency(self, root: etree._Element) -> str | None:
        for op in xml.children(root, "objectPermissions"):
            obj = xml.text(op, "object") or ""
            flags = {xml.local(c): (c.text or "").strip().lower() == "true" for c in op}
            for flag, needed in self.object_dependencies.items():
                if flags.get(flag):
                    missing = [n for n in needed if not flags.get(n)]
                    if missing:
                        return (f"Permission {OBJECT_FLAG_WORDS[flag]} {obj} depends on permission(s): "
                                + ", ".join(f"{OBJECT_FLAG_WORDS[m]} {obj}" for m in missing))
        return None

    @staticmethod
    def not_allowed(enabled: Iterable[str], allowed: frozenset[str] | None) -> str | None:
        if allowed is None:
            return None
        for p in sorted(enabled):
            if p not in allowed:
                return f"The user license doesn't allow the permission: {p}"
        return None

    def allowed_for(self, license_name: str | None, psl_names: Iterable[str] = ()) -> frozenset[str] | None:
        """What a user of ``license_name`` holding ``psl_names`` may be granted (None: anything)."""
        base = self.license_allowed.get(license_name or "", None)
        if base is None:
            return None
        out = set(base)
        for n in psl_names:
            out |= self.psl_max.get(n, frozenset())
        return frozenset(out)
