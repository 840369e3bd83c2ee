"""The planner: a snapshot's inventory and metadata plus options in, a plan out. Pure (no sf, no files,
no clock: the caller passes the time).

For each user it decides the target and says why:

- the API-only profile: the standard "Minimum Access - API Only Integrations" when the old profile
  has no login IP ranges and no login hours; else one custom API-only profile per distinct set of
  ranges and hours (:func:`profile.plan_api_profiles_for`), made as a Profile record first and given
  its ranges and hours by deploy (the way Salesforce recommends for a new profile and the one that
  works whether or not the org accepts a brand-new profile by deploy, docs/salesforce-facts.md A4 [U]);
- a license-less permission set made from the old profile, named after the profile (stable: a
  second plan of the same profile finds and reuses it), with what was dropped and why;
- for each assigned permission set: re-assigned as it is, or a license-less copy where it is bound
  to another user license or holds a permission the org refuses an integration user; for each group:
  re-assigned as it is, or rebuilt from the copies (never dropped);
- user permissions the org refuses (unknown to it, or beyond the Salesforce API Integration
  permission set license's ``MaximumPermissions``) are left out of everything generated, each
  listed with the reason, so that an apply is not refused halfway;
- the ``SalesforceAPIIntegrationPsl`` assignment, connected-app access to grant again through
  SetupEntityAccess on the new sets (redeploying a connected app is fragile: docs/salesforce-facts.md
  A4), and the package licenses to keep;
- blockers, each with its fix: unknown or inactive user, already on the integration license, a UI
  login in the window, an add-on license integration users can't hold, a group with muting sets
  that would need rebuilding, not enough seats.

Nothing generated grants more than its one source granted, and no two sources become one set. The
plan's steps are ordered, each with its inverse and the records it touches, for ``apply``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from sf_intuser.config import UserConfig
from sf_intuser.metadata import license_rules as rules
from sf_intuser.metadata import naming, package_xml, profile as profile_md
from sf_intuser.metadata import permission_set as ps_md
from sf_intuser.metadata.access import Change
from sf_intuser.metadata.xml import DEFAULT_STYLE, MetadataXmlError, add, children, new_root, parse, serialize, text
from sf_intuser.org import discover as discover_mod
from sf_intuser.org.model import Inventory, NamedRecord, User

SCHEMA = "sf-intuser/plan"
VERSION = 1
SUFFIX = "_Intuser"
API_PROFILE_PREFIX = "API Only - "


@dataclass
class Request:
    usernames: list[str]
    created_at: str
    tool_version: str
    run: str = ""
    overrides: Mapping[str, UserConfig] = field(default_factory=dict)   # lower-case username -> choices
    discover: discover_mod.Options = field(default_factory=discover_mod.Options)
    license: str | None = None        # generated sets: license-less (None) or rules.INTEGRATION_PSL


@dataclass
class Plan:
    data: dict[str, Any]             # plan.json
    files: dict[str, bytes]          # metadata/ (Metadata API format), by path below it
    changes: list[Change]

    @property
    def planned(self) -> list[dict[str, Any]]:
        return [u for u in self.data["users"] if u["status"] == "planned"]

    @property
    def blocked(self) -> list[dict[str, Any]]:
        return [u for u in self.data["users"] if u["status"] == "blocked"]


def _blocker(problem: str, fix: str) -> dict[str, str]:
    return {"problem": problem, "fix": fix}


def _file_name(type_name: str, name: str) -> str:
    from urllib.parse import quote

    folder, ext = {"Profile": ("profiles", "profile"), "PermissionSet": ("permissionsets", "permissionset"),
                   "PermissionSetGroup": ("permissionsetgroups", "permissionsetgroup")}[type_name]
    return f"{folder}/{quote(name, safe=' -_.()&+@!$=;[]{}~^')}.{ext}"


def _enabled(data: bytes, name: str) -> set[str]:
    return profile_md.enabled_user_permissions(parse(data, name).root)


class _Generated:
    """What the plan generates, each from one source, named at the end (:func:`naming.allocate`)."""

    def __init__(self, inv: Inventory) -> None:
        self.requests: dict[tuple[str, str], naming.Request] = {}
        self.bodies: dict[tuple[str, str], Any] = {}
        self.fixed: dict[tuple[str, str], str] = {}
        found: dict[tuple[str, str], naming.Existing] = {}
        for r in inv.generated_sets:
            found[("PermissionSet", r.name.lower())] = naming.Existing("the org", naming.source_of(r.description))
        for r in inv.generated_groups:
            found[("PermissionSetGroup", r.name.lower())] = naming.Existing("the org",
                                                                            _group_source(r.description))
        for r in inv.api_profiles:
            found[("Profile", r.name.lower())] = naming.Existing("the org", naming.source_of(r.description))
        self.existing = naming.existing_lookup(found)
        self.names: dict[tuple[str, str], str] = {}
        self.warnings: list[str] = []

    def want(self, type_name: str, source: str, base: str, alternate: Callable[[int], str]) -> None:
        self.requests.setdefault((type_name, source), naming.Request(type_name, source, base, alternate))

    def allocate(self) -> None:
        self.names, self.warnings = naming.allocate(self.requests.values(), self.existing)
        self.names.update(self.fixed)

    def name(self, type_name: str, source: str) -> str:
        return self.names[(type_name, source)]

    def exists(self, type_name: str, name: str) -> bool:
        return self.existing(type_name, name) is not None


GROUP_MARKER = f"{ps_md.MARKER} from permission set group "


def _group_source(description: str | None) -> str | None:
    d = (description or "").strip()
    if d.startswith(GROUP_MARKER):
        return "permission set group " + d[len(GROUP_MARKER):].split(" for the Salesforce Integration license")[0]
    return None


def _ps_request(kind: str, name: str) -> tuple[str, str, Callable[[int], str]]:
    source = f"{kind} {name}"
    return source, naming.api_name(name, SUFFIX), \
        lambda n: naming.api_name(name, SUFFIX, tag=naming.short_hash(source, n))


def _hashed(name: str, source: str) -> Callable[[int], str]:
    """The name a group's copy takes when its first choice is taken: a hash of its source appended."""
    return lambda n: naming.api_name(name, SUFFIX, tag=naming.short_hash(source, n))


