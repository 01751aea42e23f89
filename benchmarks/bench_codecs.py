"""Compressor speed: zsmalloc.lib's lz4, lzo and lzo-rle against cramjam's lz4, python-lz4
and python-lzo (liblzo2), on the same real pages in one run.

Run from the repository root::

    PYTHONPATH=src python benchmarks/bench_codecs.py [--pages 8000] [--runs 11] [--markdown]

Pages: a child process's anonymous memory, ELF files, text (``realpages.mixed_pages``)
and ``ast.dump`` text of installed Python modules, 4 KiB each. Every figure is MB/s of
uncompressed data (pages x 4096 / seconds) over all pages, one call per page the way zram
makes them: compress into a reused 8 KiB buffer (zram's ``2 * PAGE_SIZE``), decompress to a
new ``bytes`` of the page size (zram's read path). Runs are interleaved (each round times
every implementation once) so load from other processes spreads over all of them; median
and spread (min..max, IQR) over ``--runs`` rounds. Targets: ours >= 0.8 x cramjam lz4
(compress and decompress) and >= 0.8 x python-lzo (lzo and lzo-rle).

The last section runs the native backends in 2 threads at once (zram's per-CPU streams):
as they release the GIL, 2 threads should approach 2 x one thread on 2 idle cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Printer, Table, header_lines, summarize  # noqa: E402

import cramjam  # noqa: E402
import lz4.block  # noqa: E402

import zsmalloc  # noqa: E402
from zsmalloc import realpages as rp  # noqa: E402
from zsmalloc.lib import lz4 as L, lzo as Z, oracle  # noqa: E402

try:
    import lzo as liblzo  # noqa: E402
except ImportError:
    liblzo = None

PAGE = 4096


def implementations():
    """(group, name, compress_into(page, buf) -> n, decompress(blob) -> bytes, baseline?)"""
    cj = cramjam.lz4
    out = [
        ("lz4", "ours (zsmalloc.lib.lz4)", lambda p, b: L.compress_into(p, b),
         lambda c: L.decompress(c, PAGE), False),
        ("lz4", "cramjam lz4 (LZ4 1.10)",
         lambda p, b: cj.compress_block_into(p, b, store_size=False),
         lambda c: bytes(cj.decompress_block(c, output_len=PAGE)), True),
        ("lz4", "python-lz4 (LZ4 1.10)", lambda p, b: _into(lz4.block.compress(p, store_size=False), b),
         lambda c: lz4.block.decompress(c, uncompressed_size=PAGE), False),
        ("lzo", "ours (zsmalloc.lib.lzo)", lambda p, b: Z.compress_into(p, b),
         lambda c: Z.decompress(c, PAGE), False),
        ("lzo-rle", "ours (zsmalloc.lib.lzo, rle)", lambda p, b: Z.compress_into(p, b, True),
         lambda c: Z.decompress(c, PAGE), False),
    ]
    if liblzo is not None:
        out.append(("lzo", "python-lzo (liblzo2 lzo1x_1)", lambda p, b: _into(liblzo.compress(p, 1, False), b),
                     lambda c: liblzo.decompress(c, False, PAGE), True))
    return out


def _into(blob, buf) -> int:
    n = len(blob)
    buf[:n] = blob
    return n


def gather(n: int):
    asts = oracle.ast_pages(n // 5)
    return rp.mixed_pages(n - len(asts), PAGE, 0) + asts


def time_all(pages, impls, runs):
    """{name: ([compress MB/s per run], [decompress MB/s per run])}, interleaved rounds."""
    buf = bytearray(2 * PAGE)
    blobs = {}
    for _, name, comp, _, _ in impls:
        blobs[name] = []
        for p in pages:
            n = comp(p, buf)
            blobs[name].append(bytes(buf[:n]))
    res = {name: ([], []) for _, name, _, _, _ in impls}
    total = len(pages) * PAGE / 1e6
    for _ in range(runs):
        for _, name, comp, decomp, _ in impls:
            t = time.perf_counter()
            for p in pages:
                comp(p, buf)
            res[name][0].append(total / (time.perf_counter() - t))
            bl = blobs[name]
            t = time.perf_counter()
            for c in bl:
                decomp(c)
            res[name][1].append(total / (time.perf_counter() - t))
    # the decompressors give back the pages (a benchmark of wrong output is no benchmark)
    for _, name, _, decomp, _ in impls:
        assert all(decomp(c) == p for c, p in zip(blobs[name], pages)), name
    return res, blobs


def threaded(pages, name, runs):
    """MB/s of compressing all pages with one thread, and with two threads splitting them."""
    from zsmalloc.zram.backends import make_backend
    b = make_backend(name)
    total = len(pages) * PAGE / 1e6

    def work(part):
        buf = bytearray(2 * PAGE)
        for p in part:
            b.compress_into(p, buf)

    one, two = [], []
    for _ in range(runs):
        t = time.perf_counter()
        work(pages)
        one.append(total / (time.perf_counter() - t))
        ths = [threading.Thread(target=work, args=(pages[i::2],)) for i in range(2)]
        t = time.perf_counter()
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        two.append(total / (time.perf_counter() - t))
    return one, two


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=8000, help="real pages (default 8000)")
    ap.add_argument("--runs", type=int, default=11, help="interleaved rounds (default 11)")
    ap.add_argument("--markdown", action="store_true", help="plain Markdown output")
    args = ap.parse_args(argv)
    if args.pages < 10 or args.runs < 1:
        ap.error("--pages must be >= 10 and --runs >= 1")

    out = Printer(markdown=args.markdown)
    out.heading("Compressor speed: zsmalloc.lib against cramjam, python-lz4 and python-lzo", 1)
    cmd = "PYTHONPATH=src python benchmarks/bench_codecs.py" + \
        (f" --pages {args.pages}" if args.pages != 8000 else "") + \
        (f" --runs {args.runs}" if args.runs != 11 else "") + (" --markdown" if args.markdown else "")
    for line in header_lines(cmd):
        out.text(line)
    out.text(f"- zsmalloc compiled: {zsmalloc.COMPILED} ({zsmalloc.MODE_REASON})")
    if liblzo is None:
        out.text("- python-lzo is not installed: no lzo baseline (pip install 'python-lzo>=1.15')")
    pages = gather(args.pages)
    out.text(f"- pages: {len(pages)} x 4 KiB (anon, ELF, text, Python AST dumps); "
             f"{args.runs} interleaved rounds; MB/s of uncompressed data\n")

    impls = implementations()
    res, blobs = time_all(pages, impls, args.runs)
    t = Table("Speed, one thread (median, min..max, IQR)",
              ["implementation", "algorithm", "ratio", "compress MB/s", "decompress MB/s"])
    for group, name, _, _, _ in impls:
        c, d = res[name]
        ratio = sum(len(b) for b in blobs[name]) / (len(pages) * PAGE)
        t.add(name, group, f"{ratio:.3f}", summarize(c).fmt(0), summarize(d).fmt(0))
    out.table(t)

    base = {group: name for group, name, _, _, is_base in impls if is_base}
    r = Table("Ours against the baseline (ratio of medians, and of the best rounds; "
              "target >= 0.8 on medians)",
              ["ours", "baseline", "compress", "decompress", "best: compress", "best: decompress",
               "target met"])
    status = 0
    for group, name, _, _, _ in impls:
        if not name.startswith("ours"):
            continue
        bname = base.get("lz4" if group == "lz4" else "lzo")
        if bname is None:
            continue
        rc = summarize(res[name][0]).median / summarize(res[bname][0]).median
        rd = summarize(res[name][1]).median / summarize(res[bname][1]).median
        bc = max(res[name][0]) / max(res[bname][0])
        bd = max(res[name][1]) / max(res[bname][1])
        met = rc >= 0.8 and rd >= 0.8
        r.add(name, bname, f"{rc:.2f}x", f"{rd:.2f}x", f"{bc:.2f}x", f"{bd:.2f}x",
              "yes" if met else "NO")
    out.table(r)

    th = Table("Native backends in threads (compress; GIL released inside)",
               ["backend", "1 thread MB/s", "2 threads MB/s", "2 / 1"])
    for name in ("lz4", "lzo-rle"):
        one, two = threaded(pages, name, max(3, args.runs // 2))
        s1, s2 = summarize(one), summarize(two)
        th.add(name, s1.fmt(0), s2.fmt(0), f"{s2.median / s1.median:.2f}x")
    out.table(th)
    out.text(f"(this machine: {os.cpu_count()} cores shared with other work; load average "
             f"now {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    return status


if __name__ == "__main__":
    sys.exit(main())
