"""The last committed version of files, for the lint's license-change check and to tell which files a
deploy changes."""

from __future__ import annotations

import subprocess
from pathlib import Path


def committed_many(paths: "list[str | Path]") -> dict[str, bytes | None]:
    """The last committed version (``HEAD``) of each file, or None outside a repository, before the
    first commit, or for a new file: one ``git cat-file --batch`` per repository, not a ``git show``
    per file (a deploy of hundreds of components must not start hundreds of processes). Keys are the
    paths as given."""
    out: dict[str, bytes | None] = {str(p): None for p in paths}
    by_top: dict[str, list[tuple[str, str]]] = {}
    tops: dict[str, str | None] = {}
    for raw in paths:
        p = Path(raw).resolve()
        folder = str(p.parent)
        if folder not in tops:
            try:
                proc = subprocess.run(["git", "-C", folder, "rev-parse", "--show-toplevel"], capture_output=True,
                                      timeout=30, check=False)
                tops[folder] = proc.stdout.decode("utf-8", "replace").strip() if proc.returncode == 0 else None
            except (OSError, subprocess.TimeoutExpired):
                tops[folder] = None
        top = tops[folder]
        if top:
            try:
                rel = p.relative_to(Path(top).resolve()).as_posix()
            except ValueError:
                continue
            by_top.setdefault(top, []).append((str(raw), rel))
    for top, items in by_top.items():
        request = "".join(f"HEAD:{rel}\n" for _, rel in items).encode("utf-8")
        try:
            proc = subprocess.run(["git", "-C", top, "cat-file", "--batch"], input=request, capture_output=True,
                                  timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode != 0:
            continue
        data, pos = proc.stdout, 0
        for key, _ in items:
            end = data.find(b"\n", pos)
            if end < 0:
                break
            header = data[pos:end].split()
            pos = end + 1
            if len(header) == 3 and header[1] == b"blob":
                size = int(header[2])
                out[key] = data[pos:pos + size]
                pos += size + 1
    return out
