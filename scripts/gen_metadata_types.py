#!/usr/bin/env python3
"""Regenerate ``sf_intuser/emulator/data/metadata_types.json``: every Metadata API type the sf CLI knows,
with the folder, suffix and layout of its files in a Metadata API zip, so the emulated org can tell
each file of a deploy to its component.

Source: the pinned sf CLI's own registry, ``@salesforce/source-deploy-retrieve``
``lib/src/registry/metadataRegistry.json`` (what sf itself uses to build and read deploy zips):
``directoryName``, ``suffix``, ``inFolder``/``folderType``, ``strategies.adapter`` (``bundle``: a
folder per component; ``matchingContentFile``/``mixedContent``: a body beside a ``-meta.xml``) and
``children`` (the elements of a parent's file that are components of their own: a CustomObject's
``fields`` are CustomFields named ``Object.Field``).

Usage: python scripts/gen_metadata_types.py   (after ``make setup`` installed the CLI)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = (ROOT / "tools" / "sf-cli" / "node_modules" / "@salesforce" / "source-deploy-retrieve" / "lib" / "src"
            / "registry" / "metadataRegistry.json")
OUT = ROOT / "sf_intuser" / "emulator" / "data" / "metadata_types.json"


def main() -> None:
    if not REGISTRY.exists():
        sys.exit(f"{REGISTRY.relative_to(ROOT)} is missing: run `make setup` first")
    reg = json.loads(REGISTRY.read_text(encoding="utf-8"))
    by_id = reg["types"]
    sdr = json.loads((REGISTRY.parents[3] / "package.json").read_text())["version"]
    out = {}
    for _tid, t in sorted(by_id.items()):
        entry = {"directory": t["directoryName"], "suffix": t.get("suffix"),
                 "adapter": (t.get("strategies") or {}).get("adapter")}
        if t.get("inFolder"):
            entry["inFolder"] = True
            entry["folderType"] = by_id[t["folderType"]]["name"] if t.get("folderType") in by_id else None
        kids = (t.get("children") or {}).get("types") or {}
        if kids:
            # element name in the parent's file -> child type; a child named without its parent's name
            entry["children"] = {(k.get("xmlElementName") or k["directoryName"]): k["name"] for k in kids.values()}
            if any(k.get("ignoreParentName") for k in kids.values()):
                entry["childNamesAlone"] = True
            entry["childIdElement"] = {k["name"]: k.get("uniqueIdElement", "fullName") for k in kids.values()}
        out[t["name"]] = entry
    OUT.write_text(json.dumps({
        "_source": f"@salesforce/source-deploy-retrieve {sdr} lib/src/registry/metadataRegistry.json (the pinned sf "
                   "CLI's metadata registry); regenerate with scripts/gen_metadata_types.py",
        "types": out}, indent=0, sort_keys=True) + "\n")
    print(f"{len(out)} types -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
