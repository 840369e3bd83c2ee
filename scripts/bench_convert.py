#!/usr/bin/env python3
"""Benchmark: profile -> permission set conversion against a bare lxml parse + serialize.

Prints, for the largest profiles of ../shared/corpus (or synthetic ones when it is absent):
- MB/s of a bare ``lxml.etree.fromstring`` + ``tostring`` of the same bytes (the floor),
- MB/s of sf-intuser's parse + ``to_permission_set`` + API-only profile planning,
- their ratio (goal: convert within 2x of bare lxml),
- peak resident memory of converting a synthetic 4 MB profile in a fresh process (goal: < 150 MB).

Usage: python scripts/bench_convert.py [--repeat N]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpus"


def synthetic_profile(target_bytes: int) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<Profile xmlns="http://soap.sforce.com/2006/04/metadata">']
    size, i = 0, 0
    fields = []
    objects = []
    while size < target_bytes:
        fields.append(f"    <fieldPermissions>\n        <editable>{'true' if i % 3 else 'false'}</editable>\n"
                      f"        <field>Object{i // 50}__c.Field{i}__c</field>\n        <readable>true</readable>\n"
                      f"    </fieldPermissions>")
        if i % 50 == 0:
            objects.append(f"    <objectPermissions>\n        <allowCreate>true</allowCreate>\n"
                           f"        <allowDelete>false</allowDelete>\n        <allowEdit>true</allowEdit>\n"
                           f"        <allowRead>true</allowRead>\n        <modifyAllRecords>false</modifyAllRecords>\n"
                           f"        <object>Object{i // 50}__c</object>\n        <viewAllRecords>false</viewAllRecords>\n"
                           f"    </objectPermissions>")
        size += 160
        i += 1
    parts += ["    <custom>true</custom>"] + sorted(fields) + objects
    parts += ["    <userLicense>Salesforce</userLicense>", "</Profile>"]
    return "\n".join(parts).encode()


def load_inputs() -> list[tuple[str, bytes]]:
    index = CORPUS / "index.json"
    if index.exists():
        entries = [e for e in json.loads(index.read_text()) if e["kind"] == "profile"]
        entries.sort(key=lambda e: -e["bytes"])
        return [(e["path"], (CORPUS / e["path"]).read_bytes()) for e in entries[:24]]
    print("../shared/corpus is absent: using synthetic profiles")
    return [(f"synthetic-{i}", synthetic_profile(1_000_000 + 100_000 * i)) for i in range(8)]


def bench(repeat: int) -> None:
    from lxml import etree

    from sf_intuser.metadata import profile, xml

    inputs = load_inputs()
    total = sum(len(b) for _, b in inputs)

    def bare() -> None:
        for _, data in inputs:
            etree.tostring(etree.fromstring(data), encoding="UTF-8")

    def ours() -> None:
        docs = {}
        for name, data in inputs:
            doc = xml.parse(data, name)
            docs[name] = doc
            profile.to_permission_set(doc, name)
        profile.plan_api_profiles(docs)

    def best(fn) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_bare, t_ours = best(bare), best(ours)
    mb = total / 1e6
    print(f"inputs: {len(inputs)} profiles, {mb:.1f} MB (best of {repeat})")
    print(f"bare lxml parse+serialize : {t_bare:.3f} s  {mb / t_bare:6.1f} MB/s")
    print(f"sf-intuser convert        : {t_ours:.3f} s  {mb / t_ours:6.1f} MB/s")
    print(f"ratio convert / bare      : {t_ours / t_bare:.2f}x  (goal <= 2x)")


def _hwm_kb() -> int:
    """Peak resident set of this process (VmHWM). ru_maxrss is not used: Linux carries it across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_child(path: str) -> None:
    from sf_intuser.metadata import profile, xml

    base = _hwm_kb()
    data = Path(path).read_bytes()
    doc = xml.parse(data, "synthetic")
    rw = profile.to_permission_set(doc, "Synthetic")
    profile.plan_api_profiles({"Synthetic": doc})
    peak = _hwm_kb()
    print(json.dumps({"bytes": len(data), "out": len(rw.data), "base_kb": base, "peak_kb": peak}))


def memory() -> None:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".profile") as fh:
        fh.write(synthetic_profile(4_000_000))
        fh.flush()
        out = subprocess.run([sys.executable, __file__, "--memory-child", fh.name], capture_output=True, text=True,
                             check=True)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"4 MB profile ({m['bytes'] / 1e6:.1f} MB in, {m['out'] / 1e6:.1f} MB out): peak RSS {m['peak_kb'] / 1024:.0f} MB "
          f"(interpreter and imports {m['base_kb'] / 1024:.0f} MB; goal < 150 MB)")


if __name__ == "__main__":
    if "--memory-child" in sys.argv:
        memory_child(sys.argv[sys.argv.index("--memory-child") + 1])
    else:
        n = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 5
        bench(n)
        memory()