def _profile_alternate(base: str, first: str) -> Callable[[int], str]:
    return lambda n: f"{base[:70]} ({naming.short_hash(f'profile {first}', n)})"


def standard_api_profile(inv: Inventory) -> NamedRecord | None:
    """The org's "Minimum Access - API Only Integrations" profile, found by its Metadata API name (which
    is that name: its retrieved files, docs/salesforce-facts.md A1) or, in a snapshot without API names, by its
    SOQL name. Whether a translated org shows that label translated is [U]: the API name holds either way."""
    names = inv.profile_api or {}
    return next((p for p in inv.api_profiles if names.get(p.id[:15]) == rules.STANDARD_API_PROFILE), None) or \
        next((p for p in inv.api_profiles if p.name == rules.STANDARD_API_PROFILE), None)


def profile_label(label: str, api: str) -> str:
    """A profile for people: its label, and its Metadata API name where that differs."""
    return f"{label!r}" if not api or api == label else f"{label!r} (Metadata API name {api})"


# --- the phases ------------------------------------------------------------------------------------
#
# make_plan runs six phases in order. Each takes what the ones before it made, as the types below, and
# adds to the users' plan.json entries (plain dicts, as written); nothing private is stashed in them.
#
#   who      -> list[Candidate]      users that can be considered (blockers for the others)
#   access   -> AccessPlan           per user: its profile's set, its sets and groups (as-is, copy, rebuilt)
#   seats    -> (blockers added)     integration license and PSL seats, in username order
#   generate -> Generated            the metadata: sets from profiles, copies, rebuilt groups, API-only profiles
#   targets  -> Steps                per user: where it goes, what it is given; the steps' records
#   assemble -> Plan                 blocked users' metadata left out, package.xml, plan.json


@dataclass
class Context:
    """What every phase reads: the snapshot, the request and what follows from them."""
    inv: Inventory
    req: Request
    profiles: Mapping[str, bytes]
    sets: Mapping[str, bytes]
    groups: Mapping[str, bytes]
    refusals: rules.OrgRefusals
    user_licenses: frozenset[str]
    psl_available: dict[str, bool]
    gen: _Generated
    std_profile: Any
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, inv: Inventory, metadata: Mapping[str, Mapping[str, bytes]], req: Request) -> "Context":
        return cls(inv, req, metadata.get("Profile", {}), metadata.get("PermissionSet", {}),
                   metadata.get("PermissionSetGroup", {}), rules.OrgRefusals(inv.org_permissions, inv.psl_maximum),
                   frozenset(lic.name for lic in inv.user_licenses), {p.name: bool(p.for_integrations) for p in inv.psls},
                   _Generated(inv), standard_api_profile(inv))


@dataclass
class Candidate:
    """A user the plan considers after :func:`_who`: the org's record, its plan.json entry, its choices."""
    user: User
    entry: dict[str, Any]
    override: UserConfig

    @property
    def blocked(self) -> bool:
        return bool(self.entry["blockers"])


@dataclass
class UserAccess:
    """One user's access as :func:`_access` decided it, before names are given (:func:`_generate`)."""
    profile_source: str                     # the source the set made from its profile is named after
    assign: list[dict[str, Any]]            # sets: {"permissionSet"} as they are, or {"source", "copyOf"}
    groups: list[dict[str, Any]]            # groups: {"group"} as they are, or {"rebuilt", "source"}
    into: list[tuple[dict[str, Any], str, str]] = field(default_factory=list)   # (rewritten entry, kind, source)


@dataclass
class AccessPlan:
    users: dict[str, UserAccess] = field(default_factory=dict)            # username -> its access
    copies: dict[str, str] = field(default_factory=dict)                  # source set -> why it is copied
    rebuilt: dict[str, dict[str, Any]] = field(default_factory=dict)      # group name -> {source, data, members}
    policies: dict[str, tuple[profile_md.LoginPolicy, set[str]]] = field(default_factory=dict)
    policy_key: dict[str, str] = field(default_factory=dict)              # username -> key in policies
    chosen: dict[str, NamedRecord] = field(default_factory=dict)          # username -> profile sf-intuser.toml names


@dataclass
class Generated:
    """The metadata the plan deploys, and where each user's profile goes."""
    files: dict[str, bytes] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)             # plan.json "generated"
    group_members: dict[str, list[str]] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)                 # policy key -> API-only profile
    how: dict[str, str] = field(default_factory=dict)                     # profile -> how apply makes it
    changes: list[Change] = field(default_factory=list)


@dataclass
class Steps:
    """The records each kind of step touches, in the plan's order."""
    switch: list[dict[str, Any]] = field(default_factory=list)
    psl: list[dict[str, Any]] = field(default_factory=list)
    assign: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    access: list[dict[str, Any]] = field(default_factory=list)
    packages: list[dict[str, Any]] = field(default_factory=list)


def make_plan(inv: Inventory, metadata: Mapping[str, Mapping[str, bytes]], req: Request) -> Plan:
    ctx = Context.of(inv, metadata, req)
    users_out, candidates = _who(ctx)
    access = _access(ctx, candidates)
    _seats(ctx, candidates)
    planned = [c for c in candidates if not c.blocked]
    for e in users_out:
        if e["blockers"]:
            e["status"] = "blocked"
    out = _generate(ctx, planned, access)
    steps = _targets(ctx, planned, access, out)
    for e in users_out:
        if e["blockers"]:
            e["status"] = "blocked"
            e.pop("to", None)
    return _assemble(ctx, users_out, planned, out, steps)


