"""Smoke test of benchmarks/bench_pool.py: it runs, exits 0 and prints its tables.

Tiny sizes so it stays well under 20 s; no timing assertions (the machine is shared and
noisy), only that every section and table is there, so the benchmark does not rot.
"""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks", "bench_pool.py")
TINY = ["--quick", "--objects", "3000", "--runs", "1", "--cycles", "1000",
        "--population", "500", "--pages", "300", "--scale", "20000"]


def _run(*args, timeout=60):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "src") + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, BENCH, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def markdown_run():
    return _run(*TINY, "--markdown")


def test_quick_markdown_run_exits_0(markdown_run):
    assert markdown_run.returncode == 0, markdown_run.stderr[-3000:]


@pytest.mark.parametrize("heading", ["## Machine", "## Object sizes", "## Metadata", "## Speed",
                                     "## Scale"])
def test_sections_present(markdown_run, heading):
    assert re.search(rf"^{re.escape(heading)}$", markdown_run.stdout, re.M), heading


@pytest.mark.parametrize("title", [
    "lz4-compressed real pages",
    "Python-side metadata, 3,000 objects",
    "Pool.metadata_bytes() breakdown",
    "Memory: mapped vs held",
    "Cycles/s: free a random live object",
    "Pairs/s: free a random live object",
])
def test_tables_present(markdown_run, title):
    assert f"**{title}" in markdown_run.stdout


def test_machine_header_and_rows(markdown_run):
    out = markdown_run.stdout
    assert "- cpu: " in out and "- python: CPython" in out and "- date: " in out
    # one row per workload in the speed tables, each with a positive rate
    for label in ("64 B", "1 KiB", "mixed real sizes"):
        rows = re.findall(rf"^\| {re.escape(label)} \| ([\d,]+)", out, re.M)
        assert len(rows) == 2, (label, rows)
        assert all(int(r.replace(",", "")) > 0 for r in rows)
    # the metadata table has a filled row with the object count asked for
    assert re.search(r"^\| filled \| 3,000 \| [\d,]+ \| [\d,]+ \|", out, re.M)


def test_scale_rows_and_mode(markdown_run):
    """The scale table has both stores with consistent ratios, and the header says which
    core ran."""
    import zsmalloc
    out = markdown_run.stdout
    assert f"zsmalloc core: {'compiled' if zsmalloc.COMPILED else 'pure Python'}" in out
    scale = out.split("## Scale", 1)[1]
    rows = {}
    for m in re.finditer(r"^\| (Pool|dict of bytes) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|",
                         scale, re.M):
        lo, hi, ratio = (float(x) for x in m.group(2, 3, 4))
        assert abs(hi / lo - ratio) < 0.011 + 0.01 * ratio
        rows[m.group(1)] = ratio
    assert set(rows) == {"Pool", "dict of bytes"}


def test_rich_output_and_machine_source():
    """Default (rich) output with the fallback page source, churn rows off."""
    r = _run(*TINY, "--source", "machine", "--no-churn")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "## Speed" in r.stdout and "Cycles/s" in r.stdout
    assert "this machine:" in r.stdout
    assert "after compact()" not in r.stdout


def test_bad_argument_is_refused():
    r = _run("--runs", "0")
    assert r.returncode == 2
    assert "--runs 0" in r.stderr
