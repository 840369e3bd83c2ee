"""The sf calls (and wall time) reading the evidence of use costs, at N integration users: an emulated
org with N users on System Administrator, each with recorded calls on two objects over 30 days, read
through the pinned sf CLI exactly as ``sf-intuser tighten`` reads it.

    python scripts/bench_evidence.py                  # N = 10 and 200
    python scripts/bench_evidence.py 10 200 500 --file-days 7

The number of calls must not grow with N: two Composite Batch calls (describes, then queries) and one
per event log file (days x event types).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sf_intuser.emulator import seed  # noqa: E402
from sf_intuser.emulator.server import EmulatedOrg  # noqa: E402
from sf_intuser.org import evidence  # noqa: E402
from sf_intuser.sf.runner import SfRunner  # noqa: E402

SF = ROOT / ".venv" / "bin" / "sf"


def measure(n: int, file_days: int, files: str) -> dict:
    spec = json.loads(seed.DEFAULT_SEED.read_text(encoding="utf-8"))
    spec["options"] = {**spec.get("options", {}), "event_log_file_days": file_days, "event_log_files": files}
    spec["users"] += [{"username": f"int{i:04d}@bench.emulated", "name": f"Integration {i}",
                       "profile": "System Administrator", "lastLogin": "-1d",
                       "apiUsage": [{"object": "Account", "ops": ["read", "edit"], "api": "REST", "count": 6, "days": 30},
                                    {"object": "Contact", "ops": ["read"], "api": "SOAP", "count": 3, "days": 30}]}
                      for i in range(n)]
    emu = EmulatedOrg(seed.build(spec, seed.SEEDS), max_seconds=600).start()
    try:
        with tempfile.TemporaryDirectory() as home:
            env = {"HOME": home, "SF_USE_GENERIC_UNIX_KEYCHAIN": "true", "SF_ACCESS_TOKEN": emu.access_token(),
                   "PATH": str(SF.parent) + ":/usr/bin:/bin"}
            runner = SfRunner(sf=str(SF), env=env, timeout=300)
            runner.run(["org", "login", "access-token", "--instance-url", emu.url, "--no-prompt", "--alias", "bench"])
            ids = [u["Id"] for u in emu.state.table("User").values() if u["Username"].startswith("int")]
            t0 = time.perf_counter()
            ev = evidence.read(SfRunner(sf=str(SF), env=env, timeout=300), "bench", "62.0", ids, 30,
                               dt.datetime.now(dt.timezone.utc))
            wall = time.perf_counter() - t0
    finally:
        emu.stop()
    users_seen = len({u.user_id for u in ev.uses})
    return {"users": n, "sfCalls": ev.calls, "seconds": round(wall, 1), "usersWithEvidence": users_seen,
            "files": sum(s.files for s in ev.sources), "rows": sum(s.rows for s in ev.sources)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="*", type=int, default=[10, 200])
    ap.add_argument("--file-days", type=int, default=1, help="EventLogFile retention in days (default 1)")
    ap.add_argument("--files", default="ApiTotalUsage", help="event types with files (default ApiTotalUsage)")
    args = ap.parse_args()
    print(f"{'users':>6} {'sf calls':>9} {'files':>6} {'rows':>7} {'users seen':>11} {'seconds':>8}")
    for n in args.n:
        r = measure(n, args.file_days, args.files)
        print(f"{r['users']:>6} {r['sfCalls']:>9} {r['files']:>6} {r['rows']:>7} {r['usersWithEvidence']:>11} "
              f"{r['seconds']:>8}")


if __name__ == "__main__":
    main()