def _who(ctx: Context) -> tuple[list[dict[str, Any]], list[Candidate]]:
    """Phase 1: each asked-for user once, with what rules it out (unknown, inactive, already moved, a UI
    login in the window); the rest become candidates."""
    inv, req = ctx.inv, ctx.req
    people = {a.lower() for a in req.discover.people_apps}
    users_out: list[dict[str, Any]] = []
    out: list[Candidate] = []
    seen: set[str] = set()
    for username in req.usernames:
        if username.lower() in seen:
            continue
        seen.add(username.lower())
        u = next((x for x in inv.users if x.username.lower() == username.lower()), None)
        entry: dict[str, Any] = {"username": username, "status": "planned", "blockers": [], "kept": [],
                                 "rewritten": [], "dropped": [], "warnings": []}
        users_out.append(entry)
        if u is None:
            entry["blockers"].append(_blocker(f"no user {username!r} in the org",
                                              "Check the username (sf data query -q \"SELECT Username FROM User "
                                              "WHERE Username LIKE '%part%'\") and plan it again"))
            continue
        entry.update({"username": u.username, "id": u.id, "name": u.name,
                      "from": {"profile": u.profile, "profileId": u.profile_id,
                               "profileApiName": inv.profile_api_name(u.profile_id, u.profile),
                               "license": u.license, "licenseId": u.license_id}})
        if not u.active:
            entry["blockers"].append(_blocker("the user is inactive: it holds no seat, so moving it saves nothing",
                                              "Leave it out, or activate it first if it is still needed"))
            continue
        if u.license == rules.INTEGRATION_USER_LICENSE:
            entry["blockers"].append(_blocker("already on the Salesforce Integration license",
                                              "Nothing to do: leave it out of the plan"))
            continue
        ev = discover_mod.evidence_of(inv, u, req.discover, {})
        entry["evidence"] = ev.to_dict()
        if ev.person_logins:
            entry["blockers"].append(_blocker(
                "a UI login inside the window: " + discover_mod._person_reason(ev, people),
                "If a person uses this account, give the integration its own user; if the logins were a one-off, "
                f"plan it again once the last {inv.days} days hold only API logins"))
            continue
        if not ev.api_logins and not ev.api_only:
            entry["warnings"].append(f"no API login in the last {inv.days} days and no API Only User: planned because "
                                     "it was asked for by name")
        out.append(Candidate(u, entry, req.overrides.get(u.username.lower(), UserConfig(u.username))))
    return users_out, out


def _access(ctx: Context, candidates: list[Candidate]) -> AccessPlan:
    """Phase 2: for each candidate, its profile (retrieved, parsed, its login policy) and what becomes
    of each permission set, group and permission set license it holds."""
    plan = AccessPlan()
    for c in candidates:
        ua = _profile_access(ctx, plan, c)
        if ua is None:
            continue
        plan.users[c.user.username] = ua
        held_sets, held_groups = _held(ctx, c)
        _set_access(ctx, plan, c, ua, held_sets)
        _group_access(ctx, plan, c, ua, held_groups)
        _psl_access(ctx, c)
        c.entry["packages"] = [{"namespace": p.namespace, "packageLicenseId": p.package_id}
                               for p in ctx.inv.of_user(ctx.inv.package_assignments, c.user.id)]
    return plan


def _profile_access(ctx: Context, plan: AccessPlan, c: Candidate) -> UserAccess | None:
    """The user's profile: its login policy (which decides the API-only profile) and the permission set
    its access moves to. None, with a blocker, when the profile can't be read."""
    inv, gen, u, ov, blockers = ctx.inv, ctx.gen, c.user, c.override, c.entry["blockers"]
    api = inv.profile_api_name(u.profile_id, u.profile)
    data = ctx.profiles.get(api)
    if data is None and not naming.retrievable(api):
        blockers.append(_blocker(*naming.too_long_blocker(u.profile, api)))
        return None
    if data is None:
        blockers.append(_blocker(f"the profile {profile_label(u.profile, api)} was not retrieved",
                                 "Run the plan again; if it stays, check the profile exists and can be retrieved "
                                 f"(sf project retrieve start --metadata \"Profile:{api or u.profile}\")"))
        return None
    try:
        root = parse(data, f"Profile {u.profile}").root
    except MetadataXmlError as exc:
        blockers.append(_blocker(str(exc), "Run the plan again (the retrieve may have been cut short)"))
        return None
    policy = profile_md.login_policy(root)
    if ov.api_only_profile:
        # sf-intuser.toml names the user's API-only profile: one of the org's on the integration license
        found = next((p for p in inv.api_profiles if p.name.lower() == ov.api_only_profile.lower()), None)
        if found is None:
            blockers.append(_blocker(f"sf-intuser.toml names the API-only profile {ov.api_only_profile!r}, which the org "
                                     "does not have on the Salesforce Integration license",
                                     "Create that profile on the Salesforce Integration license, or fix the name in "
                                     "sf-intuser.toml (api-only-profile)"))
        else:
            plan.chosen[u.username] = found
            if not policy.empty:
                c.entry["warnings"].append(f"its profile {u.profile!r} has login IP ranges or hours; the user takes "
                                           f"those of {found.name!r} (sf-intuser.toml api-only-profile)")
    if ov.add_ip_ranges:
        ranges = dict(policy.descriptions)
        for r in ov.add_ip_ranges:
            ranges.setdefault((r.start, r.end), r.description)
        policy = profile_md.LoginPolicy(tuple(sorted(ranges)), policy.hours, ranges)
        key = f"{u.profile} ({u.username})"
    else:
        key = u.profile
    if u.username not in plan.chosen:
        plan.policies[key] = (policy, profile_md.enabled_user_permissions(root))
        plan.policy_key[u.username] = key
    if policy.empty and ctx.std_profile is None and not ov.api_only_profile:
        blockers.append(_blocker(f"the org has no {rules.STANDARD_API_PROFILE!r} profile",
                                 "The org's edition lacks the Salesforce Integration license (Enterprise, "
                                 "Unlimited, Performance and Developer editions have it)"))
    source, base, alt = _ps_request("profile", u.profile)
    if ov.permission_set:
        gen.fixed[("PermissionSet", f"{source} as {ov.permission_set}")] = ov.permission_set
        holder = gen.existing("PermissionSet", ov.permission_set)
        if holder is not None and holder.source != source:
            blockers.append(_blocker(f"the permission set name {ov.permission_set!r} (sf-intuser.toml) is taken in "
                                     "the org by a set " + (f"generated from {holder.source}" if holder.source
                                                            else "sf-intuser did not generate"),
                                     "Choose another permission-set name for this user"))
    else:
        gen.want("PermissionSet", source, base, alt)
    return UserAccess(f"{source} as {ov.permission_set}" if ov.permission_set else source, [], [])


