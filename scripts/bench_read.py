#!/usr/bin/env python3
"""sf calls and wall time of ``discover`` and ``plan --all-candidates`` on emulated orgs seeded with N
generated integration users (the bundled Acme org plus ``--scale N``), through the real sf CLI.

Usage: python scripts/bench_read.py [N ...]   (default: 1 10 50 200; needs `make setup`)

Prints one row per N: the candidates found, then for discover and for plan the sf calls (by kind) and
the seconds. The sf call count must not grow with N.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sf_intuser import config, workflow  # noqa: E402
from sf_intuser.emulator import seed  # noqa: E402
from sf_intuser.emulator.server import EmulatedOrg  # noqa: E402
from sf_intuser.sf.runner import SfRunner  # noqa: E402


def kinds(runner: SfRunner) -> str:
    c = Counter(" ".join(a for a in call.argv[1:4] if not a.startswith("-") and "/" not in a) or call.argv[1]
                for call in runner.calls)
    return ", ".join(f"{n} {k}" for k, n in sorted(c.items()))


def one(n: int, work: Path) -> dict:
    alias = f"bench{n}"
    home = work / f"home{n}"
    home.mkdir()
    t0 = time.perf_counter()
    emu = EmulatedOrg(seed.load(instance=alias, scale=n), max_seconds=1800).start()
    seeded = time.perf_counter() - t0
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "SF_USE_GENERIC_UNIX_KEYCHAIN": "true"}
    sf = str(ROOT / ".venv" / "bin" / "sf")
    try:
        SfRunner(sf=sf, env={**env, "SF_ACCESS_TOKEN": emu.access_token()}, timeout=300).run(
            ["org", "login", "access-token", "--instance-url", emu.url, "--no-prompt", "--alias", alias])
        cfg = config.Config()
        d = SfRunner(sf=sf, env=env, timeout=300)
        t0 = time.perf_counter()
        found, _ = workflow.discover(d, alias, cfg, None, lambda _m: None)
        t_disc = time.perf_counter() - t0
        p = SfRunner(sf=sf, env=env, timeout=300)
        t0 = time.perf_counter()
        out = workflow.plan(lambda: p, alias, (), True, cfg, work / f"run{n}", now=datetime.now(timezone.utc))
        t_plan = time.perf_counter() - t0
    finally:
        emu.stop()
    return {"n": n, "seed": seeded, "candidates": len(found["candidates"]),
            "planned": out.result["summary"]["planned"], "blocked": out.result["summary"]["blocked"],
            "discover": (len(d.calls), t_disc, kinds(d)), "plan": (len(p.calls), t_plan, kinds(p))}


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1, 10, 50, 200]
    print(f"{'N':>4}  {'cands':>5}  {'planned':>7}  {'discover calls':>14}  {'discover s':>10}  "
          f"{'plan calls':>10}  {'plan s':>6}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            r = one(n, Path(tmp))
            rows.append(r)
            print(f"{n:>4}  {r['candidates']:>5}  {r['planned']:>7}  {r['discover'][0]:>14}  {r['discover'][1]:>10.1f}  "
                  f"{r['plan'][0]:>10}  {r['plan'][1]:>6.1f}", flush=True)
    print()
    for r in rows:
        print(f"N={r['n']}: discover = {r['discover'][2]}; plan = {r['plan'][2]}")
    calls = {(r["discover"][0], r["plan"][0]) for r in rows}
    print("sf calls constant across N:", "yes" if len(calls) == 1 else f"NO {sorted(calls)}")


if __name__ == "__main__":
    main()
