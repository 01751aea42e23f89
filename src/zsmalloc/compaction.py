"""Compaction: move objects out of sparse zspages into fuller ones, free the emptied ones.

Kernel: zs_compact, __zs_compact, zs_can_compact, isolate_src_zspage, isolate_dst_zspage,
migrate_zspage, putback_zspage (6.4+ algorithm for linux-6.18 and tuned; the 2016 one for
linux-4.8).

6.18 (since 6.4 "rework compaction algorithm"): classes are walked from the largest index
down. Per class, while zs_can_compact > 0: keep a destination (head of the fullest group
99%..10%) until it is full; take a source (head of the emptiest group 10%..99%); move the
source's objects, lowest index first, into the destination's free slots (its LIFO order);
put the source back, or free it when empty (counted in pages_compacted even if the free is
deferred). The destination is put back only when full.

4.8: source = head of ALMOST_EMPTY else ALMOST_FULL; destinations = head of ALMOST_FULL else
ALMOST_EMPTY, taken one after another while the source has objects; each destination is put
back as soon as it is full. Only the class lock is held.

Locks (6.18): pool lock for write + class lock + zspage write trylock on the source.
Cost: O(objects moved) copies of ``class.size`` bytes plus O(classes).
"""

from __future__ import annotations

from .handles import GEN_SHIFT, PFN_SHIFT, ROW_MASK
from .zspage import LINK_END, OFF_LIST, ZS_ALMOST_EMPTY, ZS_ALMOST_FULL


def zs_can_compact(cls) -> int:
    """Pages this class could give back. Kernel: zs_can_compact."""
    if cls.allocated <= cls.inuse:
        return 0
    return (cls.allocated - cls.inuse) // cls.objs * cls.ppz


def zs_compact(pool) -> int:
    """Compact every class; returns pages freed by this call. Kernel: zs_compact."""
    if not pool.compaction_begin():
        return 0   # Kernel: only one compaction context at a time (6.4)
    try:
        compact_class = _compact_class_48 if pool.kernel_48 else _compact_class_618
        freed = 0
        for cls in reversed(pool.classes):
            freed += compact_class(pool, cls)
        pool.pages_compacted += freed
    finally:
        pool.compaction_end()
    pool.arena_flush()
    return freed


# -- shared steps ---------------------------------------------------------------------

def _isolate_highest(pool, cls, lo: int, hi: int) -> int:
    """Head of the highest non-empty group in lo..hi, taken off its list; -1 if none."""
    m = cls.mask & ((1 << (hi + 1)) - 1) & ~((1 << lo) - 1)
    if not m:
        return -1
    z = cls.heads[m.bit_length() - 1]
    pool.zspages.remove(cls, z)
    return z


def _isolate_lowest(pool, cls, lo: int, hi: int) -> int:
    """Head of the lowest non-empty group in lo..hi, taken off its list; -1 if none."""
    m = cls.mask & ((1 << (hi + 1)) - 1) & ~((1 << lo) - 1)
    if not m:
        return -1
    z = cls.heads[(m & -m).bit_length() - 1]
    pool.zspages.remove(cls, z)
    return z


def putback_zspage(pool, cls, z: int) -> int:
    """Insert z at the head of its current group; returns the group. Kernel: putback_zspage."""
    g = cls.grp[pool.zspages.inuse[z]]
    pool.zspages.insert(cls, z, g, pool.kernel_48)
    return g


def move_object(pool, cls, src: int, idx: int, handle: int, dst: int) -> None:
    """Move one allocated object from (src, idx) into dst's next free slot.

    Kernel: the body of migrate_zspage: obj_malloc(dst), zs_object_copy, record_obj,
    obj_free(src). Only ``inuse`` changes; groups are fixed by the caller's putback.
    """
    zt = pool.zspages
    # obj_malloc on dst
    didx = zt.freeobj[dst]
    if cls.huge:
        zt.freeobj[dst] = -1
        zt.huge_handle[dst] = (handle << 1) | 1
    else:
        dpfn, dioff = pool._obj_frame(dst, cls, didx)
        link = pool._word_at(dpfn, dioff)
        zt.freeobj[dst] = -1 if link == LINK_END else link >> 1
    zt.inuse[dst] += 1
    # zs_object_copy: the whole slot, header (our handle) included
    pool._obj_write_raw(dst, cls, didx, pool._obj_read_raw(src, cls, idx))
    # record_obj: same handle, new location, generation kept
    dpfn, _ = pool._obj_frame(dst, cls, didx)
    hw = pool.handles.words
    row = handle & ROW_MASK
    hw[row] = (hw[row] >> GEN_SHIFT << GEN_SHIFT) | (dpfn << PFN_SHIFT) | (didx << 1) | 1
    # obj_free on src
    if cls.huge:
        zt.huge_handle[src] = 0
    else:
        spfn, sioff = pool._obj_frame(src, cls, idx)
        fo = zt.freeobj[src]
        pool._set_word_at(spfn, sioff, LINK_END if fo < 0 else fo << 1)
    zt.freeobj[src] = idx
    zt.inuse[src] -= 1
    pool.objs_moved += 1