def _held(ctx: Context, c: Candidate) -> tuple[list[Any], list[Any]]:
    """The user's permission sets and groups (not its profile's own set), with a warning for each name
    sf-intuser.toml keeps or drops that the user does not hold."""
    mine = ctx.inv.of_user(ctx.inv.assignments, c.user.id)
    held_sets = [a for a in mine if not a.owned and not a.group_id]
    held_groups = [a for a in mine if a.group_id]
    names_held = {a.ps_name for a in held_sets} | {a.group_name or "" for a in held_groups}
    for name in (*(c.override.keep or ()), *c.override.drop):
        if name not in names_held:
            c.entry["warnings"].append(f"sf-intuser.toml names {name!r} for this user, who holds no permission set "
                                       "or group of that name")
    return held_sets, held_groups


def _left_out(ov: UserConfig, name: str) -> bool:
    return (ov.keep is not None and name not in ov.keep) or name in ov.drop


def _set_access(ctx: Context, plan: AccessPlan, c: Candidate, ua: UserAccess, held_sets: list[Any]) -> None:
    """Each permission set the user holds: as it is, a license-less copy, left out (sf-intuser.toml) or a
    blocker."""
    entry, inv = c.entry, ctx.inv
    for a in sorted(held_sets, key=lambda a: a.ps_name):
        if _left_out(c.override, a.ps_name):
            entry["dropped"].append({"kind": "PermissionSet", "name": a.ps_name,
                                     "reason": "left out by sf-intuser.toml (keep/drop)"})
            continue
        plan_set = _plan_set(a.ps_name, inv.license_name(a.license_id), ctx.sets.get(a.ps_name), ctx.refusals,
                             ctx.user_licenses, ctx.psl_available)
        if plan_set["verdict"] == "blocked":
            entry["blockers"].append(_blocker(f"permission set {a.ps_name}: {plan_set['reason']}", plan_set["fix"]))
            continue
        if plan_set["verdict"] == "copy":
            plan.copies[a.ps_name] = plan_set["reason"]
            src, b, al = _ps_request("permission set", a.ps_name)
            ctx.gen.want("PermissionSet", src, b, al)
            ua.assign.append({"source": a.ps_name, "copyOf": src, "expires": a.expires})
            rewritten = {"kind": "PermissionSet", "name": a.ps_name, "reason": plan_set["reason"]}
            entry["rewritten"].append(rewritten)
            ua.into.append((rewritten, "PermissionSet", src))
        else:
            ua.assign.append({"permissionSet": a.ps_name, "expires": a.expires})
            entry["kept"].append({"kind": "PermissionSet", "name": a.ps_name, "reason": plan_set["reason"]})


def _group_access(ctx: Context, plan: AccessPlan, c: Candidate, ua: UserAccess, held_groups: list[Any]) -> None:
    """Each permission set group the user holds: as it is when all its sets are assignable, else rebuilt
    from license-less copies (never dropped), or a blocker (muting, not retrieved, a set that can't be
    copied)."""
    inv, gen, entry, blockers = ctx.inv, ctx.gen, c.entry, c.entry["blockers"]
    for a in sorted(held_groups, key=lambda a: a.group_name or ""):
        gname = a.group_name or a.ps_name
        if _left_out(c.override, gname):
            entry["dropped"].append({"kind": "PermissionSetGroup", "name": gname,
                                     "reason": "left out by sf-intuser.toml (keep/drop)"})
            continue
        members = [m for m in inv.components if m.group_id[:15] == (a.group_id or "")[:15]]
        gdata = ctx.groups.get(gname)
        muting = [m.text or "" for m in children(parse(gdata, f"PermissionSetGroup {gname}").root,
                                                 "mutingPermissionSets")] if gdata else []
        plans = {m.ps_name: _plan_set(m.ps_name, inv.license_name(m.license_id), ctx.sets.get(m.ps_name),
                                      ctx.refusals, ctx.user_licenses, ctx.psl_available)
                 for m in members if (m.ps_type or "") != "Muting"}
        bad = {n: p for n, p in plans.items() if p["verdict"] == "blocked"}
        if not [p for p in plans.values() if p["verdict"] != "as-is"]:
            ua.groups.append({"group": gname, "expires": a.expires})
            entry["kept"].append({"kind": "PermissionSetGroup", "name": gname,
                                  "reason": f"all {len(plans)} of its permission sets are assignable as they are"})
            continue
        if bad:
            for n, p in sorted(bad.items()):
                blockers.append(_blocker(f"group {gname}: permission set {n}: {p['reason']}", p["fix"]))
            continue
        if muting or gdata is None:
            blockers.append(_blocker(
                f"group {gname} must be rebuilt from license-less copies, "
                + ("but it mutes permissions (mutingPermissionSets: " + ", ".join(muting) + "), and a muting "
                   "set belongs to one group: a rebuilt group would grant what the muting set takes away"
                   if muting else "but it was not retrieved"),
                "Rebuild the group by hand without the muting, or move this user by hand"))
            continue
        src = f"permission set group {gname}"
        gen.want("PermissionSetGroup", src, naming.api_name(gname, SUFFIX), _hashed(gname, src))
        for n, p in plans.items():
            if p["verdict"] == "copy":
                plan.copies[n] = p["reason"]
                s2, b2, al2 = _ps_request("permission set", n)
                gen.want("PermissionSet", s2, b2, al2)
        plan.rebuilt[gname] = {"source": src, "data": gdata, "members": plans}
        ua.groups.append({"rebuilt": gname, "source": src, "expires": a.expires})
        rewritten = {"kind": "PermissionSetGroup", "name": gname,
                     "reason": "holds " + ", ".join(f"{n} ({p['reason']})" for n, p in
                                                    sorted(plans.items()) if p["verdict"] == "copy")
                               + ": rebuilt from license-less copies (its members are not assigned "
                                 "one by one: the group keeps them together, as the admin set it up)"}
        entry["rewritten"].append(rewritten)
        ua.into.append((rewritten, "PermissionSetGroup", src))


