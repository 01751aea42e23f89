"""Thread scaling: our Zram and the kernel's zram with 1, 2, 4 and 8 threads.

The kernel side uses a zram device of its own (``KernelZram`` hot-adds one for each run and
removes it after; a configured /dev/zram0 is never touched). Run from the repository root
(as root, for hot_add)::

    PYTHONPATH=src python benchmarks/bench_threads.py [--runs 5] [--pages N] [--threads 1,2,4,8] [--quick] [--markdown]

Each run writes ``--pages`` real pages (``zsmalloc.realpages.mixed_pages``: anon memory of a
child process we start, ELF and text pages) to a fresh device, each thread its own contiguous
index range, then reads them back the same way. Aggregate pages/s = all pages / wall time
(first thread start to last thread end). Ours: a plain ``Zram(disksize, "lz4")`` shared by
the threads (each operation one step; compression and decompression run without the GIL),
``write(index, page)`` / ``read(index)``. Kernel: each thread has its own O_DIRECT fd on that
device (opened inside a ``KernelZram`` context, which hot-adds it and removes it after) and
its own aligned buffer, and loops over ``os.pwrite`` / ``os.preadv``, one page per request.
``Zram(..., concurrent=True)`` (the kernel's locks, for studying them) is run with one
thread too, for the cost of those locks. Target: writes with 2 threads >= 1.5x one thread.

Without zram hot_add (not root, no zram module) the kernel columns are left out and the
reason is printed.
"""

from __future__ import annotations

import argparse
import gc
import mmap
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Printer, Table, header_lines, summarize  # noqa: E402

from zsmalloc import realpages  # noqa: E402
from zsmalloc import Zram  # noqa: E402
from zsmalloc.zram.kernel import KernelZram, kernel_available  # noqa: E402

PAGE = 4096
HEADINGS = ("Machine", "Pages", "Scaling", "The GIL")


# ---------------------------------------------------------------------------------------
# running k threads over index ranges
# ---------------------------------------------------------------------------------------