# -- 6.18 ----------------------------------------------------------------------------

def _compact_class_618(pool, cls) -> int:
    """Kernel: __zs_compact (6.4+). Pool lock (write) and class lock held throughout."""
    pool.compaction_lock(cls)
    try:
        return _compact_class_618_locked(pool, cls)
    finally:
        pool.compaction_unlock(cls)


def _compact_class_618_locked(pool, cls) -> int:
    zt = pool.zspages
    full = cls.full
    src = dst = -1
    freed = 0
    while zs_can_compact(cls):
        if dst < 0:
            dst = _isolate_highest(pool, cls, 1, full - 1)   # isolate_dst_zspage: 99% .. 10%
            if dst < 0:
                break
        src = _isolate_lowest(pool, cls, 1, full - 1)        # isolate_src_zspage: 10% .. 99%
        if src < 0:
            break
        if not pool.zspage_write_trylock(src):
            break
        try:
            _migrate_zspage_618(pool, cls, src, dst)
        finally:
            pool.zspage_write_unlock(src)
        if putback_zspage(pool, cls, src) == 0:
            pool._free_zspage(cls, src)
            freed += cls.ppz
        src = -1
        if cls.grp[zt.inuse[dst]] == full or pool.pool_lock_contended():
            putback_zspage(pool, cls, dst)
            dst = -1
            pool.compaction_yield(cls)
    if src >= 0:
        putback_zspage(pool, cls, src)
    if dst >= 0:
        putback_zspage(pool, cls, dst)
    return freed


def _migrate_zspage_618(pool, cls, src: int, dst: int) -> None:
    """Move src's objects, lowest index first, until dst is full or src empty.

    Kernel: migrate_zspage (6.18). Walking object indices in order is the same as walking
    src's frames in chain order and the objects starting in each.
    """
    zt = pool.zspages
    n = cls.objs
    for idx in range(n):
        h = pool._obj_handle(src, cls, idx)
        if not h:
            continue
        move_object(pool, cls, src, idx, h, dst)
        if zt.inuse[dst] == n or zt.inuse[src] == 0:
            break


# -- 4.8 -----------------------------------------------------------------------------

def _isolate_48(pool, cls, source: bool) -> int:
    """Kernel (4.8): isolate_zspage. Source prefers ALMOST_EMPTY, destination ALMOST_FULL."""
    order = (ZS_ALMOST_EMPTY, ZS_ALMOST_FULL) if source else (ZS_ALMOST_FULL, ZS_ALMOST_EMPTY)
    for g in order:
        z = cls.heads[g]
        if z >= 0:
            pool.zspages.remove(cls, z)
            return z
    return -1


def _compact_class_48(pool, cls) -> int:
    """Kernel (4.8): __zs_compact. Only the class lock is held."""
    with pool.class_locked(cls):
        return _compact_class_48_locked(pool, cls)


def _compact_class_48_locked(pool, cls) -> int:
    freed = 0
    src = -1
    while True:
        src = _isolate_48(pool, cls, True)
        if src < 0:
            break
        if not zs_can_compact(cls):
            break
        cursor = 0
        dst = -1
        while True:
            dst = _isolate_48(pool, cls, False)
            if dst < 0:
                break
            exhausted, cursor = _migrate_zspage_48(pool, cls, src, dst, cursor)
            if exhausted:
                break
            putback_zspage(pool, cls, dst)
        if dst < 0:
            break   # src is still held; put back below
        putback_zspage(pool, cls, dst)
        stuck = pool.zspages.inuse[src] > 0     # pinned objects were skipped
        if putback_zspage(pool, cls, src) == 0:
            pool._free_zspage(cls, src)
            freed += cls.ppz
        src = -1
        if stuck:
            # The kernel would take the same source again, and spin until its mapper
            # unpins. We stop instead: a user holding a pin would make that forever.
            break
        pool.compaction_yield_48(cls)       # Kernel: unlock; cond_resched(); lock
    if src >= 0:
        putback_zspage(pool, cls, src)
    return freed


def _migrate_zspage_48(pool, cls, src: int, dst: int, cursor: int):
    """Kernel (4.8): migrate_zspage. Returns (src exhausted, resume index).

    Checks dst for room *before* each move (-ENOMEM leaves the cursor on that object).
    Objects whose handle is pinned by a reader are skipped (trypin_tag fails).
    """
    zt = pool.zspages
    n = cls.objs
    idx = cursor
    while idx < n:
        h = pool._obj_handle(src, cls, idx)
        if h and pool.handle_trypin(h):       # a mapped or freeing handle is skipped
            try:
                if zt.inuse[dst] == n:
                    return False, idx
                move_object(pool, cls, src, idx, h, dst)
            finally:
                pool.handle_unpin(h)
        idx += 1
    return True, idx


__all__ = ["zs_compact", "zs_can_compact", "putback_zspage", "move_object", "OFF_LIST"]
