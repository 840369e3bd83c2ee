#!/usr/bin/env python3
"""What `sf intuser` costs over `sf-intuser`, and what the pre-deploy gate adds to a deploy.

Runs the real pinned sf CLI (the setup's shim, where `make setup` links the plugin) against the
emulated org under a private sf home, each case N times (default 7), and prints medians:

- per command: `sf-intuser <cmd>` and `sf intuser <cmd>` wall time, and the difference (the bridge:
  sf's start-up, oclif, the spawn);
- per deploy: `sf project deploy start` of a profile and a permission set with the gate, and with
  SF_INTUSER_SKIP_PREDEPLOY=1 (the same deploy, the gate skipped), and the difference; plus a
  deploy with nothing the gate checks (an Apex class only: the hook returns without Python);
- the gate's own work (`sf-intuser gate` on that deploy's components), which is what the hook waits
  for: the deploy-to-deploy difference is within sf's run-to-run noise.

- the gate on large profiles (``--large``): generated retrieved-style profiles (by default 4 of
  16 MB, 64 MB in all; real projects hold 127 MB of profiles) in a git project, ``sf-intuser gate``
  on a deploy of all of them, in a fresh process, against a bare lxml parse of the same files in a
  fresh Python process (goal: the gate within 1.5 times the bare parse).

Usage: python scripts/bench_plugin.py [N] [--large [FILES MB_EACH]]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sf_intuser.emulator import seed  # noqa: E402
from sf_intuser.emulator.server import EmulatedOrg  # noqa: E402

SHIM = ROOT / ".venv" / "bin" / "sf"
EXE = ROOT / ".venv" / "bin" / "sf-intuser"

PERMSET = """<?xml version="1.0" encoding="UTF-8"?>
<PermissionSet xmlns="http://soap.sforce.com/2006/04/metadata">
    <hasActivationRequired>false</hasActivationRequired>
    <label>Ledger Read Access</label>
</PermissionSet>
"""
PROFILE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Profile xmlns="http://soap.sforce.com/2006/04/metadata">
    <custom>true</custom>
    <userLicense>Salesforce</userLicense>
</Profile>
"""
APEX = "public class LedgerHelper {}\n"
APEX_META = """<?xml version="1.0" encoding="UTF-8"?>
<ApexClass xmlns="http://soap.sforce.com/2006/04/metadata">
    <apiVersion>62.0</apiVersion>
    <status>Active</status>
</ApexClass>
"""


def timed(argv: list[str], env: dict, cwd: Path, expect: int = 0) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, cwd=str(cwd), capture_output=True, text=True, timeout=300)
    dt = time.perf_counter() - t0
    if p.returncode != expect:
        raise SystemExit(f"{' '.join(argv)} exited {p.returncode}: {p.stdout[-500:]} {p.stderr[-500:]}")
    return dt


def median(argv: list[str], env: dict, cwd: Path, n: int, expect: int = 0) -> float:
    timed(argv, env, cwd, expect)          # warm the file cache once
    return statistics.median(timed(argv, env, cwd, expect) for _ in range(n))


def project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    (root / "sfdx-project.json").write_text('{"packageDirectories":[{"path":"force-app","default":true}],'
                                            '"sourceApiVersion":"62.0"}')
    for rel, body in files.items():
        p = root / "force-app/main/default" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
    return root


def large_profile(i: int, megabytes: float) -> str:
    """A profile as a retrieve writes it, of about ``megabytes``: field and object access entries."""
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n<Profile xmlns="http://soap.sforce.com/2006/04/metadata">\n'
            "    <custom>true</custom>\n")
    field = ("    <fieldPermissions>\n        <editable>false</editable>\n        <field>Obj{o}__c.Field{f}__c</field>\n"
             "        <readable>true</readable>\n    </fieldPermissions>\n")
    n_fields = int(megabytes * 1024 * 1024 / len(field.format(o=100, f=100000)))
    obj = ("    <objectPermissions>\n        <allowCreate>false</allowCreate>\n        <allowDelete>false</allowDelete>\n"
           "        <allowEdit>false</allowEdit>\n        <allowRead>true</allowRead>\n"
           "        <modifyAllRecords>false</modifyAllRecords>\n        <object>Obj{o}__c</object>\n"
           "        <viewAllFields>false</viewAllFields>\n        <viewAllRecords>false</viewAllRecords>\n"
           "    </objectPermissions>\n")
    body = [head, *(field.format(o=k % 500, f=k) for k in range(n_fields)),
            *(obj.format(o=k) for k in range(500)), "    <userLicense>Salesforce</userLicense>\n"]
    body += [f"    <userPermissions>\n        <enabled>true</enabled>\n        <name>{p}</name>\n"
             "    </userPermissions>\n" for p in ("ApiEnabled", "RunReports", "ViewSetup")]
    return "".join(body) + "</Profile>\n"