def _psl_access(ctx: Context, c: Candidate) -> None:
    """Permission set licenses other than the integration PSL: kept where integrations may hold them."""
    for p in ctx.inv.of_user(ctx.inv.psl_assignments, c.user.id):
        if p.psl_name == rules.INTEGRATION_PSL:
            continue
        psl = ctx.inv.psl(p.psl_name)
        if psl is not None and psl.for_integrations:
            c.entry["kept"].append({"kind": "PermissionSetLicense", "name": p.psl_name,
                                    "reason": "available for integrations"})
        else:
            c.entry["dropped"].append({"kind": "PermissionSetLicense", "name": p.psl_name,
                                       "reason": "not available for integration users; nothing that comes along "
                                                 "needs it"})


def _seats(ctx: Context, candidates: list[Candidate]) -> None:
    """Phase 3: seats of the integration license and PSL, given out in username order; a user that
    holds the PSL keeps its seat through the move."""
    inv = ctx.inv
    lic = inv.user_license(rules.INTEGRATION_USER_LICENSE)
    psl = inv.psl(rules.INTEGRATION_PSL)
    free_lic = lic.free if lic else 0
    free_psl = psl.free if psl else 0
    seat_users = [(c.user, c.entry) for c in candidates if not c.blocked]
    holders = {p.user_id for p in inv.psl_assignments if p.psl_name == rules.INTEGRATION_PSL}
    psl_needed = 0
    for i, (u, e) in enumerate(sorted(seat_users, key=lambda ue: ue[0].username.lower())):
        new_psl = u.id not in holders
        psl_needed += new_psl
        if lic is None:
            e["blockers"].append(_blocker("the org has no Salesforce Integration user license",
                                          "Enterprise, Unlimited, Performance and Developer editions include it; ask "
                                          "Salesforce to provision it"))
        elif i >= free_lic:
            need = len(seat_users) - free_lic
            e["blockers"].append(_blocker(
                f"no free Salesforce Integration seat ({lic.total} total, {lic.used} used; {len(seat_users)} user(s) "
                f"to move)", f"Buy {need} more Salesforce Integration seat(s) (list price $10 a user a month), or "
                             "plan fewer users (-u)"))
        elif psl is None:
            e["blockers"].append(_blocker("the org has no Salesforce API Integration permission set license",
                                          "Ask Salesforce to provision SalesforceAPIIntegrationPsl with the "
                                          "Salesforce Integration license"))
        elif new_psl and psl_needed > free_psl:
            short = sum(1 for x, _ in seat_users if x.id not in holders) - free_psl
            e["blockers"].append(_blocker(
                f"no free Salesforce API Integration permission set license ({psl.total} total, {psl.used} used)",
                f"Get {short} more SalesforceAPIIntegrationPsl seat(s), or plan fewer users"))


def _generate(ctx: Context, planned: list[Candidate], access: AccessPlan) -> Generated:
    """Phase 4: names for everything (:func:`naming.allocate`), then the metadata: a license-less set from
    each profile, a copy of each license-bound set, each rebuilt group, each custom API-only profile."""
    inv, gen, req = ctx.inv, ctx.gen, ctx.req
    out = Generated()
    used_profiles = {access.policy_key[c.user.username] for c in planned if c.user.username in access.policy_key}
    api_plan = profile_md.plan_api_profiles_for({k: v for k, v in access.policies.items() if k in used_profiles},
                                                prefix=API_PROFILE_PREFIX)
    for rw in api_plan.profiles:
        first = rw.sources[0]
        # label and API name alike (naming.profile_name), whatever the source profile is called
        base = naming.profile_name(f"{API_PROFILE_PREFIX}{first}")
        gen.want("Profile", f"profile {first}", base, _profile_alternate(base, first))
    gen.allocate()
    ctx.warnings.extend(gen.warnings)

    def put(type_name: str, name: str, data: bytes, source: str, kind: str) -> None:
        out.files[_file_name(type_name, name)] = data
        out.members.setdefault(type_name, []).append(name)
        out.items.append({"type": type_name, "name": name, "source": source, "kind": kind,
                          "file": "metadata/" + _file_name(type_name, name), "exists": gen.exists(type_name, name)})

    needed_profiles = {access.users[c.user.username].profile_source:
                       (c.user.profile, inv.profile_api_name(c.user.profile_id, c.user.profile),
                        c.override.permission_set) for c in planned}
    for source, (pname, api, override) in sorted(needed_profiles.items()):
        name = gen.name("PermissionSet", source) if not override else override
        rw = profile_md.to_permission_set(ctx.profiles[api], pname, ps_name=name, license=req.license,
                                          refused=ctx.refusals, file=f"profile {pname}")
        out.changes.extend(rw.changes)
        put("PermissionSet", name, rw.data, f"profile {pname}", "from-profile")
    rebuilt_of = [g["rebuilt"] for c in planned for g in access.users[c.user.username].groups if "rebuilt" in g]
    needed_copies = sorted({a["source"] for c in planned for a in access.users[c.user.username].assign
                            if "copyOf" in a}
                           | {n for g in rebuilt_of for n, p in access.rebuilt[g]["members"].items()
                              if p["verdict"] == "copy"})
    for sname in needed_copies:
        name = gen.name("PermissionSet", f"permission set {sname}")
        rw = ps_md.license_less_copy(ctx.sets[sname], sname, new_name=name, license=req.license,
                                     refused=ctx.refusals)
        out.changes.extend(_file(ch, f"permission set {sname}") for ch in rw.changes)
        put("PermissionSet", name, rw.data, f"permission set {sname}", "copy")
    for gname in sorted(set(rebuilt_of)):
        info = access.rebuilt[gname]
        name = gen.name("PermissionSetGroup", info["source"])
        src_root = parse(info["data"], f"PermissionSetGroup {gname}").root
        root = new_root("PermissionSetGroup")
        add(root, "description", f"{GROUP_MARKER}{gname} for the Salesforce Integration license"[:255])
        add(root, "hasActivationRequired", "false")
        add(root, "label", f"{text(src_root, 'label') or gname} (Integration)"[:80])
        for n in sorted(info["members"]):
            p = info["members"][n]
            add(root, "permissionSets", gen.name("PermissionSet", f"permission set {n}") if p["verdict"] == "copy"
                else n)
        add(root, "status", "Updated")
        put("PermissionSetGroup", name, serialize(root, DEFAULT_STYLE, fresh=True), info["source"], "rebuilt-group")
        out.group_members[name] = [ch.text or "" for ch in children(root, "permissionSets")]
    lic = inv.user_license(rules.INTEGRATION_USER_LICENSE)
    for rw in api_plan.profiles:
        name = gen.name("Profile", f"profile {rw.sources[0]}")
        for s in rw.sources:
            out.targets[s] = name
        exists = next((p for p in inv.api_profiles if p.name.lower() == name.lower()), None)
        if exists is not None and (exists.license_id or "")[:15] != ((lic.id if lic else "") or "")[:15]:
            for c in planned:
                if access.policy_key.get(c.user.username) in rw.sources:
                    c.entry["blockers"].append(_blocker(f"a profile named {name!r} exists on another license",
                                                        "Rename that profile, or set a different name"))
        put("Profile", name, rw.data, "login policy of " + ", ".join(rw.sources), "api-only-profile")
        out.items[-1]["description"] = profile_md.api_profile_description(list(rw.sources))
        out.how[name] = "deploy (the profile exists)" if exists else "record+deploy"
        out.changes.extend(_renamed(ch, f"{API_PROFILE_PREFIX}{rw.sources[0]}"[:255], name) for ch in rw.changes)
    for k, t in api_plan.targets.items():
        out.targets.setdefault(k, t)
    return out


