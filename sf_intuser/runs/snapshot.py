"""A run folder's ``snapshot/``: written whole or not at all (a temporary folder renamed into place),
with a SHA-256 for every file in ``snapshot/manifest.json``; :func:`load` refuses one whose files do
not match, naming the file. What a snapshot holds and how it is taken: :mod:`sf_intuser.org.snapshot`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from sf_intuser import run_files
from sf_intuser.org.model import Inventory
from sf_intuser.org.snapshot import SCHEMA, VERSION, Snapshot, SnapshotError
from sf_intuser.workspace import write_synced

FOLDER = run_files.SNAPSHOT
MANIFEST = run_files.SNAPSHOT_MANIFEST
#: each retrieved type's folder and file extension below ``snapshot/metadata/``
FOLDERS = {"Profile": ("profiles", "profile"), "PermissionSet": ("permissionsets", "permissionset"),
           "PermissionSetGroup": ("permissionsetgroups", "permissionsetgroup"),
           "ConnectedApp": ("connectedApps", "connectedApp")}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_of(snap: Snapshot) -> dict[str, bytes]:
    """The snapshot's files by path below ``snapshot/`` (manifest.json excepted)."""
    from urllib.parse import quote

    out = {"meta.json": _json(snap.meta), "inventory.json": _json(snap.inventory.to_dict())}
    for mtype, items in snap.metadata.items():
        folder, ext = FOLDERS.get(mtype, (mtype, mtype))
        for name, data in items.items():
            out[f"metadata/{folder}/{_stem(mtype, name, quote)}.{ext}"] = data
    return out


def _stem(mtype: str, name: str, quote: Callable[..., str]) -> str:
    """A component's file name in the snapshot. A profile keeps its Metadata API name, which Salesforce
    has already made a file name of (``Admin``, ``Custom%3A Sales``: docs/salesforce-facts.md A8); a name that
    still holds a path separator is refused rather than written somewhere else."""
    if mtype == "Profile":
        if "/" in name or "\\" in name or "\0" in name or name in ("", ".", "..") or name.startswith("."):
            raise SnapshotError("SnapshotBadName", f"the org names a profile {name!r}, which can't be a file name",
                                ["Rename the profile in Setup, then plan again"])
        return name
    return quote(name, safe=' -_.()&+@!$=;[]{}~^')


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write(folder: Path, snap: Snapshot) -> Path:
    """Write ``folder/snapshot`` whole (a temporary folder renamed into place) and never over an
    existing one. Returns the snapshot folder."""
    target = folder / FOLDER
    if target.exists():
        raise SnapshotError("SnapshotExists", f"{target} exists: a snapshot is never overwritten",
                            ["Use a new run folder (leave out --run-dir for a fresh one)"])
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".snapshot.tmp-", dir=folder))
    try:
        files = files_of(snap)
        for rel, data in files.items():
            write_synced(tmp / rel, data)
        manifest = {"schema": SCHEMA, "version": VERSION, "files": {rel: sha256(d) for rel, d in sorted(files.items())}}
        write_synced(tmp / MANIFEST, _json(manifest))
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load(folder: Path) -> Snapshot:
    """Read ``folder/snapshot`` after checking every file against ``manifest.json``."""
    from urllib.parse import unquote

    root = folder / FOLDER
    man_path = root / MANIFEST
    fix = ["Take a new snapshot: sf-intuser plan (or sf-intuser snapshot) into a new run folder; never edit one by "
           "hand"]
    try:
        manifest = json.loads(man_path.read_bytes())
    except FileNotFoundError:
        raise SnapshotError("SnapshotNotFound", f"{man_path} does not exist: {folder} holds no snapshot",
                            ["Point at a run folder that sf-intuser wrote (intuser-runs/...)"]) from None
    except (OSError, ValueError) as exc:
        raise SnapshotError("SnapshotTampered", f"{man_path} cannot be read ({exc})", fix) from None
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if manifest.get("schema") != SCHEMA or not isinstance(listed, dict):
        raise SnapshotError("SnapshotTampered", f"{man_path} is not an sf-intuser snapshot manifest", fix)
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {MANIFEST}
    for rel in sorted(present - set(listed)):
        raise SnapshotError("SnapshotTampered", f"{root / rel} is not in the snapshot's manifest: it was added after "
                            "the snapshot was taken", fix)
    data: dict[str, bytes] = {}
    for rel, digest in sorted(listed.items()):
        path = root / rel
        try:
            body = path.read_bytes()
        except OSError:
            raise SnapshotError("SnapshotTampered", f"{path} is missing from the snapshot", fix) from None
        if sha256(body) != digest:
            raise SnapshotError("SnapshotTampered", f"{path} does not match its checksum in {man_path}: it was "
                                "changed after the snapshot was taken", fix)
        data[rel] = body
    meta = json.loads(data["meta.json"])
    inv = Inventory.from_dict(json.loads(data["inventory.json"]))
    by_folder = {folder_: t for t, (folder_, _) in FOLDERS.items()}
    metadata: dict[str, dict[str, bytes]] = {}
    for rel, body in data.items():
        parts = rel.split("/")
        if len(parts) == 3 and parts[0] == "metadata" and parts[1] in by_folder:
            mtype = by_folder[parts[1]]
            ext = FOLDERS[mtype][1]
            stem = parts[2][: -len(ext) - 1]
            # version 1 quoted every name; from version 2 a profile's file name is its API name
            raw = mtype == "Profile" and int(meta.get("version") or 1) >= 2
            metadata.setdefault(mtype, {})[stem if raw else unquote(stem)] = body
    return Snapshot(inv, metadata, meta, list(meta.get("users") or []))
