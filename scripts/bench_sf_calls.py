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
from sf_intuser.metadata import package_xml  # noqa: E402
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
        work = Path(home) / "work"
        work.mkdir()
        manifest = work / "package.xml"
        manifest.write_bytes(package_xml.build({"Profile": ["Integration Middleware"], "PermissionSet": ["*"]}, "62.0"))
        deploy_dir = work / "deploy"
        (deploy_dir / "permissionsets").mkdir(parents=True)
        (deploy_dir / "permissionsets" / "Sync_Reader.permissionset").write_bytes(
            emu.state.components[("PermissionSet", "Sync_Reader")].body)
        (deploy_dir / "package.xml").write_bytes(package_xml.build({"PermissionSet": ["Sync_Reader"]}, "62.0"))
        jane = emu.state.one("User", Username="jane.doe@acme.emulated")["Id"]
        ps = emu.state.one("PermissionSet", Name="Sync_Reader")["Id"]
        retrieves = iter(range(10**6))
        cases = {
            "sf --version (floor)": lambda: r.raw(["--version"]),
            "org display": lambda: commands.org_display(r, "emu"),
            "data query": lambda: commands.query(r, "SELECT Id, Username FROM User", "emu"),
            "retrieve (mdapi)": lambda: commands.retrieve(r, manifest, "emu", work / f"r{next(retrieves)}"),
            "deploy": lambda: commands.deploy(r, deploy_dir, "emu"),
            "assign permset": lambda: commands.assign_permsets(r, ["Sync_Reader"], ["jane.doe@acme.emulated"], "emu"),
            "collection (api rest)": lambda: commands.collection(
                r, "POST", [{"attributes": {"type": "PermissionSetAssignment"}, "AssigneeId": jane,
                             "PermissionSetId": ps}], "emu", "62.0"),
            "update record": lambda: commands.update_record(r, "User", jane, {"IsActive": True}, "emu"),
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
