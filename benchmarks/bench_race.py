"""The concurrent-writer race of the seed thread, measured.

``zs_malloc`` drops the class lock while it allocates a new zspage, so N writers that find a
class full each allocate a zspage and put one object in it. A barrier in the allocation slow
path (``ConcurrentPool.slow_path_hook``) lines the N writers up deterministically; we then
count zspages and pages created against the minimum needed (ceil(N / objs_per_zspage)
zspages), for the kernel profile and for ``tuned``, over several size classes.

    PYTHONPATH=src python benchmarks/bench_race.py [--markdown] [--sizes 1000,300,3000]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from common import Printer, Table, header_lines  # noqa: E402

import zsmalloc  # noqa: E402
from zsmalloc.race import race  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,300,3000",
                    help="request sizes whose classes are raced (default 1000,300,3000)")
    ap.add_argument("--writers", default="2,4,8,16,64")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    out = Printer(args.markdown)
    out.heading("Concurrent-writer race: zspages and pages created per N", 1)
    for line in header_lines("PYTHONPATH=src python benchmarks/bench_race.py" +
                             (" --markdown" if args.markdown else "")):
        out.text(line)
    ns = [int(x) for x in args.writers.split(",")]
    for size in (int(s) for s in args.sizes.split(",")):
        t = Table(f"zs_malloc({size}) with the class full, N writers released together",
                  ["N", "minimum zspages (pages)", "linux-6.18 zspages (pages)",
                   "linux-6.18 pages held", "tuned zspages (pages)", "tuned pages held",
                   "linux-6.18 / minimum pages"])
        for n in ns:
            k = race("linux-6.18", n, size)
            tu = race("tuned", n, size)
            t.add(n, f"{k.min_zspages} ({k.min_pages})", f"{k.zspages_created} ({k.pages_created})",
                  k.pages_held, f"{tu.zspages_created} ({tu.pages_created})", tu.pages_held,
                  f"{k.pages_created / k.min_pages:.1f}x")
        cls = zsmalloc.class_table().for_request(size)
        t.note = (f"class {cls.size}: {cls.pages_per_zspage} page(s), {cls.objs_per_zspage} "
                  "objects per zspage. "
                  "Kernel: every writer that found the class full allocates its own zspage "
                  "(class lock dropped around alloc_zspage). tuned: one allocator per class, "
                  "re-check after re-taking the lock, surplus kept for the next slow path.")
        out.table(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
