"""Local metadata files: find them in either format, read them safely, write outputs atomically.

Formats (Salesforce DX docs, "Source format" vs "Metadata API format"):

- source: ``profiles/X.profile-meta.xml``, ``permissionsets/X.permissionset-meta.xml``,
  ``permissionsetgroups/X.permissionsetgroup-meta.xml``, ``connectedApps/X.connectedApp-meta.xml``
  under the package directories that ``sfdx-project.json`` lists;
- mdapi: ``profiles/X.profile``, ``permissionsets/X.permissionset``, ... beside a ``package.xml``.

File names are URL-encoded where a name holds characters a file name cannot (``%27`` for ``'``,
``%2C`` for ``,``: a retrieved "Appirio EM%27s%2C ... .profile", Appirio/age).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import quote, unquote

from sf_intuser.metadata.xml import DEFAULT_MAX_BYTES, MetadataXmlError

SUFFIXES = {
    "Profile": ("profiles", "profile"),
    "PermissionSet": ("permissionsets", "permissionset"),
    "PermissionSetGroup": ("permissionsetgroups", "permissionsetgroup"),
    "ConnectedApp": ("connectedApps", "connectedApp"),
}


class WorkspaceError(Exception):
    """A path problem; ``str()`` names the path and the fix."""


@dataclass(frozen=True)
class MetadataFile:
    path: Path
    type: str
    name: str
    format: str  # source | mdapi

    def read(self, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        return read_bytes(self.path, max_bytes)


def classify_path(path: Path) -> MetadataFile | None:
    fname = path.name
    for type_name, (_, ext) in SUFFIXES.items():
        for fmt, suffix in (("source", f".{ext}-meta.xml"), ("mdapi", f".{ext}")):
            if fname.endswith(suffix) and len(fname) > len(suffix):
                return MetadataFile(path, type_name, unquote(fname[: -len(suffix)]), fmt)
    return None


def package_directories(project_dir: Path) -> list[Path]:
    cfg = project_dir / "sfdx-project.json"
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"{cfg}: cannot read sfdx-project.json ({exc}). Fix the JSON or pass the folders directly") from None
    dirs = [project_dir / d["path"] for d in data.get("packageDirectories", []) if isinstance(d, dict) and d.get("path")]
    return dirs or [project_dir]


def discover(paths: Iterable[str | Path]) -> list[MetadataFile]:
    """Metadata files named by ``paths``: files, folders, or SFDX project roots."""
    found: dict[Path, MetadataFile] = {}
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise WorkspaceError(f"{p}: no such file or folder. Check the path")
        if p.is_file():
            mf = classify_path(p)
            if mf is None:
                raise WorkspaceError(
                    f"{p}: not a profile, permission set, permission set group or connected app file "
                    "(expected *.profile-meta.xml, *.permissionset-meta.xml, *.profile, ...)")
            found[p.resolve()] = mf
            continue
        roots = package_directories(p) if (p / "sfdx-project.json").exists() else [p]
        for root in roots:
            inside = p.resolve()
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if d not in ("node_modules", ".git", ".sf", ".sfdx"))
                for fn in sorted(filenames):
                    mf = classify_path(Path(dirpath) / fn)
                    if mf is None:
                        continue
                    target = mf.path.resolve()
                    if mf.path.is_symlink() and not target.is_relative_to(inside):
                        # a link in the project pointing elsewhere would read (and a gate would judge) a file
                        # the project does not hold
                        raise WorkspaceError(f"{mf.path}: a link to {target}, outside {p}. Replace the link with "
                                             "the file, or name the file itself")
                    found[target] = mf
    return sorted(found.values(), key=lambda m: (m.type, m.name, str(m.path)))


def read_bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise MetadataXmlError(str(path), f"file is {size:,} bytes, over the {max_bytes:,}-byte limit",
                                   "Split the metadata or raise the limit if the file is trusted")
        with path.open("rb") as fh:
            return fh.read(max_bytes + 1)
    except OSError as exc:
        raise WorkspaceError(f"{path}: cannot read ({exc.strerror}). Check permissions") from None


def file_name(type_name: str, name: str, fmt: str) -> str:
    folder, ext = SUFFIXES[type_name]
    safe = quote(name, safe=" -_.()&+@!$=;[]{}~^")
    return f"{folder}/{safe}.{ext}-meta.xml" if fmt == "source" else f"{folder}/{safe}.{ext}"


class Staging:
    """Files written one at a time into a private folder beside ``out_dir`` (each fsynced), then
    moved into place all at once by :meth:`commit` (``os.replace`` is atomic per file). Until the
    commit nothing under ``out_dir`` changes; :meth:`discard`, or leaving a ``with`` block by an
    exception, removes the staging folder and leaves ``out_dir`` as it was. A file is never written
    over one of ``protect`` (the inputs)."""

    def __init__(self, out_dir: Path, protect: Iterable[Path] = ()) -> None:
        self.out_dir = Path(out_dir).resolve()
        self.protected = {Path(p).resolve() for p in protect}
        self.tmp: Path | None = None
        self.staged: set[str] = set()

    def put(self, key: str, data: bytes) -> None:
        if self.tmp is None:
            import tempfile

            self.out_dir.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.tmp-", dir=self.out_dir.parent))
        dest = self.tmp / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self.staged.add(key)

    def commit(self, placement: dict[str, str]) -> list[Path]:
        """Move staged ``key`` -> ``out_dir / relative path`` for every entry of ``placement``."""
        targets = {key: self.out_dir / rel for key, rel in placement.items()}
        clash = sorted(str(t) for t in targets.values() if t in self.protected)
        if clash:
            raise WorkspaceError(f"{clash[0]}: the output would overwrite an input file. Choose another --output-dir")
        written = []
        try:
            for key, final in targets.items():
                final.parent.mkdir(parents=True, exist_ok=True)
                assert self.tmp is not None
                os.replace(self.tmp / key, final)
                written.append(final)
            return written
        finally:
            self.discard()

    def discard(self) -> None:
        if self.tmp is None:
            return
        for dirpath, _dirs, fnames in os.walk(self.tmp, topdown=False):
            for fn in fnames:
                os.unlink(os.path.join(dirpath, fn))
            os.rmdir(dirpath)
        self.tmp = None

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def write_synced(path: Path, data: bytes, private: bool = False) -> None:
    """Write ``data`` to ``path`` (folders made) and flush it to disk before returning. ``private``:
    readable by its owner only (0600, also when the file existed), for files holding org data outside
    the run folder (which is 0700 already): a CSV of candidates, a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
    with os.fdopen(fd, "wb") as fh:
        if private:
            os.fchmod(fh.fileno(), 0o600)
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_atomic(out_dir: Path, files: dict[str, bytes], protect: Iterable[Path] = ()) -> list[Path]:
    """Write ``files`` (relative path -> bytes) under ``out_dir``; all or nothing, never over ``protect``."""
    with Staging(out_dir, protect) as stage:
        protected = stage.protected
        clash = sorted(str(stage.out_dir / rel) for rel in files if (stage.out_dir / rel) in protected)
        if clash:
            raise WorkspaceError(f"{clash[0]}: the output would overwrite an input file. Choose another --output-dir")
        for rel, data in files.items():
            stage.put(rel, data)
        return stage.commit({rel: rel for rel in files})


