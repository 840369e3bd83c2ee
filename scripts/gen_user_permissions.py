#!/usr/bin/env python3
"""Regenerate ``sf_intuser/metadata/data/user_permissions.json``: the user permission names known to exist.

An org's valid names are the ``Permissions<X>`` boolean fields of its ``PermissionSet`` object
(PermissionSet object reference; sfprofiles ``metadataRetriever.getUserPermissions`` reads them from
``describe(PermissionSet)``). The Metadata API WSDL does not enumerate them (``userPermissions/name``
is a string), but the Tooling API WSDL does: its ``PermissionSet`` complexType has one field per
permission. Salesforce publishes that WSDL, as TypeScript types generated from it, in
``forcedotcom/wsdl`` (``src/tooling.ts``, ``export type PermissionSet``; API 66.0, BSD-3-Clause).

So the list is, with where each name comes from kept apart:

1. ``toolingV66``: every ``Permissions<X>`` field of the Tooling API's PermissionSet, API 66.0;
2. ``seenInRetrievedFiles``: names in retrieved profiles and permission sets of real orgs
   (``../shared/corpus``) that (1) lacks: the org the WSDL was generated from lacks some features
   (classic Knowledge's ``PublishArticles``, for example), and a real org's retrieve proves the name
   exists in some org;
3. names sf-intuser's own rules and dependency table use (all of them are in 1 or 2; the script
   says so if one is not).

Names are only added: what the file holds stays.

Usage: python scripts/gen_user_permissions.py [--tooling-ts PATH/TO/forcedotcom-wsdl/src/tooling.ts]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpus"
OUT = ROOT / "sf_intuser" / "metadata" / "data" / "user_permissions.json"


def tooling_names(text: str) -> set[str]:
    """The ``Permissions<X>`` fields of ``export type PermissionSet`` in forcedotcom/wsdl's tooling.ts."""
    start = text.index("export type PermissionSet = ")
    end = text.index("\n};", start)
    return set(re.findall(r"^\s+Permissions([A-Za-z0-9]+)\??:", text[start:end], re.M))


def main() -> None:
    from sf_intuser.metadata import license_rules, xml

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tooling-ts", type=Path, help="forcedotcom/wsdl src/tooling.ts (API 66.0)")
    args = ap.parse_args()
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    tooling = set(old.get("toolingV66", []))
    if args.tooling_ts:
        tooling |= tooling_names(args.tooling_ts.read_text(encoding="utf-8"))
    seen = set(old.get("seenInRetrievedFiles", []))
    index = CORPUS / "index.json"
    if index.exists():
        for e in json.loads(index.read_text()):
            if e["kind"] in ("profile", "permissionset"):
                root = xml.parse((CORPUS / e["path"]).read_bytes(), e["path"]).root
                seen.update(xml.text(u, "name") or "" for u in xml.children(root, "userPermissions"))
    else:
        print("../shared/corpus is absent: keeping the names already listed", file=sys.stderr)
    seen.discard("")
    seen -= tooling
    ours = set(license_rules.USER_PERMISSION_RULES)
    for dep in license_rules.PERMISSION_DEPENDENCIES.values():
        ours.add(dep.permission)
        ours.update(dep.requires)
    unsourced = sorted(ours - tooling - seen)
    if unsourced:
        print(f"names sf-intuser uses without a source: {', '.join(unsourced)}", file=sys.stderr)
    names = tooling | seen | set(old.get("names", [])) | ours
    OUT.write_text(json.dumps({
        "_source": "user permission names: the Permissions<X> fields of the Tooling API's PermissionSet, API 66.0 "
                   "(forcedotcom/wsdl src/tooling.ts, generated from Salesforce's Tooling WSDL), plus names seen "
                   "in retrieved profiles and permission sets of real orgs that the WSDL's org lacks; "
                   "regenerate with scripts/gen_user_permissions.py",
        "toolingV66": sorted(tooling),
        "seenInRetrievedFiles": sorted(seen),
        "names": sorted(names),
    }, indent=0) + "\n")
    print(f"{len(names)} names ({len(tooling)} from the Tooling API v66, {len(seen)} seen only in retrieved files) "
          f"-> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
