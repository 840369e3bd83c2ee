"""Local metadata files: find them in either format, read them safely, write outputs atomically.

Formats (Salesforce DX docs, "Source format" vs "Metadata API format"):

- source: ``profiles/X.profile-meta.xml``, ``permissionsets/X.permissionset-meta.xml``,
  ``permissionsetgroups/X.permissionsetgroup-meta.xml``, ``connectedApps/X.connectedApp-meta.xml``
  under the package directories that ``sfdx-project.json`` lists;
- mdapi: ``profiles/X.profile``, ``permissionsets/X.permissionset``, ... beside a ``package.xml``.

File names are URL-encoded where a name holds characters a file name cannot (``%27`` for ``'``,
``%2C`` for ``,``: retrieved "Appirio EM%27s%2C ... .profile" in shared/corpus).
"""

from __future__ import annotations

import json
import os
import tempfile
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
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if d not in ("node_modules", ".git", ".sf", ".sfdx"))
                for fn in sorted(filenames):
                    mf = classify_path(Path(dirpath) / fn)
                    if mf is not None:
                        found[mf.path.resolve()] = mf
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


def write_atomic(out_dir: Path, files: dict[str, bytes], protect: Iterable[Path] = ()) -> list[Path]:
    """Write ``files`` (relative path -> bytes) under ``out_dir``; all or nothing, never over ``protect``.

    Every file is first written to a temporary folder beside ``out_dir`` and fsynced; only when all
    are written are they moved into place (``os.replace`` is atomic per file). On any error the
    temporary folder is removed and ``out_dir`` is left as it was.
    """
    out_dir = out_dir.resolve()
    protected = {p.resolve() for p in protect}
    targets = {rel: out_dir / rel for rel in files}
    clash = sorted(str(t) for t in targets.values() if t in protected)
    if clash:
        raise WorkspaceError(f"{clash[0]}: the output would overwrite an input file. Choose another --output-dir")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        for rel, data in files.items():
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with dest.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        written = []
        for rel in files:
            final = targets[rel]
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, final)
            written.append(final)
        return written
    finally:
        for dirpath, _dirs, fnames in os.walk(tmp, topdown=False):
            for fn in fnames:
                os.unlink(os.path.join(dirpath, fn))
            os.rmdir(dirpath)
