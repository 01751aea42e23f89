"""The pool: zs_malloc, zs_free and object access over real frames.

Theory of operation (the kernel's, mm/zsmalloc.c):

* A request of n bytes gets n + 8 (the handle header) rounded up to a *size class*; each
  class packs objects of its size into *zspages*, chains of 1..chain_size frames chosen so
  little is wasted (``zsmalloc.sizeclass``). An object may start in one frame and end in the
  next; such an object is copied in two parts.
* The first 8 bytes of an allocated object hold its handle (tag bit 0 set); a free object's
  first 8 bytes hold the index of the next free object, so the free list lives in the frames
  and allocation pops the last-freed object first. Huge objects (one per frame) have no
  header: the handle lives in the zspage's row.
* Every zspage sits on one of its class's *fullness lists*. Allocation takes the head of the
  fullest non-full list; frees and allocations move a zspage to the head of another list only
  when its group changes. An empty zspage is freed at once (unless a frame of it is locked by
  page migration: then it waits for the deferred-free worker, ``zsmalloc.migration``).
* Compaction (``zsmalloc.compaction``) moves objects from sparse zspages into full ones and
  frees the emptied zspages.

Lock order (see docs/design.md): 6.18 pool lock -> class lock -> zspage lock; 4.8 zspage
migrate lock -> class lock -> handle pin. Single-threaded use takes no lock at all.

Hot paths (``malloc``, ``free``, ``read``, ``write``) are written out flat, with the kernel
step each line mirrors, because a Python call costs as much as the work itself.
"""

from __future__ import annotations

from .config import PoolConfig, resolve_config
from .errors import InvalidHandle
from .frames import FrameArena
from .handles import GEN_MAX, GEN_SHIFT, HANDLE_GEN_SHIFT, HandleTable, IDX_MASK, PFN_MASK, PFN_SHIFT, ROW_MASK
from .sizeclass import class_table
from .zspage import LINK_END, NIL, OFF_LIST, ON_FULL, ClassState, ZspageTable
from array import array
from contextlib import nullcontext

NO_ZSPAGE = 0xFFFF_FFFF
_NULL = nullcontext()


