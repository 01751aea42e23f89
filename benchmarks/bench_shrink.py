"""Memory given back to the OS: fill a zram device, discard, compact, shrink the frame arena.

Run from the repository root::

    PYTHONPATH=src python benchmarks/bench_shrink.py [--gib 1.0] [--discard 0.75] [--seed 1]
        [--chunk-frames N] [--distinct 30000] [--tracemalloc] [--quick] [--markdown] [--strict]

Fills a ``zsmalloc.Zram`` with ``--gib`` GiB of real pages (``realpages.mixed_pages``:
``--distinct`` distinct pages, cycled), discards a random ``--discard`` share of the slots
(one ``discard(i)`` per slot, in random order), then runs ``zram.compact()`` and then
``zram.pool.shrink_arena()``. After each step (filled, discarded, compacted, shrunk) it calls
``pool.flush()`` (the arena batches MADV_DONTNEED) and measures: process RSS growth (VmRSS of
/proc/self/status, over a baseline taken after the page list and the discard order were
built and before the device exists), bytes of the arena actually resident (present bits of
/proc/self/pagemap over every mapped chunk), mapped bytes and chunks, frames in use,
mm_stat's mem_used_total, Python-side metadata (``pool.metadata_bytes()["total"]`` plus the
zram slot table; tracemalloc's traced bytes with ``--tracemalloc``, which is slow), the
pymalloc arenas (``sys._debugmallocstats``) and glibc's heap (``mallinfo2``), and the time.

Sections: Machine, Pages, Steps, Where the RSS is, Acceptance. Acceptance checks:

1. at every step, RSS growth <= 1.10 x (mem_used_total + measured metadata);
2. after the shrink, mapped chunks <= frames in use / frames per chunk + 1.

Exit status 0, or 1 when ``pool.check()`` finds a broken invariant after the shrink, or
when ``--strict`` is given and a check fails.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import mmap
import os
import random
import sys
import tempfile
import time
import tracemalloc
from array import array

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Printer, Table, header_lines  # noqa: E402

from zsmalloc import realpages  # noqa: E402
from zsmalloc.config import PoolConfig  # noqa: E402
from zsmalloc import Zram  # noqa: E402

PAGE = 4096
GIB = 1 << 30
MIB = 1 << 20
RSS_FACTOR = 1.10
B_PER_OBJECT, B_PER_PAGE = 16, 64      # DESIGN.md §2 metadata budget
HEADINGS = ("Machine", "Pages", "Steps", "Where the RSS is", "Acceptance")
STEPS = ("filled", "discarded", "compacted", "shrunk")


# ---------------------------------------------------------------------------------------
# process memory probes
# ---------------------------------------------------------------------------------------

def proc_status() -> dict:
    """VmRSS, RssAnon, RssFile of this process in bytes (from /proc/self/status)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out


def thp_mode() -> str:
    """Transparent huge page modes (the selected word of each sysfs file), e.g.
    'madvise' or 'madvise; 64kB always'. Under 'always' a touched chunk may be backed by
    huge pages, so its resident bytes can exceed its frames in use."""
    base = "/sys/kernel/mm/transparent_hugepage"

    def sel(path):
        try:
            with open(path) as f:
                txt = f.read()
        except OSError:
            return None
        return txt.split("[", 1)[1].split("]", 1)[0] if "[" in txt else txt.strip()

    top = sel(os.path.join(base, "enabled"))
    if top is None:
        return "unknown"
    extra = []
    try:
        names = sorted(os.listdir(base))
    except OSError:
        names = []
    for d in names:
        if d.startswith("hugepages-"):
            m = sel(os.path.join(base, d, "enabled"))
            if m in ("always", "madvise"):
                extra.append(f"{d[10:]} {m}")
    return "; ".join([top] + extra)


def arena_resident(arena) -> int:
    """Bytes of the arena's reservation resident in RAM (its Rss in /proc/self/smaps)."""
    return arena.resident_bytes()