# --- what already exists: the project around the inputs, and names taken ------------------------


def find_project(path: Path) -> Path | None:
    """The SFDX project (the folder holding ``sfdx-project.json``) that ``path`` is in, if any."""
    p = Path(path).resolve()
    for folder in (p, *p.parents) if p.is_dir() else p.parents:
        if (folder / "sfdx-project.json").is_file():
            return folder
    return None


def source_api_version(project: Path | None) -> str | None:
    """``sourceApiVersion`` of the project's ``sfdx-project.json``, if it says one."""
    if project is None:
        return None
    try:
        value = json.loads((project / "sfdx-project.json").read_text(encoding="utf-8")).get("sourceApiVersion")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None


def existing_components(folders: Iterable[Path], types: Iterable[str] = ("PermissionSet", "Profile")
                        ) -> dict[tuple[str, str], Path]:
    """``{(type, lower-case name): file}`` for the components of ``types`` under ``folders`` (either
    format; an SFDX project root stands for its package directories). Missing folders are skipped."""
    wanted = set(types)
    found: dict[tuple[str, str], Path] = {}
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        for mf in discover([folder]):
            if mf.type in wanted:
                found.setdefault((mf.type, mf.name.lower()), mf.path)
    return found


def description_of(path: Path) -> str | None:
    """The ``<description>`` of a metadata file, or None when it has none or cannot be read."""
    from sf_intuser.metadata.xml import parse, text

    try:
        return text(parse(read_bytes(path), str(path), comments=False).root, "description")
    except (WorkspaceError, MetadataXmlError):
        return None
