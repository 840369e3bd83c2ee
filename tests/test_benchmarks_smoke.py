"""The benchmark scripts still run (a benchmark that breaks silently can't measure the next release):
each at its smallest size, the tool's side only. The figures are not judged here, only that a full
row comes out."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.e2e import needs_cli

pytestmark = needs_cli


@pytest.mark.parametrize("script,args,row", [
    ("bench_migrate.py", ["1", "--manual-up-to", "0"], r"^\s+1\s+\d+\s+\d+\s+[\d.]+\s+\(not run\)\s+\(plan \d+ \+ apply \d+ calls\)"),  # noqa: E501
    ("bench_read.py", ["1"], r"^\s*1\s"),
])
def test_the_benchmark_runs_and_prints_its_row(script, args, row):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                         timeout=600, cwd=str(ROOT))
    assert out.returncode == 0, out.stdout + out.stderr
    assert any(re.match(row, line) for line in out.stdout.splitlines()), out.stdout