def pymalloc_stats() -> dict:
    """pymalloc's arenas: 'arenas' (current count), 'arena_bytes', 'used' (bytes in allocated
    blocks), parsed from sys._debugmallocstats() (which writes to fd 2)."""
    with tempfile.TemporaryFile(mode="w+") as f:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read()
    out = {"arenas": 0, "arena_bytes": 0, "used": 0}
    for line in text.splitlines():
        if line.startswith("# arenas allocated current"):
            out["arenas"] = int(line.split("=")[1].replace(",", ""))
        elif "bytes/arena" in line:
            out["arena_bytes"] = int(line.split("=")[1].replace(",", ""))
        elif line.startswith("# bytes in allocated blocks"):
            out["used"] = int(line.split("=")[1].replace(",", ""))
    return out


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                               "usmblks", "fsmblks", "uordblks", "fordblks",
                                               "keepcost")]


try:
    _libc = ctypes.CDLL(None)
    _libc.mallinfo2.restype = _Mallinfo2
    _libc.malloc_trim.argtypes = [ctypes.c_size_t]
except (OSError, AttributeError):   # not glibc >= 2.33: those columns stay empty
    _libc = None


def glibc_heap() -> dict | None:
    """glibc malloc: 'inuse' (allocated bytes incl. mmapped blocks), 'free' (free bytes kept
    in the heap), or None where mallinfo2 is missing."""
    if _libc is None:
        return None
    m = _libc.mallinfo2()
    return {"inuse": m.uordblks + m.hblkhd, "free": m.fordblks}


def malloc_trim() -> bool:
    if _libc is None:
        return False
    _libc.malloc_trim(0)
    return True


# ---------------------------------------------------------------------------------------
# workload
# ---------------------------------------------------------------------------------------

def build_pages(distinct: int, seed: int):
    """(pages, stats) from realpages.mixed_pages; same-filled pages are kept (zram stores
    them as a word, no object), as a swap device would see them."""
    st: dict = {}
    pages = realpages.mixed_pages(distinct, seed=seed, stats=st)
    return [bytes(p) for p in pages], st


def snapshot(z: Zram, base: dict, seconds: float, traced0: int | None) -> dict:
    """Every figure of one row, after flushing the arena's pending MADV_DONTNEED."""
    pool = z.pool
    arena = pool.arena
    pending = arena.pending_frames()
    t0 = time.perf_counter()
    pool.flush()
    gc.collect()
    seconds += time.perf_counter() - t0
    st = proc_status()
    md = pool.metadata_bytes()
    ms = z.mm_stat()
    row = {
        "seconds": seconds,
        "rss": st["VmRSS"] - base["VmRSS"],
        "anon": st["RssAnon"] - base["RssAnon"],
        "file": st["RssFile"] - base["RssFile"],
        "arena_res": arena_resident(arena),
        "mapped": arena.mapped_bytes(),
        "chunks": arena.chunks_mapped,
        "frames": arena.frames_in_use,
        "mem_used": ms.mem_used_total,
        "pool_md": md["total"],
        "md_parts": md,
        "slots": z.slot_table_bytes(),
        "pending": pending,
        "objects": pool.objects,
        "stored": ms.orig_data_size,
        "compr": ms.compr_data_size,
        "pymalloc": pymalloc_stats(),
        "glibc": glibc_heap(),
        "traced": None if traced0 is None else tracemalloc.get_traced_memory()[0] - traced0,
    }
    row["md"] = row["pool_md"] + row["slots"]
    return row


