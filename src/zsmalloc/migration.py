"""Page migration, deferred free, and packing the arena so chunks go back to the OS.

Kernel: zs_page_isolate, zs_page_migrate, zs_page_putback, replace_sub_page, free_zspage's
trylock, kick_deferred_free, async_free_zspage (the ``free_work`` worker).

Any frame of any zspage can move to another frame while its objects stay reachable through
their handles: copy the frame, rewrite the handles of the objects that *start* in it (their
location names that frame), and put the new frame in the chain. Objects that start in the
previous frame and spill into this one need nothing: they are reached through the chain.
``total_pages`` never changes through a migration.

The first object of a frame is found from ``first_obj_offset``, stored per frame when the
zspage is built (the fix that followed the 2016 patch, whose runtime formula was wrong for
many classes: ``first_obj_offset_2016`` and tests/test_migration.py show where).

Profiles:

* ``linux-4.8``: isolate (the zspage leaves its fullness list while any of its frames is
  isolated, so allocation and compaction cannot touch it), migrate under the zspage's
  migrate lock with every handle in the frame pinned (a pinned handle: -EAGAIN), put back.
  A zspage emptied while isolated is freed later: putback schedules ``free_work``.
* ``linux-6.18``: no isolation. Pool lock (write) -> class lock -> zspage write trylock
  (a reader holding the zspage: -EBUSY). A zspage emptied while one of its frames is locked
  by the migration core (``lock_frame``) waits on its class's empty list for ``free_work``;
  allocation may take it from there meanwhile.

Cost: a migration copies one frame and rewrites at most objs-per-frame handles.
"""

from __future__ import annotations

import errno

from .handles import GEN_SHIFT, PFN_SHIFT, ROW_MASK
from .zspage import OFF_LIST

NO_ZSPAGE = 0xFFFF_FFFF


class MigrationError(Exception):
    """A migration that could not be done now; ``.errno`` is EBUSY or EAGAIN as in the kernel.

    Nothing changed: the frame and every handle are as before.
    """

    def __init__(self, err: int, msg: str):
        super().__init__(f"[{errno.errorcode.get(err, err)}] {msg}")
        self.errno = err


def first_obj_offset(size: int, k: int, page_size: int = 4096) -> int:
    """Offset of the first object starting in frame k of a zspage. ``(-k*P) mod size``."""
    return (-k * page_size) % size


def first_obj_offset_2016(size: int, objs: int, ppz: int, k: int, page_size: int = 4096) -> int:
    """The runtime formula of "[PATCH v7 11/12] zsmalloc: page migration support" (2016).

    ``pos = objs*size*k // ppz; ofs = (pos + size) % PAGE_SIZE`` (0 for the first frame).
    Wrong for many classes; replaced by a stored value in "zsmalloc: keep first object
    offset in struct page" (2016-06-13).
    """
    if k == 0:
        return 0
    pos = objs * size * k // ppz
    return (pos + size) % page_size


def wrong_2016_offsets(config=None):
    """Every (class size, ppz, frame k, 2016 value, true value) where the formula is wrong."""
    from .sizeclass import class_table
    t = class_table(config)
    P = t.page_size
    out = []
    for sc in t.classes:
        for k in range(1, sc.pages_per_zspage):
            bad = first_obj_offset_2016(sc.size, sc.objs_per_zspage, sc.pages_per_zspage, k, P)
            good = first_obj_offset(sc.size, k, P)
            if bad != good:
                out.append((sc.size, sc.pages_per_zspage, k, bad, good))
    return out


# -- helpers on the pool ------------------------------------------------------------------

def used_pfns(pool) -> list[int]:
    """Every frame held by a zspage, ascending."""
    zt = pool.zspages
    chain = pool._chain
    out = []
    for z in zt.live_ids():
        base = z * chain
        out.extend(zt.frames[base:base + zt.cls[z].ppz])
    out.sort()
    return out


