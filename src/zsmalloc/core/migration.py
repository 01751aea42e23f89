"""Page migration, deferred free, and packing the arena so chunks go back to the OS.

Kernel: zs_page_isolate, zs_page_migrate, zs_page_putback, replace_sub_page, free_zspage's
trylock, kick_deferred_free, async_free_zspage (the ``free_work`` worker).

Any frame of any zspage can move to another frame while its objects stay reachable through
their handles: copy the frame, rewrite the handles of the objects that *start* in it (their
obj names that frame), and put the new frame in the chain. Objects that start in the previous
frame and spill into this one need nothing: they are reached through the chain.
``total_pages`` never changes through a migration.

The first object of a frame is found from ``first_obj_offset``, stored per frame when the
zspage is built (the fix that followed the 2016 patch, whose runtime formula was wrong for
many classes: ``first_obj_offset_2016``, ``wrong_2016_offsets``).

Two strategies, chosen once per pool from the profile:

``Migrate618`` (linux-6.18, tuned)
    No isolation. The migration core holds the frame's page lock (a frame flag here); then
    pool lock (write) -> class lock -> zspage write trylock (a reader holds it: EBUSY).
    A zspage emptied while one of its frames is page-locked waits on its class's empty list
    for ``free_work``; allocation may take it from there meanwhile.
``Migrate48`` (linux-4.8)
    Isolate (the zspage leaves its fullness list while any of its frames is isolated), then
    migrate under the zspage's migrate lock (write) -> class lock with every handle in the frame
    pinned (a pinned handle: EAGAIN; an empty zspage: EBUSY), then put back. A zspage emptied
    while isolated is freed later: putback schedules ``free_work``.

Every step here runs as one operation of the pool's lock policy; a migration is all or
nothing (MigrationError or ValueError: nothing changed). Arena packing migrates frame by
frame, with interrupt safe points between frames.
Cost: a migration copies one frame and rewrites at most objs-per-frame handles.
"""

import errno
import threading

import cython

from .handles import obj_make
from .interrupts import deferred
from .layout import FRAME_ISOLATED, FRAME_LOCKED, NIL, NO_ZSPAGE
from .locks import LockPolicy
from .obj import obj_allocated
from .pool import Pool
from .zspage import ClassState, ZspageTable


class MigrationError(Exception):
    """A migration that could not be done now; ``.errno`` is EBUSY or EAGAIN as in the
    kernel. Nothing changed: the frame and every handle are as before."""

    def __init__(self, err: int, msg: str):
        super().__init__(f"[{errno.errorcode.get(err, err)}] {msg}")
        self.errno = err


def first_obj_offset(size: int, k: int, page_size: int = 4096) -> int:
    """Offset of the first object starting in frame k of a zspage: ``(-k*P) mod size``."""
    return (-k * page_size) % size


def first_obj_offset_2016(size: int, objs: int, ppz: int, k: int, page_size: int = 4096) -> int:
    """The runtime formula of "[PATCH v7 11/12] zsmalloc: page migration support" (2016):
    ``pos = objs*size*k // ppz; ofs = (pos + size) % PAGE_SIZE`` (0 for the first frame).
    Wrong for many classes; replaced by a stored value in "zsmalloc: keep first object
    offset in struct page" (2016-06-13)."""
    if k == 0:
        return 0
    pos = objs * size * k // ppz
    return (pos + size) % page_size


def wrong_2016_offsets(config=None) -> list:
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


# -- helpers ------------------------------------------------------------------------------

def _owner(pool: Pool, pfn) -> tuple:
    """(zspage, class, position in the chain) of a frame; ValueError for a frame in no
    zspage."""
    zt: ZspageTable = pool.zspages
    if type(pfn) is not int or zt.zspage_of_frame(pfn) < 0:
        raise ValueError(f"frame {pfn!r} does not belong to any zspage of this pool")
    z: cython.Py_ssize_t = zt.frame_zspage[pfn]
    cls: ClassState = pool.classes[zt.cls[z]]
    k: cython.Py_ssize_t = 0
    p: cython.Py_ssize_t = zt.first[z]
    while p != pfn:
        p = zt.frame_next[p]
        k += 1
    return z, cls, k