def run(npages: int, discard: float, seed: int, chunk_frames: int | None, distinct: int,
        use_tracemalloc: bool, log=None) -> dict:
    """The whole workload; returns the page stats, the baseline and one row per step."""
    t0 = time.perf_counter()
    pages, pst = build_pages(distinct, seed)
    build_s = time.perf_counter() - t0
    n_distinct = len(pages)
    if n_distinct == 0:
        raise RuntimeError("realpages.mixed_pages returned no pages")
    summary = realpages.summarize(pages)
    # discard order, built before the baseline and kept alive to the end (not counted)
    rng = random.Random(seed)
    order = array("I", rng.sample(range(npages), round(npages * discard)))
    cfg = PoolConfig(chunk_frames=chunk_frames)
    gc.collect()
    base = proc_status()
    base_py = pymalloc_stats()
    base_glibc = glibc_heap()
    traced0 = None
    if use_tracemalloc:
        tracemalloc.start()
        traced0 = tracemalloc.get_traced_memory()[0]

    z = Zram(npages * PAGE, "lz4", cfg)
    rows = {"empty device": snapshot(z, base, 0.0, traced0)}

    t = time.perf_counter()
    write = z.write
    for i in range(npages):
        write(i, pages[i % n_distinct])
    rows["filled"] = snapshot(z, base, time.perf_counter() - t, traced0)
    if log:
        log(f"filled in {rows['filled']['seconds']:.1f} s")

    t = time.perf_counter()
    disc = z.discard
    for i in order:
        disc(i)
    rows["discarded"] = snapshot(z, base, time.perf_counter() - t, traced0)

    t = time.perf_counter()
    freed = z.compact()
    rows["compacted"] = snapshot(z, base, time.perf_counter() - t, traced0)
    rows["compacted"]["note"] = f"{freed:,} pages freed"

    # frames shrink_arena moves = frames of the chunks it unmaps (it never maps a new one)
    arena = z.pool.arena
    used_before = [arena.chunk_used_frames(c) for c in range(arena.chunks_high)]
    t = time.perf_counter()
    unmapped = z.pool.shrink_arena()
    rows["shrunk"] = snapshot(z, base, time.perf_counter() - t, traced0)
    moved = sum(u for c, u in enumerate(used_before) if u and arena.chunk_used_frames(c) == 0)
    rows["shrunk"]["note"] = f"{unmapped:,} chunks unmapped, {moved:,} frames migrated"

    # what glibc keeps: give its free heap memory back and look again (not a step)
    trimmed = None
    if malloc_trim():
        trimmed = snapshot(z, base, 0.0, traced0)
    if use_tracemalloc:
        tracemalloc.stop()
    try:   # every invariant still holds after the migrations (not timed)
        z.pool.check()
        checked = None
    except Exception as e:   # reported after the tables; the run then exits 1
        checked = f"{type(e).__name__}: {e}"
    result = {"pages_stats": pst, "summary": summary, "build_s": build_s, "base": base,
              "base_py": base_py, "base_glibc": base_glibc, "rows": rows, "trimmed": trimmed,
              "n_distinct": n_distinct, "chunk_frames": cfg.chunk_frames,
              "discarded": len(order), "npages": npages,
              "check_error": checked}
    z.close()
    del pages, order
    return result


# ---------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------

def mib(n: int) -> str:
    return f"{n / MIB:,.1f}"


def check1(r: dict) -> tuple[float, bool]:
    bound = RSS_FACTOR * (r["mem_used"] + r["md"])
    return bound, r["rss"] <= bound


def check2(r: dict, cf: int) -> tuple[float, bool]:
    bound = r["frames"] / cf + 1
    return bound, r["chunks"] <= bound


