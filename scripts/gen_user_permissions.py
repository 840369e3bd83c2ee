#!/usr/bin/env python3
"""Regenerate ``sf_intuser/metadata/data/user_permissions.json``: the user permission names known to exist.

An org's valid names are the ``Permissions*`` fields of ``describe(PermissionSet)`` (sfprofiles
``metadataRetriever.getUserPermissions``; salesforce-facts.md A4); the Metadata API WSDL does not
enumerate them (``userPermissions/name`` is a string). So the list is every name seen in the
retrieved profiles and permission sets of ../shared/corpus, joined with the names sf-intuser's
rules and the dependency table name, and with what the file already holds (names are only added).

Usage: python scripts/gen_user_permissions.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpus"
OUT = ROOT / "sf_intuser" / "metadata" / "data" / "user_permissions.json"


def main() -> None:
    from sf_intuser.metadata import license_rules, xml

    names: set[str] = set()
    if OUT.exists():
        names.update(json.loads(OUT.read_text())["names"])
    index = CORPUS / "index.json"
    if index.exists():
        for e in json.loads(index.read_text()):
            if e["kind"] in ("profile", "permissionset"):
                root = xml.parse((CORPUS / e["path"]).read_bytes(), e["path"]).root
                names.update(xml.text(u, "name") or "" for u in xml.children(root, "userPermissions"))
    else:
        print("../shared/corpus is absent: keeping the names already listed", file=sys.stderr)
    names.update(license_rules.USER_PERMISSION_RULES)
    for dep in license_rules.PERMISSION_DEPENDENCIES.values():
        names.add(dep.permission)
        names.update(dep.requires)
    names.discard("")
    OUT.write_text(json.dumps({
        "_source": "user permission names seen in retrieved profiles and permission sets of public repositories "
                   "(shared/corpus), with those sf-intuser's rules and dependency table name; regenerate with "
                   "scripts/gen_user_permissions.py",
        "names": sorted(names),
    }, indent=1) + "\n")
    print(f"{len(names)} names -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
