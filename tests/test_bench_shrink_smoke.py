"""Smoke test of benchmarks/bench_shrink.py: it runs, exits 0 and prints its sections.

A 16 MiB run (--quick) takes a few seconds. No timing or PASS/FAIL assertions (at 16 MiB
fixed overheads dominate and the machine is shared); the figures that follow from the
allocator alone are checked: the arena's resident bytes equal the frames in use (freed
frames went back with MADV_DONTNEED), and the shrink leaves no more chunks than it had.
"""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks", "bench_shrink.py")
STEPS = ("filled", "discarded", "compacted", "shrunk")


def _run(*args, timeout=60):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "src") + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, BENCH, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _rows(out: str, title: str) -> dict:
    """step -> cells of the Markdown table whose bold title starts with ``title``."""
    part = out.split(f"**{title}", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in part.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] not in ("step", "---"):
            rows[cells[0]] = cells
    return rows


def _num(cell: str) -> float:
    return float(cell.replace(",", ""))


@pytest.fixture(scope="module")
def quick():
    return _run("--quick", "--markdown", "--chunk-frames", "64")


def test_quick_run_exits_0(quick):
    assert quick.returncode == 0, quick.stderr[-3000:]


@pytest.mark.parametrize("heading", ["Machine", "Pages", "Steps", "Where the RSS is",
                                     "Acceptance"])
def test_sections_present(quick, heading):
    assert re.search(rf"^## {re.escape(heading)}$", quick.stdout, re.M), heading


def test_every_step_and_both_checks_reported(quick):
    out = quick.stdout
    steps = _rows(out, "After each step")
    assert list(steps) == ["empty device", *STEPS]
    for check in ("(1) RSS growth", "(2) mapped chunks"):
        lines = [ln for ln in out.splitlines() if ln.startswith(f"| {check} |")]
        assert len(lines) == 4, (check, lines)
    assert re.search(r"^- \(1\) .*\*\*(PASS|FAIL)\*\*$", out, re.M)
    assert re.search(r"^- \(2\) mapped chunks <= frames in use / 64 \+ 1 .*\*\*(PASS|FAIL)\*\*$",
                     out, re.M)
    assert "| frames per arena chunk | 64 (0.25 MiB) |" in out


def test_figures_follow_the_workload(quick):
    """16 MiB written, 75 % discarded; frees, compaction and the shrink give memory back."""
    steps = _rows(quick.stdout, "After each step")
    stored = {s: _num(steps[s][2]) for s in STEPS}
    assert stored["filled"] == 16.0 and stored["discarded"] == 4.0
    chunks = {s: _num(steps[s][5]) for s in STEPS}
    frames = {s: _num(steps[s][6]) for s in STEPS}
    assert frames["compacted"] < frames["discarded"] < frames["filled"]
    assert frames["shrunk"] == frames["compacted"]          # migration keeps total_pages
    assert chunks["shrunk"] <= chunks["compacted"]
    if "always" in _rows(quick.stdout, "Page data")["transparent huge pages"][1]:
        pytest.skip("transparent huge pages 'always': chunks may be resident beyond their "
                    "frames in use")
    split = _rows(quick.stdout, "RSS growth split")
    for s in STEPS:
        # arena resident (pagemap) == frames in use x 4 KiB, both in MiB with one decimal
        assert split[s][4] == split[s][5], (s, split[s])


def test_bad_chunk_frames_is_refused():
    r = _run("--chunk-frames", "100")
    assert r.returncode == 2
    assert "--chunk-frames 100" in r.stderr
