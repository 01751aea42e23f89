"""A thread-safe pool with the kernel's lock hierarchy, and the concurrent-writer race.

``Pool(..., concurrent=True)`` (or ``ConcurrentPool(...)``) takes the kernel's locks in the
kernel's order; ``lock_debug=True`` asserts that order on every acquisition
(``zsmalloc.locking``). Threads working in different classes share no lock but the brief
leaf locks of the handle table and the frame arena.

6.18 (and ``tuned``)::

    zs_malloc        class lock; *dropped around alloc_zspage*, re-taken, then the new
                     zspage is used without searching again
    zs_free          pool lock (read) -> class lock -> pool lock dropped
    read / write     pool lock (read) -> zspage read lock -> pool lock dropped
    zs_compact       pool lock (write) -> class lock -> zspage write trylock (source)
    zs_page_migrate  page lock -> pool lock (write) -> class lock -> zspage write trylock

4.8::

    zs_malloc        class lock, dropped around alloc_zspage as in 6.18
    zs_free          handle pin -> zspage migrate lock (read) -> class lock
    zs_map_object    handle pin -> zspage migrate lock (read)
    zs_compact       class lock; handles *try*-pinned (a pinned object is skipped)
    zs_page_migrate  page lock -> zspage migrate lock (write) -> class lock -> handle trypins

The kernel's 4.8 header lists the handle pin last because migration and compaction only
ever *try* it; zs_free and zs_map_object take it first, blocking. Trylocks cannot deadlock
and are exempt from the order check, as in lockdep.

**The race** (the seed thread): zs_malloc drops the class lock while it allocates a
zspage, so N writers that find a class full each allocate one. ``slow_path_hook`` (called
with the class lock dropped, before alloc_zspage) lets a test line them up with a barrier.
The ``tuned`` profile fixes it: one allocator per class at a time (the others wait, then
search again), a re-check for a free slot after re-taking the class lock (a zspage that is
then not needed is kept as the class's *surplus* for the next slow path), and zspages
waiting for deferred release are taken before a new one is made.

Per-zspage locks are striped (64 stripes by zspage id): one lock object per zspage would
cost more than the zspage's whole row.
"""

from __future__ import annotations

import errno
import threading
import time
from dataclasses import dataclass

from .errors import InvalidHandle
from .handles import GEN_MAX, GEN_SHIFT, HANDLE_GEN_SHIFT, IDX_MASK, PFN_MASK, PFN_SHIFT, ROW_MASK
from .locking import LVL_CLASS, LVL_LEAF, LVL_MIGRATE, LVL_POOL, LVL_ZSPAGE, RWLock, make_mutex
from .pool import Pool, _NULL
from .zspage import LINK_END

_STRIPES = 64
LVL_ALLOC_SINGLE = 15     # tuned: per-class "one allocator at a time", above class lock order
LVL_PIN_BLOCKING = 5      # 4.8: zs_free / zs_map_object pin first


class _PinTable:
    """4.8 handle pins (the kernel's bit spinlock on the handle word)."""

    def __init__(self, debug: bool):
        self._m = threading.Lock()
        self._cv = threading.Condition(self._m)
        self._pins: dict[int, int] = {}
        self.debug = debug

    def pin(self, h: int) -> None:
        with self._m:
            while h in self._pins:
                self._cv.wait()
            self._pins[h] = threading.get_ident()

    def trypin(self, h: int) -> bool:
        with self._m:
            if h in self._pins:
                return False
            self._pins[h] = threading.get_ident()
            return True

    def unpin(self, h: int) -> None:
        with self._m:
            self._pins.pop(h, None)
            self._cv.notify_all()

    def pinned(self, h: int) -> bool:
        return h in self._pins


