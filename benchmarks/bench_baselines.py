"""Python baselines and allocator efficiency on the same real pages.

Run from the repository root::

    PYTHONPATH=src python benchmarks/bench_baselines.py [--pages N] [--runs 3] [--seed 0]
                                                        [--quick] [--markdown]

Sections (the machine and the date come first):

1. Workload: the real 4 KiB pages (``realpages.mixed_pages``: child-process anonymous memory,
   ELF and text) and the report's workload over them (``zsmalloc.report.default_ops``: fill,
   then rounds of swap-out refill, overwrites, swap-in reads + discards, idle, compaction),
   recorded once on our ``Zram`` as a trace of lz4 lengths.
2. Python baselines: the same pages held by (i) our ``Zram`` (lz4, linux-6.18 chain 8),
   (ii) a dict of lz4-compressed bytes (``cramjam.lz4.compress_block``), (iii)
   ``zict.Func(compress, decompress, dict)`` with the same functions. Each run is a fresh
   interpreter (so freed memory of one store cannot hide the next one's growth): RSS growth
   while filling, write and read throughput (MiB/s of page data). Median and spread of
   ``--runs`` runs, interleaved across stores.
3. Efficiency: the trace replayed on zsmalloc linux-6.18 chain 4, 8 and 16, linux-4.8, and on
   zbud, z3fold and zblock through the same zram slot layer: pages used at the end (just
   after a swap-in wave and a compaction) and averaged over the run, memory per compressed
   byte, and the ratio to zsmalloc 6.18 chain 8.
4. Published: the measured ratios next to spec/peers.md's published ones, with the reasons
   the numbers give where they differ.

Everything but the timing is deterministic for a given page set; the page set depends a
little on the machine (its ELF and text files, the child's heap).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Printer, Table, header_lines, summarize  # noqa: E402

from zsmalloc import report as R  # noqa: E402
from zsmalloc.realpages import format_summary  # noqa: E402

HEADINGS = ("Machine", "Workload", "Python baselines", "Efficiency", "Published")
SPECS = [R.RunSpec("zsmalloc", "linux-6.18", 4), R.RunSpec("zsmalloc", "linux-6.18", 8),
         R.RunSpec("zsmalloc", "linux-6.18", 16), R.RunSpec("zsmalloc", "linux-4.8", 4),
         R.RunSpec("zbud"), R.RunSpec("z3fold"), R.RunSpec("zblock")]


def baselines_table(meas: dict, page_size: int, runs: int) -> Table:
    mib = page_size / 2**20
    t = Table(f"Python baselines: {next(iter(meas.values()))[0]['pages']:,} real "
              f"{page_size // 1024} KiB pages, median (min..max, IQR) of {runs} runs",
              ["store", "RSS growth MiB", "compressed MiB", "write MiB/s", "read MiB/s",
               "bad reads"],
              note="RSS growth: /proc/self/statm resident bytes after filling minus before, "
                   "in a fresh interpreter holding the pages already. Throughput counts page "
                   "bytes (uncompressed) per second; reads decompress. Zram stores nothing for "
                   "same-filled pages and keeps incompressible ones raw; the dicts compress "
                   "every page (bytes() copies, so no spare buffer capacity is held).")
    for store, ms in meas.items():
        n = ms[0]["pages"]
        rss = summarize([m["rss_growth"] for m in ms])
        wr = summarize([n / m["write_s"] for m in ms])
        rd = summarize([n / m["read_s"] for m in ms])
        t.add(store, rss.fmt(1, 2**20), f"{ms[0]['compr_data_size'] / 2**20:.1f}",
              wr.fmt(0, 1 / mib), rd.fmt(0, 1 / mib), sum(m["bad_reads"] for m in ms))
    return t


def efficiency_table(results: list) -> Table:
    rows = R.efficiency_rows(results)
    t = Table("Efficiency on the same real-page trace (4 KiB pages)",
              ["configuration", "pages used (end)", "MiB", "mean pages", "peak pages",
               "memory / compressed byte", "vs 6.18 c8 (end)", "vs 6.18 c8 (mean)",
               "objects moved", "pages compacted"],
              note="End: just after the last swap-in wave and compaction. Memory / compressed "
                   "byte = pages used x page size / compr_data_size (1.0 = no waste). "
                   "Objects moved: handles whose location changed across a compaction "
                   "(see zsmalloc.report); ≥: a lower bound (4.8 can move an object twice). "
                   "Peers have no compaction.")
    for d in rows:
        t.add(d["label"], f"{d['pages']:,}", f"{d['mib']:.1f}", f"{d['mean_pages']:,.0f}",
              f"{d['peak_pages']:,}", f"{d['overhead']:.3f}", R._pct(d["vs_ref"]),
              R._pct(d["vs_ref_mean"]),
              "–" if d["moved"] is None else
              f"{'≥ ' if d['moved_lower_bound'] else ''}{d['moved']:,}",
              "–" if d["pages_compacted"] is None else f"{d['pages_compacted']:,}")
    return t


def published_table(results: list) -> Table:
    t = Table("Measured vs published memory use (relative to zsmalloc 6.18 chain 8)",
              ["comparison", "published", "measured (end)", "measured (mean)", "same direction"])
    for d in R.published_check(results):
        same = "yes" if d["agrees"] else ("at the end only" if d["agrees_end"] else "no")
        t.add(d["comparison"], d["published"], f"{100 * d['end']:+.1f} %",
              f"{100 * d['mean']:+.1f} %", same)
    return t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=None,
                    help=f"real 4 KiB pages (default {R.DEFAULT_PAGES}, --quick 1000)")
    ap.add_argument("--runs", type=int, default=3, help="runs per baseline figure (default 3)")
    ap.add_argument("--rounds", type=int, default=None, help="workload rounds (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="small page set (smoke test)")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables, not rich")
    args = ap.parse_args(argv)
    n = args.pages if args.pages is not None else (1000 if args.quick else R.DEFAULT_PAGES)
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else R.DEFAULT_ROUNDS)
    if n < 64:
        ap.error(f"--pages {n} must be >= 64")
    if args.runs < 1:
        ap.error(f"--runs {args.runs} must be >= 1")
    out = Printer(markdown=args.markdown)
    t_start = time.perf_counter()
    cmd = "PYTHONPATH=src python benchmarks/bench_baselines.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    out.heading(HEADINGS[0])
    out.text("\n".join(header_lines(cmd.strip())))

    out.heading(HEADINGS[1])
    P = 4096
    t0 = time.perf_counter()
    pages = R.gather_pages(n, P, args.seed)
    t_pages = time.perf_counter() - t0
    ops = R.default_ops(len(pages), args.seed, rounds=rounds)
    import tempfile
    with tempfile.TemporaryDirectory(prefix="bench-baselines-") as tmp:
        rec = R.record_workload(pages, ops, os.path.join(tmp, "workload.zstrace.gz"))
    c = rec.counts
    out.code(format_summary(rec.summary))
    out.text(f"{len(pages):,} pages read in {t_pages:.1f} s; workload of {rounds} rounds: "
             f"{c['write']:,} writes, {c['read']:,} reads ({c['read_mismatches']} mismatches), "
             f"{c['discard']:,} discards, {c['compact']} compactions; {len(rec.records):,} trace "
             f"records; device mm_stat at the end: `{str(rec.mm_stat).strip()}`")

    out.heading(HEADINGS[2])
    meas = R.measure_baselines(pages, args.runs)
    del pages
    out.table(baselines_table(meas, P, args.runs))

    out.heading(HEADINGS[3])
    results = [R.run_spec(s, rec.records, keep_classes=s.is_zsmalloc) for s in SPECS]
    ref = R._reference(results, P)
    match = tuple(ref.mm_stat) == tuple(rec.mm_stat)
    out.table(efficiency_table(results))
    out.text(f"Replay of linux-6.18 chain 8 reproduces the recording device's mm_stat: "
             f"{'yes' if match else 'NO'}.")

    out.heading(HEADINGS[4])
    out.table(published_table(results))
    out.text(R.explain_published(results, P))
    out.text(f"Total time: {time.perf_counter() - t_start:.1f} s")
    return 0 if match else 1


if __name__ == "__main__":
    sys.exit(main())