def _ranges(n: int, k: int):
    return [(t * n // k, (t + 1) * n // k) for t in range(k)]


def _run_threads(bodies) -> float:
    """Start one thread per ``body(lo, hi)`` closure pair, release them together, and
    return the wall time from the first start to the last end. Re-raises a thread's error."""
    k = len(bodies)
    barrier = threading.Barrier(k)
    times = [None] * k
    errors = []

    def worker(slot, body):
        try:
            barrier.wait()
            t0 = time.perf_counter()
            body()
            times[slot] = (t0, time.perf_counter())
        except BaseException as e:          # reported by the main thread
            errors.append(e)
            barrier.abort()

    ts = [threading.Thread(target=worker, args=(s, b)) for s, b in enumerate(bodies)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return max(e for _, e in times) - min(s for s, _ in times)


def run_ours(pages, k: int, concurrent: bool = False, verify: bool = False):
    """(write pages/s, read pages/s) of our Zram with ``k`` threads."""
    n = len(pages)
    z = Zram(n * PAGE, "lz4", concurrent=concurrent)
    w, r = z.write, z.read

    def writer(lo, hi):
        def body():
            for i in range(lo, hi):
                w(i, pages[i])
        return body

    def reader(lo, hi):
        def body():
            for i in range(lo, hi):
                r(i)
        return body

    rs = _ranges(n, k)
    tw = _run_threads([writer(lo, hi) for lo, hi in rs])
    tr = _run_threads([reader(lo, hi) for lo, hi in rs])
    if verify:
        if z.mm_stat().orig_data_size != n * PAGE:
            raise AssertionError(f"our Zram holds {z.mm_stat().orig_data_size} B, "
                                 f"wrote {n * PAGE}")
        for i, p in enumerate(pages):
            if r(i) != p:
                raise AssertionError(f"our Zram ({k} threads): page {i} read back wrong")
    z.close()
    return n / tw, n / tr


def run_kernel(pages, k: int, verify: bool = False):
    """The same on a kernel zram device of its own: each thread its own O_DIRECT fd and
    aligned buffer."""
    n = len(pages)
    rs = _ranges(n, k)
    with KernelZram(n * PAGE, "lz4") as kz:
        fds, bufs = [], []
        try:
            for _ in range(k):
                fds.append(os.open(kz.devpath, os.O_RDWR | os.O_DIRECT | os.O_CLOEXEC))
                bufs.append(mmap.mmap(-1, PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS))

            def writer(fd, buf, lo, hi):
                def body():
                    pw = os.pwrite
                    for i in range(lo, hi):
                        buf[:] = pages[i]
                        pw(fd, buf, i * PAGE)
                return body

            def reader(fd, buf, lo, hi):
                def body():
                    pr, bl = os.preadv, [buf]
                    for i in range(lo, hi):
                        pr(fd, bl, i * PAGE)
                        bytes(buf)
                return body

            tw = _run_threads([writer(fds[t], bufs[t], lo, hi) for t, (lo, hi) in enumerate(rs)])
            tr = _run_threads([reader(fds[t], bufs[t], lo, hi) for t, (lo, hi) in enumerate(rs)])
            if verify:
                if kz.mm_stat()[0] != n * PAGE:
                    raise AssertionError(f"kernel zram holds {kz.mm_stat()[0]} B, "
                                         f"wrote {n * PAGE}")
                for i, p in enumerate(pages):
                    if kz.read(i) != p:
                        raise AssertionError(f"kernel zram ({k} threads): page {i} read back wrong")
        finally:
            for b in bufs:
                b.close()
            for fd in fds:
                os.close(fd)
    return n / tw, n / tr


def _timed(fn, *args, **kw):
    gc.collect()
    gc.disable()
    try:
        return fn(*args, **kw)
    finally:
        gc.enable()


# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------

GIL_NOTE = """\
CPython {ver} runs Python code one thread at a time (the GIL{gil}). Our write is a short
compiled step around the compressor, and the compressors written here (lz4, lzo, lzo-rle:
zsmalloc.lib) run without the GIL: while one thread compresses, another can run its store
step (slot table, zs_malloc, the copy), so writes scale with the share of time spent
compressing, bounded by the {cores} cores of this machine; more threads than cores only add
switching (switch interval {sw:g} ms). Reads decompress inside the pool's operation (the
object must not move meanwhile) with the GIL released; other threads wait for the operation,
so reads scale less. The kernel rows run a Python loop too, but os.pwrite/os.preadv release
the GIL for the syscall, so the kernel's own part of each request can run on the other core.

On a free-threaded CPython (3.13t/3.14t, PEP 703) the default lock policy (Atomic) takes a
real mutex per operation instead of relying on the GIL (zsmalloc.core.locks), and
Zram(concurrent=True) gives the kernel's finer locks. That cannot be measured here: no
free-threaded interpreter is installed."""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=None, help="runs per figure (default 5; --quick 2)")
    ap.add_argument("--pages", type=int, default=None,
                    help="pages written and read per run (default 24,000; --quick 2,400)")
    ap.add_argument("--threads", default="1,2,4,8", help="thread counts (default 1,2,4,8)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="fast smoke run: 2,400 pages, 2 runs")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables, not rich")
    a = ap.parse_args(argv)
    runs = a.runs if a.runs is not None else (2 if a.quick else 5)
    npages = a.pages if a.pages is not None else (2_400 if a.quick else 24_000)
    try:
        counts = sorted({int(x) for x in a.threads.split(",") if x.strip()})
    except ValueError:
        ap.error(f"--threads {a.threads!r} must be comma-separated ints")
    if not counts or counts[0] < 1:
        ap.error(f"--threads {a.threads!r}: each count must be >= 1")
    for name, v in (("runs", runs), ("pages", npages)):
        if v < 1:
            ap.error(f"--{name} {v} must be >= 1")
    if npages < counts[-1]:
        ap.error(f"--pages {npages} must be at least the largest thread count {counts[-1]}")

    out = Printer(markdown=a.markdown)
    cmd = "PYTHONPATH=src python benchmarks/bench_threads.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    out.heading("Machine")
    out.text("\n".join(header_lines(cmd.strip())))
    ok, why = kernel_available()
    out.text("- kernel device: a zram device of its own (lz4), hot-added for each run and "
             "removed after" if ok else
             f"- kernel device: NOT USED ({why}); kernel columns are left out")

    out.heading("Pages")
    t0 = time.perf_counter()
    stats: dict = {}
    pages = realpages.mixed_pages(npages, seed=a.seed, stats=stats)
    s = realpages.summarize(pages)
    out.text(f"{len(pages):,} real pages from realpages.mixed_pages({npages}, seed={a.seed}): "
             f"{stats.get('anon', 0):,} anon, {stats.get('elf', 0):,} ELF, "
             f"{stats.get('text', 0):,} text; {s['same_filled']:,} same-filled, "
             f"{s['huge']:,} huge, lz4 mean {s.get('mean', 0):,.0f} B "
             f"(fetched in {time.perf_counter() - t0:.1f} s).")

    res = {("ours", k): ([], []) for k in counts}
    if ok:
        res.update({("kernel", k): ([], []) for k in counts})
    res[("plain", 1)] = ([], [])
    for run in range(runs):
        v = run == 0
        for k in counts:
            for key, w_r in ((("ours", k), lambda: _timed(run_ours, pages, k, verify=v)),
                             (("kernel", k), lambda: _timed(run_kernel, pages, k, verify=v))):
                if key not in res:
                    continue
                w, r = w_r()
                res[key][0].append(w)
                res[key][1].append(r)
        w, r = _timed(run_ours, pages, 1, concurrent=True, verify=v)
        res[("plain", 1)][0].append(w)
        res[("plain", 1)][1].append(r)

    out.heading("Scaling")
    for phase, col in (("write", 0), ("read", 1)):
        cols = ["threads", "ours pages/s", "ours vs 1 thread"]
        if ok:
            cols += ["kernel pages/s", "kernel vs 1 thread", "ours ÷ kernel"]
        t = Table(f"{phase.title()}: aggregate pages/s, {len(pages):,} pages a run "
                  f"(runs: {runs})", cols,
                  note="Median (min..max, relative IQR). Aggregate = all pages / (last thread "
                       "end - first thread start); each thread its own contiguous index range. "
                       "ours = one plain Zram shared by the threads; 'kernel locks' = "
                       "Zram(concurrent=True) with one thread, for reference. Kernel: "
                       "per-thread O_DIRECT fds, bare "
                       "os.pwrite/os.preadv. Each run uses fresh devices; ours and the kernel "
                       "take turns; gc paused while timed. The first run checks every page.")
        base_o = summarize(res[("ours", counts[0])][col]).median
        base_k = summarize(res[("kernel", counts[0])][col]).median if ok else None
        for k in counts:
            so = summarize(res[("ours", k)][col])
            row = [str(k), so.fmt(), f"{so.median / base_o:.2f}"]
            if ok:
                sk = summarize(res[("kernel", k)][col])
                row += [sk.fmt(), f"{sk.median / base_k:.2f}", f"{so.median / sk.median:.2f}"]
            t.add(*row)
        sp = summarize(res[("plain", 1)][col])
        row = ["1 (kernel locks)", sp.fmt(), f"{sp.median / base_o:.2f}"]
        if ok:
            row += ["", "", f"{sp.median / base_k:.2f}"]
        t.add(*row)
        out.table(t)
        med = {key: summarize(v[col]).median for key, v in res.items()}
        bo = max(counts, key=lambda k: med[("ours", k)])
        line = (f"{phase.title()}: ours peaks at {bo} thread(s), "
                f"{med[('ours', bo)] / base_o:.2f}x its {counts[0]}-thread rate")
        if ok:
            bk = max(counts, key=lambda k: med[("kernel", k)])
            line += (f"; the kernel peaks at {bk} thread(s), "
                     f"{med[('kernel', bk)] / base_k:.2f}x")
        if phase == "write" and 2 in counts and counts[0] == 1:
            two = med[("ours", 2)] / base_o
            line += (f"; 2 threads: {two:.2f}x one thread (target >= 1.5: "
                     f"{'yes' if two >= 1.5 else 'NO'})")
        line += (f". Zram(concurrent=True) with 1 thread runs at "
                 f"{med[('plain', 1)] / base_o:.2f}x the plain Zram (the cost of the kernel's "
                 f"locks)." if counts[0] == 1 else ".")
        out.text(line + "\n")
    if counts[0] != 1:
        out.text(f"(scaling is relative to {counts[0]} threads, the smallest count run)")

    out.heading("The GIL")
    gil = getattr(sys, "_is_gil_enabled", None)
    gil_s = "; sys._is_gil_enabled() = " + str(gil()) if gil else \
        "; this version has no free-threaded build"
    out.text(GIL_NOTE.format(ver=sys.version.split()[0], gil=gil_s,
                             sw=sys.getswitchinterval() * 1000, cores=os.cpu_count()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