def _targets(ctx: Context, planned: list[Candidate], access: AccessPlan, out: Generated) -> Steps:
    """Phase 5: each planned user's target (profile, sets, groups, connected-app access, what the license
    refuses), and the records of the steps."""
    inv, gen = ctx.inv, ctx.gen
    refused_by_source: dict[str, list[dict[str, Any]]] = {}
    for ch in out.changes:
        if ch.action == "dropped" and ch.section == "userPermissions":
            refused_by_source.setdefault(ch.file, []).append({"kind": "userPermission", "name": ch.name,
                                                             "reason": ch.reason, "rule": ch.rule,
                                                             "source": ch.source})
    carried: dict[str, dict[str, int]] = {}
    for ch in out.changes:
        if ch.action == "kept" and ch.file:
            carried.setdefault(ch.file, {})
            carried[ch.file][ch.section] = carried[ch.file].get(ch.section, 0) + ch.count
    steps = Steps()
    for c in planned:
        u, e, ov = c.user, c.entry, c.override
        if e["blockers"]:
            e["status"] = "blocked"
            continue
        ua = access.users[u.username]
        chosen = access.chosen.get(u.username)
        target = chosen.name if chosen is not None else out.targets[access.policy_key[u.username]]
        profile_set = gen.name("PermissionSet", ua.profile_source) if not ov.permission_set else ov.permission_set
        std = target == rules.STANDARD_API_PROFILE
        e["to"] = {"profile": target, "license": rules.INTEGRATION_USER_LICENSE,
                   "profileHow": "standard profile: nothing to create" if std else
                   "named in sf-intuser.toml: nothing to create" if chosen is not None else out.how.get(target, "deploy"),
                   "permissionSet": profile_set, "permissionSetLicense": rules.INTEGRATION_PSL}
        if chosen is not None:
            e["to"]["profileId"] = chosen.id
        elif std and ctx.std_profile is not None:
            # by id: the standard profile's label may be shown translated (docs/salesforce-facts.md A8) [U]
            e["to"]["profileId"] = ctx.std_profile.id
        e["rewritten"].insert(0, {"kind": "Profile", "name": u.profile,
                                  "reason": f"its access moves to the license-less permission set {profile_set}; the "
                                            f"user moves to {target}"})
        e["dropped"] = refused_by_source.get(f"profile {u.profile}", []) + e["dropped"]
        assigns = [{"permissionSet": profile_set, "expires": None, "why": f"made from profile {u.profile}"}]
        for a in ua.assign:
            if "copyOf" in a:
                name = gen.name("PermissionSet", a["copyOf"])
                assigns.append({"permissionSet": name, "expires": a["expires"],
                                "why": f"license-less copy of {a['source']}"})
                e["dropped"] += [{**d, "name": d["name"], "from": a["source"]}
                                 for d in refused_by_source.get(f"permission set {a['source']}", [])]
            else:
                assigns.append({"permissionSet": a["permissionSet"], "expires": a["expires"], "why": "as it is"})
        groups_out = []
        for g in ua.groups:
            if "rebuilt" in g:
                groups_out.append({"group": gen.name("PermissionSetGroup", g["source"]), "expires": g["expires"],
                                   "why": f"rebuilt from {g['rebuilt']}"})
                for n, p in sorted(access.rebuilt[g["rebuilt"]]["members"].items()):
                    if p["verdict"] == "copy":
                        e["dropped"] += [{**d, "from": f"{n} in group {g['rebuilt']}"}
                                         for d in refused_by_source.get(f"permission set {n}", [])]
            else:
                groups_out.append({"group": g["group"], "expires": g["expires"], "why": "as it is"})
        e["to"]["assign"] = assigns
        e["to"]["groups"] = groups_out
        # what the new sets carry, by section, from each source (what the review shows as kept)
        sources_of_user = [f"profile {u.profile}"] + [f"permission set {a['source']}" for a in ua.assign if "copyOf" in a]
        e["carried"] = [{"from": s, "into": profile_set if s == sources_of_user[0] else gen.name("PermissionSet", s),
                         "sections": dict(sorted(carried[s].items()))} for s in sources_of_user if carried.get(s)]
        for rewritten, kind, source in ua.into:
            rewritten["into"] = gen.name(kind, source)
        grants = _grants(ctx, access, u, profile_set, assigns, groups_out)
        e["to"]["access"] = grants
        own = inv.profile_set(u.profile_id)
        entries = {t: sum(1 for acc in inv.access_of(own.id if own else "") if acc.entity_type == t)
                   for t in ("ApexClass", "ApexPage", "CustomPermission")}
        e["accessHow"] = ("connected apps: SetupEntityAccess rows on the new permission set (redeploying a connected "
                          "app is fragile); Apex classes, Visualforce pages and custom permissions: entries in the "
                          "generated permission set, deployed with it"
                          + (f" ({entries['ApexClass']} class(es), {entries['ApexPage']} page(s), "
                             f"{entries['CustomPermission']} custom permission(s) from the profile)"
                             if any(entries.values()) else ""))
        state = user_record_state(inv, u.id)
        if state:
            e["userRecord"] = {**{k: state[k] for k in ("role", "featureLicenses", "memberships")},
                               "how": USER_RECORD_HOW}
        steps.switch.append({"user": u.username, "userId": u.id, "from": {"profileId": u.profile_id,
                                                                        "profile": u.profile},
                             "to": {"profile": target}})
        steps.psl.append({"user": u.username, "userId": u.id, "permissionSetLicense": rules.INTEGRATION_PSL})
        steps.assign += [{"user": u.username, "userId": u.id, "permissionSet": a["permissionSet"],
                          "expires": a["expires"]} for a in assigns]
        steps.groups += [{"user": u.username, "userId": u.id, "group": g["group"], "expires": g["expires"]}
                         for g in groups_out]
        steps.access += grants
        steps.packages += [{"user": u.username, "userId": u.id, **p} for p in e["packages"]]
    return steps


