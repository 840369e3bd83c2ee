"""The last committed version of a file, for the lint's license-change check."""

from __future__ import annotations

import subprocess
from pathlib import Path


def committed_bytes(path: str | Path) -> bytes | None:
    """``git show HEAD:<path>``, or None outside a repository, before the first commit, or for a new file."""
    p = Path(path).resolve()
    try:
        proc = subprocess.run(
            ["git", "-C", str(p.parent), "show", f"HEAD:./{p.name}"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None