def _objects_starting_in(pool: Pool, cls: ClassState, z: cython.Py_ssize_t,
                         k: cython.Py_ssize_t, pfn: cython.Py_ssize_t) -> list:
    """(index, row) of the allocated objects that start in frame k. Kernel: the loop of
    zs_page_migrate from get_first_obj_offset in steps of class->size."""
    zt: ZspageTable = pool.zspages
    P: cython.Py_ssize_t = zt.page_size
    off: cython.Py_ssize_t = zt.frame_first[pfn]
    idx: cython.Py_ssize_t
    row: cython.Py_ssize_t
    out = []
    while off < P:
        idx = (k * P + off) // cls.size
        if idx >= cls.objs:
            break             # the phantom object past the end is never allocated
        row = obj_allocated(zt, cls, z, idx)
        if row >= 0:
            out.append((idx, row))
        off += cls.size
    return out


def _target_frame(pool: Pool, target, avoid_chunk: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """The frame to migrate to, taken from the arena (under the leaf lock): ``target`` (a
    free frame; ValueError otherwise), a callable choosing one, or the arena's choice
    (never in ``avoid_chunk``)."""
    arena = pool.arena
    policy: LockPolicy = pool.policy
    policy.leaf_lock()
    try:
        if callable(target):
            target = target()
        new: cython.Py_ssize_t
        if target is None and avoid_chunk < 0:
            new = arena.alloc_frame()
        else:
            if target is None:
                for c in range(arena.chunks_high + 1):
                    if c != avoid_chunk and arena.any_free_frame(c) >= 0:
                        target = arena.any_free_frame(c)
                        break
                if target is None:
                    raise MemoryError(f"no free frame outside chunk {avoid_chunk}")
            if type(target) is not int:
                raise ValueError(f"target frame {target!r} must be an int")
            arena.take_frame(target)
            new = target
        pool.zspages.cover_frame(new)
        return new
    finally:
        policy.leaf_unlock()


def _move_frame(pool: Pool, cls: ClassState, z: cython.Py_ssize_t, k: cython.Py_ssize_t,
                old: cython.Py_ssize_t, new: cython.Py_ssize_t) -> None:
    """Copy the frame, rewrite handles, relink. Kernel: zs_page_migrate's body +
    replace_sub_page."""
    zt: ZspageTable = pool.zspages
    ps: cython.Py_ssize_t = zt.page_shift
    policy: LockPolicy = pool.policy
    moved = _objects_starting_in(pool, cls, z, k, old)
    pool.arena.move(new << ps, old << ps, zt.page_size)          # copy_page
    policy.leaf_lock()
    for idx, row in moved:
        pool.handles.record_obj(row, obj_make(new, idx))
    if k == 0:
        zt.first[z] = new
    else:
        zt.frame_next[zt.frame(z, k - 1)] = new
    zt.frame_next[new] = zt.frame_next[old]
    zt.frame_zspage[new] = z
    zt.frame_first[new] = zt.frame_first[old]
    zt.frame_zspage[old] = NO_ZSPAGE
    zt.set_frame_flag(old, FRAME_LOCKED | FRAME_ISOLATED, False)
    pool.arena.free_frame(old)
    policy.leaf_unlock()


# -- the strategies -----------------------------------------------------------------------

class Migrator:
    """A migration strategy: ``migrate`` moves one frame, returns the new pfn."""

    def migrate(self, pool: Pool, pfn: cython.Py_ssize_t, target,
                avoid_chunk: cython.Py_ssize_t) -> cython.Py_ssize_t:
        raise NotImplementedError


class Migrate618(Migrator):
    """Kernel: migrate_pages' page lock, then zs_page_migrate (6.18)."""

    def migrate(self, pool: Pool, pfn: cython.Py_ssize_t, target,
                avoid_chunk: cython.Py_ssize_t) -> cython.Py_ssize_t:
        zt: ZspageTable = pool.zspages
        policy: LockPolicy = pool.policy
        _page_lock(pool, pfn)
        try:
            z, cls, k = _owner(pool, pfn)        # the page lock keeps the zspage alive
            policy.migrate_lock(z, cls.pos)
            try:
                if zt.frame_zspage[pfn] != z or zt.classes[zt.cls[z]] is not cls:
                    raise MigrationError(errno.EAGAIN, f"frame {pfn} changed owner meanwhile")
                if not policy.zspage_write_trylock(z):
                    raise MigrationError(errno.EBUSY, f"zspage of frame {pfn} is being read")
                try:
                    new: cython.Py_ssize_t = _target_frame(pool, target, avoid_chunk)
                    _move_frame(pool, cls, z, k, pfn, new)
                finally:
                    policy.zspage_write_unlock(z)
            finally:
                policy.migrate_unlock(z, cls.pos)
        finally:
            _page_unlock(pool, pfn)
        return new


class Migrate48(Migrator):
    """Kernel (4.8): isolate, zs_page_migrate, and putback on failure: the sequence of
    the migration core."""

    def migrate(self, pool: Pool, pfn: cython.Py_ssize_t, target,
                avoid_chunk: cython.Py_ssize_t) -> cython.Py_ssize_t:
        if not _isolate(pool, pfn):
            raise MigrationError(errno.EBUSY, f"frame {pfn} cannot be isolated")
        try:
            return _migrate_isolated(pool, pfn, target, avoid_chunk)
        except BaseException:
            # any failure (busy, no free frame, a bad target) puts the frame back: a frame
            # left isolated would keep its zspage off the lists for good
            if pool.zspages.frame_flag(pfn, FRAME_ISOLATED):
                _putback(pool, pfn)
            raise


def make_migrator(profile: str) -> Migrator:
    return Migrate48() if profile == "linux-4.8" else Migrate618()


# -- page locks (the migration core's, and tests') ------------------------------------------

def _page_lock(pool: Pool, pfn) -> None:
    """Kernel: folio_trylock in migrate_pages. EAGAIN if another migration holds it."""
    policy: LockPolicy = pool.policy
    policy.leaf_lock()
    try:
        if pool.zspages.zspage_of_frame(pfn) < 0:      # freed since the caller looked
            raise MigrationError(errno.EAGAIN, f"frame {pfn} was freed meanwhile")
        if pool.zspages.frame_flag(pfn, FRAME_LOCKED):
            raise MigrationError(errno.EAGAIN, f"frame {pfn} is locked by another migration")
        pool.zspages.set_frame_flag(pfn, FRAME_LOCKED, True)
    finally:
        policy.leaf_unlock()


def _page_unlock(pool: Pool, pfn) -> None:
    policy: LockPolicy = pool.policy
    policy.leaf_lock()
    pool.zspages.set_frame_flag(pfn, FRAME_LOCKED, False)
    policy.leaf_unlock()
    if pool.zspages.deferred_pending:
        pool.zspages.kick_deferred_free()


def lock_frame(pool: Pool, pfn) -> None:
    """Hold a frame's page lock (a test stands in for the migration core): a zspage emptied
    while it is held cannot be freed, it waits for free_work. ValueError if it is held."""
    pool._live()
    pool.policy.op_enter()
    try:
        _owner(pool, pfn)
        if pool.zspages.frame_flag(pfn, FRAME_LOCKED):
            raise ValueError(f"frame {pfn} is already locked")
        _page_lock(pool, pfn)
    finally:
        pool.policy.op_exit()


def unlock_frame(pool: Pool, pfn) -> None:
    pool._live()
    pool.policy.op_enter()
    try:
        if type(pfn) is not int or not pool.zspages.frame_flag(pfn, FRAME_LOCKED):
            raise ValueError(f"frame {pfn!r} is not locked")
        _page_unlock(pool, pfn)
    finally:
        pool.policy.op_exit()


# -- public operations ----------------------------------------------------------------------

def migrate_page(pool: Pool, pfn, target=None, avoid_chunk: cython.Py_ssize_t = -1) -> int:
    """Move frame ``pfn`` to a free frame (``target``, a callable choosing one, or the
    arena's choice); returns it. ValueError for a frame in no zspage or a target that is not
    free, MigrationError (EBUSY/EAGAIN) when the zspage or a handle is busy; nothing changes
    then. Kernel: zs_page_migrate (4.8: with isolate and putback)."""
    pool._live()
    _owner(pool, pfn)
    migrator: Migrator = pool.migrator
    pool.policy.op_enter()
    try:
        return migrator.migrate(pool, pfn, target, avoid_chunk)
    finally:
        pool.policy.op_exit()


def used_pfns(pool: Pool) -> list:
    """Every frame held by a zspage, ascending (under the leaf lock: frames enter and leave
    zspages only under it)."""
    pool._live()
    zt: ZspageTable = pool.zspages
    policy: LockPolicy = pool.policy
    policy.op_enter()
    try:
        policy.leaf_lock()
        try:
            return [p for p in range(zt.frame_cap) if zt.frame_zspage[p] != NO_ZSPAGE]
        finally:
            policy.leaf_unlock()
    finally:
        policy.op_exit()


def _isolate(pool: Pool, pfn) -> cython.bint:
    """Kernel (4.8): zs_page_isolate. Takes the zspage off its list on its first isolation.
    False (nothing done) when the zspage is empty (4.8 refused those) or compaction has it."""
    zt: ZspageTable = pool.zspages
    policy: LockPolicy = pool.policy
    try:
        z, cls, k = _owner(pool, pfn)
    except ValueError:
        return False                     # freed since the caller looked: EBUSY
    policy.class_lock(cls.pos)
    try:
        if zt.frame_zspage[pfn] != z or zt.classes[zt.cls[z]] is not cls:
            return False
        if zt.inuse[z] == 0 or zt.frame_flag(pfn, FRAME_ISOLATED):
            return False
        if not zt.on_list(z) and not zt.isolated[z]:
            return False                 # compaction has it
        if not zt.isolated[z]:
            zt.remove(cls, z)
        zt.isolated[z] += 1
        policy.leaf_lock()
        zt.set_frame_flag(pfn, FRAME_ISOLATED, True)
        policy.leaf_unlock()
    finally:
        policy.class_unlock(cls.pos)
    return True


def _unisolate(pool: Pool, cls: ClassState, z: cython.Py_ssize_t) -> None:
    """The last isolated frame is back: the zspage returns to its list (Kernel:
    putback_zspage); an empty one is left for free_work."""
    zt: ZspageTable = pool.zspages
    zt.isolated[z] -= 1
    if zt.isolated[z] == 0:
        if zt.putback(cls, z) == 0:
            zt.kick_deferred_free()


def _putback(pool: Pool, pfn) -> None:
    """Kernel (4.8): zs_page_putback."""
    zt: ZspageTable = pool.zspages
    policy: LockPolicy = pool.policy
    z, cls, k = _owner(pool, pfn)
    if not zt.frame_flag(pfn, FRAME_ISOLATED):
        raise ValueError(f"frame {pfn} is not isolated")
    policy.class_lock(cls.pos)
    try:
        policy.leaf_lock()
        zt.set_frame_flag(pfn, FRAME_ISOLATED, False)
        policy.leaf_unlock()
        _unisolate(pool, cls, z)
    finally:
        policy.class_unlock(cls.pos)


def _migrate_isolated(pool: Pool, pfn, target, avoid_chunk: cython.Py_ssize_t) -> int:
    """Kernel (4.8): zs_page_migrate on an isolated frame. Migrate write lock -> class lock;
    every allocated object starting in the frame must be pinnable (else EAGAIN); copy;
    rewrite handles; put back when no frame of the zspage is isolated any more. Like the
    2019 fix (not the original 4.8 code) it schedules free_work when the zspage comes back
    empty, so nothing is stranded."""
    zt: ZspageTable = pool.zspages
    policy: LockPolicy = pool.policy
    z, cls, k = _owner(pool, pfn)
    if not zt.frame_flag(pfn, FRAME_ISOLATED):
        raise ValueError(f"frame {pfn} is not isolated")
    pinned = []
    policy.migrate_lock(z, cls.pos)
    try:
        if zt.inuse[z] == 0:
            raise MigrationError(errno.EBUSY, f"zspage of frame {pfn} is empty")
        try:
            for idx, row in _objects_starting_in(pool, cls, z, k, pfn):
                if not policy.trypin(row):
                    raise MigrationError(errno.EAGAIN, f"a handle in frame {pfn} is pinned")
                pinned.append(row)
            new = _target_frame(pool, target, avoid_chunk)
            _move_frame(pool, cls, z, k, pfn, new)
        finally:
            for row in pinned:
                policy.unpin(row)
        _unisolate(pool, cls, z)
    finally:
        policy.migrate_unlock(z, cls.pos)
    return new


def isolate_page(pool: Pool, pfn) -> bool:
    """4.8: isolate a frame for migration (public: tests and studies drive the steps)."""
    if not pool.kernel_48:
        raise ValueError("isolate_page is the linux-4.8 protocol; 6.18 does not isolate")
    pool._live()
    pool.policy.op_enter()
    try:
        return _isolate(pool, pfn)
    finally:
        pool.policy.op_exit()


def putback_page(pool: Pool, pfn) -> None:
    """4.8: undo isolate_page after a failed migration."""
    pool._live()
    pool.policy.op_enter()
    try:
        _putback(pool, pfn)
    finally:
        pool.policy.op_exit()


def migrate_isolated(pool: Pool, pfn, target=None) -> int:
    """4.8: migrate a frame isolate_page took."""
    pool._live()
    pool.policy.op_enter()
    try:
        return _migrate_isolated(pool, pfn, target, -1)
    finally:
        pool.policy.op_exit()


# -- deferred free --------------------------------------------------------------------------

def free_work(pool: Pool) -> int:
    """Free every empty zspage waiting for release; returns how many.
    Kernel: async_free_zspage. Deterministic: it runs now, in the caller's thread. A zspage
    with a frame still locked or isolated stays on its list and the work stays pending."""
    pool._live()
    zt: ZspageTable = pool.zspages
    policy: LockPolicy = pool.policy
    freed = 0
    still = False
    policy.op_enter()
    try:
        for cls in pool.classes:
            policy.class_lock(cls.pos)
            try:
                for z in zt.list_of(cls, 0):
                    policy.leaf_lock()
                    try:
                        ok = zt.try_release_empty(cls, z)
                    finally:
                        policy.leaf_unlock()
                    if ok:
                        freed += 1
                    else:
                        still = True
            finally:
                policy.class_unlock(cls.pos)
        zt.deferred_pending = still
    finally:
        policy.op_exit()
    return freed


def pending_free(pool: Pool) -> int:
    """Empty zspages waiting for free_work (on some class's empty list)."""
    return sum([cls.group_counts()[0] for cls in pool.classes])


class FreeWorker:
    """The deferred-free worker as a thread. Kernel: pool->free_work (async_free_zspage).

    ``kick()`` schedules a run; a run that leaves zspages behind (a frame still locked)
    retries after ``retry`` seconds, as the kernel's worker would sleep in lock_zspage.
    """

    def __init__(self, pool, retry: float = 0.001):
        self.pool = pool
        self.retry = retry
        self._ev = threading.Event()
        self._stop = False
        self.runs = 0
        self.freed = 0
        self._t = threading.Thread(target=self._loop, name="zs-free_work", daemon=True)

    def start(self):
        self.pool.zspages.worker = self
        self._t.start()
        return self

    def kick(self):
        self._ev.set()

    def _loop(self):
        while not self._stop:
            self._ev.wait(self.retry if self.pool.deferred_pending else None)
            self._ev.clear()
            if self._stop or self.pool.closed:
                break
            self.freed += self.pool.free_work()
            self.runs += 1

    def stop(self):
        self._stop = True
        self._ev.set()
        self._t.join(5)
        self.pool.zspages.worker = None


# -- packing the arena ----------------------------------------------------------------------

def _frames_in_chunk(pool: Pool, c) -> list:
    """Frames of chunk c held by zspages (from the per-frame column: no scan of the pool)."""
    zt: ZspageTable = pool.zspages
    lo = c << pool.arena.chunk_shift
    hi = min(lo + pool.arena.chunk_frames, zt.frame_cap)
    return [p for p in range(lo, hi) if zt.frame_zspage[p] != NO_ZSPAGE]


class _Destinations:
    """Free frames of the densest chunks first, handed out one by one (called under the leaf
    lock by _target_frame). Chunks are ranked once; a chunk is used until it is full."""

    def __init__(self, pool, exclude):
        arena = pool.arena
        self.arena = arena
        self.order = sorted((c for c in arena.mapped_chunks() if c not in exclude
                             and arena.chunk_used_frames(c) < arena.chunk_frames),
                            key=lambda c: (-arena.chunk_used_frames(c), c))

    def room(self) -> int:
        a = self.arena
        return sum(a.chunk_frames - a.chunk_used_frames(c) for c in self.order)

    def take(self):
        while self.order:
            pfn = self.arena.any_free_frame(self.order[0])
            if pfn >= 0 and self.arena.chunk_used_frames(self.order[0]) > 0:
                return pfn
            self.order.pop(0)
        return None             # no room left: the arena's choice


def evacuate(pool: Pool, chunk) -> int:
    """Move every frame out of ``chunk`` so it is given back (like memory hot-unplug).
    Returns frames moved. Frames go to free frames of other chunks (densest first), or to a
    fresh chunk."""
    pool._live()
    arena = pool.arena
    if type(chunk) is not int or arena.chunk_used_frames(chunk) == 0:
        raise ValueError(f"chunk {chunk!r} is not mapped (mapped: {arena.mapped_chunks()})")
    dest = _Destinations(pool, {chunk})
    moved = 0
    with deferred() as safe:
        for pfn in _frames_in_chunk(pool, chunk):
            migrate_page(pool, pfn, dest.take, chunk)
            moved += 1
            safe.point()
    pool.flush()
    return moved


def shrink_arena(pool: Pool) -> int:
    """Migrate frames out of the sparsest chunks into the densest; returns chunks given back.
    A chunk is emptied only when its frames fit in the free frames of denser chunks, so
    nothing new is ever touched. Cost: O(frames moved) migrations + O(chunks log chunks)."""
    pool._live()
    arena = pool.arena
    before = arena.chunks_unmapped_total
    sources = sorted(arena.mapped_chunks(), key=lambda c: (arena.chunk_used_frames(c), -c))
    with deferred() as safe:
        while len(sources) >= 2:
            src = sources.pop(0)
            used = arena.chunk_used_frames(src)
            if used == 0:
                continue
            dest = _Destinations(pool, {src})
            if used > dest.room():
                break
            for pfn in _frames_in_chunk(pool, src):
                migrate_page(pool, pfn, dest.take, src)
                safe.point()
            if arena.chunk_used_frames(src):
                break           # something could not move (busy): stop rather than loop
    pool.flush()
    return arena.chunks_unmapped_total - before
