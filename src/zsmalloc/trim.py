"""Give metadata back after churn: renumber zspage rows, cut free tails of the tables.

The kernel frees a struct zspage with its zspage and a handle with its object (slab pages
may stay). Our rows live in flat columns sized by their high-water mark, so after a large
free and a compaction they would keep costing as much as at the peak. ``trim`` moves the
highest live zspage rows into the lowest free ones (zspage ids are internal: only the
per-frame column and the list links name them) and truncates the columns; it cuts the
handle table after its last live row, and the per-frame columns after the last mapped chunk.

Handles are never renumbered (users hold them). Called by ``Pool.compact`` and
``Pool.shrink_arena`` when at least a quarter of the zspage rows are free; single-threaded
pools only (a ConcurrentPool would have to stop the world). Cost: O(rows).
"""

from __future__ import annotations

import heapq

from .handles import GEN_MAX, GEN_SHIFT
from .zspage import NIL, OFF_LIST, ON_FULL

NO_ZSPAGE = 0xFFFF_FFFF


def trim(pool) -> dict:
    """Renumber and truncate; returns how many zspage rows, handle rows and frames went.

    Then asks the C allocator to return the freed heap to the OS (glibc's malloc_trim):
    without it the columns' old buffers stay in the process as free heap.
    """
    out = {"zspage_rows": _trim_zspages(pool), "handle_rows": _trim_handles(pool),
           "frames": _trim_frames(pool)}
    release_heap()
    return out


_libc = None


def release_heap() -> bool:
    """glibc malloc_trim(0): give free heap pages back to the OS. False where unavailable."""
    global _libc
    if _libc is None:
        try:
            import ctypes
            import ctypes.util
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc = lib if hasattr(lib, "malloc_trim") else False
        except OSError:
            _libc = False
    if not _libc:
        return False
    _libc.malloc_trim(0)
    return True


def worth_it(pool) -> bool:
    zt = pool.zspages
    return len(zt.free_ids) * 4 >= len(zt.inuse) and len(zt.inuse) > 64


def _move_row(pool, src: int, dst: int) -> None:
    """Zspage row src becomes row dst (a free row)."""
    zt = pool.zspages
    cls = zt.cls[src]
    for col in (zt.inuse, zt.freeobj, zt.group, zt.cls, zt.isolated, zt.prev, zt.next,
                zt.huge_handle):
        col[dst] = col[src]
    chain = pool._chain
    zt.frames[dst * chain:(dst + 1) * chain] = zt.frames[src * chain:(src + 1) * chain]
    p, n = zt.prev[dst], zt.next[dst]
    if p not in (OFF_LIST, ON_FULL):
        if p == NIL:
            cls.heads[zt.group[dst]] = dst
        else:
            zt.next[p] = dst
        if n != NIL:
            zt.prev[n] = dst
    for k in range(cls.ppz):
        pool.frame_zspage[zt.frames[dst * chain + k]] = dst
    zt.cls[src] = None


def _trim_zspages(pool) -> int:
    zt = pool.zspages
    rows = len(zt.inuse)
    live = rows - len(zt.free_ids)
    holes = sorted(z for z in zt.free_ids if z < live)
    movers = [z for z in range(rows - 1, live - 1, -1) if zt.cls[z] is not None]
    for src, dst in zip(movers, holes):
        _move_row(pool, src, dst)
    for col in (zt.inuse, zt.freeobj, zt.group, zt.cls, zt.isolated, zt.prev, zt.next,
                zt.huge_handle):
        del col[live:]
    del zt.frames[live * pool._chain:]
    del zt.free_ids[:]
    return rows - live


def _trim_handles(pool) -> int:
    h = pool.handles
    words = h.words
    last = len(words) - 1
    while last > 0 and not words[last] & 1:
        last -= 1
    cut = len(words) - 1 - last
    if cut * 4 < len(words):
        return 0
    # generations of the rows cut off must not come back: new rows start above them
    top = max((w >> GEN_SHIFT for w in words[last + 1:]), default=0)
    h.gen_floor = max(h.gen_floor, top) % GEN_MAX
    del words[last + 1:]
    del h.sizes[last + 1:]
    head = 0                                   # rebuild the free chain over what is left
    for row in range(last, 0, -1):
        w = words[row]
        if not w & 1:
            words[row] = (w >> GEN_SHIFT << GEN_SHIFT) | (head << 1)
            head = row
    h.free_head = head
    return cut


def _trim_frames(pool) -> int:
    arena = pool.arena
    while arena.chunks and arena.chunks[-1] is None:
        for lst in (arena.chunks, arena.qviews, arena._free, arena._used):
            lst.pop()
    arena._partial = [c for c in arena._partial if c < len(arena.chunks)]
    heapq.heapify(arena._partial)
    keep = len(arena.chunks) << arena.chunk_shift
    cut = len(pool.frame_zspage) - keep
    if cut > 0:
        del pool.frame_zspage[keep:]
        del pool.frame_first_obj[keep:]
    return max(cut, 0)
