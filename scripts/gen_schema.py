#!/usr/bin/env python3
"""Generate ``sf_intuser/metadata/data/schema.json`` from the Metadata API WSDL.

The WSDL (v66, ``forcedotcom/wsdl`` ``resources/metadata.wsdl``) is the reference for element order:
every complexType is an ``xsd:sequence`` and a strict reader (and the schema) expects children in
that order. We keep, for the root types sf-intuser reads and writes and every type reachable from
them, the ordered child elements with their type and occurrence, and the enumerations of simple types.

Usage: python scripts/gen_schema.py [WSDL] [OUT]
(defaults: ../shared/corpus/forcedotcom__wsdl/resources/metadata.wsdl, the package data file).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lxml import etree

XSD = "{http://www.w3.org/2001/XMLSchema}"
ROOTS = ["Profile", "PermissionSet", "PermissionSetGroup", "ConnectedApp", "Package"]
HERE = Path(__file__).resolve().parent
DEFAULT_WSDL = HERE.parent.parent / "shared/corpus/forcedotcom__wsdl/resources/metadata.wsdl"
DEFAULT_OUT = HERE.parent / "sf_intuser/metadata/data/schema.json"


def local(type_ref: str) -> str:
    return type_ref.split(":", 1)[1] if ":" in type_ref else type_ref


def build(wsdl: Path) -> dict:
    tree = etree.parse(str(wsdl), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    schema = tree.find(f".//{XSD}schema")
    complex_types = {el.get("name"): el for el in schema.findall(f"{XSD}complexType")}
    simple_types = {el.get("name"): el for el in schema.findall(f"{XSD}simpleType")}
    version = None
    for node in tree.getroot().itersiblings(preceding=True):
        if isinstance(node, etree._Comment) and "Metadata API version" in node.text:
            version = node.text.split("version", 1)[1].split()[0]
    out_types: dict[str, dict] = {}
    out_enums: dict[str, list[str]] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in out_types or name not in complex_types:
            continue
        ct = complex_types[name]
        ext = ct.find(f"{XSD}complexContent/{XSD}extension")
        base = local(ext.get("base")) if ext is not None else None
        seq = (ext if ext is not None else ct).find(f"{XSD}sequence")
        fields = []
        if base:
            todo.append(base)
        for el in seq.findall(f"{XSD}element") if seq is not None else []:
            ftype = local(el.get("type"))
            prefix = el.get("type").split(":", 1)[0]
            fields.append([el.get("name"), ftype if prefix == "tns" else "xsd:" + ftype,
                           int(el.get("minOccurs", "1")), el.get("maxOccurs", "1")])
            if prefix == "tns":
                if ftype in complex_types:
                    todo.append(ftype)
                elif ftype in simple_types:
                    out_enums[ftype] = [e.get("value") for e in simple_types[ftype].iter(f"{XSD}enumeration")]
        out_types[name] = {"base": base, "fields": fields}
    return {
        "source": "forcedotcom/wsdl resources/metadata.wsdl",
        "apiVersion": version,
        "roots": ROOTS,
        "types": dict(sorted(out_types.items())),
        "enums": dict(sorted(out_enums.items())),
    }


def main(argv: list[str]) -> int:
    wsdl = Path(argv[0]) if argv else DEFAULT_WSDL
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    data = build(wsdl)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{out}: {len(data['types'])} types, {len(data['enums'])} enums, API {data['apiVersion']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
