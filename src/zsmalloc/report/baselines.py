"""Python baselines: the same pages held by our Zram, a dict of lz4 bytes and
``zict.Func``, each measured in a fresh interpreter (:mod:`.baseline_child`)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

from .specs import ReportError

__all__ = ["BASELINE_STORES", "measure_baselines", "baseline_rows", "baseline_markdown"]

BASELINE_STORES = ("zram", "dict-lz4", "zict-lz4")


def _child_env() -> dict:
    env = dict(os.environ)
    # the directory holding the zsmalloc package: src/zsmalloc/report/baselines.py -> src
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def measure_baselines(pages: list, runs: int = 3, stores=BASELINE_STORES, on_run=None) -> dict:
    """Hold ``pages`` in each store ``runs`` times, each time in a fresh interpreter.

    Returns ``{store: [measurement dict, ...]}`` (see ``baseline_child.child_main``): RSS growth
    while filling, write and read seconds, compressed bytes. Runs are interleaved across
    stores so a slow spell of the machine does not land on one store. ``on_run()`` after
    each child. Cost: one interpreter start (~0.2 s) plus the fill and the reads per run.
    """
    from ..realpages import save_pages
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ReportError(f"runs {runs!r} must be a positive int")
    for s in stores:
        if s not in BASELINE_STORES:
            raise ReportError(f"unknown baseline store {s!r}; use one of {BASELINE_STORES}")
    P = len(pages[0])
    out: dict = {s: [] for s in stores}
    fd, path = tempfile.mkstemp(prefix="zsmalloc-pages-", suffix=".zspages")
    os.close(fd)
    try:
        save_pages(pages, path)
        env = _child_env()
        for _ in range(runs):
            for s in stores:
                cp = subprocess.run([sys.executable, "-m", "zsmalloc.report.baseline_child", s, path, str(P)], env=env,
                                    capture_output=True, text=True, timeout=600)
                if cp.returncode != 0:
                    raise RuntimeError(f"baseline child for {s} failed: {cp.stderr[-2000:]}")
                out[s].append(json.loads(cp.stdout.strip().splitlines()[-1]))
                if on_run is not None:
                    on_run()
    finally:
        os.unlink(path)
    return out


def baseline_rows(meas: dict) -> list[dict]:
    """Median (and min..max) per store: RSS growth MiB, write MB/s, read MB/s."""
    rows = []
    for s, runs in meas.items():
        if not runs:
            continue
        n = runs[0]["pages"]
        grown = [m["rss_growth"] / 2**20 for m in runs]
        rows.append({"store": s, "pages": n, "runs": len(runs),
                     "rss_mib": statistics.median(grown), "rss_lo": min(grown), "rss_hi": max(grown),
                     "write_pps": statistics.median(n / m["write_s"] for m in runs),
                     "write_lo": min(n / m["write_s"] for m in runs),
                     "write_hi": max(n / m["write_s"] for m in runs),
                     "read_pps": statistics.median(n / m["read_s"] for m in runs),
                     "read_lo": min(n / m["read_s"] for m in runs),
                     "read_hi": max(n / m["read_s"] for m in runs),
                     "compr_mib": runs[0]["compr_data_size"] / 2**20,
                     "bad_reads": sum(m["bad_reads"] for m in runs)})
    return rows


def baseline_markdown(rows: list[dict], page_size: int) -> str:
    """Baseline table: RSS growth and throughput (MiB/s of page data), median (min..max)."""
    mb = page_size / 2**20
    out = ["| store | pages | runs | RSS growth MiB | compressed MiB | write MiB/s | read MiB/s | bad reads |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for d in rows:
        out.append(
            f"| {d['store']} | {d['pages']:,} | {d['runs']} | {d['rss_mib']:.1f} "
            f"({d['rss_lo']:.1f}..{d['rss_hi']:.1f}) | {d['compr_mib']:.1f} | "
            f"{d['write_pps'] * mb:.0f} ({d['write_lo'] * mb:.0f}..{d['write_hi'] * mb:.0f}) | "
            f"{d['read_pps'] * mb:.0f} ({d['read_lo'] * mb:.0f}..{d['read_hi'] * mb:.0f}) | "
            f"{d['bad_reads']} |")
    return "\n".join(out) + "\n"
