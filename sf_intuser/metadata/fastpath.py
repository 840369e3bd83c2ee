"""Profile -> permission set in place: the fast path of :func:`permission_set.build_permission_set`.

Most profiles come straight from a retrieve: sections in schema order, entries with their fields
in order and canonical booleans. For those, the permission set is the profile itself with the
profile-only sections, the entries that grant nothing and the default flags taken out, tab
visibilities mapped to tab settings, and the header added. Doing that on the parsed tree, mostly
with compiled XPath and one XSD validation in C, costs little more than the parse and the write.

A profile qualifies when, once the profile-only sections and the entries that grant nothing are
taken out (every path drops those), it validates against a schema built from the Metadata API's
(the same fields in the same order, ``true``/``false`` only, no empty names, known tab
visibilities) and holds no section this path does not know. Anything else returns None and takes
the general path, which repairs and reports. Both paths give the same bytes and the same changes; a test holds
them to that on every profile of the corpus and on generated ones.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Mapping

from lxml import etree

from sf_intuser.metadata import license_rules as rules
from sf_intuser.metadata import schema
from sf_intuser.metadata.access import (
    NON_GRANT_FLAGS,
    SECTION_KEYS,
    TAB_GRANTS,
    TAB_VISIBILITY_MAP,
    Change,
    dropped_field_changes,
    entry_type,
    permission_changes,
    tab_map_changes,
)
from sf_intuser.metadata.xml import MD_NS, NS, elements, q, strings

_NSLEN = len(NS)
_XP = {"m": MD_NS}
#: Profile sections a permission set has no place for and that are left out silently (the header
#: is written anew; the license change is reported on its own).
_SILENT = ("fullName", "module", "description", "userLicense")


@lru_cache(maxsize=1)
def kinds() -> dict[str, str]:
    """How each Profile section is treated: header, profile-only, not-ps, copy, strip, tabs, perms or general."""
    ps_fields = schema.field_map("PermissionSet")
    out: dict[str, str] = {}
    for f in schema.fields("Profile"):
        s = f.name
        if s in _SILENT:
            out[s] = "header"
        elif s in rules.PROFILE_ONLY_SECTIONS:
            out[s] = "profile-only"
        elif s == "tabVisibilities":
            out[s] = "tabs"
        elif s not in ps_fields or s not in SECTION_KEYS:
            out[s] = "not-ps"
        elif s == "userPermissions":
            out[s] = "perms"
        else:
            src, dst = entry_type("Profile", s), entry_type("PermissionSet", s)
            src_f = schema.fields(src) if src else ()
            dst_f = schema.fields(dst) if dst else ()
            grant = [x for x in src_f if x.type == "xsd:boolean" and x.name not in NON_GRANT_FLAGS]
            levels = [x for x in src_f if x.name.endswith("AccessLevel")]
            names = [x.name for x in src_f]
            dst_names = [x.name for x in dst_f]
            if not src or not dst or not grant or levels:
                out[s] = "general"
            elif names == dst_names:
                out[s] = "copy"
            elif [n for n in names if n not in NON_GRANT_FLAGS] == dst_names:
                out[s] = "strip"
            else:
                out[s] = "general"
    return out


@lru_cache(maxsize=1)
def profile_schema() -> etree.XMLSchema:
    """The Profile type with the sections this path changes held to their exact shape; others free."""
    types = []
    elements = []
    for f in schema.fields("Profile"):
        kind = kinds()[f.name]
        if kind in ("copy", "strip", "tabs", "perms"):
            etype = entry_type("Profile", f.name)
            key = SECTION_KEYS[f.name]
            # a field the permission set requires must be there (else the general path fills it in)
            ps_type = entry_type("PermissionSet", f.name)
            required = {x.name: x.min for x in schema.fields(ps_type)} if ps_type else {}
            seq = []
            for x in schema.fields(etype):
                low = max(x.min, required.get(x.name, 0))
                occurs = f'minOccurs="{low}" maxOccurs="{"unbounded" if x.repeated else 1}"'
                if x.type == "xsd:boolean":
                    t = "m:canon"
                elif x.name == key:
                    t = "m:name"
                elif kind == "tabs" and x.name == "visibility":
                    t = "m:tabvis"
                else:
                    t = "xs:string"
                seq.append(f'<xs:element name="{x.name}" type="{t}" {occurs}/>')
            types.append(f'<xs:complexType name="{f.name}"><xs:sequence>{"".join(seq)}</xs:sequence></xs:complexType>')
            elements.append(f'<xs:element name="{f.name}" type="m:{f.name}" minOccurs="0" maxOccurs="unbounded"/>')
        else:
            elements.append(f'<xs:element name="{f.name}" type="xs:anyType" minOccurs="0" maxOccurs="unbounded"/>')
    vis = "".join(f'<xs:enumeration value="{v}"/>' for v in TAB_VISIBILITY_MAP)
    xsd = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:m="{MD_NS}" targetNamespace="{MD_NS}"
        elementFormDefault="qualified">
      <xs:simpleType name="canon"><xs:restriction base="xs:string">
        <xs:enumeration value="true"/><xs:enumeration value="false"/></xs:restriction></xs:simpleType>
      <xs:simpleType name="name"><xs:restriction base="xs:string"><xs:minLength value="1"/></xs:restriction>
      </xs:simpleType>
      <xs:simpleType name="tabvis"><xs:restriction base="xs:string">{vis}</xs:restriction></xs:simpleType>
      {"".join(types)}
      <xs:element name="Profile"><xs:complexType><xs:sequence>{"".join(elements)}</xs:sequence></xs:complexType>
      </xs:element>
    </xs:schema>"""
    return etree.XMLSchema(etree.fromstring(xsd))


