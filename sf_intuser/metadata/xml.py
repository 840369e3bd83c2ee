"""Hardened parsing and Salesforce-faithful writing of Metadata API XML.

Parsing refuses what a metadata file never needs and an attacker would use: a DTD, entity
declarations (billion laughs, external entities), network access, and oversized input.

Writing reproduces what a Salesforce retrieve writes, so an untouched file round-trips byte for
byte and a rewrite gives a minimal diff:

- ``<?xml version="1.0" encoding="UTF-8"?>`` then the root on its own line;
- four spaces of indentation per level, one element per line, empty elements as ``<name/>``;
- text escaped as the platform escapes it: ``&amp; &lt; &gt; &quot; &apos;``
  (observed in real orgs' retrieved files, e.g. ``&apos;`` in
  Integration-User ``SalesAMCS.permissionsetgroup``; CumulusCI's ``serialize_xml_for_salesforce``
  makes the same substitutions);
- the input's line ending and final newline are kept (mdapi files straight from a retrieve zip
  have no final newline; source-format files written by the CLI have one); new files get ``\\n``
  and a final newline, as ``sf project retrieve start`` writes them.

Element order follows the Metadata API schema; see :mod:`sf_intuser.metadata.schema`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator, cast

from lxml import etree

MD_NS = "http://soap.sforce.com/2006/04/metadata"
NS = "{" + MD_NS + "}"
XML_DECL = b'<?xml version="1.0" encoding="UTF-8"?>'

#: Largest file parsed by default. The biggest retrieved profile in the shared corpus is 2 MB;
#: profiles of orgs with many objects reach 5-10 MB. Callers may raise it.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY")


class MetadataXmlError(ValueError):
    """A metadata file that cannot be used. ``str()`` names the file and the fix."""

    def __init__(self, source: str, problem: str, fix: str) -> None:
        self.source = source
        self.problem = problem
        self.fix = fix
        super().__init__(f"{source}: {problem}. {fix}")


@dataclass(frozen=True)
class Style:
    """How a file's bytes are laid out, beyond its content."""

    eol: str = "\n"
    final_newline: bool = True


DEFAULT_STYLE = Style()


@dataclass
class Document:
    """A parsed metadata file: its root element, layout style and where it came from."""

    root: etree._Element
    style: Style = field(default_factory=Style)
    source: str = "<bytes>"
    #: False when the file was parsed with its comments removed (conversions never carry them)
    comments: bool = True

    @property
    def type_name(self) -> str:
        return etree.QName(self.root).localname

    def to_bytes(self) -> bytes:
        return serialize(self.root, self.style)


def _parser(max_bytes: int, comments: bool = True) -> etree.XMLParser:
    # without comments the tree is for a rewrite, which re-indents what it writes: whitespace
    # between elements is dropped too (about half the nodes of a retrieved file), which makes
    # every later pass over the tree cheaper; whitespace inside a value is kept
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=max_bytes > 10_000_000,
        remove_comments=not comments,
        remove_blank_text=not comments,
        remove_pis=True,
        collect_ids=False,
    )


def parse(data: bytes, source: str = "<bytes>", max_bytes: int = DEFAULT_MAX_BYTES,
          comments: bool = True) -> Document:
    """Parse metadata XML safely. Raises :class:`MetadataXmlError` naming ``source``.

    ``comments=False`` parses for a rewrite: comments and the whitespace between elements are
    dropped (a rewrite carries neither; :func:`serialize` indents anew)."""
    if len(data) > max_bytes:
        raise MetadataXmlError(
            source,
            f"file is {len(data):,} bytes, over the {max_bytes:,}-byte limit",
            "Split the metadata or raise the limit (--max-bytes) if the file is trusted",
        )
    head = data[:4096] if len(data) > 4096 else data
    for marker in _FORBIDDEN:
        if marker in data:
            raise MetadataXmlError(
                source,
                f"refused: the file declares a DTD or entities ({marker.decode()})",
                "Salesforce metadata never contains a DTD; remove it or re-retrieve the file",
            )
    try:
        root = etree.fromstring(data, _parser(max_bytes, comments))
    except etree.XMLSyntaxError as exc:
        raise MetadataXmlError(
            source, f"not well-formed XML ({exc})", "Fix the XML or re-retrieve the file from the org"
        ) from None
    if root.getroottree().docinfo.internalDTD is not None:  # pragma: no cover - caught above
        raise MetadataXmlError(source, "refused: the file declares a DTD", "Remove the DTD")
    if etree.QName(root).namespace != MD_NS:
        raise MetadataXmlError(
            source, f"root element <{etree.QName(root).localname}> is not in the Metadata API namespace {MD_NS}",
            f'Add xmlns="{MD_NS}" to the root element or re-retrieve the file')
    eol = "\r\n" if b"\r\n" in head else "\n"
    stripped = data.rstrip(b" \t")
    return Document(root=root, style=Style(eol=eol, final_newline=stripped.endswith(b"\n")), source=source,
                    comments=comments)