def _frame_owner(pool, pfn):
    if type(pfn) is not int or pfn < 0 or pfn >= len(pool.frame_zspage) \
            or pool.frame_zspage[pfn] == NO_ZSPAGE:
        raise ValueError(f"frame {pfn!r} does not belong to any zspage of this pool")
    z = pool.frame_zspage[pfn]
    cls = pool.zspages.cls[z]
    base = z * pool._chain
    k = list(pool.zspages.frames[base:base + cls.ppz]).index(pfn)
    return z, cls, k


def _objects_starting_in(pool, z, cls, k, pfn):
    """(index, handle) of allocated objects that start in frame k. Kernel: the loop in
    zs_page_migrate from get_first_obj_offset in steps of class->size."""
    P = pool.page_size
    out = []
    if cls.huge:
        hh = pool.zspages.huge_handle[z]
        if hh & 1:
            out.append((0, hh >> 1))
        return out
    off = pool.frame_first_obj[pfn]
    while off < P:
        idx = (k * P + off) // cls.size
        if idx >= cls.objs:
            break          # the phantom object past the end is never allocated
        head = pool._word_at(pfn, off)
        if head & 1:
            out.append((idx, head >> 1))
        off += cls.size
    return out


def _move_frame(pool, z, cls, k, old: int, new: int) -> None:
    """Copy, rewrite handles, relink. Kernel: zs_page_migrate body + replace_sub_page."""
    arena = pool.arena
    arena.copy_frame(old, new)
    hw = pool.handles.words
    for idx, h in _objects_starting_in(pool, z, cls, k, old):
        row = h & ROW_MASK
        hw[row] = (hw[row] >> GEN_SHIFT << GEN_SHIFT) | (new << PFN_SHIFT) | (idx << 1) | 1
    pool.zspages.frames[z * pool._chain + k] = new
    pool.frame_zspage[new] = z
    pool.frame_first_obj[new] = pool.frame_first_obj[old]
    pool.frame_zspage[old] = NO_ZSPAGE
    with pool.arena_locked():
        arena.free(old)


def _target_frame(pool, target, avoid_chunk=None) -> int:
    with pool.arena_locked():
        return _target_frame_locked(pool, target, avoid_chunk)


def _target_frame_locked(pool, target, avoid_chunk=None) -> int:
    arena = pool.arena
    if callable(target):
        target = target()     # chosen under the arena lock, so no one takes it first
    if target is None:
        if avoid_chunk is None:
            return arena.alloc()
        for c in arena.mapped_chunks():
            if c != avoid_chunk:
                free = arena.free_frames_in(c)
                if free:
                    arena.take(free[0])
                    return free[0]
        # no room elsewhere: map a fresh chunk (alloc() would prefer the one being emptied)
        c = arena._map_chunk()
        pfn = arena.free_frames_in(c)[0]
        arena.take(pfn)
        return pfn
    arena.take(target)   # ValueError if not free
    return target


# -- 6.18 ---------------------------------------------------------------------------------

def migrate_page(pool, pfn: int, target: int | None = None) -> int:
    """Move frame ``pfn`` to a free frame (``target`` or the arena's choice); returns it.

    Kernel: zs_page_migrate (6.18), or zs_page_isolate + zs_page_migrate (+ putback on
    failure) for linux-4.8. Raises ValueError for a frame in no zspage, MigrationError
    (EBUSY/EAGAIN) when the zspage or a handle is busy; nothing changes then.
    """
    if pool.kernel_48:
        return migrate_page_48(pool, pfn, target)
    z, cls, k = _frame_owner(pool, pfn)
    with pool.pool_write_locked(), pool.class_locked(cls):
        if pool.frame_zspage[pfn] != z or pool.zspages.cls[z] is not cls \
                or pool.zspages.frames[z * pool._chain + k] != pfn:
            raise MigrationError(errno.EAGAIN, f"frame {pfn} changed owner meanwhile")
        if not pool.zspage_write_trylock(z):
            raise MigrationError(errno.EBUSY, f"zspage of frame {pfn} is being read")
        try:
            new = _target_frame(pool, target)
            _move_frame(pool, z, cls, k, pfn, new)
        finally:
            pool.zspage_write_unlock(z)
    return new