class ConcurrentPool(Pool):
    """A Pool safe to use from many threads; see the module docstring for the locks."""

    _auto_trim = False     # renumbering zspage rows would need every lock at once

    def __init__(self, config=None, *, lock_debug: bool = False, concurrent: bool = True, **kw):
        super().__init__(config, **kw)
        d = self.lock_debug = lock_debug
        self.tuned = self.config.profile == "tuned"
        self.lock = RWLock("pool->lock", LVL_POOL, d)
        for cls in self.classes:
            cls.lock = make_mutex(f"class[{cls.size}]->lock", LVL_CLASS, d)
        self._single = {cls.index: make_mutex(f"class[{cls.size}]->alloc", LVL_ALLOC_SINGLE, d)
                        for cls in self.classes}
        self._surplus = {cls.index: -1 for cls in self.classes}
        self._leaf = make_mutex("alloc-leaf (slab + page allocator)", LVL_LEAF, d)
        self._zstripe = [make_mutex(f"zspage-lock[{i}]", LVL_ZSPAGE, d) for i in range(_STRIPES)]
        self._zreaders: dict[int, int] = {}
        self._compacting = threading.Lock()
        self.slow_path_hook = None
        self.zspages_created = 0
        self.pages_created = 0
        if self.kernel_48:
            self._migrate = [RWLock(f"zspage-migrate[{i}]", LVL_MIGRATE, d) for i in range(_STRIPES)]
            self._pins = _PinTable(d)

    # -- lock hooks used by compaction / migration -----------------------------------------

    def pool_write_locked(self):
        return self.lock.write() if not self.kernel_48 else _NULL

    def pool_read_locked(self):
        return self.lock.read() if not self.kernel_48 else _NULL

    def class_locked(self, cls):
        return cls.lock

    def arena_locked(self):
        return self._leaf

    def zspage_migrate_write_locked(self, z: int):
        return self._migrate[z % _STRIPES].write() if self.kernel_48 else _NULL

    def zspage_write_trylock(self, z: int) -> bool:
        st = self._zstripe[z % _STRIPES]
        if not st.acquire(False):
            return False
        try:
            if self._zreaders.get(z, 0):
                return False
            self._zreaders[z] = -1
            return True
        finally:
            st.release()

    def zspage_write_unlock(self, z: int) -> None:
        with self._zstripe[z % _STRIPES]:
            self._zreaders.pop(z, None)

    def _zspage_read_lock(self, z: int) -> None:
        with self._zstripe[z % _STRIPES]:
            self._zreaders[z] = self._zreaders.get(z, 0) + 1

    def _zspage_read_unlock(self, z: int) -> None:
        with self._zstripe[z % _STRIPES]:
            n = self._zreaders[z] - 1
            if n:
                self._zreaders[z] = n
            else:
                del self._zreaders[z]

    def pool_lock_contended(self) -> bool:
        return self.lock.contended()

    def compaction_begin(self) -> bool:
        return self._compacting.acquire(False)

    def compaction_end(self) -> None:
        self._compacting.release()

    def compaction_lock(self, cls) -> None:
        self.lock.acquire_write()
        cls.lock.acquire()

    def compaction_unlock(self, cls) -> None:
        cls.lock.release()
        self.lock.release_write()

    def compaction_yield(self, cls) -> None:
        cls.lock.release()
        self.lock.release_write()
        time.sleep(0)                       # Kernel: cond_resched()
        self.lock.acquire_write()
        cls.lock.acquire()

    def compaction_yield_48(self, cls) -> None:
        cls.lock.release()
        time.sleep(0)
        cls.lock.acquire()

    def handle_pinned(self, handle: int) -> bool:
        return self._pins.pinned(handle) if self.kernel_48 else False

    def handle_trypin(self, handle: int) -> bool:
        return self._pins.trypin(handle) if self.kernel_48 else True

    def handle_unpin(self, handle: int) -> None:
        if self.kernel_48:
            self._pins.unpin(handle)

    def pin_handle(self, handle) -> None:
        self.handles.lookup(handle)
        if self.kernel_48:
            self._pins.pin(handle)
        else:
            super().pin_handle(handle)

    def unpin_handle(self, handle) -> None:
        if self.kernel_48:
            if not self._pins.pinned(handle):
                raise ValueError(f"handle {handle!r} is not pinned")
            self._pins.unpin(handle)
        else:
            super().unpin_handle(handle)

    # -- handle table (the kernel's zs_handle slab cache: a leaf lock) --------------------

    def _handle_alloc(self):
        handles = self.handles
        with self._leaf:
            row = handles.free_head
            hw = handles.words
            if row:
                w = hw[row]
                handles.free_head = (w >> 1) & ROW_MASK
                gen = (w >> GEN_SHIFT) + 1
                if gen > GEN_MAX:
                    gen = 1
            else:
                row = len(hw)
                hw.append(0)
                handles.sizes.append(0)
                gen = handles.gen_floor + 1
            hw[row] = gen << GEN_SHIFT     # reserved, not allocated, not on the free chain
            handles.live += 1
        return row, gen

    def _handle_release(self, row: int, gen: int) -> None:
        handles = self.handles
        with self._leaf:
            handles.words[row] = (gen << GEN_SHIFT) | (handles.free_head << 1)
            handles.free_head = row
            handles.live -= 1

    def _lookup(self, handle):
        hw = self.handles.words
        try:
            row = handle & ROW_MASK
            w = hw[row]
            ok = (w & 1) and (w >> GEN_SHIFT) == (handle >> HANDLE_GEN_SHIFT)
        except (TypeError, IndexError):
            ok = False
        if not ok:
            raise InvalidHandle(f"handle {handle!r} is not a live handle of this pool")
        return row, w

    # -- zspage allocation outside the class lock ------------------------------------------

    def _zspage_create(self, cls) -> int:
        with self._leaf:
            z = super()._zspage_create(cls)
            self.zspages_created += 1
            self.pages_created += cls.ppz
        return z

    def _zspage_release(self, cls, z: int) -> None:
        with self._leaf:
            super()._zspage_release(cls, z)

    def _try_release_empty(self, cls, z: int) -> bool:
        # One step under the leaf lock, as the kernel's trylock of every page: otherwise a
        # migration could lock a frame between our check and the release, and go on to work
        # on a zspage row that is gone (or already someone else's).
        with self._leaf:
            return super()._try_release_empty(cls, z)

    def _find_zspage_locked(self, cls) -> int:
        """Kernel: find_get_zspage (+ tuned: the surplus zspage)."""
        m = cls.mask & cls.alloc_mask
        if m:
            return cls.heads[m.bit_length() - 1]
        if self.tuned:
            z = self._surplus[cls.index]
            if z >= 0:
                self._surplus[cls.index] = -1
                return z
        return -1

    def _obj_malloc_locked(self, cls, z: int, handle: int, row: int, gen: int, size: int) -> None:
        """Kernel: obj_malloc + fix_fullness_group/insert_zspage + record_obj (class lock held)."""
        zt = self.zspages
        idx = zt.freeobj[z]
        if cls.huge:
            pfn = zt.frames[z * self._chain]
            zt.freeobj[z] = -1
            zt.huge_handle[z] = (handle << 1) | 1
        else:
            off = idx * cls.size
            pfn = zt.frames[z * self._chain + (off >> self.page_shift)]
            q = self.arena.qviews[pfn >> self._cs]
            wi = ((pfn & self._cm) << self._wps) + ((off & (self.page_size - 1)) >> 3)
            link = q[wi]
            zt.freeobj[z] = -1 if link == LINK_END else link >> 1
            q[wi] = (handle << 1) | 1
        n = zt.inuse[z] + 1
        zt.inuse[z] = n
        g = cls.grp[n]
        if g != zt.group[z]:
            self._regroup(cls, z, g)
        cls.inuse += 1
        self.handles.sizes[row] = size - 1
        self.handles.words[row] = (gen << GEN_SHIFT) | (pfn << PFN_SHIFT) | (idx << 1) | 1

    # -- the API ----------------------------------------------------------------------------

    def malloc(self, size, data=None) -> int:
        """Kernel: zs_malloc, with the class lock dropped around alloc_zspage (then
        zs_obj_write of ``data``, if given, under its own locks)."""
        if type(size) is not int or not 0 < size <= self.page_size:
            raise ValueError(f"size {size!r} out of range: must be an int in 1..{self.page_size}")
        if data is not None:
            if len(data) > size:
                raise ValueError(f"data of {len(data)} bytes does not fit an allocation of {size}")
            h = self.malloc(size)
            self.write(h, data)
            return h
        cls = self._by_request[size]
        row, gen = self._handle_alloc()
        handle = (gen << HANDLE_GEN_SHIFT) | row
        try:
            if self.tuned:
                self._malloc_tuned(cls, handle, row, gen, size)
            else:
                self._malloc_kernel(cls, handle, row, gen, size)
        except BaseException:
            self._handle_release(row, gen)
            raise
        return handle

    def _malloc_from_list(self, cls, handle, row, gen, size) -> bool:
        """Under the class lock: allocate from the fullest zspage on the lists, if any.
        Kernel: the find_get_zspage + obj_malloc step of zs_malloc."""
        with cls.lock:
            z = self._find_zspage_locked(cls)
            if z < 0:
                return False
            self._obj_malloc_locked(cls, z, handle, row, gen, size)
            return True

    def _malloc_kernel(self, cls, handle, row, gen, size) -> None:
        if self._malloc_from_list(cls, handle, row, gen, size):
            return
        # Kernel: spin_unlock(&class->lock); alloc_zspage(); spin_lock(&class->lock) --
        # and then obj_malloc into the new zspage without searching again: the race.
        if self.slow_path_hook is not None:
            self.slow_path_hook(self, cls)
        z = self._zspage_create(cls)
        with cls.lock:
            self._obj_malloc_locked(cls, z, handle, row, gen, size)

    def _malloc_tuned(self, cls, handle, row, gen, size) -> None:
        if self._malloc_from_list(cls, handle, row, gen, size):
            return
        if self.slow_path_hook is not None:
            self.slow_path_hook(self, cls)
        with self._single[cls.index]:            # one allocator per class at a time
            # did the previous allocator leave room?
            if self._malloc_from_list(cls, handle, row, gen, size):
                return
            new = self._zspage_create(cls)
            with cls.lock:
                z = self._find_zspage_locked(cls)    # re-check: a free may have made room
                if z >= 0:
                    self._keep_surplus_locked(cls, new)
                else:
                    z = new
                self._obj_malloc_locked(cls, z, handle, row, gen, size)

    def _keep_surplus_locked(self, cls, z: int) -> None:
        """tuned: keep one unused new zspage per class for the next slow path; a second one
        goes the way of any empty zspage (free_zspage: freed now, or deferred while page
        migration holds one of its frames)."""
        if self._surplus[cls.index] < 0:
            self._surplus[cls.index] = z
        else:
            self._regroup(cls, z, 0)        # onto the empty list, as zs_free would leave it
            self._free_zspage(cls, z)

    def surplus_zspages(self) -> set:
        return {z for z in self._surplus.values() if z >= 0}

    def free(self, handle) -> None:
        """Kernel: zs_free (6.18: pool read -> class; 4.8: pin -> migrate read -> class)."""
        if self.kernel_48:
            return self._free_48(handle)
        self.lock.acquire_read()
        try:
            row, w = self._lookup(handle)
            z = self.frame_zspage[(w >> PFN_SHIFT) & PFN_MASK]
            cls = self.zspages.cls[z]
            cls.lock.acquire()
        finally:
            self.lock.release_read()
        try:
            if self.handles.words[row] != w:     # freed by another thread meanwhile
                raise InvalidHandle(f"handle {handle!r} is not a live handle of this pool")
            self.handles.words[row] = (w >> GEN_SHIFT) << GEN_SHIFT
            self._obj_free_locked(cls, z, w)
        finally:
            cls.lock.release()
        self._handle_release(row, w >> GEN_SHIFT)

    def _free_48(self, handle) -> None:
        row, w = self._lookup(handle)
        self._pins.pin(handle)
        try:
            row, w = self._lookup(handle)         # stable now: migration and compaction trypin
            z = self.frame_zspage[(w >> PFN_SHIFT) & PFN_MASK]
            mlock = self._migrate[z % _STRIPES]
            mlock.acquire_read()
            try:
                cls = self.zspages.cls[z]
                with cls.lock:
                    if self.handles.words[row] != w:
                        raise InvalidHandle(f"handle {handle!r} is not a live handle of this pool")
                    self.handles.words[row] = (w >> GEN_SHIFT) << GEN_SHIFT
                    self._obj_free_locked(cls, z, w)
            finally:
                mlock.release_read()
        finally:
            self._pins.unpin(handle)
        self._handle_release(row, w >> GEN_SHIFT)

    def _obj_free_locked(self, cls, z: int, w: int) -> None:
        """Kernel: obj_free + fix_fullness_group + free_zspage (class lock held)."""
        zt = self.zspages
        pfn = (w >> PFN_SHIFT) & PFN_MASK
        idx = (w >> 1) & IDX_MASK
        cls.inuse -= 1
        if cls.huge:
            zt.huge_handle[z] = 0
        else:
            fo = zt.freeobj[z]
            self._set_word_at(pfn, (idx * cls.size) & (self.page_size - 1),
                              LINK_END if fo < 0 else fo << 1)
        zt.freeobj[z] = idx
        n = zt.inuse[z] - 1
        zt.inuse[z] = n
        g = cls.grp[n]
        if g != zt.group[z]:
            self._regroup(cls, z, g)
        if n == 0:
            self._free_zspage(cls, z)

    def _begin_access(self, handle):
        """Pool read lock -> zspage read lock -> pool lock dropped (6.18); pin -> migrate
        read lock (4.8). Returns (row, w, z, cls)."""
        if self.kernel_48:
            self._lookup(handle)
            self._pins.pin(handle)
            try:
                row, w = self._lookup(handle)
            except InvalidHandle:
                self._pins.unpin(handle)
                raise
            z = self.frame_zspage[(w >> PFN_SHIFT) & PFN_MASK]
            self._migrate[z % _STRIPES].acquire_read()
            return row, w, z, self.zspages.cls[z]
        self.lock.acquire_read()
        try:
            row, w = self._lookup(handle)
            z = self.frame_zspage[(w >> PFN_SHIFT) & PFN_MASK]
            self._zspage_read_lock(z)
        finally:
            self.lock.release_read()
        return row, w, z, self.zspages.cls[z]

    def _end_access(self, handle, z) -> None:
        if self.kernel_48:
            self._migrate[z % _STRIPES].release_read()
            self._pins.unpin(handle)
        else:
            self._zspage_read_unlock(z)

    def read(self, handle, length=None) -> bytes:
        """Kernel: zs_obj_read_begin / zs_obj_read_end (4.8: zs_map_object RO)."""
        row, w, z, cls = self._begin_access(handle)
        try:
            cap = self.handles.sizes[row] + 1
            if length is None:
                length = cap
            elif type(length) is not int or not 0 <= length <= cap:
                raise ValueError(f"read length {length!r} out of range 0..{cap} for handle {handle}")
            idx = (w >> 1) & IDX_MASK
            data = self._obj_read_raw(z, cls, idx)
            return data[cls.hdr:cls.hdr + length]
        finally:
            self._end_access(handle, z)

    def write(self, handle, data) -> None:
        """Kernel: zs_obj_write (4.8: zs_map_object WO)."""
        row, w, z, cls = self._begin_access(handle)
        try:
            n = len(data)
            cap = self.handles.sizes[row] + 1
            if n > cap:
                raise ValueError(f"write of {n} bytes to handle {handle} exceeds its allocation "
                                 f"of {cap} bytes")
            idx = (w >> 1) & IDX_MASK
            self._obj_write_raw(z, cls, idx, bytes(data), cls.hdr)
        finally:
            self._end_access(handle, z)

    def migrate_page(self, pfn: int, target=None) -> int:
        """Kernel: the migration core locks the page, then zs_page_migrate."""
        from .migration import MigrationError
        with self._leaf:
            if pfn in self.locked_frames:
                raise MigrationError(errno.EAGAIN, f"frame {pfn} is locked by another migration")
            self.locked_frames.add(pfn)
        try:
            return super().migrate_page(pfn, target)
        finally:
            with self._leaf:
                self.locked_frames.discard(pfn)
            if self.deferred_pending:
                self.kick_deferred_free()

    def check(self) -> None:
        """Invariants; call while no other thread uses the pool."""
        super().check()

    def free_work(self) -> int:
        from .migration import free_work
        # A frame locked by a running migration leaves its zspage for a later run.
        return free_work(self)


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
        self.pool.free_worker = self
        self._t.start()
        return self

    def kick(self):
        self._ev.set()

    def _loop(self):
        while not self._stop:
            self._ev.wait(self.retry if self.pool.deferred_pending else None)
            self._ev.clear()
            if self._stop:
                break
            self.freed += self.pool.free_work()
            self.runs += 1

    def stop(self):
        self._stop = True
        self._ev.set()
        self._t.join(5)
        self.pool.free_worker = None