_QUOTE_TEXT = re.compile(rb">([^<>]*[\"'][^<>]*)<")


def _escape_quotes(match: re.Match[bytes]) -> bytes:
    return b">" + match.group(1).replace(b'"', b"&quot;").replace(b"'", b"&apos;") + b"<"


def serialize(root: etree._Element, style: Style = DEFAULT_STYLE, fresh: bool = False) -> bytes:
    """Write ``root`` as Salesforce writes metadata.

    Only whitespace-only text between elements is rewritten in ``root`` (indentation); content is
    untouched, so serializing twice gives the same bytes.

    ``fresh`` says the tree holds no whitespace between elements (built anew, or parsed for a
    rewrite): libxml2 then indents while writing, in one pass, and its two-space levels become four.
    """
    if fresh:
        body = etree.tostring(root, encoding="UTF-8", xml_declaration=False, pretty_print=True).rstrip(b"\n")
        depth = 1   # text never holds a raw "<", so "\n" + spaces + "<" only starts a line of markup
        while b"\n" + b"  " * (depth + 1) + b"<" in body:
            depth += 1
        for level in range(depth, 0, -1):   # deepest first, so a converted line is never matched again
            body = body.replace(b"\n" + b"  " * level + b"<", b"\n" + b"    " * level + b"<")
    else:
        etree.indent(root, space="    ")
        body = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    # quotes can only be in text after the root's start tag (whose xmlns="..." always has them);
    # lxml writes them bare, Salesforce as entities. Most files have none, so the scan is skipped.
    start = body.find(b">") + 1
    if body.find(b'"', start) >= 0 or body.find(b"'", start) >= 0:
        body = _QUOTE_TEXT.sub(_escape_quotes, body)
    out = XML_DECL + b"\n" + body
    if style.final_newline:
        out += b"\n"
    if style.eol != "\n":
        out = out.replace(b"\n", style.eol.encode())
    return out


# --- element helpers (namespace-hiding) -------------------------------------------------------


def q(name: str) -> str:
    """Qualified tag for a metadata element name."""
    return NS + name


_NSLEN = len(NS)


def local(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag[_NSLEN:] if tag.startswith(NS) else etree.QName(tag).localname


def children(el: etree._Element | None, name: str | None = None) -> Iterator[etree._Element]:
    """Element children (comments skipped), optionally only those named ``name``; C-level filtering."""
    if el is None:
        return iter(())
    return el.iterchildren(q(name)) if name is not None else el.iterchildren(etree.Element)


def child(el: etree._Element, name: str) -> etree._Element | None:
    return el.find(q(name))


def text(el: etree._Element, name: str, default: str | None = None) -> str | None:
    c = el.find(q(name))
    if c is None or c.text is None:
        return default
    return c.text


def flag(el: etree._Element, name: str) -> bool:
    """A boolean child as Salesforce writes it (``true``/``false``)."""
    return (text(el, name) or "").strip().lower() in ("true", "1")


def new_root(type_name: str) -> etree._Element:
    return etree.Element(q(type_name), nsmap={None: MD_NS})  # type: ignore[dict-item]  # the default namespace


def elements(found: object) -> list[etree._Element]:
    """An XPath result that selects elements, typed as the list of elements it is."""
    return cast("list[etree._Element]", found)


def strings(found: object) -> list[str]:
    """An XPath result that selects text (``text()``, smart strings off), typed as the strings it is."""
    return cast("list[str]", found)


def add(parent: etree._Element, name: str, value: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, q(name))
    if value is not None:
        el.text = value
    return el