def _runs(root: etree._Element) -> dict[str, tuple[int, int]] | None:
    """Where each section's run of children starts and ends, found by galloping over positions
    (``root[i]`` walks the child list in C) instead of a pass per section; None when a section
    shows up in two places or a child is not a metadata element.

    Each run's end is found by doubling steps, then halving; that trusts a run to be unbroken,
    which the schema validation afterwards holds the file to (a file that breaks it takes the
    general path)."""
    n = len(root)
    runs: dict[str, tuple[int, int]] = {}
    i = 0
    while i < n:
        tag = root[i].tag
        if not isinstance(tag, str) or not tag.startswith(NS):
            return None
        section = tag[_NSLEN:]
        if section in runs:
            return None
        lo, step = i, 1           # root[lo] has the tag
        while lo + step < n and root[lo + step].tag == tag:
            lo += step
            step *= 2
        hi = min(lo + step, n)    # root[hi] has another tag, or hi is the end
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if root[mid].tag == tag:
                lo = mid
            else:
                hi = mid
        runs[section] = (i, hi)
        i = hi
    return runs


@lru_cache(maxsize=None)
def _keys(section: str) -> etree.XPath:
    return etree.XPath(f"m:{section}/m:{SECTION_KEYS[section]}/text()", namespaces=_XP, smart_strings=False)


@lru_cache(maxsize=1)
def _prefilters() -> dict[str, re.Pattern[bytes]]:
    """Per section, a root-level entry in a retrieve's exact layout whose every grant flag is
    ``false``: ``\n    <classAccesses>\n        <apexClass>X</apexClass>\n        <enabled>false</enabled>\n
    </classAccesses>``. Sections whose entries hold grant flags and the key only, or tab
    visibilities that are Hidden."""
    out: dict[str, re.Pattern[bytes]] = {}
    for section, kind in kinds().items():
        if kind not in ("copy", "tabs"):
            continue
        key = SECTION_KEYS[section]
        parts = []
        for x in schema.fields(entry_type("Profile", section)):
            if x.name == key:
                parts.append(rb"<%s>[^<]*</%s>" % (key.encode(), key.encode()))
            elif kind == "tabs" and x.name == "visibility":
                parts.append(rb"<visibility>Hidden</visibility>")
            elif x.type == "xsd:boolean" and x.name not in NON_GRANT_FLAGS:
                parts.append(rb"<%s>false</%s>" % (x.name.encode(), x.name.encode()))
            else:
                break
        else:
            body = b"".join(b"\n        " + p for p in parts)
            tag = section.encode()
            out[section] = re.compile(rb"\n    <%s>%s\n    </%s>(?=\n)" % (tag, body, tag))
    return out


