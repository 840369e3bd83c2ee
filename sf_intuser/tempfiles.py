"""Temporary files of sf-intuser: request bodies for sf, retrieve and deploy folders. They can hold org
data, so they live in a folder of the user's own (``<tmp>/sf-intuser-<uid>``, 0700), each named with
the process that made it; one left behind by a process that died (SIGKILL, power loss) is removed at
the next start, while another live run's files are left alone."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

_OWNED = re.compile(r"^[a-z]+-(\d+)-")


def private_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    d = Path(tempfile.gettempdir()) / f"sf-intuser-{uid}"
    d.mkdir(mode=0o700, exist_ok=True)
    if d.is_symlink() or (hasattr(os, "getuid") and d.stat().st_uid != uid):
        # someone else made it (a shared /tmp): use a fresh private folder instead
        return Path(tempfile.mkdtemp(prefix="sf-intuser-"))
    os.chmod(d, 0o700)
    return d


def new_file(kind: str, suffix: str = "") -> Path:
    fd, path = tempfile.mkstemp(prefix=f"{kind}-{os.getpid()}-", suffix=suffix, dir=private_dir())
    os.close(fd)
    return Path(path)


def new_dir(kind: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-", dir=private_dir()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers() -> list[str]:
    """Remove what processes that are gone left in the private folder; returns the names removed."""
    try:
        d = private_dir()
        entries = list(d.iterdir())
    except OSError:
        return []
    removed = []
    for p in entries:
        m = _OWNED.match(p.name)
        if m is None or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        try:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            removed.append(p.name)
        except OSError:
            continue
    return removed