# -- 4.8 ----------------------------------------------------------------------------------

def isolate_page(pool, pfn: int) -> bool:
    """Kernel (4.8): zs_page_isolate. Takes the zspage off its list on its first isolation.

    Returns False (nothing done) when the zspage is empty (4.8 refused those) or held by
    compaction.
    """
    z, cls, k = _frame_owner(pool, pfn)
    zt = pool.zspages
    with pool.class_locked(cls):
        if pool.frame_zspage[pfn] != z or zt.cls[z] is not cls:
            return False          # freed and reused meanwhile
        if zt.inuse[z] == 0:
            return False
        if zt.prev[z] == OFF_LIST and not zt.isolated[z]:
            return False          # compaction has it
        if not zt.isolated[z]:
            zt.remove(cls, z)
        zt.isolated[z] += 1
        pool.isolated_frames.add(pfn)
    return True


def putback_page(pool, pfn: int) -> None:
    """Kernel (4.8): zs_page_putback, after a failed migration of an isolated frame.

    When the last isolated frame comes back the zspage goes back on its list, and an empty
    one is left for ``free_work`` (page locks are held here, it cannot be freed now).
    """
    z, cls, k = _frame_owner(pool, pfn)
    if pfn not in pool.isolated_frames:
        raise ValueError(f"frame {pfn} is not isolated")
    with pool.class_locked(cls):
        pool.isolated_frames.discard(pfn)
        _unisolate(pool, cls, z, schedule_free=True)


def _unisolate(pool, cls, z, schedule_free: bool) -> None:
    zt = pool.zspages
    zt.isolated[z] -= 1
    if zt.isolated[z] == 0:
        g = cls.grp[zt.inuse[z]]
        zt.insert(cls, z, g, True)           # Kernel: putback_zspage
        if g == 0 and schedule_free:
            pool.kick_deferred_free()


def migrate_isolated_48(pool, pfn: int, target: int | None = None) -> int:
    """Kernel (4.8): zs_page_migrate on an isolated frame. Returns the new pfn.

    migrate write lock (zspage) -> class lock; every allocated object starting in the frame
    must be pinnable (else -EAGAIN); copy; rewrite handles; put back when no frame of the
    zspage is isolated any more. Like the 2019 fix (not the original 4.8 code) it schedules
    ``free_work`` when the zspage comes back empty, so nothing is stranded.
    """
    z, cls, k = _frame_owner(pool, pfn)
    if pfn not in pool.isolated_frames:
        raise ValueError(f"frame {pfn} is not isolated")
    zt = pool.zspages
    with pool.zspage_migrate_write_locked(z), pool.class_locked(cls):
        if zt.inuse[z] == 0:
            raise MigrationError(errno.EBUSY, f"zspage of frame {pfn} is empty")
        pinned = []
        try:
            for _, h in _objects_starting_in(pool, z, cls, k, pfn):
                if not pool.handle_trypin(h):
                    raise MigrationError(errno.EAGAIN, f"handle {h} in frame {pfn} is pinned")
                pinned.append(h)
            new = _target_frame(pool, target)
            _move_frame(pool, z, cls, k, pfn, new)
        finally:
            for h in pinned:
                pool.handle_unpin(h)
        pool.isolated_frames.discard(pfn)
        _unisolate(pool, cls, z, schedule_free=True)
    return new


def migrate_page_48(pool, pfn: int, target: int | None = None) -> int:
    """Isolate, migrate, and put back on failure: the migration core's sequence."""
    if not isolate_page(pool, pfn):
        raise MigrationError(errno.EBUSY, f"frame {pfn} cannot be isolated")
    try:
        return migrate_isolated_48(pool, pfn, target)
    except MigrationError:
        putback_page(pool, pfn)
        raise


# -- deferred free ------------------------------------------------------------------------