class Pool:
    """A zsmalloc pool. Kernel: struct zs_pool, zs_create_pool.

    ``Pool(config)`` or ``Pool(profile=..., chain_size=..., page_size=...)``.
    """

    def __new__(cls, *args, concurrent: bool = False, **kw):
        if concurrent and cls is Pool:
            from .concurrent import ConcurrentPool
            return object.__new__(ConcurrentPool)
        return object.__new__(cls)

    def __init__(self, config: PoolConfig | None = None, *, profile=None, chain_size=None,
                 page_size=None, name: str = "zsmalloc", concurrent: bool = False,
                 lock_debug: bool = False):
        cfg = resolve_config(config, profile=profile, chain_size=chain_size, page_size=page_size)
        self.config = cfg
        self.name = name
        self.page_size = P = cfg.page_size
        self.page_shift = cfg.page_shift
        self.table = class_table(cfg)
        self.kernel_48 = cfg.kernel_48
        # class states, one per distinct class, ascending; _by_request[n] -> state for zs_malloc(n)
        states = {sc.index: ClassState(sc, P, cfg.kernel_48) for sc in self.table.classes}
        self.classes: list[ClassState] = [states[sc.index] for sc in self.table.classes]
        self._by_request: list[ClassState | None] = [None] + [
            states[self.table.by_request[n].index] for n in range(1, P + 1)]
        self.arena = FrameArena(P, cfg.chunk_frames)
        self.arena.on_map = self._on_chunk_map
        self.zspages = ZspageTable(cfg.chain_size)
        self.handles = HandleTable()
        # per-frame columns, indexed by pfn (Kernel: struct page / zpdesc fields)
        # zspage id per frame, NO_ZSPAGE when free. An array, not a list: a list would hold
        # an int object per zspage id (measured: +12 B per page) for ~30 ns less per access.
        self.frame_zspage = array("I")
        self.frame_first_obj = array("H")       # first_obj_offset, stored at init_zspage (4.8 fix)
        self.pages_allocated = 0
        self.pages_compacted = 0
        self.objs_moved = 0                      # objects copied by compaction (not in the kernel)
        self._chain = cfg.chain_size
        self._cs = self.arena.chunk_shift
        self._cm = cfg.chunk_frames - 1
        self._wps = self.page_shift - 3          # frame -> word offset shift
        # page migration / deferred free state (zsmalloc.migration)
        # hot-path aliases of containers that are mutated in place, never rebound
        self._hw = self.handles.words
        self._hs = self.handles.sizes
        self._zcls = self.zspages.cls
        self._chunks = self.arena.chunks
        self._qviews = self.arena.qviews
        self.locked_frames: set[int] = set()      # 6.18: frames whose page lock is held
        self.isolated_frames: set[int] = set()    # 4.8: frames isolated for migration
        self.pinned: dict[int, int] = {}          # 4.8: handle -> pin count (zs_map_object)
        self.deferred_pending = False             # free_work has been kicked and not run
        self.free_worker = None                   # a FreeWorker thread, if started
        self.compaction_in_progress = False
        self.closed = False

    # ---------------------------------------------------------------------------------
    # public API
    # ---------------------------------------------------------------------------------

    def malloc(self, size, data=None) -> int:
        """Allocate an object of ``size`` bytes; returns its handle. Kernel: zs_malloc.

        With ``data`` (at most ``size`` bytes) the object is also written, as ``write``
        would, without looking the new handle up again (zram's zs_malloc + zs_obj_write).
        Raises ValueError for a size that is not an int in 1..page_size (or data longer than
        it) and MemoryError when no frame can be had; nothing changes then.
        Cost: O(1) plus, when a new zspage is needed, O(frames).
        """
        if type(size) is not int or not 0 < size <= self.page_size:
            raise ValueError(f"size {size!r} out of range: must be an int in 1..{self.page_size}")
        if data is not None and len(data) > size:
            raise ValueError(f"data of {len(data)} bytes does not fit an allocation of {size}")
        cls = self._by_request[size]
        handles = self.handles
        hw = self._hw
        # Kernel: cache_alloc_handle
        row = handles.free_head
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
        handle = (gen << HANDLE_GEN_SHIFT) | row
        zt = self.zspages
        # Kernel: find_get_zspage, the head of the fullest group allocation may take
        m = cls.mask & cls.alloc_mask
        if m:
            z = cls.heads[m.bit_length() - 1]
        else:
            try:
                z = self._zspage_create(cls)  # Kernel: alloc_zspage (class lock dropped there)
            except MemoryError:
                hw[row] = (gen << GEN_SHIFT) | (handles.free_head << 1)
                handles.free_head = row
                raise
        # Kernel: obj_malloc
        idx = zt.freeobj[z]
        if cls.huge:
            off = 0
            pfn = zt.frames[z * self._chain]
            zt.freeobj[z] = -1
            zt.huge_handle[z] = (handle << 1) | 1
        else:
            off = idx * cls.size
            pfn = zt.frames[z * self._chain + (off >> self.page_shift)]
            q = self._qviews[pfn >> self._cs]
            wi = ((pfn & self._cm) << self._wps) + ((off & (self.page_size - 1)) >> 3)
            link = q[wi]
            zt.freeobj[z] = -1 if link == LINK_END else link >> 1
            q[wi] = (handle << 1) | 1
        if data is not None:
            # Kernel: zs_obj_write, straight after (zram copies the compressed page in)
            P = self.page_size
            ioff = (off & (P - 1)) + cls.hdr
            base = (pfn & self._cm) << self.page_shift
            a = base + ioff
            nd = len(data)
            if ioff + nd <= P:
                self._chunks[pfn >> self._cs][a:a + nd] = data
            else:
                self._obj_write_raw(z, cls, idx, data, cls.hdr)
        n = zt.inuse[z] + 1
        zt.inuse[z] = n
        # Kernel: fix_fullness_group (a new zspage: insert_zspage)
        g = cls.grp[n]
        if g != zt.group[z]:
            self._regroup(cls, z, g)
        cls.inuse += 1
        # Kernel: record_obj
        hw[row] = (gen << GEN_SHIFT) | (pfn << PFN_SHIFT) | (idx << 1) | 1
        self._hs[row] = size - 1
        handles.live += 1
        return handle

    def free(self, handle) -> None:
        """Free an object. Kernel: zs_free.

        Raises InvalidHandle (a ValueError) for a handle that is not live; nothing changes.
        Frees the zspage when it becomes empty. Cost: O(1) plus O(frames) for a zspage free.
        """
        hw = self._hw
        try:
            row = handle & ROW_MASK
            w = hw[row]
            ok = (w & 1) and (w >> GEN_SHIFT) == (handle >> HANDLE_GEN_SHIFT)
        except (TypeError, IndexError):
            ok = False
        if not ok:
            raise InvalidHandle(f"handle {handle!r} is not a live handle of this pool")
        pfn = (w >> PFN_SHIFT) & PFN_MASK
        idx = (w >> 1) & IDX_MASK
        zt = self.zspages
        z = self.frame_zspage[pfn]
        cls = self._zcls[z]
        cls.inuse -= 1
        # Kernel: obj_free, push onto the head of the zspage's free list
        if cls.huge:
            zt.huge_handle[z] = 0
        else:
            fo = zt.freeobj[z]
            q = self._qviews[pfn >> self._cs]
            q[((pfn & self._cm) << self._wps) + (((idx * cls.size) & (self.page_size - 1)) >> 3)] = \
                LINK_END if fo < 0 else fo << 1
        zt.freeobj[z] = idx
        n = zt.inuse[z] - 1
        zt.inuse[z] = n
        g = cls.grp[n]
        if g != zt.group[z]:
            self._regroup(cls, z, g)
        if n == 0:
            self._free_zspage(cls, z)
        # Kernel: cache_free_handle
        handles = self.handles
        hw[row] = (w >> GEN_SHIFT << GEN_SHIFT) | (handles.free_head << 1)
        handles.free_head = row
        handles.live -= 1

    def write(self, handle, data) -> None:
        """Copy ``data`` into the object. Kernel: zs_obj_write.

        ``len(data)`` must not exceed the size given to malloc (ValueError otherwise, nothing
        written). An object spanning two frames is written in two parts.
        """
        try:
            row = handle & ROW_MASK
            w = self._hw[row]
            ok = (w & 1) and (w >> GEN_SHIFT) == (handle >> HANDLE_GEN_SHIFT)
        except (TypeError, IndexError):
            ok = False
        if not ok:
            raise InvalidHandle(f"handle {handle!r} is not a live handle of this pool")
        n = len(data)
        if n > self._hs[row] + 1:
            raise ValueError(f"write of {n} bytes to handle {handle} exceeds its allocation of "
                             f"{self._hs[row] + 1} bytes")
        pfn = (w >> PFN_SHIFT) & PFN_MASK
        z = self.frame_zspage[pfn]
        cls = self._zcls[z]
        idx = (w >> 1) & IDX_MASK
        P = self.page_size
        ioff = ((idx * cls.size) & (P - 1)) + cls.hdr
        if ioff + n <= P:
            a = ((pfn & self._cm) << self.page_shift) + ioff
            self._chunks[pfn >> self._cs][a:a + n] = data
        else:
            self._obj_write_raw(z, cls, idx, data, cls.hdr)

    def read(self, handle, length=None) -> bytes:
        """Copy ``length`` bytes (default: the size given to malloc) out of the object.

        Kernel: zs_obj_read_begin / zs_obj_read_end (a spanning object is copied into a local
        buffer, as the kernel does).
        """
        try:
            row = handle & ROW_MASK
            w = self._hw[row]
            ok = (w & 1) and (w >> GEN_SHIFT) == (handle >> HANDLE_GEN_SHIFT)
        except (TypeError, IndexError):
            ok = False
        if not ok:
            raise InvalidHandle(f"handle {handle!r} is not a live handle of this pool")
        cap = self._hs[row] + 1
        if length is None:
            length = cap
        elif type(length) is not int or not 0 <= length <= cap:
            raise ValueError(f"read length {length!r} out of range 0..{cap} for handle {handle}")
        return self.obj_read(w, length)

    def obj_read(self, w: int, length: int) -> bytes:
        """``length`` bytes of the object whose handle word (``handles.words[row]``) is ``w``;
        no checks: callers hold a live handle (zram's slot table). Kernel: zs_obj_read_begin
        (an object that spans two frames is copied into a local buffer there too)."""
        pfn = (w >> PFN_SHIFT) & PFN_MASK
        z = self.frame_zspage[pfn]
        cls = self._zcls[z]
        off = ((w >> 1) & IDX_MASK) * cls.size
        P = self.page_size
        ioff = (off & (P - 1)) + cls.hdr
        base = (pfn & self._cm) << self.page_shift
        mm = self._chunks[pfn >> self._cs]
        a = base + ioff
        if ioff + length <= P:
            return mm[a:a + length]
        nxt = self.zspages.frames[z * self._chain + (off >> self.page_shift) + 1]
        b = (nxt & self._cm) << self.page_shift
        return mm[a:base + P] + self._chunks[nxt >> self._cs][b:b + length - (P - ioff)]

    def size_of(self, handle) -> int:
        """The size given to malloc for a live handle."""
        self.handles.lookup(handle)
        return self.handles.sizes[handle & ROW_MASK] + 1

    def class_of(self, handle):
        """The SizeClass holding a live handle's object."""
        w = self.handles.lookup(handle)
        return self.zspages.cls[self.frame_zspage[(w >> PFN_SHIFT) & PFN_MASK]].sc

    @property
    def total_pages(self) -> int:
        """Frames held by zspages. Kernel: zs_get_total_pages."""
        return self.pages_allocated

    @property
    def objects(self) -> int:
        """Live objects (handles)."""
        return self.handles.live

    def compact(self) -> int:
        """Move objects out of sparse zspages and free them; returns pages freed by this call.

        Kernel: zs_compact (6.4 algorithm for 6.18, the 4.8 one for linux-4.8; 4.8 itself
        returned the cumulative count, we return this call's as 5.12+ does).
        """
        from .compaction import zs_compact
        freed = zs_compact(self)
        self._maybe_trim()
        return freed

    #: single-threaded pools give row metadata back after compaction (zsmalloc.trim)
    _auto_trim = True

    def _maybe_trim(self) -> None:
        from .trim import trim, worth_it
        if self._auto_trim and worth_it(self):
            trim(self)

    def trim_metadata(self) -> dict:
        """Renumber zspage rows and cut free table tails now (single-threaded use only)."""
        from .trim import trim
        return trim(self)

    def can_compact(self) -> int:
        """Pages compaction could free. Kernel: zs_shrinker_count (sum of zs_can_compact)."""
        from .compaction import zs_can_compact
        return sum(zs_can_compact(c) for c in self.classes)

    def class_stats(self):
        """One row per distinct class, the debugfs 'classes' columns. See zsmalloc.stats."""
        from .stats import class_stats
        return class_stats(self)

    def format_classes(self) -> str:
        """The class table as the kernel's debugfs 'classes' file prints it."""
        from .stats import format_classes
        return format_classes(self)

    def surplus_zspages(self) -> set:
        """Empty zspages kept on purpose off every list (tuned profile only)."""
        return set()

    def check(self) -> None:
        """Verify every invariant; raises CheckError naming the broken one. See zsmalloc.check."""
        from .check import check_pool
        check_pool(self)

    def flush(self) -> None:
        """Return freed frames to the OS now rather than in the next batch."""
        self.arena.flush()

    def metadata_bytes(self) -> dict:
        """Bytes of Python-side metadata by structure (container payloads, measured)."""
        from .stats import metadata_bytes
        return metadata_bytes(self)

    def close(self) -> None:
        """Release all memory. Kernel: zs_destroy_pool. The pool is unusable afterwards."""
        self.arena.close()
        self.closed = True

    def __repr__(self):
        return (f"<Pool {self.config.profile} chain={self.config.chain_size} "
                f"page_size={self.page_size} objects={self.objects} pages={self.pages_allocated}>")

    # ---------------------------------------------------------------------------------
    # lock hooks: no-ops single-threaded; zsmalloc.locking replaces them for threads
    # ---------------------------------------------------------------------------------

    def zspage_write_trylock(self, z: int) -> bool:
        """Kernel: zspage_write_trylock (fails while a reader maps the zspage)."""
        return True

    def zspage_write_unlock(self, z: int) -> None:
        pass

    def pool_lock_contended(self) -> bool:
        """Kernel: rwlock_is_contended(&pool->lock), checked by compaction."""
        return False

    def compaction_yield(self, cls) -> None:
        """Kernel: the unlock / cond_resched / relock step inside __zs_compact."""

    def handle_pinned(self, handle: int) -> bool:
        """4.8: is the handle pinned by a mapper (trypin_tag would fail)?"""
        return handle in self.pinned

    def handle_trypin(self, handle: int) -> bool:
        """4.8: Kernel: trypin_tag. Single-threaded: fails only for a pin_handle'd handle."""
        return handle not in self.pinned

    def handle_unpin(self, handle: int) -> None:
        """4.8: Kernel: unpin_tag (pairs with a successful handle_trypin)."""

    def compaction_begin(self) -> bool:
        """Kernel: atomic_xchg(&pool->compaction_in_progress, 1) == 0."""
        if self.compaction_in_progress:
            return False
        self.compaction_in_progress = True
        return True

    def compaction_end(self) -> None:
        self.compaction_in_progress = False

    def compaction_yield_48(self, cls) -> None:
        """4.8: the spin_unlock / cond_resched / spin_lock between sources in __zs_compact."""

    def compaction_lock(self, cls) -> None:
        """6.18: write_lock(&pool->lock); spin_lock(&class->lock)."""

    def compaction_unlock(self, cls) -> None:
        """6.18: spin_unlock(&class->lock); write_unlock(&pool->lock)."""

    def arena_locked(self):
        """The page allocator's own lock (a leaf)."""
        return _NULL

    def arena_flush(self) -> None:
        with self.arena_locked():
            self.arena.flush()

    def pool_write_locked(self):
        """Kernel: write_lock(&pool->lock). A no-op context single-threaded."""
        return _NULL

    def pool_read_locked(self):
        return _NULL

    def class_locked(self, cls):
        """Kernel: spin_lock(&class->lock)."""
        return _NULL

    def zspage_migrate_write_locked(self, z: int):
        """Kernel (4.8): migrate_write_lock(zspage)."""
        return _NULL

    # ---------------------------------------------------------------------------------
    # page migration and deferred free (zsmalloc.migration)
    # ---------------------------------------------------------------------------------

    def used_pfns(self) -> list:
        """Every frame held by a zspage, ascending."""
        from .migration import used_pfns
        return used_pfns(self)

    def migrate_page(self, pfn: int, target: int | None = None) -> int:
        """Move one frame of a zspage to another frame; returns the new pfn.

        Kernel: zs_page_migrate (4.8: with isolate/putback). See zsmalloc.migration.
        """
        from .migration import migrate_page
        return migrate_page(self, pfn, target)

    def isolate_page(self, pfn: int) -> bool:
        """4.8: take a frame's zspage off its list for migration. Kernel: zs_page_isolate."""
        from .migration import isolate_page
        if not self.kernel_48:
            raise ValueError("isolate_page is the linux-4.8 protocol; 6.18 does not isolate")
        return isolate_page(self, pfn)

    def putback_page(self, pfn: int) -> None:
        """4.8: undo isolate_page after a failed migration. Kernel: zs_page_putback."""
        from .migration import putback_page
        putback_page(self, pfn)

    def migrate_isolated(self, pfn: int, target: int | None = None) -> int:
        """4.8: migrate a frame isolate_page took. Kernel: zs_page_migrate (4.8)."""
        from .migration import migrate_isolated_48
        return migrate_isolated_48(self, pfn, target)

    def lock_frame(self, pfn: int) -> None:
        """Hold a frame's page lock, as the migration core does while it migrates it.

        While held, a zspage emptied by zs_free cannot be freed (trylock_zspage fails): it
        waits on its class's empty list for free_work.
        """
        from .migration import _frame_owner
        _frame_owner(self, pfn)
        if pfn in self.locked_frames:
            raise ValueError(f"frame {pfn} is already locked")
        self.locked_frames.add(pfn)

    def unlock_frame(self, pfn: int) -> None:
        if pfn not in self.locked_frames:
            raise ValueError(f"frame {pfn} is not locked")
        self.locked_frames.discard(pfn)

    def pin_handle(self, handle) -> None:
        """4.8: pin a handle as zs_map_object does (migration then gets -EAGAIN)."""
        self.handles.lookup(handle)
        self.pinned[handle] = self.pinned.get(handle, 0) + 1

    def unpin_handle(self, handle) -> None:
        n = self.pinned.get(handle)
        if not n:
            raise ValueError(f"handle {handle!r} is not pinned")
        if n == 1:
            del self.pinned[handle]
        else:
            self.pinned[handle] = n - 1

    def kick_deferred_free(self) -> None:
        """Kernel: kick_deferred_free (schedule_work(&pool->free_work))."""
        self.deferred_pending = True
        if self.free_worker is not None:
            self.free_worker.kick()

    def free_work(self) -> int:
        """Run the deferred-free worker now; returns zspages freed. Kernel: async_free_zspage."""
        from .migration import free_work
        return free_work(self)

    def shrink_arena(self) -> int:
        """Pack live frames into the densest chunks; returns chunks unmapped."""
        from .migration import shrink_arena
        n = shrink_arena(self)
        if self._auto_trim:
            from .trim import _trim_frames
            _trim_frames(self)
            self._maybe_trim()
        return n

    def evacuate(self, chunk: int) -> int:
        """Move every frame out of one chunk so it is unmapped; returns frames moved."""
        from .migration import evacuate
        return evacuate(self, chunk)

    # ---------------------------------------------------------------------------------
    # zspage life cycle
    # ---------------------------------------------------------------------------------

    def _on_chunk_map(self, first_pfn: int, n: int) -> None:
        need = first_pfn + n - len(self.frame_zspage)
        if need > 0:
            self.frame_zspage.extend(array("I", [NO_ZSPAGE]) * need)
            self.frame_first_obj.extend(array("H", bytes(2 * need)))

    def _zspage_create(self, cls: ClassState) -> int:
        """A new zspage with its free list built. Kernel: alloc_zspage + init_zspage.

        Adds ppz to pages_allocated and objs to the class's ZS_OBJS_ALLOCATED, as zs_malloc
        does right after. Not on any list yet.
        """
        arena = self.arena
        pfns = []
        try:
            for _ in range(cls.ppz):
                pfns.append(arena.alloc())
        except (OSError, MemoryError) as e:
            for p in pfns:
                arena.free(p)
            raise MemoryError(f"no frame for a new zspage of class {cls.size}: {e}") from e
        zt = self.zspages
        z = zt.new(cls)
        base = z * self._chain
        P, size = self.page_size, cls.size
        qviews, cs, cm, wps = arena.qviews, self._cs, self._cm, self._wps
        for k, pfn in enumerate(pfns):
            zt.frames[base + k] = pfn
            self.frame_zspage[pfn] = z
            self.frame_first_obj[pfn] = (-k * P) % size
            plan = cls.link_plan[k]
            if plan is not None:
                w0, step, vals = plan
                start = ((pfn & cm) << wps) + w0
                qviews[pfn >> cs][start:start + step * (len(vals) - 1) + 1:step] = vals
        if cls.huge:
            zt.huge_handle[z] = 0
        self.pages_allocated += cls.ppz
        cls.allocated += cls.objs
        return z

    def _regroup(self, cls: ClassState, z: int, g: int) -> None:
        """Move z to the head of group g. Kernel: fix_fullness_group.

        An isolated zspage (off every list: compaction or 4.8 migration holds it) only has its
        recorded group updated, as in the kernel. remove_zspage and insert_zspage are written
        out here: this runs on a large share of mallocs and frees.
        """
        zt = self.zspages
        prv, nxt = zt.prev, zt.next
        p = prv[z]
        og = zt.group[z]
        if p == OFF_LIST:
            if og != -1:
                zt.group[z] = g          # isolated: record only
                return
        elif p == ON_FULL:
            cls.counts[og] -= 1
        else:
            # Kernel: remove_zspage
            n = nxt[z]
            if p == NIL:
                cls.heads[og] = n
                if n == NIL:
                    cls.mask &= ~(1 << og)
            else:
                nxt[p] = n
            if n != NIL:
                prv[n] = p
            cls.counts[og] -= 1
        # Kernel: insert_zspage
        cls.counts[g] += 1
        zt.group[z] = g
        if g == cls.full:
            prv[z] = ON_FULL             # the full list's order is never observed
            return
        heads = cls.heads
        head = heads[g]
        if head == NIL:
            prv[z] = NIL
            nxt[z] = NIL
            heads[g] = z
            if g != cls.full:
                cls.mask |= 1 << g
        elif self.kernel_48 and zt.inuse[z] < zt.inuse[head]:
            after = nxt[head]          # 4.8 ->inuse optimisation: second place
            nxt[z] = after
            prv[z] = head
            nxt[head] = z
            if after != NIL:
                prv[after] = z
        else:
            nxt[z] = head
            prv[z] = NIL
            prv[head] = z
            heads[g] = z

    def _free_zspage(self, cls: ClassState, z: int) -> bool:
        """Free an empty zspage now, or leave it for the deferred worker. Kernel: free_zspage.

        Returns True when freed now. It stays (on the empty list, still counted) when a frame of
        it is locked by page migration (6.18 trylock_zspage fails) or, in 4.8, while it is
        isolated (zs_page_putback frees it later).
        """
        if self.zspages.isolated[z]:
            return False   # 4.8: isolated for migration; putback schedules the free
        if self._try_release_empty(cls, z):
            return True
        self.kick_deferred_free()           # trylock_zspage failed
        return False

    def _try_release_empty(self, cls: ClassState, z: int) -> bool:
        """Release an empty zspage unless a frame of it is locked. Kernel: trylock_zspage +
        remove_zspage + __free_zspage. The class lock is held; ConcurrentPool runs this under
        its leaf lock so the check and the release are one step against lock_frame (the
        kernel's page locks)."""
        zt = self.zspages
        if self.locked_frames:
            base = z * self._chain
            for k in range(cls.ppz):
                if zt.frames[base + k] in self.locked_frames:
                    return False
        if zt.prev[z] != OFF_LIST:
            zt.remove(cls, z)
        Pool._zspage_release(self, cls, z)   # the caller holds whatever lock it needs
        return True

    def _zspage_release(self, cls: ClassState, z: int) -> None:
        """Give the frames back and forget the zspage. Kernel: __free_zspage."""
        zt = self.zspages
        base = z * self._chain
        arena = self.arena
        for k in range(cls.ppz):
            pfn = zt.frames[base + k]
            self.frame_zspage[pfn] = NO_ZSPAGE
            arena.free(pfn)
        self.pages_allocated -= cls.ppz
        cls.allocated -= cls.objs
        zt.release(z)

    # ---------------------------------------------------------------------------------
    # object location helpers (cold paths: compaction, migration, check)
    # ---------------------------------------------------------------------------------

    def _obj_frame(self, z: int, cls: ClassState, idx: int) -> tuple[int, int]:
        """(pfn, offset in frame) of object idx of zspage z."""
        off = idx * cls.size
        return self.zspages.frames[z * self._chain + (off >> self.page_shift)], off & (self.page_size - 1)

    def _word_at(self, pfn: int, ioff: int) -> int:
        return self.arena.qviews[pfn >> self._cs][((pfn & self._cm) << self._wps) + (ioff >> 3)]

    def _set_word_at(self, pfn: int, ioff: int, value: int) -> None:
        self.arena.qviews[pfn >> self._cs][((pfn & self._cm) << self._wps) + (ioff >> 3)] = value

    def _obj_read_raw(self, z: int, cls: ClassState, idx: int) -> bytes:
        """All ``cls.size`` bytes of an object slot (header included), across frames."""
        P = self.page_size
        off = idx * cls.size
        k = off >> self.page_shift
        ioff = off & (P - 1)
        n = cls.size if cls.size <= P else P
        pfn = self.zspages.frames[z * self._chain + k]
        a = ((pfn & self._cm) << self.page_shift) + ioff
        mm = self.arena.chunks[pfn >> self._cs]
        if ioff + n <= P:
            return mm[a:a + n]
        first = P - ioff
        nxt = self.zspages.frames[z * self._chain + k + 1]
        b = (nxt & self._cm) << self.page_shift
        return mm[a:a + first] + self.arena.chunks[nxt >> self._cs][b:b + n - first]

    def _obj_write_raw(self, z: int, cls: ClassState, idx: int, data: bytes, skip: int = 0) -> None:
        """Write ``data`` into object idx's slot, ``skip`` bytes in (8 to pass the header).
        Kernel: zs_obj_write (a spanning object: two memcpy_to_page calls)."""
        P = self.page_size
        off = idx * cls.size + skip
        k = off >> self.page_shift
        ioff = off & (P - 1)
        n = len(data)
        pfn = self.zspages.frames[z * self._chain + k]
        a = ((pfn & self._cm) << self.page_shift) + ioff
        mm = self.arena.chunks[pfn >> self._cs]
        if ioff + n <= P:
            mm[a:a + n] = data
            return
        first = P - ioff
        mm[a:a + first] = data[:first]
        nxt = self.zspages.frames[z * self._chain + k + 1]
        b = (nxt & self._cm) << self.page_shift
        self.arena.chunks[nxt >> self._cs][b:b + n - first] = data[first:]

    def _obj_handle(self, z: int, cls: ClassState, idx: int) -> int:
        """Handle of object idx if allocated, else 0. Kernel: obj_allocated."""
        zt = self.zspages
        if cls.huge:
            hh = zt.huge_handle[z]
            return hh >> 1 if hh & 1 else 0
        pfn, ioff = self._obj_frame(z, cls, idx)
        head = self._word_at(pfn, ioff)
        return head >> 1 if head & 1 else 0
