"""Run folders: ``intuser-runs/<org>-<timestamp>/`` holding ``snapshot/``, ``metadata/`` (Metadata API
format with ``package.xml``), ``plan.json`` and ``plan.md``.

A run folder is written whole: everything goes into a hidden temporary folder beside it, which is
renamed into place at the end, so a run that dies leaves nothing half-written. A run folder is never
written over; one holding only a snapshot (``sf-intuser snapshot``) can receive its plan, written the
same way (files under temporary names, ``plan.json`` renamed last).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sf_intuser.org import snapshot as snapshot_mod
from sf_intuser.runs import snapshot as snapshot_files
from sf_intuser.workspace import write_synced as _put

# the run folder's file names, named here too (runs.PLAN, ...)
from sf_intuser.run_files import CHECKSUMS as CHECKSUMS, JOURNAL as JOURNAL, LOCK as LOCK  # noqa: F401
from sf_intuser.run_files import METADATA as METADATA, PLAN as PLAN, PLAN_MD as PLAN_MD  # noqa: F401
from sf_intuser.run_files import BASE

DEFAULT_BASE = Path(BASE)


class RunError(Exception):
    def __init__(self, name: str, message: str, actions: list[str] | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.actions = actions or []


def folder_name(org: str, when: datetime) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", org).strip("-.") or "org"
    return f"{slug[:60]}-{when.strftime('%Y%m%d-%H%M%S')}"


def state(folder: Path) -> str:
    """``absent``, ``empty``, ``snapshot`` (a snapshot and no plan), ``planned`` or ``other``."""
    if not folder.exists():
        return "absent"
    if not folder.is_dir():
        return "other"
    names = {p.name for p in folder.iterdir()}
    if not names:
        return "empty"
    if PLAN in names:
        return "planned"
    if names == {snapshot_files.FOLDER}:
        return "snapshot"
    return "other"


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write(folder: Path, *, snap: snapshot_mod.Snapshot | None, plan: dict[str, Any] | None = None,
          plan_md: str = "", files: dict[str, bytes] | None = None) -> Path:
    """Write a run folder. ``snap`` None: ``folder`` already holds the snapshot (state ``snapshot``)
    and receives the plan. Raises :class:`RunError` rather than write over anything."""
    st = state(folder)
    if snap is not None and st not in ("absent", "empty"):
        raise RunError("RunFolderExists", f"{folder} exists and is not empty: a run folder is never written over",
                       ["Leave out --run-dir for a new folder, or name a new one"])
    if snap is None and st != "snapshot":
        raise RunError("RunFolderExists", f"{folder} {'already holds a plan' if st == 'planned' else 'is not a run folder holding only a snapshot'}",  # noqa: E501
                       ["Leave out --run-dir for a new folder, or name a new one"])
    if snap is not None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        try:
            snapshot_files.write(tmp, snap)
            _plan_files(tmp, plan, plan_md, files)
            if st == "empty":
                folder.rmdir()
            os.rename(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder
    # a plan for a snapshot already there: temporary names, plan.json last
    tmp = Path(tempfile.mkdtemp(prefix=".plan.tmp-", dir=folder))
    try:
        _plan_files(tmp, plan, plan_md, files)
        if (tmp / METADATA).exists():
            os.rename(tmp / METADATA, folder / METADATA)
        os.rename(tmp / PLAN_MD, folder / PLAN_MD)
        os.rename(tmp / CHECKSUMS, folder / CHECKSUMS)
        os.rename(tmp / PLAN, folder / PLAN)
    except BaseException:
        for name in (METADATA, PLAN_MD, CHECKSUMS):
            p = folder / name
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists() and not (folder / PLAN).exists():
                p.unlink()
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _plan_files(root: Path, plan: dict[str, Any] | None, plan_md: str, files: dict[str, bytes] | None) -> None:
    if plan is None:
        return
    sums = {}
    for rel, data in (files or {}).items():
        _put(root / METADATA / rel, data)
        sums[f"{METADATA}/{rel}"] = snapshot_files.sha256(data)
    md = plan_md.encode("utf-8")
    body = _json(plan)
    _put(root / PLAN_MD, md)
    sums[PLAN_MD] = snapshot_files.sha256(md)
    sums[PLAN] = snapshot_files.sha256(body)
    _put(root / CHECKSUMS, _json({"schema": "sf-intuser/checksums", "files": dict(sorted(sums.items()))}))
    _put(root / PLAN, body)


def check(folder: Path) -> dict[str, Any]:
    """The plan of ``folder`` after checking plan.json, plan.md and metadata/ against checksums.json
    (the snapshot has its own manifest). Raises :class:`RunError` naming the file that differs."""
    fix = ["Plan again into a new run folder (sf-intuser plan); a run folder is never edited by hand"]
    if not (folder / PLAN).is_file():
        raise RunError("RunFolderNotFound", f"{folder} holds no {PLAN}: it is not a planned run folder",
                       ["Point at a run folder sf-intuser plan wrote (intuser-runs/<org>-<time>)"])
    try:
        listed = json.loads((folder / CHECKSUMS).read_bytes())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise RunError("RunFolderTampered", f"{folder / CHECKSUMS} is missing or unreadable", fix) from None
    present = {p.relative_to(folder).as_posix() for p in (folder / METADATA).rglob("*") if p.is_file()}
    for rel in sorted(present - set(listed)):
        raise RunError("RunFolderTampered", f"{folder / rel} was added after the plan was written", fix)
    for rel, digest in sorted(listed.items()):
        try:
            body = (folder / rel).read_bytes()
        except OSError:
            raise RunError("RunFolderTampered", f"{folder / rel} is missing from the run folder", fix) from None
        if snapshot_files.sha256(body) != digest:
            raise RunError("RunFolderTampered", f"{folder / rel} does not match its checksum in {CHECKSUMS}: it was "
                           "changed after the plan was written", fix)
    try:
        plan = json.loads((folder / PLAN).read_bytes())
    except ValueError as exc:
        raise RunError("RunFolderTampered", f"{folder / PLAN} is not JSON ({exc})", fix) from None
    if not isinstance(plan, dict) or plan.get("schema") != "sf-intuser/plan" or plan.get("version") != 1:
        raise RunError("RunFolderTampered", f"{folder / PLAN} is not an sf-intuser plan (schema sf-intuser/plan v1)",
                       fix)
    return plan


def into_project(project: Path, plan: dict[str, Any], files: dict[str, bytes], force: bool = False) -> list[dict[str, Any]]:
    """Write the plan's generated components into the project's default package directory in source
    format. Nothing is written over an existing file that differs, unless ``force``; all or nothing."""
    from sf_intuser import workspace

    cfg = json.loads((project / "sfdx-project.json").read_text(encoding="utf-8"))
    dirs = [d for d in cfg.get("packageDirectories", []) if isinstance(d, dict) and d.get("path")]
    default = next((d for d in dirs if d.get("default")), dirs[0] if dirs else {"path": "force-app"})
    base = project / default["path"] / "main" / "default"
    found = workspace.existing_components([project], types=("PermissionSet", "Profile", "PermissionSetGroup"))
    writes: dict[str, bytes] = {}
    report = []
    clashes = []
    for g in plan["generated"]:
        rel = g["file"][len(METADATA) + 1:]
        data = files[rel]
        there = found.get((g["type"], g["name"].lower()))
        target = there or (base / workspace.file_name(g["type"], g["name"], "source"))
        if there is not None and there.read_bytes() == data:
            report.append({"type": g["type"], "name": g["name"], "path": str(target), "action": "unchanged"})
            continue
        if there is not None and not force:
            clashes.append(str(there))
            continue
        writes[str(target.relative_to(project))] = data
        report.append({"type": g["type"], "name": g["name"], "path": str(target),
                       "action": "overwritten" if there is not None else "written"})
    if clashes:
        raise RunError("ProjectFileDiffers", f"{clashes[0]} exists and differs from the plan's"
                       + (f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else "") + ": nothing was written "
                       "into the project", ["Review the difference, then run again with --force to overwrite",
                                            "Or plan without --into-project and deploy metadata/ from the run folder"])
    if writes:
        workspace.write_atomic(project, writes)
    return report




class RunLock:
    """An exclusive lock on a run folder while apply or rollback writes to the org and the journal:
    a second one is refused, naming the holder. The kernel lets go of the lock when its process dies
    (``flock``), so a lock left by a dead process is no lock: its file only says who held it last."""

    def __init__(self, folder: Path, command: str) -> None:
        self.folder = folder
        self.command = command
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        import fcntl

        path = self.folder / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise RunError("RunFolderNotWritable", f"{self.folder} can't be written ({exc.strerror or exc}): "
                           f"{self.command} needs to keep its journal there; nothing was changed",
                           [f"Make {self.folder} writable, or copy the run folder somewhere writable"]) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 500, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise RunError("RunFolderBusy", f"{self.folder} is in use by {holder}: two runs on one folder would "
                           "interleave their journals; nothing was changed",
                           ["Wait for that run to end, then run this again"]) from None
        from datetime import datetime, timezone

        info = (f"sf-intuser {self.command} (pid {os.getpid()}, since "
                f"{datetime.now(timezone.utc).isoformat(timespec='seconds')})").encode("utf-8")
        try:   # who holds it, for a second run's message; a full disk leaves the lock held all the same
            os.ftruncate(fd, 0)
            os.pwrite(fd, info, 0)
        except OSError:
            pass
        self.fd = fd
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)   # closing lets go of the lock
            self.fd = None
