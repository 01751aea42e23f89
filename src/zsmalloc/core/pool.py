"""The pool: zs_malloc, zs_free and object access over real frames.

Theory of operation (the kernel's, mm/zsmalloc.c):

* A request of n bytes gets n + 8 (the handle header) rounded up to a *size class*; each
  class packs objects of its size into *zspages*, chains of 1..chain_size frames chosen so
  little is wasted (``zsmalloc.core.sizeclass``). An object may start in one frame and end
  in the next.
* The first 8 bytes of an allocated object hold its handle (tagged); a free object's first
  8 bytes hold the index of the next free object, so the free list lives in the frames and
  allocation pops the last-freed object first. Huge objects (one per frame) have no header.
* Every zspage sits on one of its class's *fullness lists*; allocation takes the head of the
  fullest non-full list, and a zspage moves only when its group changes
  (``zsmalloc.core.zspage``). An empty zspage is freed at once, unless page migration holds
  one of its frames: then it waits for the deferred-free worker (``core.migration``).
* Compaction (``core.compaction``) moves objects from sparse zspages into full ones.

Which kernel version is modelled is data (group tables, the insert rule) and strategies
chosen once per pool (the malloc slow path here, compaction, migration); which locks are
taken is the pool's lock policy (``core.locks``): the code paths below are the same for all.

Every public operation checks its arguments before it changes anything, and runs as one
step with respect to other threads and to Python signal handlers (compiled code runs no
Python code mid-step; see ``core.locks`` and docs/design.md).
"""

from array import array

import cython

from ..config import resolve_config
from ..errors import InvalidHandle
from .allocator import Allocator
from .arena import Arena, readable
from .handles import HandleTable, obj_idx, obj_pfn
from .layout import NIL, ROW_MASK, TAG
from .locks import LockPolicy, make_policy
from .obj import obj_free, obj_malloc, obj_read, obj_write
from .sizeclass import class_table
from .zspage import ClassState, ZspageTable


class SlowPath:
    """What zs_malloc does when no zspage of the class has a free object: a strategy."""

    def alloc(self, pool, cls: ClassState) -> cython.Py_ssize_t:
        raise NotImplementedError


class KernelSlowPath(SlowPath):
    """Kernel: zs_malloc after find_get_zspage failed: drop the class lock, alloc_zspage,
    re-take it and use the new zspage without searching again. N writers that find a class
    full at once each allocate a zspage: the race of the 2016 thread."""

    def alloc(self, pool, cls: ClassState) -> cython.Py_ssize_t:
        pool.policy.class_unlock(cls.pos)
        if pool.slow_path_hook is not None:
            pool.slow_path_hook(pool, cls)
        z: cython.Py_ssize_t = pool._new_zspage(cls)
        pool.policy.class_lock(cls.pos)
        cls.allocated += cls.objs
        return z


class TunedSlowPath(SlowPath):
    """The fix for the race (``tuned`` profile): one allocator per class at a time (the others
    wait, then search again), a re-check after re-taking the class lock (a new zspage not
    needed then is kept as the class's surplus for the next slow path), and empty zspages
    waiting for deferred release are taken first (they are on the 0 % list)."""

    def _find(self, pool, cls: ClassState) -> cython.Py_ssize_t:
        z: cython.Py_ssize_t = pool.zspages.find_get_zspage(cls)
        if z == NIL and cls.surplus != NIL:
            z = cls.surplus
            cls.surplus = NIL
        return z

    def alloc(self, pool, cls: ClassState) -> cython.Py_ssize_t:
        policy: LockPolicy = pool.policy
        z: cython.Py_ssize_t = self._find(pool, cls)
        if z != NIL:
            return z
        policy.class_unlock(cls.pos)
        if pool.slow_path_hook is not None:
            pool.slow_path_hook(pool, cls)
        policy.alloc_single_lock(cls.pos)
        try:
            policy.class_lock(cls.pos)
            z = self._find(pool, cls)
            if z != NIL:
                return z
            policy.class_unlock(cls.pos)
            new: cython.Py_ssize_t = pool._new_zspage(cls)
            policy.class_lock(cls.pos)
            cls.allocated += cls.objs
            z = self._find(pool, cls)
            if z == NIL:
                return new
            if cls.surplus == NIL:
                cls.surplus = new
            else:                       # a second spare goes the way of any empty zspage
                pool.zspages.insert(cls, new, 0)
                policy.leaf_lock()
                try:
                    pool.zspages.free_zspage(cls, new)
                finally:
                    policy.leaf_unlock()
            return z
        finally:
            policy.alloc_single_unlock(cls.pos)


