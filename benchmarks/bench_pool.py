"""Allocator-core benchmark: metadata bytes per object and per page, operation speed, scale.

Run from the repository root::

    PYTHONPATH=src python benchmarks/bench_pool.py [--runs 5] [--objects 1000000] [--scale 4000000] [--quick] [--markdown]

Sections (each prints a table; the machine and the date come first):

1. Object sizes: the empirical distribution of lz4-compressed real pages the other sections
   draw from (``zsmalloc.realpages`` when it exists, else pages of ELF files, text files and
   this process's own anonymous memory). Same-filled pages are skipped (zram stores none);
   compressed sizes >= 3625 become 4096 (zram stores those raw).
2. Metadata: Python-side bytes (tracemalloc) per live object and per pool page with
   ``--objects`` live objects, against the budget of DESIGN.md §2 (<= 16 B/object, <= 64
   B/page); the breakdown of ``Pool.metadata_bytes()``; mapped bytes vs frames held.
3. Speed: cycles/s of free + malloc + write + read at a steady population, and pairs/s of
   free + malloc alone, for 64 B, 1 KiB and mixed real sizes, next to a dict baseline doing
   the same cycle in the same run. Median and spread over ``--runs`` runs.
4. Scale: the same 1 KiB cycle with 10,000 and with ``--scale`` live objects, the Pool and a
   dict of bytes under the same random access, one after the other in the same run: the cost
   of a cycle at the large population divided by its cost at the small one, for each. (The
   memory hierarchy's share: a cache and TLB miss or more per structure touched.)

The mode (compiled or pure, ``zsmalloc.COMPILED``) is printed with the machine.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import random
import sys
import time
import tracemalloc
from array import array

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Printer, Table, header_lines, repeat, summarize  # noqa: E402

import cramjam  # noqa: E402

import zsmalloc  # noqa: E402
from zsmalloc import Pool  # noqa: E402

PAGE = 4096
HUGE_FROM = 3625                  # zram stores a page raw when lz4 gives >= this many bytes
TARGET_B_PER_OBJECT = 16
TARGET_B_PER_PAGE = 64
TARGET_CYCLES_1K = 1_000_000
SCALE_SMALL = 10_000

HEADINGS = ("Machine", "Object sizes", "Metadata", "Speed", "Scale")


# ---------------------------------------------------------------------------------------
# real pages -> compressed sizes
# ---------------------------------------------------------------------------------------

def _same_filled(page: bytes) -> bool:
    """All 512 8-byte words equal (zram keeps only the word, no object)."""
    return page == page[:8] * (len(page) // 8)


def _pages_from_realpages(n: int, seed: int):
    """Pages from zsmalloc.realpages.mixed_pages, or None when that module is missing."""
    if importlib.util.find_spec("zsmalloc.realpages") is None:
        return None
    from zsmalloc import realpages
    stats: dict = {}
    try:
        pages = realpages.mixed_pages(n, seed=seed, stats=stats)
    except TypeError:  # an older signature: mixed_pages(n)
        pages = realpages.mixed_pages(n)
    pages = [bytes(p) for p in pages if len(p) == PAGE]
    src = f"zsmalloc.realpages.mixed_pages({n}, seed={seed})"
    if "anon" in stats:
        src += (f": {stats['anon']:,} resident anon pages of {len(stats.get('children', []))} "
                f"child Python processes, {stats.get('elf', 0):,} ELF pages, "
                f"{stats.get('text', 0):,} text pages, shuffled")
    return pages, src


_TEXT_EXT = (".py", ".h", ".c", ".txt", ".html", ".css", ".js", ".json", ".xml", ".md",
             ".rst", ".conf", ".pl", ".pm", ".sh", ".cfg", ".ini", ".csv", ".tcl", ".el")


def _walk_files(roots, want, limit=20000):
    out = []
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                p = os.path.join(dirpath, f)
                if want(p) and os.path.isfile(p) and not os.path.islink(p):
                    out.append(p)
                    if len(out) >= limit:
                        return out
    return out


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _file_pages(paths, n: int, rng: random.Random, per_file: int = 8) -> list[bytes]:
    """Up to ``n`` pages, at most ``per_file`` random page offsets from each file."""
    paths = list(paths)
    rng.shuffle(paths)
    out = []
    for p in paths:
        try:
            size = os.path.getsize(p)
            if size == 0:
                continue
            npages = (size + PAGE - 1) // PAGE
            offs = rng.sample(range(npages), min(per_file, npages))
            with open(p, "rb") as f:
                for o in offs:
                    f.seek(o * PAGE)
                    b = f.read(PAGE)
                    out.append(b + bytes(PAGE - len(b)))   # a file's tail page is zero-padded
                    if len(out) >= n:
                        return out
        except OSError:
            continue
    return out


def _build_process_data(rng: random.Random, scale: float) -> list:
    """Typical Python heap contents: dicts, lists, strings, pickles, numpy arrays.

    ``scale`` 1.0 builds about 60 MiB; smaller runs build proportionally less.
    """
    import pickle

    def k(n):
        return max(100, int(n * scale))

    keep = []
    words = ["alpha", "beta", "gamma", "delta", "user", "id", "name", "value", "count",
             "timestamp", "status", "ok", "error", "path", "size", "offset"]
    recs = [{"id": i, "name": f"{rng.choice(words)}_{i}", "score": rng.random() * 100,
             "tags": [rng.choice(words) for _ in range(rng.randrange(1, 5))],
             "active": rng.random() < 0.5} for i in range(k(60_000))]
    keep.append(recs)
    keep.append({f"key:{i:08d}": i * 7 for i in range(k(100_000))})
    keep.append([rng.randrange(1 << 20) for _ in range(k(100_000))])
    keep.append([" ".join(rng.choice(words) for _ in range(12)) for _ in range(k(20_000))])
    keep.append([pickle.dumps(recs[i:i + 50]) for i in range(0, k(30_000), 50)])
    try:
        import numpy as np
        g = np.random.default_rng(rng.randrange(1 << 30))
        keep.append(np.cumsum(g.normal(size=k(300_000))))                 # float64 series
        keep.append(g.integers(0, 100, size=k(400_000), dtype=np.int32))  # small counters
        keep.append(np.arange(k(500_000), dtype=np.int64))
        keep.append((g.random((300, 300)) < 0.05).astype(np.float32))  # sparse matrix
    except ImportError:
        pass
    return keep


def _own_anon_pages(n: int, rng: random.Random) -> tuple[list[bytes], int]:
    """Up to ``n`` random non-same-filled pages of this process's private anonymous memory.

    Read through /proc/self/mem. Same-filled pages are passed over (many are never-touched
    zero pages, which a swap device would not see); returns (pages, same-filled passed over).
    """
    regions = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 5 or parts[1] != "rw-p":
                continue
            name = parts[5] if len(parts) > 5 else ""
            if name not in ("", "[heap]"):
                continue
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            regions.extend(range(lo, hi, PAGE))
    addrs = rng.sample(regions, min(len(regions), 4 * n))
    out, same = [], 0
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        for a in addrs:
            try:
                b = os.pread(fd, PAGE, a)
            except OSError:
                continue
            if len(b) != PAGE:
                continue
            if _same_filled(b):
                same += 1
            else:
                out.append(b)
                if len(out) >= n:
                    break
    finally:
        os.close(fd)
    return out, same


def _pages_from_machine(n: int, seed: int):
    """About n pages: 40% this process's anon memory, 30% ELF files, 30% text files."""
    rng = random.Random(seed)
    n_anon = n * 4 // 10
    n_elf = n * 3 // 10
    n_text = n - n_anon - n_elf
    # anon pages first, before the file pages below are on the heap
    data = _build_process_data(rng, min(1.0, n / 20_000))
    anon, anon_same = _own_anon_pages(n_anon, rng)
    del data
    gc.collect()
    libdirs = ["/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu", "/usr/lib"]
    elfs = _walk_files(libdirs, lambda p: (os.access(p, os.X_OK) or ".so" in p) and _is_elf(p),
                       limit=3000)
    texts = _walk_files([os.path.dirname(os.__file__), "/usr/include", "/usr/share", "/etc"],
                        lambda p: p.endswith(_TEXT_EXT), limit=20000)
    elf = _file_pages(elfs, n_elf, rng)
    text = _file_pages(texts, n_text, rng)
    src = (f"this machine: {len(anon)} pages of this process's anon memory (Python objects, "
           f"pickles, numpy arrays; {anon_same} same-filled ones passed over), {len(elf)} pages of {len(elfs)} ELF files, "
           f"{len(text)} pages of {len(texts)} text files")
    return anon + elf + text, src