def free_work(pool) -> int:
    """Free every empty zspage waiting for release; returns how many. Kernel: async_free_zspage.

    Deterministic: it runs now, in the caller's thread. A zspage with a frame still locked
    (the kernel's worker would sleep in lock_zspage) or still isolated stays on its list and
    the work stays pending.
    """
    freed = 0
    still = False
    for cls in pool.classes:
        with pool.class_locked(cls):
            for z in pool.zspages.list_of(cls, 0):
                if not pool.zspages.isolated[z] and pool._try_release_empty(cls, z):
                    freed += 1
                else:
                    still = True
    pool.deferred_pending = still
    return freed


def pending_free(pool) -> int:
    """Empty zspages waiting for free_work (on some class's empty list)."""
    return sum(cls.counts[0] for cls in pool.classes)


# -- arena packing ------------------------------------------------------------------------

def _frames_in_chunk(pool, c: int) -> list[int]:
    """Used frames of chunk c, from the per-frame column (no scan of the pool)."""
    arena = pool.arena
    lo = c << arena.chunk_shift
    fz = pool.frame_zspage
    return [lo + i for i, z in enumerate(fz[lo:lo + arena.chunk_frames]) if z != NO_ZSPAGE]


class _Destinations:
    """Free frames of the densest chunks first, handed out one by one (arena lock held by
    the caller of ``take``). Chunks are ranked once; a chunk is used until it is full."""

    def __init__(self, pool, exclude):
        arena = pool.arena
        self.pool, self.exclude = pool, set(exclude)
        self.order = sorted((c for c in arena.mapped_chunks() if c not in self.exclude
                             and arena.chunk_used(c) < arena.chunk_frames),
                            key=lambda c: (-arena.chunk_used(c), c))

    def room(self) -> int:
        arena = self.pool.arena
        return sum(arena.chunk_frames - arena.chunk_used(c) for c in self.order
                   if arena.chunks[c] is not None)

    def take(self) -> int:
        arena = self.pool.arena
        while self.order:
            c = self.order[0]
            fl = arena._free[c] if arena.chunks[c] is not None else None
            if fl:
                return (c << arena.chunk_shift) | fl[-1]
            self.order.pop(0)
        c = arena._map_chunk()          # no room left: a fresh chunk
        self.order.append(c)
        return (c << arena.chunk_shift) | arena._free[c][-1]


def evacuate(pool, chunk: int) -> int:
    """Move every frame out of ``chunk`` so it unmaps (memory hot-unplug). Returns frames moved.

    Frames go to free frames of other chunks (densest first), or to a fresh chunk.
    """
    arena = pool.arena
    if type(chunk) is not int or not 0 <= chunk < len(arena.chunks) or arena.chunks[chunk] is None:
        raise ValueError(f"chunk {chunk!r} is not mapped (mapped: {arena.mapped_chunks()})")
    dest = _Destinations(pool, {chunk})
    moved = 0
    for pfn in _frames_in_chunk(pool, chunk):
        migrate_page(pool, pfn, dest.take)
        moved += 1
    pool.arena_flush()
    return moved


def shrink_arena(pool) -> int:
    """Migrate frames out of the sparsest chunks into the densest; returns chunks unmapped.

    A chunk is emptied only when the frames it holds fit in the free frames of denser
    chunks, so nothing new is ever mapped. Cost: O(frames moved) migrations plus
    O(chunks log chunks) to rank the chunks.
    """
    arena = pool.arena
    before = arena.chunks_unmapped_total
    # sparsest first; ties: the highest chunk first, so the arena's tail empties
    sources = sorted(arena.mapped_chunks(), key=lambda c: (arena.chunk_used(c), -c))
    while len(sources) >= 2:
        src = sources.pop(0)
        used = arena.chunk_used(src)
        if used == 0:
            continue
        dest = _Destinations(pool, {src})
        if used > dest.room():
            break
        for pfn in _frames_in_chunk(pool, src):
            migrate_page(pool, pfn, dest.take)
        if arena.chunks[src] is not None:
            break   # something could not move (busy): stop rather than loop
    pool.arena_flush()
    return arena.chunks_unmapped_total - before