@dataclass(frozen=True)
class RaceResult:
    """What ``race`` measured: zspages and pages created by the N writers, pages held after,
    and the minimum zspages / pages that N objects need."""

    writers: int
    zspages_created: int
    pages_created: int
    pages_held: int
    min_zspages: int
    min_pages: int
    class_size: int


def race(profile: str, n: int, size: int = 1000, timeout: float = 30.0) -> RaceResult:
    """The seed thread's race, reproduced: N writers find a class full at the same moment.

    A barrier in ``slow_path_hook`` (the class lock is dropped there, before alloc_zspage)
    releases the N writers together. Kernel profiles: each allocates its own zspage.
    Raises RuntimeError if a writer does not finish in ``timeout`` seconds.
    """
    from .config import PoolConfig
    pool = ConcurrentPool(PoolConfig(profile=profile))
    cls = pool._by_request[size]
    for _ in range(cls.objs):              # fill one zspage: the class is now full
        pool.malloc(size)
    z0, p0, held0 = pool.zspages_created, pool.pages_created, pool.total_pages
    barrier = threading.Barrier(n)

    def hook(p, c):
        if c is cls:
            try:
                barrier.wait(timeout=timeout / 3)
            except threading.BrokenBarrierError:
                pass
    pool.slow_path_hook = hook
    ts = [threading.Thread(target=pool.malloc, args=(size,), name=f"race-writer-{i}")
          for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout)
    if any(t.is_alive() for t in ts):
        raise RuntimeError(f"race writers hung ({profile}, N={n}, size {size})")
    pool.slow_path_hook = None
    pool.check()
    zmin = -(-n // cls.objs)
    return RaceResult(n, pool.zspages_created - z0, pool.pages_created - p0,
                      pool.total_pages - held0, zmin, zmin * cls.ppz, cls.size)
