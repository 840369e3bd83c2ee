#!/usr/bin/env python3
"""Per-call overhead of the pinned sf CLI against the emulated org (median of N calls).

Usage: python scripts/bench_sf_calls.py [N]   (needs `make setup`)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sf_intuser.emulator.server import EmulatedOrg  # noqa: E402
from sf_intuser.sf import commands  # noqa: E402
from sf_intuser.sf.runner import SfRunner  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    emu = EmulatedOrg(max_seconds=600).start()
    with tempfile.TemporaryDirectory() as home:
        env = {"PATH": os.environ["PATH"], "HOME": home, "SF_USE_GENERIC_UNIX_KEYCHAIN": "true",
               "SF_ACCESS_TOKEN": emu.access_token()}
        r = SfRunner(sf=str(ROOT / ".venv/bin/sf"), env=env, timeout=120)
        r.run(["org", "login", "access-token", "--instance-url", emu.url, "--no-prompt", "--alias", "emu"])
        cases = {
            "sf --version (floor)": lambda: r.raw(["--version"]),
            "org display": lambda: commands.org_display(r, "emu"),
            "data query": lambda: commands.query(r, "SELECT Id, Username FROM User", "emu"),
        }
        for name, fn in cases.items():
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            print(f"{name:22s} median {statistics.median(times):.2f} s  (min {min(times):.2f}, max {max(times):.2f}, n={n})")
    emu.stop()


if __name__ == "__main__":
    main()
