"""benchmarks/bench_nbd.py still runs (a quick run; the figures themselves are not checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_nbd_support import SRC, need_tools

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_nbd.py"


def _configs() -> list:
    """The servers the benchmark compares (its CONFIGS), read without running it."""
    import ast
    tree = ast.parse(BENCH.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "CONFIGS":
            return [k.value for k in node.value.keys]
    raise AssertionError("bench_nbd.py has no CONFIGS")


@need_tools("nbdcopy", "nbdkit", "qemu-io", "tar")
def test_bench_nbd_quick_runs_and_reads_back_identical():
    r = subprocess.run([sys.executable, str(BENCH), "--quick", "--markdown"], capture_output=True,
                       text=True, timeout=300, env=dict(os.environ, PYTHONPATH=SRC))
    assert r.returncode == 0, r.stderr
    for heading in ("## Machine", "## Copy in, copy out, memory", "## Targets"):
        assert heading in r.stdout
    section = r.stdout.split("## Copy in, copy out, memory", 1)[1].split("**zsmalloc devices", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith(("| zsmalloc", "| nbdkit"))]
    servers = _configs()
    assert sorted(line.split("|")[1].strip() for line in rows) == sorted(servers), section
    assert all(line.endswith("| yes |") for line in rows), section    # read back identical
