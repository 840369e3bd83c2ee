"""The last committed version of files, for the lint's license-change check and to tell which files a
deploy changes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from sf_intuser.sf.runner import run_process

if TYPE_CHECKING:     # for the annotations only; committed_state imports it when it runs
    from sf_intuser.hooks.lint import Committed


def committed_many(paths: list[str | Path]) -> dict[str, bytes | None]:
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
            proc = run_process(["git", "-C", folder, "rev-parse", "--show-toplevel"], timeout=30)
            tops[folder] = proc[1].decode("utf-8", "replace").strip() if proc and proc[0] == 0 else None
        top = tops[folder]
        if top:
            try:
                rel = p.relative_to(Path(top).resolve()).as_posix()
            except ValueError:
                continue
            by_top.setdefault(top, []).append((str(raw), rel))
    for top, items in by_top.items():
        request = "".join(f"HEAD:{rel}\n" for _, rel in items).encode("utf-8")
        proc = run_process(["git", "-C", top, "cat-file", "--batch"], stdin=request, timeout=120)
        if proc is None or proc[0] != 0:
            continue
        data, pos = proc[1], 0
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


def committed_state(paths: list[str], license_of: Sequence[str] = ()) -> dict[str, Committed | None]:
    """For the pre-deploy gate, in three git calls per repository whatever the number of files and with no
    file content sent through a pipe: which files differ from ``HEAD`` (``git diff --name-only``, which
    trusts the index's stat data for files it knows unchanged), which ``HEAD`` lacks (``git ls-tree``),
    and the committed ``userLicense`` line of the changed profiles in ``license_of`` (``git grep``). None:
    not committed (a new file, or outside a repository)."""
    from sf_intuser.hooks.lint import Committed, committed_license

    out: dict[str, Committed | None] = {p: None for p in paths}
    wanted = set(license_of)
    groups: dict[str, list[tuple[str, str]]] = {}
    for raw in paths:
        p = Path(raw).resolve()
        proc = run_process(["git", "-C", str(p.parent), "rev-parse", "--show-toplevel"], timeout=30)
        if proc is None:
            continue
        top = proc[1].decode("utf-8", "replace").strip() if proc[0] == 0 else ""
        if top:
            try:
                groups.setdefault(top, []).append((raw, p.relative_to(Path(top).resolve()).as_posix()))
            except ValueError:
                continue

    def git(top: str, *args: str) -> list[str] | None:
        proc = run_process(["git", "-C", top, "-c", "core.quotepath=off", *args], timeout=120)
        if proc is None:
            return None
        return proc[1].decode("utf-8", "replace").splitlines() if proc[0] in (0, 1) else None

    for top, items in groups.items():
        rels = [rel for _, rel in items]
        known = git(top, "ls-tree", "-r", "--name-only", "HEAD", "--", *rels)
        changed = git(top, "diff", "--name-only", "HEAD", "--", *rels)
        if known is None or changed is None:
            continue
        known_set, changed_set = set(known), set(changed)
        grep_for = [rel for raw, rel in items if rel in known_set and rel in changed_set and raw in wanted]
        licenses: dict[str, str | None] = {}
        if grep_for:
            for line in git(top, "grep", "--no-color", "-I", "--full-name", "-H", "-e", "<userLicense>",
                            "HEAD", "--", *grep_for) or ():
                # HEAD:path:line
                _, _, rest = line.partition(":")
                rel, _, text = rest.partition(":")
                licenses[rel] = committed_license(text.encode("utf-8"))
        for raw, rel in items:
            if rel in known_set:
                out[raw] = Committed(rel not in changed_set, licenses.get(rel))
    return out
