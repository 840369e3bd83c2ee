"""Profile rewrites for the Salesforce Integration license.

A profile's user license can never change (Salesforce IdeaExchange "Change User License of a
Profile", PM reply: not planned; trailheadapps/ebikes-lwc PR #55), so a user moves to an API-only
profile on the Salesforce Integration license and keeps its access through a license-less
permission set built from the old profile:

- :func:`to_permission_set`: everything the profile grants that a permission set can hold;
- :func:`plan_api_profiles`: one API-only profile per distinct set of login IP ranges and login
  hours (they live on the profile); profiles with neither map to the standard
  "Minimum Access - API Only Integrations" profile, which needs no new file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from lxml import etree

from sf_intuser.metadata import license_rules as rules
from sf_intuser.metadata import schema
from sf_intuser.metadata.access import Change
from sf_intuser.metadata.permission_set import MARKER, Rewrite, api_name, as_doc, build_permission_set
from sf_intuser.metadata.xml import (
    DEFAULT_STYLE,
    Document,
    add,
    child,
    children,
    flag,
    local,
    new_root,
    serialize,
    text,
)

API_PROFILE_PERMISSIONS = ("ApiEnabled", "ApiUserOnly", "ChatterInternalUser")
"""userPermissions of the standard API-only profile (retrieved copies in shared/corpus)."""


def user_license(data: bytes | Document, name: str = "") -> str | None:
    return text(as_doc(data, name).root, "userLicense")


def enabled_user_permissions(root: etree._Element) -> set[str]:
    return {text(u, "name") or "" for u in children(root, "userPermissions") if flag(u, "enabled")}


def to_permission_set(
    data: bytes | Document,
    profile_name: str,
    *,
    ps_name: str | None = None,
    label: str | None = None,
    license: str | None = None,
) -> Rewrite:
    """The license-less permission set holding what ``profile_name`` grants (``license`` may be the PSL)."""
    doc = as_doc(data, profile_name)
    if license not in (None, rules.INTEGRATION_PSL):
        raise ValueError(f"a converted profile's permission set is license-less or {rules.INTEGRATION_PSL}")
    root, changes = build_permission_set(
        doc.root,
        "Profile",
        label=label or f"{profile_name} (Integration)"[:80],
        description=f"{MARKER} from profile {profile_name} for the Salesforce Integration license",
        license=license,
        file=profile_name,
    )
    return Rewrite("PermissionSet", ps_name or api_name(profile_name, "_Intuser"),
                   serialize(root, DEFAULT_STYLE), changes, [profile_name])


# --- login policy and API-only profiles -------------------------------------------------------


@dataclass(frozen=True)
class LoginPolicy:
    """Login IP ranges and login hours of a profile, comparable across profiles."""

    ip_ranges: tuple[tuple[str, str], ...] = ()  # sorted (start, end)
    hours: tuple[tuple[str, str], ...] = ()  # sorted (field, minutes)
    descriptions: Mapping[tuple[str, str], str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def empty(self) -> bool:
        return not self.ip_ranges and not self.hours

    def to_dict(self) -> dict:
        return {
            "loginIpRanges": [{"startAddress": s, "endAddress": e} for s, e in self.ip_ranges],
            "loginHours": dict(self.hours),
        }


def login_policy(root: etree._Element) -> LoginPolicy:
    ranges = {}
    for r in children(root, "loginIpRanges"):
        key = ((text(r, "startAddress") or "").strip(), (text(r, "endAddress") or "").strip())
        ranges[key] = text(r, "description") or ""
    hours_el = child(root, "loginHours")
    hours = tuple(sorted((local(c), (c.text or "").strip()) for c in children(hours_el))) if hours_el is not None else ()
    return LoginPolicy(tuple(sorted(ranges)), hours, ranges)


@dataclass
class ApiProfilePlan:
    """Which API-only profile each source profile maps to, and the new profile files."""

    targets: dict[str, str]  # source profile -> API-only profile name
    profiles: list[Rewrite]
    changes: list[Change]


def api_only_profile(name: str, policy: LoginPolicy, permissions: set[str], sources: list[str]) -> Rewrite:
    """A custom profile on the Salesforce Integration license carrying only ``policy`` and API permissions."""
    root = new_root("Profile")
    add(root, "custom", "true")
    add(root, "description", f"{MARKER}: API-only profile for {', '.join(sources)}"[:255])
    if policy.hours:
        hours = add(root, "loginHours")
        for k, v in policy.hours:
            add(hours, k, v)
    for start, end in policy.ip_ranges:
        r = add(root, "loginIpRanges")
        desc = policy.descriptions.get((start, end))
        if desc:
            add(r, "description", desc)
        add(r, "endAddress", end)
        add(r, "startAddress", start)
    add(root, "userLicense", rules.INTEGRATION_USER_LICENSE)
    for perm in API_PROFILE_PERMISSIONS:
        if perm == "ApiUserOnly" or perm in permissions:
            u = add(root, "userPermissions")
            add(u, "enabled", "true")
            add(u, "name", perm)
    schema.sort_children(root, "Profile")
    changes = [Change("added", "loginIpRanges", f"{s}-{e}", "carried from the source profile", "login-policy",
                      file=name) for s, e in policy.ip_ranges]
    if policy.hours:
        changes.append(Change("added", "loginHours", "*", "carried from the source profile", "login-policy",
                              count=len(policy.hours), file=name))
    return Rewrite("Profile", name, serialize(root, DEFAULT_STYLE), changes, sources)


def plan_api_profiles(profiles: Mapping[str, bytes | Document], prefix: str = "API Only - ") -> ApiProfilePlan:
    """Group profiles by identical login policy; one API-only profile per non-empty group.

    A shared profile grants only the API permissions every one of its source profiles granted
    (``ApiUserOnly`` is a restriction and always set), so no user gains a permission.
    """
    groups: dict[LoginPolicy, list[str]] = {}
    perms: dict[str, set[str]] = {}
    docs: dict[str, Document] = {}
    for name, data in profiles.items():
        doc = as_doc(data, name)
        docs[name] = doc
        groups.setdefault(login_policy(doc.root), []).append(name)
        perms[name] = enabled_user_permissions(doc.root)
    targets: dict[str, str] = {}
    out: list[Rewrite] = []
    changes: list[Change] = []
    for policy, names in sorted(groups.items(), key=lambda kv: sorted(kv[1])[0]):
        names = sorted(names)
        if policy.empty:
            for n in names:
                targets[n] = rules.STANDARD_API_PROFILE
                changes.append(Change("mapped", "Profile", n,
                                      f"no login IP ranges or hours: users move to {rules.STANDARD_API_PROFILE}",
                                      "standard-api-profile", rules.HELP_INTEGRATION_USER, "V", file=n))
            continue
        target = f"{prefix}{names[0]}"[:255]
        common = set.intersection(*(perms[n] for n in names))
        if "ApiEnabled" not in common:
            changes.append(Change("warning", "userPermissions", "ApiEnabled",
                                  "a source profile does not grant API Enabled; the API-only profile will not either",
                                  "least-privilege", file=target))
        rw = api_only_profile(target, policy, common, names)
        out.append(rw)
        changes.extend(rw.changes)
        for n in names:
            targets[n] = target
            changes.append(Change("mapped", "Profile", n, f"users move to API-only profile {target!r}"
                                  + (f" shared with {len(names) - 1} other profile(s)" if len(names) > 1 else ""),
                                  "login-policy", file=n))
    return ApiProfilePlan(targets, out, changes)