def corpus(n: int, seed: int, source: str = "auto"):
    """(payloads, source): zram's stored bytes for each real page (compressed or raw).

    Same-filled pages are dropped; a page compressing to >= 3625 bytes is stored raw (4096).
    """
    got = None
    try:
        if source != "machine":
            got = _pages_from_realpages(n, seed)
    except Exception as e:  # a module being written by someone else: fall back, say why
        print(f"(zsmalloc.realpages failed: {e!r}; using this machine's pages)", file=sys.stderr)
    if got is None or not got[0]:
        got = _pages_from_machine(n, seed)
    pages, src = got
    payloads, same = [], 0
    for p in pages:
        if _same_filled(p):
            same += 1
            continue
        c = cramjam.lz4.compress_block(p, store_size=False)
        payloads.append(bytes(c) if len(c) < HUGE_FROM else p)
    if not payloads:
        raise RuntimeError(f"no usable pages from {src}")
    return payloads, src, len(pages), same


# ---------------------------------------------------------------------------------------
# metadata
# ---------------------------------------------------------------------------------------

def _traced() -> int:
    return tracemalloc.get_traced_memory()[0]


def measure_metadata(payloads, n_objects: int, seed: int, with_churn: bool = True):
    """Fill a pool with ``n_objects`` real payloads under tracemalloc; rows per state."""
    rng = random.Random(seed)
    npay = len(payloads)
    # everything the measurement keeps is allocated before the baseline
    pick = array("I", (rng.randrange(npay) for _ in range(n_objects)))
    hs = array("Q", bytes(8 * n_objects))
    free_order = list(range(n_objects))
    rng.shuffle(free_order)
    free_order = array("I", free_order[: n_objects // 2])
    gc.collect()
    tracemalloc.start()
    try:
        base = _traced()
        pool = Pool()
        empty = _traced() - base      # fixed cost: class states, link plans, request table
        malloc, write = pool.malloc, pool.write
        t0 = time.perf_counter()
        for i in range(n_objects):
            p = payloads[pick[i]]
            h = malloc(len(p))
            write(h, p)
            hs[i] = h
        fill_s = time.perf_counter() - t0
        payload_bytes = sum(len(payloads[j]) for j in pick)
        rows = [("filled", _traced() - base, pool.objects, pool.total_pages,
                 pool.metadata_bytes(), pool.arena.mapped_bytes(), pool.arena.frames_in_use,
                 payload_bytes)]
        # spot check: what went in comes out
        for i in rng.sample(range(n_objects), min(2000, n_objects)):
            p = payloads[pick[i]]
            if pool.read(hs[i]) != p:
                raise AssertionError(f"object {i} read back wrong")
        if with_churn:
            free = pool.free
            for i in free_order:
                free(hs[i])
                payload_bytes -= len(payloads[pick[i]])
            pool.flush()
            rows.append(("after freeing 50% at random", _traced() - base, pool.objects,
                         pool.total_pages, pool.metadata_bytes(), pool.arena.mapped_bytes(),
                         pool.arena.frames_in_use, payload_bytes))
            t1 = time.perf_counter()
            freed = pool.compact()
            compact_s = time.perf_counter() - t1
            pool.flush()
            rows.append((f"after compact() ({freed:,} pages freed)", _traced() - base,
                         pool.objects, pool.total_pages, pool.metadata_bytes(),
                         pool.arena.mapped_bytes(), pool.arena.frames_in_use, payload_bytes))
        else:
            compact_s = None
    finally:
        tracemalloc.stop()
    pool.close()
    return rows, empty, fill_s, compact_s


# ---------------------------------------------------------------------------------------
# speed
# ---------------------------------------------------------------------------------------

def _workload(kind: str, payloads, n: int, rng: random.Random):
    """(sizes, datas) lists of length n for a workload kind: '64', '1024' or 'mixed'."""
    if kind == "mixed":
        datas = [payloads[rng.randrange(len(payloads))] for _ in range(n)]
    else:
        b = bytes(rng.randrange(256) for _ in range(int(kind)))
        datas = [b] * n
    return [len(d) for d in datas], datas


def _setup(kind, payloads, population, cycles, seed):
    rng = random.Random(seed)
    order = [rng.randrange(population) for _ in range(cycles)]
    fill = _workload(kind, payloads, population, rng)
    work = _workload(kind, payloads, cycles, rng)
    return order, fill, work


def _filled_pool(sizes, datas):
    """A fresh Pool holding one object per (size, data); returns (pool, handles)."""
    pool = Pool()
    hs = []
    for n, d in zip(sizes, datas):
        h = pool.malloc(n)
        pool.write(h, d)
        hs.append(h)
    return pool, hs


def pool_cycle(kind, payloads, population, cycles, seed, op="cycle"):
    """Cycles (or pairs) per second on a fresh pool holding ``population`` objects."""
    order, (fsizes, fdatas), (sizes, datas) = _setup(kind, payloads, population, cycles, seed)
    pool, hs = _filled_pool(fsizes, fdatas)
    malloc, free, write, read = pool.malloc, pool.free, pool.write, pool.read
    if op == "cycle":
        t0 = time.perf_counter()
        for slot, n, data in zip(order, sizes, datas):
            free(hs[slot])
            h = malloc(n)
            write(h, data)
            read(h)
            hs[slot] = h
        dt = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        for slot, n, data in zip(order, sizes, datas):
            free(hs[slot])
            hs[slot] = malloc(n)
        dt = time.perf_counter() - t0
    assert pool.objects == population
    pool.close()
    return cycles / dt


def dict_cycle(kind, payloads, population, cycles, seed, op="cycle"):
    """The same loop on a dict of bytes: del d[old]; d[new] = data; d[new]."""
    order, (fsizes, fdatas), (sizes, datas) = _setup(kind, payloads, population, cycles, seed)
    d = {}
    ks = list(range(population))
    for k, data in zip(ks, fdatas):
        d[k] = data
    k = population
    if op == "cycle":
        t0 = time.perf_counter()
        for slot, n, data in zip(order, sizes, datas):
            del d[ks[slot]]
            d[k] = data
            d[k]
            ks[slot] = k
            k += 1
        dt = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        for slot, n, data in zip(order, sizes, datas):
            del d[ks[slot]]
            d[k] = data
            ks[slot] = k
            k += 1
        dt = time.perf_counter() - t0
    assert len(d) == population
    return cycles / dt


def empty_loop(kind, payloads, population, cycles, seed, op="cycle"):
    """The harness alone (same zip and list indexing, no work): its rate bounds the others."""
    order, _, (sizes, datas) = _setup(kind, payloads, population, cycles, seed)
    hs = list(range(population))
    t0 = time.perf_counter()
    for slot, n, data in zip(order, sizes, datas):
        hs[slot]
        hs[slot] = n
    return cycles / (time.perf_counter() - t0)


class _NoOpPool:
    """Methods with the Pool's signatures that do nothing: the cost of the calls alone."""

    def malloc(self, size):
        return 1

    def free(self, handle):
        pass

    def write(self, handle, data):
        pass

    def read(self, handle, length=None):
        return b""


def call_floor(kind, payloads, population, cycles, seed, op="cycle"):
    """The cycle loop calling no-op methods: the most any pure-Python pool could reach."""
    order, _, (sizes, datas) = _setup(kind, payloads, population, cycles, seed)
    p = _NoOpPool()
    malloc, free, write, read = p.malloc, p.free, p.write, p.read
    hs = [1] * population
    t0 = time.perf_counter()
    if op == "cycle":
        for slot, n, data in zip(order, sizes, datas):
            free(hs[slot])
            h = malloc(n)
            write(h, data)
            read(h)
            hs[slot] = h
    else:
        for slot, n, data in zip(order, sizes, datas):
            free(hs[slot])
            hs[slot] = malloc(n)
    return cycles / (time.perf_counter() - t0)


def scale_cost(population: int, cycles: int, seed: int, store: str) -> float:
    """Seconds per 1 KiB cycle (free a random slot, malloc + write + read a new object) at a
    steady ``population``, for the Pool or a dict of bytes (``store``). The fill is not
    timed; gc is paused while timing."""
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(1024))
    order = [rng.randrange(population) for _ in range(cycles)]
    if store == "pool":
        pool = Pool()
        malloc, free, write, read = pool.malloc, pool.free, pool.write, pool.read
        hs = [malloc(1024, data) for _ in range(population)]
        gc.disable()
        t0 = time.perf_counter()
        for slot in order:
            free(hs[slot])
            h = malloc(1024)
            write(h, data)
            read(h)
            hs[slot] = h
        dt = time.perf_counter() - t0
        gc.enable()
        pool.close()
    else:
        d = {i: bytes(data) for i in range(population)}       # distinct objects, as stored
        nxt = population
        keys = list(range(population))
        gc.disable()
        t0 = time.perf_counter()
        for slot in order:
            del d[keys[slot]]
            d[nxt] = bytes(data)
            bytes(d[nxt])
            keys[slot] = nxt
            nxt += 1
        dt = time.perf_counter() - t0
        gc.enable()
        del d
    return dt / cycles


# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------

def _pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=None, help="runs per speed figure (default 5)")
    ap.add_argument("--objects", type=int, default=None,
                    help="live objects for the metadata figure (default 1,000,000)")
    ap.add_argument("--population", type=int, default=20_000,
                    help="live objects during the speed loops (default 20,000)")
    ap.add_argument("--cycles", type=int, default=None,
                    help="cycles timed per run (default 200,000; --quick 20,000)")
    ap.add_argument("--pages", type=int, default=None,
                    help="real pages sampled for the size distribution (default 20,000)")
    ap.add_argument("--scale", type=int, default=None,
                    help="live objects for the scale figure (default 4,000,000; --quick 200,000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--source", choices=("auto", "machine"), default="auto",
                    help="page source: zsmalloc.realpages when present (auto), or this "
                         "process's memory and this machine's files (machine)")
    ap.add_argument("--quick", action="store_true",
                    help="fast smoke run: 100k objects, 2 runs, fewer cycles and pages")
    ap.add_argument("--no-churn", action="store_true",
                    help="skip the free-50%% and compact rows of the metadata table")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables, not rich")
    a = ap.parse_args(argv)
    q = a.quick
    runs = a.runs if a.runs is not None else (2 if q else 5)
    objects = a.objects if a.objects is not None else (100_000 if q else 1_000_000)
    cycles = a.cycles if a.cycles is not None else (20_000 if q else 200_000)
    npages = a.pages if a.pages is not None else (5_000 if q else 20_000)
    for name, v in (("runs", runs), ("objects", objects), ("population", a.population),
                    ("cycles", cycles), ("pages", npages)):
        if v < 1:
            ap.error(f"--{name} {v} must be >= 1")

    out = Printer(markdown=a.markdown)
    cmd = "PYTHONPATH=src python benchmarks/bench_pool.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    out.heading("Machine")
    out.text("\n".join(header_lines(cmd.strip())))

    # -- sizes ----------------------------------------------------------------------------
    t0 = time.perf_counter()
    payloads, src, n_read, n_same = corpus(npages, a.seed, a.source)
    sizes = sorted(len(p) for p in payloads)
    out.heading("Object sizes")
    t = Table("lz4-compressed real pages (zram's stored sizes)", ["figure", "value"],
              note=f"Source: {src}. Compressor: cramjam.lz4.compress_block(page, "
                   f"store_size=False); >= {HUGE_FROM} B stored raw as {PAGE} B.")
    t.add("pages read", f"{n_read:,}")
    t.add("same-filled (skipped, zram stores no object)", f"{n_same:,}")
    t.add("objects in the distribution", f"{len(sizes):,}")
    t.add("huge (stored raw, 4096 B)", f"{sum(s == PAGE for s in sizes) / len(sizes):.1%}")
    t.add("mean size", f"{sum(sizes) / len(sizes):,.0f} B")
    for qq in (0.1, 0.25, 0.5, 0.75, 0.9):
        t.add(f"p{int(qq * 100)} size", f"{_pct(sizes, qq):,} B")
    t.add("time to build", f"{time.perf_counter() - t0:.1f} s")
    out.table(t)

    # -- metadata -------------------------------------------------------------------------
    out.heading("Metadata")
    rows, empty, fill_s, compact_s = measure_metadata(payloads, objects, a.seed, not a.no_churn)
    t = Table(f"Python-side metadata, {objects:,} objects of real sizes (tracemalloc)",
              ["state", "objects", "pool pages", "traced bytes", "B/object", "B/page",
               "growth B/object", "growth B/page",
               f"budget {TARGET_B_PER_OBJECT}·obj+{TARGET_B_PER_PAGE}·page", "within"],
              note="traced bytes = tracemalloc's traced memory after minus before creating the "
                   "pool; the handle array('Q'), the size picks and the payloads were allocated "
                   "before the baseline. Payload bytes live in mmap frames and are not traced. "
                   "B/object and B/page each divide the same whole total; 'growth' divides it "
                   f"less the empty pool's {empty:,} B (class states, link plans, request "
                   "table). 'within' compares the whole total with the budget.")
    t.add("empty pool", "0", "0", f"{empty:,}", "", "", "", "", "0", "")
    for state, traced, objs, pages, md, mapped, frames, pay in rows:
        budget = TARGET_B_PER_OBJECT * objs + TARGET_B_PER_PAGE * pages
        t.add(state, f"{objs:,}", f"{pages:,}", f"{traced:,}",
              f"{traced / max(objs, 1):.2f}", f"{traced / max(pages, 1):.1f}",
              f"{(traced - empty) / max(objs, 1):.2f}", f"{(traced - empty) / max(pages, 1):.1f}",
              f"{budget:,}", "yes" if traced <= budget else "NO")
    out.table(t)

    t = Table("Pool.metadata_bytes() breakdown", ["state", "handles", "zspages", "frames",
                                                   "arena", "total", "traced - total",
                                                   "handles B/object", "rest B/page"],
              note="handles = the per-object table (kernel: 8 B handle slab object); zspages + "
                   "frames + arena are per-page structures (kernel: struct zspage + 64 B struct "
                   "page). 'traced - total' is what metadata_bytes() does not see (class "
                   "states, the pool object, allocator slack).")
    for state, traced, objs, pages, md, mapped, frames, pay in rows:
        rest = md["zspages"] + md["frames"] + md["arena"]
        t.add(state, f"{md['handles']:,}", f"{md['zspages']:,}", f"{md['frames']:,}",
              f"{md['arena']:,}", f"{md['total']:,}", f"{traced - md['total']:,}",
              f"{md['handles'] / max(objs, 1):.2f}", f"{rest / max(pages, 1):.1f}")
    out.table(t)

    t = Table("Memory: mapped vs held", ["state", "payload bytes", "total_pages × 4096",
                                         "frames in use × 4096", "arena mapped", "mapped/held",
                                         "payload/held"],
              note="payload/held is the packing density (zram: compr_data_size / mem_used).")
    for state, traced, objs, pages, md, mapped, frames, pay in rows:
        held = pages * PAGE
        t.add(state, f"{pay:,}", f"{held:,}", f"{frames * PAGE:,}", f"{mapped:,}",
              f"{mapped / max(held, 1):.3f}", f"{pay / max(held, 1):.3f}")
    out.table(t)
    line = f"Fill of {objects:,} objects (malloc + write) under tracemalloc: {fill_s:.1f} s"
    if compact_s is not None:
        line += f"; compact() of the half-freed pool under tracemalloc: {compact_s:.1f} s"
    out.text(line + ".")

    # -- speed ----------------------------------------------------------------------------
    out.heading("Speed")
    pop = a.population
    cyc = Table(f"Cycles/s: free a random live object, then malloc + write + read a new one "
                f"(population {pop:,}, {cycles:,} cycles a run, runs: {runs})",
                ["workload", "Pool cycles/s", "µs/cycle", "dict cycles/s", "Pool/dict",
                 "no-op calls/s", "harness loop/s", "target"],
                note="Median (min..max, relative IQR). Steady population: each cycle frees the "
                     "object in a random slot and puts a new one there, so the pool keeps "
                     f"{pop:,} live objects and its zspages churn. dict baseline, same loop: "
                     "del d[old]; d[new] = data; d[new] (it stores a reference, copies no "
                     "bytes). No-op calls = the same loop calling four Python methods that do nothing "
                     "(the ceiling for any pure-Python pool on this interpreter). Harness loop = "
                     "the same zip and list indexing with no work. "
                     "Each run uses a fresh pool filled before timing; gc paused while timed.")
    prs = Table(f"Pairs/s: free a random live object + malloc a new one (no data, "
                f"population {pop:,})",
                ["workload", "Pool pairs/s", "µs/pair", "dict pairs/s", "Pool/dict"],
                note="dict baseline: del d[old]; d[new] = data.")
    kinds = [("64", "64 B"), ("1024", "1 KiB"), ("mixed", "mixed real sizes")]
    for kind, label in kinds:
        pc = summarize(repeat(lambda: pool_cycle(kind, payloads, pop, cycles, a.seed), runs))
        dc = summarize(repeat(lambda: dict_cycle(kind, payloads, pop, cycles, a.seed), runs))
        hl = summarize(repeat(lambda: empty_loop(kind, payloads, pop, cycles, a.seed), runs))
        nc = summarize(repeat(lambda: call_floor(kind, payloads, pop, cycles, a.seed), runs))
        target = ""
        if kind == "1024":
            ok = pc.median >= TARGET_CYCLES_1K
            target = f"≥ {TARGET_CYCLES_1K:,}: {'yes' if ok else 'NO'}"
        cyc.add(label, pc.fmt(), f"{1e6 / pc.median:.2f}", dc.fmt(),
                f"{pc.median / dc.median:.2f}", f"{nc.median:,.0f}", f"{hl.median:,.0f}", target)
        pp = summarize(repeat(lambda: pool_cycle(kind, payloads, pop, cycles, a.seed, "pair"),
                              runs))
        dp = summarize(repeat(lambda: dict_cycle(kind, payloads, pop, cycles, a.seed, "pair"),
                              runs))
        prs.add(label, pp.fmt(), f"{1e6 / pp.median:.2f}", dp.fmt(),
                f"{pp.median / dp.median:.2f}")
    out.table(cyc)
    out.table(prs)

    # -- scale ----------------------------------------------------------------------------
    out.heading("Scale")
    big = a.scale if a.scale is not None else (200_000 if q else 4_000_000)
    scyc = min(cycles, 200_000)
    t = Table(f"Cost of one 1 KiB cycle at {SCALE_SMALL:,} and {big:,} live objects "
              f"({scyc:,} random cycles a run, runs: {runs})",
              ["store", f"µs/cycle at {SCALE_SMALL:,}", f"µs/cycle at {big:,}", "ratio",
               "target"],
              note="Same random slots for both stores. dict of bytes: del d[old]; d[new] = "
                   "bytes(data); bytes(d[new]) (a fresh object per store and a copy per read, "
                   "as the Pool makes). Target: the Pool's ratio no worse than the dict's.")
    res = {}
    for store in ("pool", "dict"):
        lo = summarize(repeat(lambda: scale_cost(SCALE_SMALL, scyc, a.seed, store), runs))
        hi = summarize(repeat(lambda: scale_cost(big, scyc, a.seed, store), runs))
        res[store] = (lo, hi)
    ratios = {k: hi.median / lo.median for k, (lo, hi) in res.items()}
    for store, (lo, hi) in res.items():
        target = ""
        if store == "pool":
            target = f"≤ dict's {ratios['dict']:.2f}: {'yes' if ratios['pool'] <= ratios['dict'] else 'NO'}"
        t.add("Pool" if store == "pool" else "dict of bytes", f"{lo.median * 1e6:.3f}",
              f"{hi.median * 1e6:.3f}", f"{ratios[store]:.2f}", target)
    out.table(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
