"""A new user's first hour, measured: each command of the walk-through (and the demo) on the bundled
emulated org, as a person runs it at a 100-column terminal. Prints per command its wall time, the
longest silence (no line on stdout or stderr: from the start to the first line, between two lines, or
from the last line to the end) and the widest line printed.

    python scripts/bench_first_hour.py            # the walk-through
    python scripts/bench_first_hour.py --demo     # also `sf-intuser demo`
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sf_intuser.emulator import seed  # noqa: E402
from sf_intuser.emulator.server import EmulatedOrg  # noqa: E402

EXE = ROOT / ".venv" / "bin" / "sf-intuser"
SF = ROOT / ".venv" / "bin" / "sf"


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int, int]:
    """(wall seconds, longest silence in seconds, widest line, exit code), the command writing to a
    terminal (a pseudo-terminal of COLUMNS columns), as a person sees it."""
    import pty
    import select

    master, slave = pty.openpty()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=str(cwd), stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    last, gap, widest, pending = t0, 0.0, 0, b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            now = time.perf_counter()
            if b"\n" in chunk or b"\r" in chunk:      # a line ended, or a progress line was rewritten
                gap = max(gap, now - last)
                last = now
            pending += chunk
            *done, pending = pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            widest = max([widest, *(len(x.decode("utf-8", "replace")) for x in done)])
        elif proc.poll() is not None:
            break
    code = proc.wait()
    os.close(master)
    end = time.perf_counter()
    return end - t0, max(gap, end - last), widest, code


def main(argv: list[str]) -> int:
    home = Path(tempfile.mkdtemp(prefix="first-hour-"))
    org = EmulatedOrg(seed.load(instance="walk"), max_seconds=900).start()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "SF_USE_GENERIC_UNIX_KEYCHAIN": "true",
           "SF_INTUSER_SF": str(SF), "COLUMNS": "100"}
    subprocess.run([str(SF), "org", "login", "access-token", "--instance-url", org.url, "--no-prompt", "--alias",
                    "walk"], env={**env, "SF_ACCESS_TOKEN": org.access_token()}, check=True, capture_output=True)
    run = home / "run"
    walk = [["discover", "-o", "walk"], ["plan", "--all-candidates", "-o", "walk", "--run-dir", str(run)],
            ["apply", str(run), "--dry-run"], ["apply", str(run), "--yes"], ["verify", str(run)],
            ["report", str(run), "--format", "html"], ["rollback", str(run), "--yes"]]
    rows = []
    try:
        for args in walk:
            rows.append((" ".join(a if a != str(run) else "RUN" for a in args), *timed([str(EXE), *args], env, home)))
    finally:
        org.stop()
    if "--demo" in argv:
        rows.append(("demo", *timed([str(EXE), "demo", "-d", str(home / "demo")], env, home)))
    print(f"{'command':<44} {'wall s':>7} {'longest silence s':>18} {'widest line':>12} {'exit':>5}")
    for name, wall, gap, widest, code in rows:
        print(f"{name:<44} {wall:>7.1f} {gap:>18.1f} {widest:>12} {code:>5}")
    print(f"widest line at 100 columns: {max(r[3] for r in rows)}; longest silence: {max(r[2] for r in rows):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
