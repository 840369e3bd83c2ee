#!/usr/bin/env python3
"""How many of the user permission names real projects enable the emulated org knows: prints, over the
profile and permission set files found, the distinct enabled names, and the names (and files and
projects) the list in sf_intuser/metadata/data/user_permissions.json does not know.

Usage: python scripts/count_permission_names.py PROJECT_DIR [PROJECT_DIR ...] [--known OTHER_LIST.json]
       (a project folder, e.g. a clone of a public SFDX project, or ../shared/corpus)
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KNOWN = ROOT / "sf_intuser" / "metadata" / "data" / "user_permissions.json"
FILES = re.compile(r"\.(profile|permissionset)(-meta\.xml)?$")
ENABLED = (re.compile(r"<userPermissions>\s*<enabled>true</enabled>\s*<name>([^<]+)</name>"),
           re.compile(r"<userPermissions>\s*<name>([^<]+)</name>\s*<enabled>true</enabled>"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("projects", nargs="+", type=Path)
    ap.add_argument("--known", type=Path, default=KNOWN, help="the list to check against (default: the package's)")
    args = ap.parse_args()
    known = set(json.loads(args.known.read_text())["names"])
    files = 0
    names: set[str] = set()
    unknown_files = 0
    unknown_projects: set[str] = set()
    for project in args.projects:
        for path in sorted(p for p in project.rglob("*") if p.is_file() and FILES.search(p.name)):
            text = path.read_text(encoding="utf-8", errors="replace")
            found = {n for rx in ENABLED for n in rx.findall(text)}
            files += 1
            names |= found
            if found - known:
                unknown_files += 1
                unknown_projects.add(str(project))
    missing = sorted(names - known)
    print(f"{len(args.projects)} projects, {files} profile and permission set files, {len(names)} distinct enabled names")
    print(f"unknown to the list: {len(missing)} names, in {unknown_files} files of {len(unknown_projects)} projects"
          + (f": {', '.join(missing)}" if missing else ""))


if __name__ == "__main__":
    main()