def report(out: Printer, res: dict, args) -> bool:
    """Print the sections after Machine; returns True when both checks pass."""
    s, pst, rows, cf = res["summary"], res["pages_stats"], res["rows"], res["chunk_frames"]
    npages = res["npages"]
    out.heading("Pages")
    t = Table("Page data (realpages.mixed_pages)", ["figure", "value"],
              note=f"The device gets page i % {res['n_distinct']:,} at index i, for i in "
                   f"0..{npages - 1:,}. lz4 sizes as zram stores them (cramjam block lz4).")
    t.add("distinct pages", f"{res['n_distinct']:,} (anon {pst.get('anon', 0):,}, ELF "
                            f"{pst.get('elf', 0):,}, text {pst.get('text', 0):,})")
    t.add("same-filled (no object)", f"{s['same_filled']:,} ({s['zero_filled']:,} zero)")
    t.add("huge (stored raw)", f"{s['huge']:,}")
    if s.get("compressed"):
        t.add("lz4 size median / mean", f"{s['median']:,} / {s['mean']:,.0f} B")
        t.add("compression ratio (compressed pages)", f"{s['ratio']:.2f}")
    t.add("pages written", f"{npages:,} ({npages * PAGE / GIB:.3f} GiB)")
    t.add("slots discarded", f"{res['discarded']:,} ({res['discarded'] / npages:.0%}, random)")
    t.add("frames per arena chunk", f"{cf:,} ({cf * PAGE / MIB:g} MiB)")
    t.add("time to build the page list", f"{res['build_s']:.1f} s")
    t.add("baseline RSS (page list included)", f"{mib(res['base']['VmRSS'])} MiB")
    t.add("transparent huge pages", thp_mode())
    out.table(t)

    out.heading("Steps")
    cols = ["step", "time s", "orig_data_size MiB", "RSS growth MiB", "arena mapped MiB",
            "chunks mapped", "frames in use", "mem_used_total MiB", "metadata MiB", "pool md MiB",
            "slot table MiB"]
    if args.tracemalloc:
        cols.append("tracemalloc MiB")
    cols += ["RSS / (mem_used + md)", "note"]
    t = Table("After each step (RSS growth over the baseline; after pool.flush())", cols,
              note="metadata = pool.metadata_bytes()['total'] + zram slot table. "
                   "mem_used_total is mm_stat's (pool pages x 4096). 'empty device' is the "
                   "row before the fill (class states and the slot table). Times: the step "
                   "plus pool.flush().")
    for name, r in rows.items():
        cells = [name, f"{r['seconds']:.2f}", mib(r["stored"]), mib(r["rss"]),
                 mib(r["mapped"]), f"{r['chunks']:,}", f"{r['frames']:,}", mib(r["mem_used"]),
                 mib(r["md"]), mib(r["pool_md"]), mib(r["slots"])]
        if args.tracemalloc:
            cells.append(mib(r["traced"]))
        denom = r["mem_used"] + r["md"]
        cells += [f"{r['rss'] / denom:.3f}" if denom else "", r.get("note", "")]
        t.add(*cells)
    out.table(t)

    out.heading("Where the RSS is")
    bp, bg = res["base_py"], res["base_glibc"]
    t = Table("RSS growth split: the arena (pagemap) and the Python heap",
              ["step", "RSS growth MiB", "anon MiB", "file MiB", "arena resident MiB",
               "frames in use MiB", "rest MiB", "metadata MiB", "rest - metadata MiB",
               "pymalloc arenas", "pymalloc arena MiB (Δ)", "pymalloc used MiB (Δ)",
               "glibc in use MiB (Δ)", "glibc free MiB (Δ)", "DONTNEED pending"],
              note="rest = RSS growth - arena resident: the Python heap and anything else. "
                   "pymalloc: arenas of 1 MiB holding small objects (ints, list headers); an "
                   "arena goes back to the OS only when every block in it is free. glibc: "
                   "larger blocks (list and array buffers); 'free' is memory glibc keeps. Δ "
                   "columns are over the baseline. DONTNEED pending = freed frames waiting "
                   "for the batched MADV_DONTNEED before the flush.")
    items = list(rows.items())
    if res["trimmed"] is not None:
        items.append(("shrunk, then malloc_trim(0)", res["trimmed"]))
    for name, r in items:
        py, gl = r["pymalloc"], r["glibc"]
        rest = r["rss"] - r["arena_res"]
        t.add(name, mib(r["rss"]), mib(r["anon"]), mib(r["file"]), mib(r["arena_res"]),
              mib(r["frames"] * PAGE), mib(rest), mib(r["md"]), mib(rest - r["md"]),
              f"{py['arenas']:,}", mib(py["arena_bytes"] - bp["arena_bytes"]),
              mib(py["used"] - bp["used"]),
              mib(gl["inuse"] - bg["inuse"]) if gl else "",
              mib(gl["free"] - bg["free"]) if gl else "", f"{r['pending']:,}")
    out.table(t)
    t = Table("Pool metadata against the DESIGN.md §2 budget "
              f"({B_PER_OBJECT} B/live object + {B_PER_PAGE} B/pool page)",
              ["step", "live objects", "pool pages", "handles B", "zspages B", "frames B",
               "arena B", "pool md B", "budget B", "md / budget"],
              note="pool.metadata_bytes() parts (the zram slot table, 16 B a slot like the "
                   "kernel's, is outside the budget). The handle table, the zspage columns "
                   "and the per-frame columns are sized by their high-water marks: they do "
                   "not shrink when objects, zspages or chunks go away.")
    for name in STEPS:
        r = rows[name]
        md, objs, pp = r["md_parts"], r["objects"], r["mem_used"] // PAGE
        budget = B_PER_OBJECT * objs + B_PER_PAGE * pp
        t.add(name, f"{objs:,}", f"{pp:,}", f"{md['handles']:,}", f"{md['zspages']:,}",
              f"{md['frames']:,}", f"{md['arena']:,}", f"{md['total']:,}", f"{budget:,}",
              f"{md['total'] / budget:.2f}" if budget else "")
    out.table(t)

    out.heading("Acceptance")
    t = Table("Acceptance checks", ["check", "step", "measured", "bound", "result"],
              note=f"(1) RSS growth <= {RSS_FACTOR:.2f} x (mem_used_total + metadata), at every "
                   "step. (2) mapped chunks <= frames in use / frames per chunk + 1, after "
                   "shrink_arena (earlier steps shown for reference: the arena is not packed "
                   "there).")
    ok = True
    for name in STEPS:
        r = rows[name]
        bound, good = check1(r)
        ok &= good
        t.add("(1) RSS growth", name, f"{mib(r['rss'])} MiB", f"{mib(bound)} MiB",
              "PASS" if good else "FAIL")
    for name in STEPS:
        r = rows[name]
        bound, good = check2(r, cf)
        final = name == "shrunk"
        if final:
            ok &= good
        t.add("(2) mapped chunks", name, f"{r['chunks']:,}", f"{bound:,.2f}",
              ("PASS" if good else "FAIL") if final else f"(info: {'within' if good else 'over'})")
    out.table(t)
    c1 = all(check1(rows[n])[1] for n in STEPS)
    c2 = check2(rows["shrunk"], cf)[1]
    out.text(f"- (1) RSS growth within {RSS_FACTOR:.2f} x (mem_used_total + metadata) at every "
             f"step: **{'PASS' if c1 else 'FAIL'}**")
    out.text(f"- (2) mapped chunks <= frames in use / {cf} + 1 after shrink_arena: "
             f"**{'PASS' if c2 else 'FAIL'}**")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gib", type=float, default=None,
                    help="device contents to write, GiB (default 1.0; --quick 1/64 = 16 MiB)")
    ap.add_argument("--discard", type=float, default=0.75,
                    help="share of the slots discarded, 0..1 (default 0.75)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--distinct", type=int, default=None,
                    help="distinct real pages, cycled (default 30,000; --quick 1,000)")
    ap.add_argument("--chunk-frames", type=int, default=None, metavar="N",
                    help="frames per arena chunk, a power of two (default: 2 MiB worth = 512)")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="also report tracemalloc's traced bytes (slow; its own tables add to "
                         "the RSS)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 16 MiB, 1,000 distinct pages")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables, not rich")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    a = ap.parse_args(argv)
    gib = a.gib if a.gib is not None else (1 / 64 if a.quick else 1.0)
    distinct = a.distinct if a.distinct is not None else (1_000 if a.quick else 30_000)
    if not gib > 0:
        ap.error(f"--gib {gib} must be > 0")
    npages = int(gib * GIB) // PAGE
    if npages < 1:
        ap.error(f"--gib {gib} is less than one page")
    if not 0 <= a.discard <= 1:
        ap.error(f"--discard {a.discard} must be in 0..1")
    if distinct < 1:
        ap.error(f"--distinct {distinct} must be >= 1")
    cf = a.chunk_frames
    if cf is not None and (cf < 1 or cf & (cf - 1) or cf > 65536):
        ap.error(f"--chunk-frames {cf} must be a power of two from 1 to 65536")

    out = Printer(markdown=a.markdown)
    cmd = "PYTHONPATH=src python benchmarks/bench_shrink.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    out.heading("Machine")
    out.text("\n".join(header_lines(cmd.strip())))
    res = run(npages, a.discard, a.seed, cf, distinct, a.tracemalloc)
    ok = report(out, res, a)
    if res["check_error"] is not None:
        out.text(f"\npool.check() after the shrink FAILED: {res['check_error']}")
        return 1
    out.text("\npool.check() after the shrink: every invariant holds.")
    return 1 if a.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
