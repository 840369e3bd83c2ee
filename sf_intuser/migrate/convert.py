"""Offline conversion: profiles and permission sets in, integration-ready metadata out. Pure.

For every profile not already on the Salesforce Integration license: a license-less permission set
with what it grants, and an API-only profile per distinct login policy. For every permission set:
a classification, and a license-less copy where it is bound to another user license. Permission set
groups are classified from their components. Connected apps are read for what they pre-authorize.

Every input is keyed by its file (``Input.origin``), and no two sources ever become one output:

- two inputs of the same type and name (Salesforce compares names without case) are refused
  before anything is converted (:class:`DuplicateInputs`);
- generated names are given out at the end, when every output is known, by
  :func:`naming.allocate`: unique within the run and against what already exists
  (``existing``), with a stable suffix and a warning where names would collide.

Outputs are handed to ``sink`` one at a time as they are made, under a provisional key, so a call on
many large profiles holds one of them at a time; the final names come with the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from lxml import etree

from sf_intuser.metadata import connected_app, fastpath, naming, profile as profile_md
from sf_intuser.metadata import license_rules as rules
from sf_intuser.metadata import permission_set as ps_md
from sf_intuser.metadata.access import Change
from sf_intuser.metadata.permission_set import Classification
from sf_intuser.metadata.xml import MD_NS, Document, MetadataXmlError, parse, text

SUFFIX = "_Intuser"
API_PROFILE_PREFIX = "API Only - "


@dataclass(frozen=True)
class Input:
    type: str
    name: str
    data: bytes | None = None
    origin: str = ""   # the file it came from: the key of everything reported about it
    load: Callable[[], bytes] | None = None   # reads the bytes when the input's turn comes

    @property
    def key(self) -> str:
        return self.origin or f"{self.type} {self.name}"

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.load is None:
            raise ValueError(f"{self.key}: no data")
        return self.load()


class DuplicateInputs(ValueError):
    """Two or more inputs hold the same component; converting them would merge their access."""

    def __init__(self, groups: list[tuple[str, str, list[str]]]) -> None:
        self.groups = groups
        first_type, first_name, files = groups[0]
        super().__init__(f"{len(files)} inputs hold the {first_type} {first_name!r}: {', '.join(files)}"
                         + (f" (and {len(groups) - 1} more such name(s))" if len(groups) > 1 else ""))


@dataclass
class Output:
    """A generated file: its final API name, the one source it derives from (an API-only profile
    may serve several profiles that share a login policy), and its bytes unless a sink took them."""

    type: str
    name: str
    sources: list[str]
    key: str
    data: bytes | None = None
    request: naming.Request | None = field(default=None, repr=False)


@dataclass
class ConvertResult:
    outputs: list[Output] = field(default_factory=list)
    classifications: list[Classification] = field(default_factory=list)
    profile_targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    connected_apps: list[dict[str, Any]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    errors: list[MetadataXmlError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_duplicates(inputs: Iterable[Input]) -> None:
    """Raise :class:`DuplicateInputs` when two inputs hold the same component (same type and name,
    compared without case as Salesforce compares them)."""
    seen: dict[tuple[str, str], list[Input]] = {}
    for item in inputs:
        seen.setdefault((item.type, item.name.lower()), []).append(item)
    dups = [(items[0].type, items[0].name, [i.key for i in items]) for items in seen.values() if len(items) > 1]
    if dups:
        raise DuplicateInputs(sorted(dups))


def _ps_request(kind: str, name: str) -> naming.Request:
    return naming.Request("PermissionSet", f"{kind} {name}", naming.api_name(name, SUFFIX),
                          lambda n: naming.api_name(name, SUFFIX, tag=naming.short_hash(f"{kind} {name}", n)))


def _profile_request(first: str) -> naming.Request:
    base = f"{API_PROFILE_PREFIX}{first}"[:255]
    return naming.Request("Profile", f"profile {first}", base,
                          lambda n: f"{base[:240]} ({naming.short_hash(f'profile {first}', n)})")


def convert(
    inputs: list[Input],
    *,
    psl: bool = False,
    user_licenses: frozenset[str] | None = None,
    psl_available: Mapping[str, bool] | None = None,
    sink: Callable[[str, bytes], None] | None = None,
    existing: Callable[[str, str], naming.Existing | None] = lambda _t, _n: None,
) -> ConvertResult:
    """Plan the rewrites for ``inputs``.

    Raises :class:`DuplicateInputs` before reading anything when two inputs hold one component.
    Files that fail to parse land in ``errors``; the others are still converted so that every
    problem is reported at once (the caller writes nothing when there are errors). ``sink`` receives
    each output's bytes under its provisional key as soon as it is made; without one the bytes stay
    on the :class:`Output`."""
    check_duplicates(inputs)
    res = ConvertResult()
    license = rules.INTEGRATION_PSL if psl else None

    def emit(type_name: str, data: bytes, sources: list[str], request: naming.Request) -> None:
        key = f"{len(res.outputs):05d}"
        out = Output(type_name, request.base, sources, key, None if sink else data, request)
        if sink:
            sink(key, data)
        res.outputs.append(out)

    by_type: dict[str, list[Input]] = {}
    for item in sorted(inputs, key=lambda i: (i.type, i.name, i.key)):
        by_type.setdefault(item.type, []).append(item)

    def parsed(item: Input, keep: list[Any] | None = None) -> Document | None:
        try:
            data = item.read()
            if keep is not None:   # a profile: what grants nothing goes before the parse
                keep.append(data)
                data, counts = fastpath.prefilter(data)
                keep.append(counts)
            return parse(data, item.key, comments=False)
        except MetadataXmlError as exc:
            res.errors.append(exc)
            return None

    # permission sets first: groups need their components' verdicts
    verdicts: dict[str, Classification] = {}
    for item in by_type.get("PermissionSet", []):
        doc = parsed(item)
        if doc is None:
            continue
        c = ps_md.classify(doc, item.name, user_licenses=user_licenses, psl_available=psl_available)
        verdicts[item.name] = c
        res.classifications.append(c)
        if c.verdict == "needs-rewrite":
            rw = ps_md.license_less_copy(doc, item.name, license=license)
            changes = [_with_file(ch, item.key) for ch in rw.changes]
            res.changes.extend(changes)
            emit("PermissionSet", rw.data, [item.key], _ps_request("permission set", item.name))
    for item in by_type.get("PermissionSetGroup", []):
        doc = parsed(item)
        if doc is not None:
            res.classifications.append(ps_md.classify_group(doc, item.name, verdicts))
    for item in by_type.get("ConnectedApp", []):
        doc = parsed(item)
        if doc is not None:
            res.connected_apps.append(connected_app.read(doc, item.name).to_dict())

    # profiles one at a time: read, convert in place, hand over, forget; keep only what the
    # API-only profiles need (login policy and API permissions)
    policies: dict[str, tuple[profile_md.LoginPolicy, set[str]]] = {}
    origins: dict[str, str] = {}
    for item in by_type.get("Profile", []):
        raw: list[Any] = []
        doc = parsed(item, raw)
        if doc is None:
            continue
        lic = text(doc.root, "userLicense")
        if lic == rules.INTEGRATION_USER_LICENSE:
            res.skipped.append({"type": "Profile", "name": item.name, "file": item.key,
                                "reason": "already on the Salesforce Integration license: nothing to convert"})
            continue
        policies[item.name] = (profile_md.login_policy(doc.root), profile_md.enabled_user_permissions(doc.root))
        origins[item.name] = item.key
        if not _has_object_access(doc.root) and "fieldPermissions" not in raw[1]:
            res.changes.append(Change("warning", "objectPermissions", "*", no_object_access_reason(item.name),
                                      "incomplete-retrieve", "Metadata API doc, Profile (docs/salesforce-facts.md A4)",
                                      "V", file=item.key))
        rw = profile_md.to_permission_set(doc, item.name, license=license, source=raw[0], prefiltered=raw[1],
                                          file=item.key)
        del doc, raw
        res.changes.extend(rw.changes)
        emit("PermissionSet", rw.data, [item.key], _ps_request("profile", item.name))

    if policies:
        plan = profile_md.plan_api_profiles_for(policies, prefix=API_PROFILE_PREFIX)
        res.changes.extend(_with_file(ch, origins.get(ch.file, ch.file)) for ch in plan.changes)
        for rw in plan.profiles:
            emit("Profile", rw.data, [origins[s] for s in rw.sources], _profile_request(rw.sources[0]))

    names, res.warnings = naming.allocate([o.request for o in res.outputs if o.request], existing)
    renamed: dict[str, str] = {}
    for out in res.outputs:
        assert out.request is not None
        out.name = names[(out.request.type, out.request.source)]
        if out.name != out.request.base and out.type == "Profile":
            renamed[out.request.base] = out.name
    if renamed:   # the plan's messages name API-only profiles as planned, before they were renamed
        res.changes = [_renamed(ch, renamed) for ch in res.changes]
    if policies:
        by_source = {(o.type, o.request.source): o.name for o in res.outputs if o.request}
        for name, origin in origins.items():
            target = plan.targets[name]
            if target != rules.STANDARD_API_PROFILE:
                first = sorted(n for n, t in plan.targets.items() if t == target)[0]
                target = by_source[("Profile", f"profile {first}")]
            res.profile_targets[name] = {"file": origin, "apiOnlyProfile": target,
                                         "permissionSet": by_source[("PermissionSet", f"profile {name}")]}
    return res


def _with_file(change: Change, file: str) -> Change:
    return change if change.file == file else Change(**{**change.__dict__, "file": file})


def _renamed(change: Change, renamed: Mapping[str, str]) -> Change:
    reason, file = change.reason, change.file
    for old, new in renamed.items():
        reason = reason.replace(repr(old), repr(new))
        file = new if file == old else file
    return Change(**{**change.__dict__, "reason": reason, "file": file})


def _has_object_access(root: etree._Element) -> bool:
    return root.find(f"{{{MD_NS}}}objectPermissions") is not None or \
        root.find(f"{{{MD_NS}}}fieldPermissions") is not None


def no_object_access_reason(name: str) -> str:
    """Why a profile without object or field entries is suspicious, and the retrieve that completes it."""
    return (f"the file holds no object or field permissions. A retrieve returns a profile's object and field access "
            f"only for the objects named in the same request, and CustomObject:* leaves out standard objects, so "
            f"the permission set made from it may lack access the profile has in the org. Retrieve it again with "
            f"the objects: sf project retrieve start -m \"Profile:{name}\" -m \"CustomObject:*\" "
            f"-m CustomObject:Account -m CustomObject:Contact (one -m per standard object the integration uses)")
