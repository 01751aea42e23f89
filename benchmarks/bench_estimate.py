"""``zsmalloc estimate`` throughput: pages per second scanning a live process, against the
floor of reading and compressing the same pages in the same run.

Run from the repository root (root, or the subject's owner: the subject is our child)::

    PYTHONPATH=src python benchmarks/bench_estimate.py [--runs 5] [--mib 128] [--markdown]

The subject is a child Python process that builds ``--mib`` MiB of realistic heap
(``zsmalloc.realpages.ChildHeap``) and waits. Each figure is its resident anonymous pages
divided by the wall time of one whole scan (stopping the process, pagemap and mem reads,
same-filled detection, compression, every model fed, results), median and spread over
``--runs`` runs, the variants interleaved:

* floor: read the same eligible pages and compress each once with lz4, nothing else
  (what an estimate cannot beat);
* lz4: one compressor, zsmalloc only (target >= 50,000 pages/s with the compiled core);
* lz4 + peers: the same with zbud, z3fold and zblock (a child process);
* default set: every default compressor the model has (the kernel's, lz4, lzo-rle,
  zstd), with peers;
* lz4 sample 0.1: a tenth of the pages.

``zsmalloc.COMPILED`` says whether the core ran compiled; rerun after building.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Printer, Table, header_lines, summarize  # noqa: E402

import zsmalloc  # noqa: E402
from zsmalloc.estimate import Estimate, EstimateConfig  # noqa: E402
from zsmalloc.estimate.cli import DEFAULT_EXTRA, kernel_defaults  # noqa: E402
from zsmalloc.estimate.guard import Frozen  # noqa: E402
from zsmalloc.estimate.procfs import SYS_PAGE, ProcessMemory  # noqa: E402
from zsmalloc.estimate.scan import Scanner  # noqa: E402
from zsmalloc.realpages import ChildHeap  # noqa: E402
from zsmalloc.zram.backends import available, make_backend  # noqa: E402


def floor(pid: int) -> tuple[int, float]:
    """(pages, seconds) to read the eligible pages and lz4-compress each once."""
    be = make_backend("lz4")
    buf = bytearray(2 * SYS_PAGE)
    t0 = time.perf_counter()
    with ProcessMemory(pid) as pm, Frozen(pid, pm.pidfd):
        sc = Scanner(pm)
        for b in sc.batches():
            data = bytes(b.data)
            for i in range(len(b)):
                be.compress_into(data[i * SYS_PAGE:(i + 1) * SYS_PAGE], buf)
    return sc.counts.eligible, time.perf_counter() - t0


def estimate(pid: int, comps, peers: bool, sample=None) -> tuple[int, float]:
    """(pages, seconds) for one whole estimate of the process."""
    chain = kernel_defaults()[1] or 8
    cfgs = [EstimateConfig(c, chain, SYS_PAGE, "linux-6.18") for c in comps]
    t0 = time.perf_counter()
    with Estimate(cfgs, disk_pages=1 << 20, peers=peers, sample=sample) as est:
        with ProcessMemory(pid) as pm, Frozen(pid, pm.pidfd):
            est.scan(pm)
        est.results()
        n = est.counts.eligible
    return n, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    ap.add_argument("--mib", type=int, default=128, help="subject heap in MiB (default 128)")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.mib < 1:
        print("bench_estimate: --runs and --mib must be positive", file=sys.stderr)
        return 2
    out = Printer(markdown=args.markdown)
    out.heading("zsmalloc estimate: throughput", 1)
    cmd = "PYTHONPATH=src python benchmarks/bench_estimate.py " + " ".join(argv or sys.argv[1:])
    for line in header_lines(cmd):
        out.text(line)
    out.text(f"- core: {'compiled' if zsmalloc.COMPILED else 'pure Python'} "
             f"({zsmalloc.MODE_REASON})")
    have = set(available())
    kcomp = kernel_defaults()[0]
    default = [c for c in dict.fromkeys((kcomp,) + DEFAULT_EXTRA) if c in have]
    missing = [c for c in dict.fromkeys((kcomp,) + DEFAULT_EXTRA) if c not in have]
    variants = [
        ("floor: read + lz4 only", lambda pid: floor(pid)),
        ("lz4", lambda pid: estimate(pid, ["lz4"], peers=False)),
        ("lz4 + peers", lambda pid: estimate(pid, ["lz4"], peers=True)),
        (f"default set ({', '.join(default)}) + peers",
         lambda pid: estimate(pid, default, peers=True)),
        ("lz4, --sample 0.1", lambda pid: estimate(pid, ["lz4"], peers=False, sample=0.1)),
    ]
    rates = {name: [] for name, _ in variants}
    pages = 0
    with ChildHeap(seed=1, budget=args.mib << 20) as child:
        for _ in range(args.runs):
            for name, fn in variants:          # interleaved: noise hits every variant alike
                n, dt = fn(child.pid)
                pages = n
                rates[name].append(n / dt)
    t = Table(f"Whole-scan throughput, {pages:,} resident anonymous pages "
              f"({pages * SYS_PAGE / (1 << 20):,.0f} MiB), {args.runs} runs",
              ["variant", "pages/s median (min..max, IQR)", "x floor"])
    base = summarize(rates[variants[0][0]]).median
    for name, _ in variants:
        s = summarize(rates[name])
        t.add(name, s.fmt(0), f"{s.median / base:.2f}")
    if missing:
        t.note = f"not in the model yet (left out of the default set): {', '.join(missing)}"
    out.table(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