def prefilter(data: bytes) -> tuple[bytes, dict[str, int]]:
    """Take out of a profile's bytes, before it is parsed, the entries that grant nothing and are
    written exactly as a retrieve writes them; return the rest and how many left each section.

    A retrieved profile of an integration user is mostly such entries (field, class and page access
    set to false: more than half of them in real orgs' retrieved profiles), and parsing them only
    to remove them would be most of the work. Every path drops them anyway and reports them as
    granting nothing, so the result is the same. A pattern matches only at the root's indentation
    and only where the whole entry is of that exact shape; a file with comments, CDATA or
    processing instructions (where such text would not be markup) is left whole."""
    body = data[data.find(b"?>") + 2:] if data.startswith(b"<?xml") else data
    if b"<!--" in body or b"<![CDATA[" in body or b"<?" in body:
        return data, {}
    counts: dict[str, int] = {}
    for section, pattern in _prefilters().items():
        if (b"<%s>" % section.encode()) in data:
            data, n = pattern.subn(b"", data)
            if n:
                counts[section] = n
    return data, counts


_HAS_COMMENT = etree.XPath("boolean(.//comment())")


@lru_cache(maxsize=None)
def _prunable(section: str) -> etree.XPath:
    """The root's ``section`` entries that grant nothing whatever their shape: every grant flag they
    have is exactly ``false`` (or they have none). The general path drops these too, so they can go
    before validation; an entry with any other value stays and is validated."""
    etype = entry_type("Profile", section)
    grant = [x.name for x in schema.fields(etype) if x.type == "xsd:boolean" and x.name not in NON_GRANT_FLAGS]
    cond = " or ".join(f"m:{g} != 'false'" for g in grant)   # true when any such child is not 'false'
    return etree.XPath(f"m:{section}[not({cond})]", namespaces=_XP)


def _plain(root: etree._Element, comments_possible: bool) -> bool:
    if root.tag != q("Profile") or root.attrib or root.nsmap != {None: MD_NS} or (root.text and root.text.strip()):
        return False
    return not (comments_possible and _HAS_COMMENT(root))