def _grants(ctx: Context, access: AccessPlan, u: User, profile_set: str, assigns: list[dict[str, Any]],
            groups_out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Connected-app access: the SetupEntityAccess rows of the old profile and of the copied sets (also
    inside rebuilt groups), again on the new sets."""
    inv, gen = ctx.inv, ctx.gen
    own = inv.profile_set(u.profile_id)
    sources = [(own.id if own else "", profile_set, f"profile {u.profile}")]
    for a in inv.of_user(inv.assignments, u.id):
        if not a.owned and not a.group_id and a.ps_name in access.copies and any(
                x.get("why") == f"license-less copy of {a.ps_name}" for x in assigns):
            sources.append((a.ps_id, gen.name("PermissionSet", f"permission set {a.ps_name}"),
                            f"permission set {a.ps_name}"))
    for g in groups_out:
        origin = next((x for x in access.rebuilt.values() if gen.name("PermissionSetGroup", x["source"]) == g["group"]),
                      None)
        for n, p in sorted((origin or {}).get("members", {}).items()):
            comp = next((m for m in inv.components if m.ps_name == n), None)
            if p["verdict"] == "copy" and comp is not None:
                sources.append((comp.ps_id, gen.name("PermissionSet", f"permission set {n}"), f"permission set {n}"))
    grants = []
    for parent, new_set, src in sources:
        for acc in inv.access_of(parent) if parent else []:
            if acc.entity_type == "ConnectedApplication":
                grants.append({"permissionSet": new_set, "entityId": acc.entity_id, "entityType": acc.entity_type,
                               "entity": inv.connected_apps.get(acc.entity_id, acc.entity_id), "from": src})
    return grants


def _assemble(ctx: Context, users_out: list[dict[str, Any]], planned: list[Candidate], out: Generated,
              steps: Steps) -> Plan:
    """Phase 6: the metadata of blocked users' sources is left out; package.xml, the ordered steps, the
    rollback, seats and savings, and plan.json."""
    inv, req = ctx.inv, ctx.req
    live: set[str] = set()
    for c in planned:
        e = c.entry
        if e["status"] != "planned":
            continue
        live |= {e["to"]["permissionSet"], e["to"]["profile"], *(a["permissionSet"] for a in e["to"]["assign"])}
        for x in e["to"]["groups"]:
            live |= {x["group"], *out.group_members.get(x["group"], [])}
    generated = [g for g in out.items if g["name"] in live]
    files = {k: v for k, v in out.files.items() if any(g["file"] == "metadata/" + k for g in generated)}
    members = {t: sorted(g["name"] for g in generated if g["type"] == t) for t in out.members}
    members = {t: m for t, m in members.items() if m}
    if files:
        files["package.xml"] = package_xml.build(members, inv.org.api_version)
    unique_access = list({(a["permissionSet"], a["entityId"]): a for a in steps.access}.values())  # shared sets
    ordered = _steps(generated, out.how, steps.switch, steps.psl, steps.assign, steps.groups, unique_access,
                     steps.packages, inv.user_license(rules.INTEGRATION_USER_LICENSE))
    planned_users = [e for e in users_out if e["status"] == "planned"]
    data = {
        "schema": SCHEMA, "version": VERSION, "createdAt": req.created_at, "sfIntuser": req.tool_version,
        "run": req.run,
        "org": {"id": inv.org.id, "name": inv.org.name, "edition": inv.org.edition, "username": inv.org.username,
                "alias": inv.org.alias, "instanceUrl": inv.org.instance_url, "apiVersion": inv.org.api_version},
        "snapshot": "snapshot/manifest.json",
        "permissionSetLicense": req.license,
        "summary": {"users": len(users_out), "planned": len(planned_users),
                    "blocked": len(users_out) - len(planned_users), "generated": len(generated)},
        "users": users_out,
        "generated": generated,
        "steps": ordered,
        "rollback": _rollback(inv, planned_users),
        "seats": discover_mod.seats_of(inv, len(planned_users)),
        "savings": _savings(inv, planned_users, req),
        "warnings": ctx.warnings + sorted({f"{e['username']}: {w}" for e in users_out for w in e.get("warnings", [])}),
    }
    return Plan(data, files, out.changes)


def _file(change: Change, file: str) -> Change:
    return change if change.file == file else Change(**{**change.__dict__, "file": file})


def _renamed(change: Change, old: str, new: str) -> Change:
    if old == new:
        return change
    return Change(**{**change.__dict__, "reason": change.reason.replace(repr(old), repr(new)),
                     "file": new if change.file == old else change.file})


def _plan_set(name: str, license_name: str | None, data: bytes | None, refusals: rules.OrgRefusals,
              user_licenses: frozenset[str], psl_available: Mapping[str, bool]) -> dict[str, Any]:
    """What becomes of one assigned permission set: ``as-is``, ``copy`` (with why) or ``blocked``."""
    v = rules.classify_license(license_name, name, user_licenses=user_licenses, psl_available=psl_available)
    if v.verdict == "blocked":
        return {"verdict": "blocked", "reason": v.reason,
                "fix": f"Remove {name} from the user before the move (what it grants needs a license integration "
                       "users can't hold), or keep this user on its license"}
    if data is None:
        return {"verdict": "blocked", "reason": "it was not retrieved", "fix": "Run the plan again"}
    try:
        enabled = _enabled(data, f"PermissionSet {name}")
    except MetadataXmlError as exc:
        return {"verdict": "blocked", "reason": str(exc), "fix": "Run the plan again"}
    refused = sorted(p for p in enabled if refusals.get(p) is not None)
    if v.verdict == "needs-rewrite":
        return {"verdict": "copy", "reason": v.reason, "refused": refused}
    if refused:
        return {"verdict": "copy", "reason": "holds user permission(s) an integration user can't have in this org: "
                                             + ", ".join(refused), "refused": refused}
    return {"verdict": "as-is", "reason": v.reason}


Records = list[dict[str, Any]]


def _steps(generated: Records, how: Mapping[str, str], switch: Records, psl: Records, assign: Records,
           groups: Records, access: Records, packages: Records, lic: Any) -> Records:
    new_profiles = [g for g in generated if g["type"] == "Profile" and how.get(g["name"]) == "record+deploy"]
    new_sets = [{"type": g["type"], "name": g["name"]} for g in generated
                if g["type"] in ("PermissionSet", "PermissionSetGroup") and not g["exists"]]
    steps: list[dict[str, Any]] = []

    def step(action: str, why: str, records: list[dict[str, Any]], inverse: dict[str, Any]) -> None:
        if records or action == "verify":
            steps.append({"id": len(steps) + 1, "action": action, "why": why, "records": records, "inverse": inverse})

    step("create-profiles", "a new profile is best made as a Profile record, which starts with only what its license "
         "requires (Metadata API Profile doc); whether a deploy alone may create one on this license is unknown",
         [{"Name": g["name"], "UserLicense": rules.INTEGRATION_USER_LICENSE, "UserLicenseId": lic.id if lic else None,
           **({"Description": g["description"]} if g.get("description") else {})} for g in new_profiles],
         {"action": "none", "why": "an API-only profile with no user grants nothing; delete it in Setup if wanted"})
    step("deploy", "the generated permission sets, groups and the API-only profiles' login IP ranges and hours "
         "(metadata/, checked first with a validation)",
         [{"type": g["type"], "name": g["name"], "file": g["file"], "new": not g["exists"]} for g in generated],
         {"action": "delete-components", "records": new_sets,
          "why": "what the deploy created is deleted once nothing is assigned it; what existed stays"})
    step("switch-profiles", "the move itself: the license changes with the profile, and Salesforce removes the "
         "user's permission set assignments", switch,
         {"action": "switch-profiles", "records": [{"user": r["user"], "userId": r["userId"],
                                                    "to": {"profileId": r["from"]["profileId"],
                                                           "profile": r["from"]["profile"]}} for r in switch]})
    step("assign-permission-set-licenses", "standard objects need the Salesforce API Integration permission set "
         "license", psl, {"action": "unassign-permission-set-licenses", "records": psl})
    step("assign-permission-sets", "the user's access again: the set made from its profile, copies and sets that "
         "move as they are (with their expiration dates)", assign,
         {"action": "unassign-permission-sets", "records": assign})
    step("assign-groups", "permission set groups, as they are or rebuilt", groups,
         {"action": "unassign-groups", "records": groups})
    step("grant-access", "connected-app access the old profile and copied sets had (SetupEntityAccess)", access,
         {"action": "revoke-access", "records": access})
    step("grant-package-licenses", "managed package licenses, if the move removed them", packages,
         {"action": "revoke-package-licenses", "records": packages,
          "why": "only the ones this step created"})
    step("verify", "read the org again and compare each user with the plan", [],
         {"action": "none"})
    return steps


def user_record_state(inv: Inventory, uid: str) -> dict[str, Any]:
    """A user's role, public group and queue memberships and feature licenses, as the snapshot holds
    them (absent in a snapshot taken before they were read: then nothing is restored or checked)."""
    rec = inv.user_record(uid)
    if rec is None:
        return {}
    return {"roleId": rec.role_id, "role": rec.role, "featureLicenses": list(rec.features),
            "memberships": [{"groupId": m.group_id, "name": m.group_name, "type": m.group_type}
                            for m in inv.of_user(inv.memberships, uid)]}


#: what a change of license does to a user's role, groups and feature licenses is [U] (no source):
#: the plan says what it keeps either way
USER_RECORD_HOW = {
    "role": "kept by the move if Salesforce keeps it ([U]); otherwise set again right after the switch",
    "memberships": "kept by the move if Salesforce keeps them ([U]); any removed are added again right after the switch",
    "featureLicenses": ("cleared with the switch and set again right after it where the Salesforce Integration license "
                        "allows them ([U]); any the license refuses are reported as not kept, and rollback gives them "
                        "back"),
}


def _rollback(inv: Inventory, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Each planned user's state before the move, from the snapshot: what a rollback restores."""
    users = []
    for e in entries:
        uid = e["id"]
        users.append({
            "user": e["username"], "userId": uid, "profileId": e["from"]["profileId"], "profile": e["from"]["profile"],
            "profileApiName": e["from"].get("profileApiName") or e["from"]["profile"],
            "permissionSets": [{"permissionSetId": a.ps_id, "name": a.ps_name, "expires": a.expires}
                               for a in inv.of_user(inv.assignments, uid) if not a.owned and not a.group_id],
            "groups": [{"groupId": a.group_id, "name": a.group_name, "expires": a.expires}
                       for a in inv.of_user(inv.assignments, uid) if a.group_id],
            "permissionSetLicenses": [{"permissionSetLicenseId": p.psl_id, "name": p.psl_name}
                                      for p in inv.of_user(inv.psl_assignments, uid)],
            "packageLicenses": [{"packageLicenseId": p.package_id, "namespace": p.namespace}
                                for p in inv.of_user(inv.package_assignments, uid)],
            **user_record_state(inv, uid),
        })
    return {"from": "snapshot/inventory.json", "users": users}


def _savings(inv: Inventory, planned: list[dict[str, Any]], req: Request) -> dict[str, Any]:
    return discover_mod.savings(inv, [e["from"]["license"] for e in planned], req.discover.prices,
                                f"the {len(planned)} planned user(s)")


def overrides_from(users: Iterable[UserConfig]) -> dict[str, UserConfig]:
    """Per-user choices (sf-intuser.toml ``[[users]]``) by lower-case username."""
    return {u.username.lower(): u for u in users}
