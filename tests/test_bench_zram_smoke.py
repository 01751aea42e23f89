"""Smoke tests of benchmarks/bench_zram.py and benchmarks/bench_threads.py.

Each runs once with --quick (tiny sizes) in a subprocess; the tests check that it exits 0
and prints every section and table, with positive rates. No timing assertions: the machine
is shared and noisy. Both benchmarks drive a kernel zram device of their own (hot-added and
removed by KernelZram), so the tests are marked ``kernel`` (skipped with the reason where
there is no root or no zram hot_add); the argument check needs no device.
"""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script, *args, timeout=120):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "src") + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _rate(cell: str) -> int:
    return int(cell.strip().split()[0].replace(",", ""))


@pytest.fixture(scope="module")
def zram_run():
    # --quick with a smaller fill and set size than its defaults: a few seconds
    return _run("bench_zram.py", "--quick", "--markdown", "--pages", "600", "--rss-gib", "0.01",
                "--distinct", "500")


@pytest.fixture(scope="module")
def threads_run():
    return _run("bench_threads.py", "--quick", "--markdown", "--pages", "800")


@pytest.mark.kernel
def test_bench_zram_exits_0(zram_run):
    assert zram_run.returncode == 0, zram_run.stderr[-3000:]


@pytest.mark.kernel
@pytest.mark.parametrize("heading", ["Machine", "Pages", "Memory", "Throughput"])
def test_bench_zram_sections(zram_run, heading):
    assert re.search(rf"^## {heading}$", zram_run.stdout, re.M), heading


@pytest.mark.kernel
def test_bench_zram_tables(zram_run):
    out = zram_run.stdout
    assert "kernel device: a zram device of its own" in out and "/dev/zram0" not in out
    for title in ("**Real page sets (4 KiB)**", "**mm_stat after the fill**",
                  "**Single thread, 4 KiB pages, lz4: pages/s (runs: 2)**",
                  "**Ours / kernel (pages/s"):
        assert title in out, title
    # the fill: 0.01 GiB = 2,621 pages, one row each for ours and the kernel
    assert "**Fill of 2,621 pages" in out
    assert re.search(r"^\| our Zram \| [\d,]+ \| 41,936 \| [\d,-]+ \|", out, re.M)
    assert re.search(r"^\| kernel zram \| [\d,]+ \| 41,936 \|", out, re.M)
    # both devices stored every page written
    assert re.search(r"^\| orig_data_size \| 10,735,616 \| 10,735,616 \| \+0 \|", out, re.M)
    # four implementations x four sets, each with positive write and read rates
    thr = out.split("**Single thread", 1)[1].split("**Ours / kernel", 1)[0]
    for set_ in ("anon", "text", "elf", "all three"):
        rows = re.findall(rf"^\| {set_} \| ([^|]+) \| ([^|]+) \| [^|]+ \| ([^|]+) \|", thr, re.M)
        assert [r[0].strip() for r in rows] == [
            "our Zram", "kernel zram via KernelZram",
            "kernel zram, bare pwrite/preadv", "dict of lz4 bytes"], rows
        assert all(_rate(w) > 0 and _rate(r) > 0 for _, w, r in rows)
    # one ratio row per set, each with a yes/NO verdict for both targets
    rat = out.split("**Ours / kernel", 1)[1].split("**Where the time goes", 1)[0]
    for set_ in ("anon", "text", "elf", "all three"):
        assert re.search(rf"^\| {set_} \| [\d,]+ \| [^|]+ \| [^|]+ \| [^|]+ \| (yes|NO) \| "
                         rf"[^|]+ \| [^|]+ \| [^|]+ \| (yes|NO) \|", rat, re.M), set_
    # every mm_stat field agrees with the kernel's (kernel-exact lz4)
    assert not re.search(r"^\| \w+ \| [\d,]+ \| [\d,]+ \| [+-][1-9]", out, re.M)
    # the time budget: a write and a read row per set, 'ours - dict' = ours - dict
    bud = out.split("**Where the time goes", 1)[1]
    rows = re.findall(r"^\| ([a-z ]+) \| (write|read) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| "
                      r"([\d.]+) \| (-?[\d.]+) \|", bud, re.M)
    assert len(rows) == 8, bud
    for r in rows:
        assert abs(float(r[5]) - float(r[4]) - float(r[6])) < 0.015, r


@pytest.mark.kernel
def test_bench_threads_exits_0(threads_run):
    assert threads_run.returncode == 0, threads_run.stderr[-3000:]


@pytest.mark.kernel
def test_bench_threads_tables(threads_run):
    out = threads_run.stdout
    for heading in ("Machine", "Pages", "Scaling", "The GIL"):
        assert re.search(rf"^## {heading}$", out, re.M), heading
    for phase in ("Write", "Read"):
        assert f"**{phase}: aggregate pages/s, 800 pages a run (runs: 2)**" in out
    for k in ("1", "2", "4", "8"):
        rows = re.findall(rf"^\| {k} \| ([^|]+) \| ([\d.]+) \| ([^|]+) \| ([\d.]+) \| ([\d.]+) \|",
                          out, re.M)
        assert len(rows) == 2, (k, rows)          # one in the write table, one in the read
        assert all(_rate(r[0]) > 0 and _rate(r[2]) > 0 for r in rows)
    # scaling is relative to one thread: exactly 1.00 there
    assert re.findall(r"^\| 1 \| [^|]+ \| 1\.00 \| [^|]+ \| 1\.00 \|", out, re.M)
    assert "free-threaded" in out.split("## The GIL", 1)[1]
    assert "kernel device: a zram device of its own" in out and "/dev/zram0" not in out


def test_bad_arguments_are_refused():
    # refused by argparse before any page is fetched or the device is touched
    r = _run("bench_zram.py", "--runs", "0")
    assert r.returncode == 2 and "--runs 0" in r.stderr
    r = _run("bench_threads.py", "--threads", "0,2")
    assert r.returncode == 2 and "--threads" in r.stderr