def to_permission_set(root: etree._Element, *, label: str, description: str, license: str | None,
                      file: str, comments_possible: bool = True,
                      prefiltered: Mapping[str, int] | None = None,
                      refused: Mapping[str, rules.Rule] | None = None) -> list[Change] | None:
    """Turn a Profile ``root`` into the permission set in place and return the changes, or None when
    the profile needs the general path (the tree may have been changed by then: parse it again).

    What every path drops anyway goes first (profile-only sections, entries granting nothing), so
    the validation in C only covers what is kept; the rest is cheap. ``prefiltered`` counts the
    entries :func:`prefilter` took out of the bytes before they were parsed."""
    if not _plain(root, comments_possible):
        return None
    root.text = None   # whitespace only (a root the prefilter emptied keeps its newline): the writer indents
    k = kinds()
    runs = _runs(root)
    if runs is None or any(k.get(s, "general") == "general" for s in runs):
        return None   # a section in two places, or one the Profile schema does not have
    # every run read before anything moves (removing shifts the positions of what follows)
    els_of: dict[str, list[etree._Element]] = {
        s: root[a:b] for s, (a, b) in runs.items() if k[s] != "copy"}  # type: ignore[index,misc]  # lxml slices
    src_lic = els_of["userLicense"][0].text if "userLicense" in els_of else None
    pruned: dict[str, int] = dict(prefiltered or {})
    for section in runs:
        kind = k[section]
        if kind in ("header", "profile-only", "not-ps"):
            els = els_of.pop(section)
        elif kind == "copy":
            els = elements(_prunable(section)(root))
        else:
            continue
        for el in els:
            root.remove(el)
        if els:
            pruned[section] = pruned.get(section, 0) + len(els)
    # element-only content, every section known and in order, kept entries exact: decided in C
    if not profile_schema().validate(root):
        return None

    changes: list[Change] = []
    if src_lic and src_lic != license:
        changes.append(Change("dropped", "userLicense", src_lic,
                              "the copy is license-less" if not license else f"the copy is bound to {license}",
                              "license-less", rules.PSA_DOC, "V", file=file))
    standard_objects = 0
    remaining: list[str] = []
    for section, kind in k.items():   # schema order, which the validation guaranteed
        if kind == "header" or (section not in runs and section not in pruned):
            continue
        if kind == "profile-only":
            if section in pruned:
                changes.append(Change("dropped", section, "*", rules.PROFILE_ONLY_SECTIONS[section],
                                      "profile-only", count=pruned[section], file=file))
            continue
        if kind == "not-ps":
            if section in pruned:
                changes.append(Change("warning", section, "*", f"<{section}> is not a PermissionSet element "
                                      f"(Metadata API v{schema.api_version()}); left out", "unknown-element",
                                      count=pruned[section], file=file))
            continue
        nogrant = pruned.get(section, 0)
        target = section
        els = [] if kind == "copy" else els_of.get(section, [])
        if kind == "strip":
            for el in els:
                fields = {c.tag[_NSLEN:]: c for c in el}
                if not any(c.text == "true" for n, c in fields.items() if n not in NON_GRANT_FLAGS):
                    root.remove(el)
                    nogrant += 1
                    continue
                dropped = {n: c.text for n, c in fields.items() if n in NON_GRANT_FLAGS}
                for n in dropped:
                    el.remove(fields[n])
                changes.extend(dropped_field_changes(section, fields[SECTION_KEYS[section]].text or "", dropped, file))
        elif kind == "tabs":
            target = "tabSettings"
            tab_maps: dict[str, int] = {}
            for el in els:
                vis = el[1]
                mapped = TAB_VISIBILITY_MAP[vis.text or ""]
                if mapped not in TAB_GRANTS:
                    root.remove(el)
                    nogrant += 1
                    continue
                el.tag = q("tabSettings")
                tab_maps[vis.text or ""] = tab_maps.get(vis.text or "", 0) + 1
                vis.text = mapped
            changes.extend(tab_map_changes(tab_maps, file))
        elif kind == "perms":
            decisions = rules.plan_user_permissions([el[1].text or "" for el in els if el[0].text == "true"], refused)
            for el in els:
                enabled, name_el = el[0], el[1]
                if enabled.text != "true":
                    root.remove(el)
                    nogrant += 1
                    continue
                rule = decisions[name_el.text or ""]
                if rule.action == "drop":
                    root.remove(el)
                changes.extend(permission_changes(name_el.text or "", rule, file))
        keys = strings(_keys(target)(root))
        if keys != sorted(keys):
            _sort_section(root, target)
        if section == "objectPermissions":
            standard_objects = sum(1 for key in keys if "__" not in key)
        if nogrant:
            changes.append(Change("dropped", section, "*", "grants nothing (all false); a permission set only grants",
                                  "no-grant", count=nogrant, file=file))
        if keys:
            remaining.append(target)
            if section != "tabVisibilities":
                changes.append(Change("kept", target, "*", "copied", count=len(keys), file=file))
    if standard_objects and license != rules.INTEGRATION_PSL:
        r = rules.STANDARD_OBJECT_NOTE
        changes.append(Change("warning", "objectPermissions", "*", r.reason, r.id, r.source, r.status,
                              count=standard_objects, file=file))
    root.tag = q("PermissionSet")
    order = schema.order("PermissionSet")
    idx = [order[s] for s in remaining]
    if any(a > b for a, b in zip(idx, idx[1:])):
        schema.sort_children(root, "PermissionSet", deep=False)
    remaining.sort(key=order.__getitem__)
    header = [("description", description[:255]), ("hasActivationRequired", "false"), ("label", label[:80])]
    if license:
        header.append(("license", license))
    for name, value in header:
        el = etree.Element(q(name))
        el.text = value
        after = next((s for s in remaining if order[s] > order[name]), None)
        if after is None:
            root.append(el)
        else:
            elements(_first(after)(root))[0].addprevious(el)
    return changes


@lru_cache(maxsize=None)
def _first(section: str) -> etree.XPath:
    return etree.XPath(f"m:{section}[1]", namespaces=_XP)


def _text(root: etree._Element, name: str) -> str | None:
    found = elements(_first(name)(root))
    return found[0].text if found else None


def _sort_section(root: etree._Element, section: str) -> None:
    """Entries of ``section`` in key order (stable), where the section was, as a retrieve writes them."""
    key_tag = q(SECTION_KEYS[section])
    els = list(root.iterchildren(q(section)))
    at = root.index(els[0])
    for el in els:
        root.remove(el)
    for i, el in enumerate(sorted(els, key=lambda e: e.findtext(key_tag) or "")):
        root.insert(at + i, el)
