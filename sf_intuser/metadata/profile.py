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
from typing import Any, Mapping

from lxml import etree

from sf_intuser.metadata import fastpath
from sf_intuser.metadata import license_rules as rules
from sf_intuser.metadata import schema
from sf_intuser.metadata.access import Change
from sf_intuser.metadata.naming import api_name
from sf_intuser.metadata.permission_set import MARKER, Rewrite, as_doc, build_permission_set
from sf_intuser.metadata.xml import (
    elements,
    DEFAULT_STYLE,
    MD_NS,
    Document,
    add,
    child,
    children,
    local,
    new_root,
    parse,
    serialize,
    text,
)

API_PROFILE_PERMISSIONS = ("ApiEnabled", "ApiUserOnly", "ChatterInternalUser")
"""userPermissions of the standard API-only profile (retrieved copies from real orgs:
Integration-User/Salesforce, GSA/SF_WorkSpace)."""


def user_license(data: bytes | Document, name: str = "") -> str | None:
    return text(as_doc(data, name).root, "userLicense")


_ENABLED_PERMISSIONS = etree.XPath(
    "m:userPermissions[translate(normalize-space(m:enabled), 'TRUE', 'true')='true' or normalize-space(m:enabled)='1']"
    "/m:name", namespaces={"m": MD_NS})


def enabled_user_permissions(root: etree._Element) -> set[str]:
    """Names of the user permissions ``root`` enables (``true`` in any case, or ``1``, as :func:`xml.flag`)."""
    return {el.text or "" for el in elements(_ENABLED_PERMISSIONS(root))}


def to_permission_set(
    data: bytes | Document,
    profile_name: str,
    *,
    ps_name: str | None = None,
    label: str | None = None,
    license: str | None = None,
    source: bytes | None = None,
    prefiltered: Mapping[str, int] | None = None,
    file: str | None = None,
    fast: bool = True,
    refused: Mapping[str, rules.Rule] | None = None,
) -> Rewrite:
    """The license-less permission set holding what ``profile_name`` grants (``license`` may be the PSL).

    A retrieved profile converts in place (:mod:`fastpath`), at little more than the cost of parsing
    and writing it. That uses the tree up: bytes are parsed here; a :class:`Document` is converted in
    place only when ``source`` gives the bytes it came from (to start again on the general path if
    the profile needs it), else it is left as it is; ``prefiltered`` counts what
    :func:`fastpath.prefilter` took out before that Document was parsed. ``file`` names the source in the changes
    (default: the profile name); ``fast=False`` forces the general path (tests compare the two);
    ``refused`` names user permissions the org refuses, with the rule to report."""
    if license not in (None, rules.INTEGRATION_PSL):
        raise ValueError(f"a converted profile's permission set is license-less or {rules.INTEGRATION_PSL}")
    if isinstance(data, Document):
        doc = data
    else:
        source = data
        if fast:
            data, prefiltered = fastpath.prefilter(data)
        doc = parse(data, profile_name, comments=False)
    label = label or f"{profile_name} (Integration)"[:80]
    description = f"{MARKER} from profile {profile_name} for the Salesforce Integration license"
    file = file or profile_name
    changes = None
    if fast and source is not None:
        changes = fastpath.to_permission_set(doc.root, label=label, description=description, license=license,
                                             file=file, comments_possible=doc.comments, prefiltered=prefiltered,
                                             refused=refused)
        if changes is None:   # the fast path gave up, maybe after taking entries out: start again
            doc = parse(source, profile_name, comments=False)
    if changes is not None:
        root, fresh = doc.root, not doc.comments   # parsed for a rewrite: no whitespace between elements
    else:
        root, changes = build_permission_set(doc.root, "Profile", label=label, description=description,
                                             license=license, file=file, refused=refused)
        fresh = not doc.comments   # entries may move over from the source with its whitespace
    return Rewrite("PermissionSet", ps_name or api_name(profile_name, "_Intuser"),
                   serialize(root, DEFAULT_STYLE, fresh=fresh), changes, [file])


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

    def to_dict(self) -> dict[str, Any]:
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


def api_profile_description(sources: list[str]) -> str:
    """How a generated API-only profile says it was made, and by whom (read back by naming.source_of, so a
    later plan finds and reuses it instead of making another)."""
    return f"{MARKER}: API-only profile for {', '.join(sources)}"[:255]


def api_only_profile(name: str, policy: LoginPolicy, permissions: set[str], sources: list[str]) -> Rewrite:
    """A custom profile on the Salesforce Integration license carrying only ``policy`` and API permissions."""
    root = new_root("Profile")
    add(root, "custom", "true")
    add(root, "description", api_profile_description(sources))
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
    return Rewrite("Profile", name, serialize(root, DEFAULT_STYLE, fresh=True), changes, sources)


def plan_api_profiles(profiles: Mapping[str, bytes | Document], prefix: str = "API Only - ") -> ApiProfilePlan:
    """Group profiles by identical login policy; one API-only profile per non-empty group."""
    facts = {}
    for name, data in profiles.items():
        root = as_doc(data, name).root
        facts[name] = (login_policy(root), enabled_user_permissions(root))
    return plan_api_profiles_for(facts, prefix)


def plan_api_profiles_for(profiles: Mapping[str, tuple[LoginPolicy, set[str]]],
                          prefix: str = "API Only - ") -> ApiProfilePlan:
    """Group profiles (name -> login policy and enabled user permissions) by identical login policy;
    one API-only profile per non-empty group.

    A shared profile grants only the API permissions every one of its source profiles granted
    (``ApiUserOnly`` is a restriction and always set), so no user gains a permission.
    """
    groups: dict[LoginPolicy, list[str]] = {}
    perms: dict[str, set[str]] = {}
    for name, (policy, enabled) in profiles.items():
        groups.setdefault(policy, []).append(name)
        perms[name] = enabled
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