def large(n: int, files: int, megabytes: float) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-gate-"))
    proj = project(root / "p", {f"profiles/Large {i}.profile-meta.xml": large_profile(i, megabytes)
                                for i in range(files)})
    subprocess.run(["git", "init", "-q", str(proj)], check=True)
    subprocess.run(["git", "-C", str(proj), "-c", "user.email=b@example.com", "-c", "user.name=b", "add", "-A"],
                   check=True)
    subprocess.run(["git", "-C", str(proj), "-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-qm",
                    "profiles"], check=True)
    paths = sorted((proj / "force-app/main/default/profiles").iterdir())
    total = sum(p.stat().st_size for p in paths)
    payload = root / "payload.json"
    payload.write_text(json.dumps({"components": [
        {"type": "Profile", "fullName": p.name.split(".")[0], "xmlPath": str(p)} for p in paths]}))
    env = {"PATH": os.environ["PATH"], "HOME": str(root)}
    bare = median([sys.executable, "-I", "-c", "import sys\nfrom lxml import etree\n"
                   "for f in sys.argv[1:]: etree.parse(f)", *map(str, paths)], env, proj, n)
    gate = median([str(EXE), "gate", "--payload", str(payload), "--json"], env, proj, n)
    # the same deploy once every file differs from its committed version: the schema is checked too
    for p in paths:
        p.write_bytes(p.read_bytes().replace(b"<custom>true</custom>", b"<custom>false</custom>", 1))
    changed = median([str(EXE), "gate", "--payload", str(payload), "--json"], env, proj, n)
    print(f"\nThe gate on {files} large profiles, {total / 1024 / 1024:.0f} MB in all, median of {n} fresh processes\n")
    print("| what | seconds | × bare |\n|---|---|---|")
    print(f"| bare lxml parse (python -I, lxml only) | {bare:.2f} | 1.00 |")
    print(f"| `sf-intuser gate`, files as committed (license rules; schema of changed files only) | {gate:.2f} | "
          f"{gate / bare:.2f} |")
    print(f"| `sf-intuser gate`, every file changed (license rules and the schema) | {changed:.2f} | "
          f"{changed / bare:.2f} |")
    print("\nGoal: at most 1.5 times the bare parse.")


def main(argv: list[str]) -> int:
    if "--large" in argv:
        i = argv.index("--large")
        rest = [a for a in argv[i + 1:i + 3] if a.replace(".", "").isdigit()]
        n = int(argv[0]) if argv[0].isdigit() else 5
        large(n, int(rest[0]) if rest else 4, float(rest[1]) if len(rest) > 1 else 16)
        return 0
    n = int(argv[0]) if argv else 7
    home = Path(tempfile.mkdtemp(prefix="bench-plugin-"))
    emu = EmulatedOrg(seed.load(), max_seconds=1800).start()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "SF_USE_GENERIC_UNIX_KEYCHAIN": "true",
           "SF_INTUSER_SF": str(SHIM)}
    try:
        subprocess.run([str(SHIM), "org", "login", "access-token", "--instance-url", emu.url, "--no-prompt",
                        "--alias", "emu"], env={**env, "SF_ACCESS_TOKEN": emu.access_token()}, check=True,
                       capture_output=True)
        seeds = str(ROOT / "sf_intuser/emulator/seeds/acme-org")
        cases = [("lint (offline)", ["lint", seeds, "--json"]),
                 ("discover -o emu", ["discover", "-o", "emu", "--json"]),
                 ("doctor -o emu", ["doctor", "-o", "emu", "--json"])]
        print(f"sf intuser vs sf-intuser, median of {n} runs (seconds)\n")
        print("| command | sf-intuser | sf intuser | overhead |\n|---|---|---|---|")
        for label, args in cases:
            direct = median([str(EXE), *args], env, home, n)
            bridged = median([str(SHIM), "intuser", *args], env, home, n)
            print(f"| {label} | {direct:.2f} | {bridged:.2f} | {bridged - direct:+.2f} |")
        helped = median([str(SHIM), "intuser", "plan", "--help"], env, home, n)
        print(f"| plan --help (manifest, no Python) | - | {helped:.2f} | - |")

        print(f"\nThe pre-deploy gate, median of {n} deploys (seconds)\n")
        print("| deploy | gate skipped | with the gate | gate adds |\n|---|---|---|---|")
        checked = project(home / "p-checked", {
            "permissionsets/Ledger_Read_Access.permissionset-meta.xml": PERMSET,
            "profiles/Ledger Reader.profile-meta.xml": PROFILE_XML})
        emu.state.options.set("new_profile_by_deploy", "true")
        other = project(home / "p-other", {"classes/LedgerHelper.cls": APEX,
                                           "classes/LedgerHelper.cls-meta.xml": APEX_META})
        for label, proj in (("1 profile + 1 permission set", checked), ("1 Apex class (nothing to check)", other)):
            deploy = [str(SHIM), "project", "deploy", "start", "--source-dir", "force-app", "-o", "emu", "--json"]
            skipped = median(deploy, {**env, "SF_INTUSER_SKIP_PREDEPLOY": "1"}, proj, n)
            gated = median(deploy, env, proj, n)
            print(f"| {label} | {skipped:.2f} | {gated:.2f} | {gated - skipped:+.2f} |")
        # the gate's own work, without a deploy around it: what the hook waits for
        payload = home / "payload.json"
        payload.write_text(json.dumps({"components": [
            {"type": "PermissionSet", "fullName": "Ledger_Read_Access",
             "xmlPath": str(checked / "force-app/main/default/permissionsets/Ledger_Read_Access.permissionset-meta.xml")},
            {"type": "Profile", "fullName": "Ledger Reader",
             "xmlPath": str(checked / "force-app/main/default/profiles/Ledger Reader.profile-meta.xml")}]}))
        own = median(["sh", "-c", f"{EXE} gate --json < {payload}"], env, checked, n)
        print(f"\n`sf-intuser gate` alone on that deploy's 2 components: {own:.2f} s (median of {n})")
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