class Pool(Allocator):
    """A zsmalloc pool. Kernel: struct zs_pool, zs_create_pool.

    ``Pool(config)`` or ``Pool(profile=..., chain_size=..., page_size=...)``.
    ``concurrent=True`` takes the kernel's locks in the kernel's order (for studying them;
    ``lock_debug=True`` asserts the order); the default is safe from any thread too.
    """

    def __init__(self, config=None, *, profile=None, chain_size=None, page_size=None,
                 name: str = "zsmalloc", concurrent: bool = False, lock_debug: bool = False,
                 policy=None):
        cfg = resolve_config(config, profile=profile, chain_size=chain_size, page_size=page_size)
        if type(concurrent) is not bool or type(lock_debug) is not bool:
            raise ValueError("concurrent and lock_debug must be True or False")
        self.config = cfg
        self.name = name
        self.page_size = cfg.page_size
        self.page_shift = cfg.page_shift
        self.kernel_48 = cfg.kernel_48
        self.table = class_table(cfg)
        scheme = "4.8" if cfg.kernel_48 else "6.18"
        self.classes = [ClassState(sc, i, cfg.page_size, scheme)
                        for i, sc in enumerate(self.table.classes)]
        pos = {sc.index: i for i, sc in enumerate(self.table.classes)}
        self._class_for_store = array("H", [0] + [pos[self.table.for_request(n).index]
                                                  for n in range(1, cfg.page_size + 1)])
        self.size_class = self._class_for_store
        self.arena = Arena(cfg.page_size, cfg.chunk_frames, cfg.arena_bytes)
        self.zspages = ZspageTable(self.arena, self.classes, cfg.chain_size)
        self.handles = HandleTable()
        self.concurrent = concurrent
        if policy is None:          # (a zram device being reset passes its pool's on)
            policy = make_policy(cfg.profile, len(self.classes), concurrent, lock_debug)
        Allocator.__init__(self, cfg.page_size, policy)
        self.slow_path = TunedSlowPath() if cfg.profile == "tuned" else KernelSlowPath()
        self.slow_path_hook = None
        self.pages_compacted = 0
        self.objs_moved = 0             # objects copied by compaction (not a kernel counter)
        self.zspages_created = 0
        self.pages_created = 0
        self.closed = False
        self.auto_trim = not concurrent
        from .compaction import make_compactor
        from .migration import make_migrator
        self.compactor = make_compactor(cfg.profile)
        self.migrator = make_migrator(cfg.profile)

    # -- argument helpers -----------------------------------------------------------------

    def _live(self) -> cython.int:
        if self.closed:
            raise ValueError(f"pool {self.name!r} is closed")
        return 0

    def _handle(self, handle) -> cython.ulonglong:
        """A live handle as a 64-bit value (checked again under the locks); InvalidHandle
        otherwise."""
        self._live()
        return self.handles.checked(handle)

    def class_for(self, size: cython.Py_ssize_t) -> ClassState:
        """The class serving zs_malloc(size). Kernel: get_size_class_index."""
        return self.classes[self.size_class[size]]

    # -- zs_malloc ------------------------------------------------------------------------

    def malloc(self, size, data=None) -> int:
        """Allocate an object of ``size`` bytes; returns its handle. Kernel: zs_malloc.

        With ``data`` (a bytes-like object of at most ``size`` bytes) the object is also
        written, as zram does (zs_malloc + zs_obj_write). ValueError for a size that is not an
        int in 1..page_size or data longer than it, TypeError for data that is not bytes-like,
        MemoryError when no frame can be had: nothing changes then.
        Cost: O(1) plus, when a new zspage is needed, O(frames).
        """
        if type(size) is not int or not 0 < size <= self.page_size:
            raise ValueError(f"size {size!r} out of range: must be an int in 1..{self.page_size}")
        n: cython.Py_ssize_t = size
        src = None
        nd: cython.Py_ssize_t = -1
        if data is not None:
            src = readable(data)
            nd = len(src)
            if nd > n:
                raise ValueError(f"data of {nd} bytes does not fit an allocation of {n}")
        self._live()
        policy: LockPolicy = self.policy
        policy.op_enter()
        try:
            row: cython.Py_ssize_t = self.zs_malloc(n)
            if nd >= 0:
                self.write_row(row, 0, src, nd)
            return self.handles.handle_of(row)
        finally:
            policy.op_exit()

    def zs_malloc(self, size: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """Kernel: zs_malloc. Returns the handle's row. The caller checked ``size``.
        (``fine``: the policy has locks inside the operation; Atomic has none.)"""
        policy: LockPolicy = self.policy
        fine: cython.bint = policy.fine
        cls: ClassState = self.classes[self.size_class[size]]
        zt: ZspageTable = self.zspages
        ht: HandleTable = self.handles
        row: cython.Py_ssize_t
        z: cython.Py_ssize_t
        if fine:
            policy.leaf_lock()
        try:
            row = ht.alloc(size)                     # Kernel: cache_alloc_handle
        finally:
            if fine:
                policy.leaf_unlock()
        try:
            if fine:
                policy.class_lock(cls.pos)
            z = zt.find_get_zspage(cls)
            if z == NIL:
                z = self.slow_path.alloc(self, cls)   # returns with the class lock held
        except BaseException:
            if fine:
                policy.leaf_lock()
            ht.release(row)
            if fine:
                policy.leaf_unlock()
            raise
        obj: cython.ulonglong = obj_malloc(zt, cls, z, row)
        zt.fix_fullness_group(cls, z)
        cls.inuse += 1
        if fine:
            policy.leaf_lock()
            ht.record_obj(row, obj)                  # Kernel: record_obj
            policy.leaf_unlock()
            policy.class_unlock(cls.pos)
        else:
            ht.record_obj(row, obj)
        return row

    def _new_zspage(self, cls: ClassState) -> cython.Py_ssize_t:
        """Kernel: alloc_zspage (under the page allocator's lock only)."""
        self.policy.leaf_lock()
        try:
            z: cython.Py_ssize_t = self.zspages.create(cls)
            self.zspages_created += 1
            self.pages_created += cls.ppz
        finally:
            self.policy.leaf_unlock()
        return z

    # -- zs_free --------------------------------------------------------------------------

    def free(self, handle) -> None:
        """Free an object. Kernel: zs_free.

        InvalidHandle (a ValueError) for a handle that is not live; nothing changes then.
        Frees the zspage when it becomes empty. Cost: O(1), O(frames) for a zspage free.
        """
        h: cython.ulonglong = self._handle(handle)
        policy: LockPolicy = self.policy
        policy.op_enter()
        try:
            self.zs_free_row(h & ROW_MASK, h)
        finally:
            policy.op_exit()

    def zs_free_row(self, row: cython.Py_ssize_t, handle: cython.ulonglong) -> cython.int:
        """Kernel: zs_free. ``handle`` (or 0: the caller owns the row) is checked again
        under the locks, so two threads freeing one handle cannot both succeed."""
        policy: LockPolicy = self.policy
        fine: cython.bint = policy.fine
        ht: HandleTable = self.handles
        zt: ZspageTable = self.zspages
        if fine:
            policy.free_enter(row)
        loc: cython.ulonglong = ht.located(row, handle)
        if not loc:
            if fine:
                policy.free_abort(row)
            raise InvalidHandle(f"handle {handle!r} is not a live handle of this pool")
        obj: cython.ulonglong = loc >> 1
        z: cython.Py_ssize_t = zt.frame_zspage[obj_pfn(obj)]
        cls: ClassState = self.classes[zt.cls[z]]
        if fine:
            policy.free_locked(z, cls.pos)
            if ht.located(row, handle) != loc:        # freed or moved by another thread
                policy.free_exit(z, cls.pos, row)
                raise InvalidHandle(f"handle {handle!r} is not a live handle of this pool")
            policy.leaf_lock()
            ht.loc[row] &= ~TAG                       # no longer live: not freed twice
            policy.leaf_unlock()
        cls.inuse -= 1
        obj_free(zt, cls, obj)
        if zt.fix_fullness_group(cls, z) == 0:
            if fine:
                policy.leaf_lock()
            try:
                zt.free_zspage(cls, z)
            finally:
                if fine:
                    policy.leaf_unlock()
        if fine:
            policy.free_exit(z, cls.pos, row)
            policy.leaf_lock()
            ht.release(row)                           # Kernel: cache_free_handle
            policy.leaf_unlock()
        else:
            ht.release(row)
        return 0

    # -- object access --------------------------------------------------------------------

    def write(self, handle, data) -> None:
        """Copy ``data`` into the object. Kernel: zs_obj_write.

        ``len(data)`` must not exceed the size given to malloc (ValueError otherwise);
        TypeError for data that is not bytes-like; nothing is written then.
        """
        src = readable(data)
        h: cython.ulonglong = self._handle(handle)
        policy: LockPolicy = self.policy
        policy.op_enter()
        try:
            self.write_row(h & ROW_MASK, h, src, len(src))
        finally:
            policy.op_exit()

    def write_row(self, row: cython.Py_ssize_t, handle: cython.ulonglong, src,
                  n: cython.Py_ssize_t) -> cython.int:
        """Kernel: zs_obj_write, with its locks (pool read -> zspage read, or pin -> migrate
        read). ``handle`` 0: the caller owns the row and checked ``n``."""
        zt: ZspageTable = self.zspages
        obj: cython.ulonglong = self.access_begin(row, handle, n, True)
        z: cython.Py_ssize_t = zt.frame_zspage[obj_pfn(obj)]
        obj_write(zt, self.classes[zt.cls[z]], obj, src, n)
        if self.policy.fine:
            self.policy.access_exit(z, row)
        return 0

    def access_begin(self, row: cython.Py_ssize_t, handle: cython.ulonglong,
                     n: cython.Py_ssize_t, writing: cython.bint) -> cython.ulonglong:
        """The obj of a live row, with the access locks held (pin -> migrate read, or pool
        read -> zspage read) until ``access_exit``; ``n`` bytes must fit the allocation.
        InvalidHandle or ValueError with nothing held. Kernel: the start of zs_obj_write
        and zs_obj_read_begin (handle_to_obj under the locks)."""
        policy: LockPolicy = self.policy
        fine: cython.bint = policy.fine
        ht: HandleTable = self.handles
        if fine:
            policy.access_enter(row)
        loc: cython.ulonglong = ht.located(row, handle)
        if not loc or n > ht.size[row] + 1:
            if fine:
                policy.access_abort(row)
            if not loc:
                raise InvalidHandle(f"handle {handle!r} is not a live handle of this pool")
            if writing:
                raise ValueError(f"write of {n} bytes to handle {handle} exceeds its "
                                 f"allocation of {ht.size[row] + 1} bytes")
            raise ValueError(f"read length {n} out of range 0..{ht.size[row] + 1} for "
                             f"handle {handle}")
        obj: cython.ulonglong = loc >> 1
        if fine:
            policy.access_locked(self.zspages.frame_zspage[obj_pfn(obj)])
        return obj

    def read(self, handle, length=None) -> bytes:
        """Copy ``length`` bytes (default: the size given to malloc) out of the object.
        Kernel: zs_obj_read_begin / zs_obj_read_end. ValueError for a length outside
        0..size; nothing changes either way."""
        n: cython.Py_ssize_t = -1
        if length is not None:
            if type(length) is not int or length < 0:
                raise ValueError(f"read length {length!r} must be a non-negative int")
            if length > self.page_size:
                raise ValueError(f"read length {length!r} out of range for handle {handle}")
            n = length
        h: cython.ulonglong = self._handle(handle)
        policy: LockPolicy = self.policy
        policy.op_enter()
        try:
            return self.read_row(h & ROW_MASK, h, n)
        finally:
            policy.op_exit()

    def read_row(self, row: cython.Py_ssize_t, handle: cython.ulonglong,
                 n: cython.Py_ssize_t) -> bytes:
        """Kernel: zs_obj_read_begin + copy + zs_obj_read_end, with their locks. ``n`` -1:
        the size given to malloc. ``handle`` 0: the caller owns the row and checked ``n``."""
        zt: ZspageTable = self.zspages
        obj: cython.ulonglong = self.access_begin(row, handle, n, False)
        if n < 0:
            n = self.handles.size[row] + 1
        z: cython.Py_ssize_t = zt.frame_zspage[obj_pfn(obj)]
        out = obj_read(zt, self.classes[zt.cls[z]], obj, n)
        if self.policy.fine:
            self.policy.access_exit(z, row)
        return out

    # -- the allocator protocol (zram's slot layer; the caller is inside an operation) ----

    def store(self, size: cython.Py_ssize_t, src, n: cython.Py_ssize_t) -> cython.ulonglong:
        """zs_malloc(size) + zs_obj_write(src[:n]); returns the handle."""
        row: cython.Py_ssize_t = self.zs_malloc(size)
        if n:
            self.write_row(row, 0, src, n)
        return self.handles.handle_of(row)

    def release(self, handle: cython.ulonglong) -> None:
        """zs_free of a handle the caller holds (zram's slot table: trusted)."""
        self.zs_free_row(handle & ROW_MASK, 0)

    def load(self, handle: cython.ulonglong, n: cython.Py_ssize_t) -> bytes:
        """The first n bytes of a handle the caller holds."""
        return self.read_row(handle & ROW_MASK, 0, n)

    def pages(self) -> cython.Py_ssize_t:
        return self.zspages.pages_allocated

    def read_begin(self, handle: cython.ulonglong, n: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """The arena address of the object's first ``n`` data bytes, with its read locks
        held until read_end; -1 (nothing held) for an object that spans two frames.
        Kernel: zs_obj_read_begin (which copies a spanning object into a local buffer)."""
        policy: LockPolicy = self.policy
        fine: cython.bint = policy.fine
        zt: ZspageTable = self.zspages
        row: cython.Py_ssize_t = handle & ROW_MASK
        if fine:
            policy.access_enter(row)
        obj: cython.ulonglong = self.handles.located(row, 0) >> 1
        pfn: cython.Py_ssize_t = obj_pfn(obj)
        z: cython.Py_ssize_t = zt.frame_zspage[pfn]
        cls: ClassState = self.classes[zt.cls[z]]
        if fine:
            policy.access_locked(z)
        ioff: cython.Py_ssize_t = ((obj_idx(obj) * cls.size) & (self.page_size - 1)) + cls.hdr
        if ioff + n > self.page_size:
            if fine:
                policy.access_exit(z, row)
            return -1
        return (pfn << self.page_shift) + ioff

    def read_end(self, handle: cython.ulonglong) -> cython.int:
        """Kernel: zs_obj_read_end."""
        policy: LockPolicy = self.policy
        if policy.fine:
            row: cython.Py_ssize_t = handle & ROW_MASK
            obj: cython.ulonglong = self.handles.located(row, 0) >> 1
            policy.access_exit(self.zspages.frame_zspage[obj_pfn(obj)], row)
        return 0

    def memory(self):
        """The buffer read_begin's addresses refer to (the arena's frames)."""
        return self.arena.memory()

    def destroy(self) -> cython.int:
        """Kernel: zs_destroy_pool (inside an operation)."""
        self.closed = True
        self.arena.close()
        return 0

    # -- queries --------------------------------------------------------------------------

    def size_of(self, handle) -> int:
        """The size given to malloc for a live handle."""
        return self.handles.requested(self._handle(handle) & ROW_MASK)

    def class_of(self, handle):
        """The SizeClass holding a live handle's object."""
        row = self._handle(handle) & ROW_MASK
        return self.zspages.class_of_frame(obj_pfn(self.handles.obj(row))).sc

    def frame_of(self, handle) -> int:
        """The frame holding a live handle's first byte (the kernel obj's pfn)."""
        return obj_pfn(self.handles.obj(self._handle(handle) & ROW_MASK))

    def location(self, handle) -> tuple:
        """(frame, object index) of a live handle: the kernel's obj_to_location."""
        obj = self.handles.obj(self._handle(handle) & ROW_MASK)
        return obj_pfn(obj), obj_idx(obj)

    def zspage_of(self, handle) -> int:
        """The zspage (row id) holding a live handle's object."""
        return self.zspages.zspage_of_frame(self.location(handle)[0])

    def object_handle(self, z, idx) -> int:
        """The handle whose object is object ``idx`` of zspage ``z``, or 0 if that object is
        free (read from the object's header, as compaction and migration find them)."""
        from .obj import obj_allocated
        cls = self.zspages.class_of_zspage(z)
        row = obj_allocated(self.zspages, cls, z, idx)
        return self.handles.handle_of(row) if row >= 0 else 0

    @property
    def total_pages(self) -> int:
        """Frames held by zspages. Kernel: zs_get_total_pages."""
        return self.zspages.pages_allocated

    @property
    def pages_allocated(self) -> int:
        return self.zspages.pages_allocated

    @property
    def objects(self) -> int:
        """Live objects (handles)."""
        return self.handles.live

    @property
    def deferred_pending(self) -> bool:
        """The deferred-free worker has been kicked and has not finished."""
        return self.zspages.deferred_pending

    def can_compact(self) -> int:
        """Pages compaction could free. Kernel: zs_shrinker_count (sum of zs_can_compact)."""
        from .compaction import zs_can_compact
        return sum([zs_can_compact(c) for c in self.classes])

    def class_stats(self) -> list:
        """One row per distinct class: the debugfs 'classes' columns. See zsmalloc.maint.stats."""
        from ..maint.stats import class_stats
        return class_stats(self)

    def format_classes(self) -> str:
        """The class table as the kernel's debugfs 'classes' file prints it."""
        from ..maint.stats import format_classes
        return format_classes(self)

    def metadata_bytes(self) -> dict:
        """Bytes of Python-side metadata by structure."""
        from ..maint.stats import metadata_bytes
        return metadata_bytes(self)

    def surplus_zspages(self) -> set:
        """Empty zspages kept on purpose off every list (tuned profile only)."""
        return {c.surplus for c in self.classes if c.surplus != NIL}

    def check(self) -> None:
        """Verify every invariant; raises CheckError naming the broken one. Call it while no
        other thread uses the pool. See zsmalloc.maint.check."""
        from ..maint.check import check_pool
        check_pool(self)

    # -- maintenance ----------------------------------------------------------------------

    def compact(self) -> int:
        """Move objects out of sparse zspages and free them; returns pages freed by this call.
        Kernel: zs_compact (6.4 algorithm for 6.18 and tuned, the 2016 one for linux-4.8; 4.8
        returned the cumulative count, we return this call's as 5.12+ does)."""
        self._live()
        from .compaction import zs_compact
        freed = zs_compact(self)
        if self.auto_trim:
            from ..maint.trim import maybe_trim
            maybe_trim(self)
        return freed

    def flush(self) -> None:
        """Return freed frames to the OS now rather than in the next batch."""
        self._live()
        self.policy.op_enter()
        try:
            self.policy.leaf_lock()
            self.arena.flush()
            self.policy.leaf_unlock()
        finally:
            self.policy.op_exit()

    def trim_metadata(self) -> dict:
        """Renumber zspage rows and cut free table tails now. See zsmalloc.maint.trim."""
        self._live()
        from ..maint.trim import trim
        return trim(self)

    # -- page migration and deferred free (zsmalloc.core.migration) ------------------------

    def used_pfns(self) -> list:
        """Every frame held by a zspage, ascending."""
        from .migration import used_pfns
        return used_pfns(self)

    def migrate_page(self, pfn, target=None) -> int:
        """Move one frame of a zspage to another frame; returns the new pfn.
        Kernel: zs_page_migrate (4.8: with isolate/putback). See zsmalloc.core.migration."""
        from .migration import migrate_page
        return migrate_page(self, pfn, target)

    def isolate_page(self, pfn) -> bool:
        """4.8: take a frame's zspage off its list for migration. Kernel: zs_page_isolate."""
        from .migration import isolate_page
        return isolate_page(self, pfn)

    def putback_page(self, pfn) -> None:
        """4.8: undo isolate_page after a failed migration. Kernel: zs_page_putback."""
        from .migration import putback_page
        putback_page(self, pfn)

    def migrate_isolated(self, pfn, target=None) -> int:
        """4.8: migrate a frame isolate_page took. Kernel: zs_page_migrate (4.8)."""
        from .migration import migrate_isolated
        return migrate_isolated(self, pfn, target)

    def lock_frame(self, pfn) -> None:
        """Hold a frame's page lock, as the migration core does while it migrates it: a zspage
        emptied meanwhile waits on its class's empty list for free_work."""
        from .migration import lock_frame
        lock_frame(self, pfn)

    def unlock_frame(self, pfn) -> None:
        from .migration import unlock_frame
        unlock_frame(self, pfn)

    def pin_handle(self, handle) -> None:
        """4.8: pin a handle as an open zs_map_object does (migration then gets -EAGAIN,
        compaction skips the object)."""
        row = self._handle(handle) & ROW_MASK
        if self.policy.pins is None:
            raise ValueError("handle pins exist only in the linux-4.8 profile")
        self.policy.pins.add(row)

    def unpin_handle(self, handle) -> None:
        row = self._handle(handle) & ROW_MASK
        if self.policy.pins is None or not self.policy.pins.pinned(row):
            raise ValueError(f"handle {handle!r} is not pinned")
        self.policy.pins.unpin(row)

    def free_work(self) -> int:
        """Run the deferred-free worker now; returns zspages freed. Kernel: async_free_zspage."""
        from .migration import free_work
        return free_work(self)

    def shrink_arena(self) -> int:
        """Pack live frames into the densest chunks; returns chunks given back."""
        from .migration import shrink_arena
        n = shrink_arena(self)
        if self.auto_trim:
            from ..maint.trim import maybe_trim
            maybe_trim(self, frames=True)
        return n

    def evacuate(self, chunk) -> int:
        """Move every frame out of one chunk so it is given back; returns frames moved."""
        from .migration import evacuate
        return evacuate(self, chunk)

    # -- life -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release all memory. Kernel: zs_destroy_pool. The pool is unusable afterwards:
        every call then raises ValueError."""
        if self.closed:
            return
        self.policy.op_enter()
        try:
            self.destroy()
        finally:
            self.policy.op_exit()

    def __repr__(self):
        return (f"<Pool {self.config.profile} chain={self.config.chain_size} "
                f"page_size={self.page_size} objects={self.objects} pages={self.total_pages}>")
