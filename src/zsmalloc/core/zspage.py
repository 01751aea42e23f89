"""Zspages and their fullness lists. Kernel: struct size_class, struct zspage and the
zsmalloc fields of its pages (zpdesc), get_fullness_group, insert_zspage, remove_zspage,
fix_fullness_group, find_get_zspage, alloc_zspage + init_zspage, free_zspage,
__free_zspage, trylock_zspage, kick_deferred_free.

A zspage is a chain of ``ppz`` frames holding ``objs`` objects of one class. It is a *row*
(an integer id) in flat columns, not a Python object, so our metadata stays near the
kernel's. Per zspage (struct zspage)::

    inuse     objects allocated                 freeobj   head of the in-frame free list (-1)
    group     fullness group (-1: never listed) cls       its class (position in the pool)
    prev/next list links (list_head)             isolated  4.8: frames isolated for migration
    first     its first frame (first_zpdesc)    huge_row  a huge object's handle row << 1 | 1

Per frame (the zpdesc fields): ``frame_zspage`` (zpdesc->zspage), ``frame_next`` (the chain,
get_next_zpdesc), ``frame_first`` (first_obj_offset, stored when the zspage is built: the fix
that followed the 2016 patch) and ``frame_flags`` (the page lock a migration holds; 4.8's
PG_isolated).

Fullness lists are intrusive doubly linked lists through ``prev``/``next``, exactly like the
kernel's ``list_head``: insert at the head, consumers take the head, a zspage whose group does
not change keeps its place. The full list's order is never observed (nothing takes from it), so
it is kept as a count only (``prev == ON_FULL``), which halves the work of the common
full <-> 99 % flip. Group numbers are chosen so that "preferred for allocation" is always the
highest eligible group: ``find_get_zspage`` is one find-last-set on a bitmask.

===========  ===================================================  =======================
profile      groups                                               allocation takes
===========  ===================================================  =======================
6.18         0 = ZS_INUSE_RATIO_0, 1..10 = 10%..99%, 11 = 100%    10, 9, ..., 1, 0
4.8          0 = ZS_EMPTY, 1 = ALMOST_EMPTY, 2 = ALMOST_FULL,     2, 1, 0
             3 = ZS_FULL; insert second if fewer in use than
             the head (the ->inuse optimisation, gone in 6.4)
===========  ===================================================  =======================

Invariant ids (``_check``): ZS-CLASS-COUNTS, ZS-GROUP-COUNTS, ZS-LIST-LINKS, ZS-GROUP,
ZS-ON-LIST, ZS-INUSE, ZS-FREELIST, ZS-TOTAL-PAGES, ZS-FRAMES (see ``check``).

Locks: callers hold the class lock for list and zspage changes, and the leaf lock (the
kernel's page allocator) around ``create`` and ``release``.
Costs: list moves O(1); ``create``/``release`` O(frames); ``frame(z, k)`` O(k).
"""

from array import array

import cython

from .arena import Arena
from .bitops import fls0
from .columns import resized
from .layout import (FRAME_ISOLATED, FRAME_LOCKED, FULL_618, GROUPS_48, GROUPS_618, LINK_END,
                     NIL, NO_CLASS, NO_ZSPAGE, OFF_LIST, ON_FULL, ZS_ALMOST_EMPTY,
                     ZS_ALMOST_FULL, ZS_EMPTY, ZS_FULL)


def group_table_618(objs: int) -> bytes:
    """inuse -> group, 6.18's in-use ratio groups. Kernel: get_fullness_group (6.4+)."""
    out = bytearray(objs + 1)
    for inuse in range(objs + 1):
        if inuse == 0:
            g = 0
        elif inuse == objs:
            g = FULL_618
        else:
            g = (100 * inuse) // objs // 10 + 1
        out[inuse] = g
    return bytes(out)


def group_table_48(objs: int) -> bytes:
    """inuse -> group, 4.8's four groups (fullness_threshold_frac = 4).
    Kernel: get_fullness_group (4.8)."""
    out = bytearray(objs + 1)
    for inuse in range(objs + 1):
        if inuse == 0:
            g = ZS_EMPTY
        elif inuse == objs:
            g = ZS_FULL
        elif inuse <= 3 * objs // 4:
            g = ZS_ALMOST_EMPTY
        else:
            g = ZS_ALMOST_FULL
        out[inuse] = g
    return bytes(out)


class ClassState:
    """One size class of one pool. Kernel: struct size_class.

    ``grp[inuse]`` is the fullness group; ``heads[g]``/``counts[g]`` the head and length of
    group g's list; bit g of ``mask`` is set when list g is non-empty (never the full group).
    ``allocated``/``inuse`` are ZS_OBJS_ALLOCATED / ZS_OBJS_INUSE. The group scheme and the
    insert rule are data chosen from the profile (``scheme`` "6.18" or "4.8").
    """

    def __init__(self, sc, pos: int, page_size: int, scheme: str):
        self.sc = sc
        self.pos = pos
        self.index = sc.index
        self.size = sc.size
        self.ppz = sc.pages_per_zspage
        self.objs = sc.objs_per_zspage
        self.huge = sc.huge
        self.hdr = 0 if sc.huge else 8
        if scheme == "4.8":
            table, self.nr_groups, self.full = group_table_48(self.objs), GROUPS_48, ZS_FULL
            self.insert_second = True
        else:
            table, self.nr_groups, self.full = group_table_618(self.objs), GROUPS_618, FULL_618
            self.insert_second = False
        self._grp_store = array("B", table)
        self._heads_store = array("i", [NIL]) * self.nr_groups
        self._counts_store = array("q", [0]) * self.nr_groups
        self.grp = self._grp_store
        self.heads = self._heads_store
        self.counts = self._counts_store
        self.mask = 0
        self.alloc_mask = (1 << self.full) - 1
        self.allocated = 0
        self.inuse = 0
        self.surplus = NIL
        self.link_plan = self._link_plan(page_size)

    def _link_plan(self, page_size: int) -> list:
        """Per frame k: (first word, word step, link words) of the objects starting in it.

        Kernel: init_zspage. Free object j holds ``(j+1) << 1``; the last real object holds
        LINK_END. The phantom object past the end is never linked: it is never handed out.
        """
        plan = []
        size, n = self.size, self.objs
        for k in range(self.ppz):
            lo = k * page_size
            j0 = -(-lo // size)
            j1 = min(n - 1, (lo + page_size - 1) // size)
            if j0 > j1:
                plan.append(None)
                continue
            vals = array("Q", [((j + 1) << 1) if j < n - 1 else LINK_END for j in range(j0, j1 + 1)])
            plan.append((j0 * size - lo, size >> 3, vals))
        return plan

    def group_counts(self) -> list:
        """Zspages per fullness group (debugfs 'classes' columns)."""
        return [self.counts[g] for g in range(self.nr_groups)]

    def head(self, g: cython.Py_ssize_t) -> cython.Py_ssize_t:
        return self.heads[g]

    def group_of(self, inuse: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """Kernel: get_fullness_group."""
        return self.grp[inuse]

    def __repr__(self):
        return f"<class {self.index} size {self.size} ppz {self.ppz} objs {self.objs}>"


class ZspageTable:
    """Every zspage of one pool, and the zsmalloc fields of every frame."""

    def __init__(self, arena: Arena, classes: list, chain: int):
        self.arena = arena
        self.classes = classes
        self.chain = chain
        self.page_size = arena.page_size
        self.page_shift = arena.page_shift
        self.rows = 0
        self.cap = 0
        self.nfree = 0
        self.frame_cap = 0
        self.flagged = 0
        self.pages_allocated = 0
        self.deferred_pending = False
        self.worker = None
        self._inuse_s, self._freeobj_s, self._group_s = array("H"), array("i"), array("b")
        self._cls_s, self._iso_s, self._prev_s = array("H"), array("B"), array("i")
        self._next_s, self._first_s, self._huge_s = array("i"), array("I"), array("I")
        self._freeids_s = array("i")
        self._fz_s, self._ff_s, self._fn_s, self._fl_s = array("I"), array("H"), array("I"), array("B")
        self._bind()

    # -- columns (grown by building new arrays, then swapping the views: core.columns) ----

    def _bind(self) -> None:
        self.inuse = self._inuse_s
        self.freeobj = self._freeobj_s
        self.group = self._group_s
        self.cls = self._cls_s
        self.isolated = self._iso_s
        self.prev = self._prev_s
        self.next = self._next_s
        self.first = self._first_s
        self.huge_row = self._huge_s
        self.free_ids = self._freeids_s
        self.frame_zspage = self._fz_s
        self.frame_first = self._ff_s
        self.frame_next = self._fn_s
        self.frame_flags = self._fl_s

    def _resize_rows(self, n: cython.Py_ssize_t) -> None:
        # (no lists or tuples here: the copies and the swap must run no Python code)
        inuse = resized(self._inuse_s, n)
        freeobj = resized(self._freeobj_s, n)
        group = resized(self._group_s, n)
        cls = resized(self._cls_s, n)
        iso = resized(self._iso_s, n)
        prev = resized(self._prev_s, n)
        nxt = resized(self._next_s, n)
        first = resized(self._first_s, n)
        huge = resized(self._huge_s, n)
        free_ids = resized(self._freeids_s, n)
        self._inuse_s = inuse
        self._freeobj_s = freeobj
        self._group_s = group
        self._cls_s = cls
        self._iso_s = iso
        self._prev_s = prev
        self._next_s = nxt
        self._first_s = first
        self._huge_s = huge
        self._freeids_s = free_ids
        self._bind()
        self.cap = n

    def _grow_rows(self) -> None:
        self._resize_rows(self.cap + max(64, self.cap))

    def _resize_frames(self, n: cython.Py_ssize_t) -> None:
        fz = resized(self._fz_s, n, -1)          # NO_ZSPAGE: all ones
        ff = resized(self._ff_s, n)
        fn = resized(self._fn_s, n)
        fl = resized(self._fl_s, n)
        self._fz_s = fz
        self._ff_s = ff
        self._fn_s = fn
        self._fl_s = fl
        self._bind()
        self.frame_cap = n

    def cover_frame(self, pfn: cython.Py_ssize_t) -> None:
        """Make the per-frame columns reach frame ``pfn`` (the arena may hand out a frame of
        a chunk never used before). Every path that takes a frame from the arena calls this
        before writing the frame's fields. Under the leaf lock."""
        if pfn >= self.frame_cap:
            self._resize_frames(max(pfn + 1, 2 * self.frame_cap, 512))

    def _new_row(self, cls: ClassState) -> cython.Py_ssize_t:
        z: cython.Py_ssize_t
        if self.nfree:
            self.nfree -= 1
            z = self.free_ids[self.nfree]
        else:
            if self.rows == self.cap:
                self._grow_rows()
            z = self.rows
            self.rows += 1
        self.inuse[z] = 0
        self.freeobj[z] = 0
        self.group[z] = -1
        self.cls[z] = cls.pos
        self.isolated[z] = 0
        self.prev[z] = OFF_LIST
        self.next[z] = NIL
        self.huge_row[z] = 0
        return z

    # -- life cycle -----------------------------------------------------------------------

    def create(self, cls: ClassState) -> cython.Py_ssize_t:
        """A new zspage with its free list built, on no list yet. Kernel: alloc_zspage +
        init_zspage, and the pages_allocated update zs_malloc does next (ZS_OBJS_ALLOCATED is
        the caller's, under the class lock).
        MemoryError (nothing changed) when the arena has no frames left."""
        arena = self.arena
        ppz: cython.Py_ssize_t = cls.ppz
        pfns = array("I")
        k: cython.Py_ssize_t
        try:
            for k in range(ppz):
                pfns.append(arena.alloc_frame())
        except MemoryError:
            for k in range(len(pfns)):
                arena.free_frame(pfns[k])
            raise
        z: cython.Py_ssize_t = self._new_row(cls)
        self.cover_frame(max(pfns))              # frames come from any chunk, in any order
        P: cython.Py_ssize_t = self.page_size
        size: cython.Py_ssize_t = cls.size
        pfn: cython.Py_ssize_t
        for k in range(ppz):
            pfn = pfns[k]
            self.frame_zspage[pfn] = z
            self.frame_first[pfn] = (-k * P) % size
            self.frame_next[pfn] = pfns[k + 1] if k + 1 < ppz else NO_ZSPAGE
            self.frame_flags[pfn] = 0
            plan = cls.link_plan[k]
            if plan is not None:
                arena.store_strided((pfn << self.page_shift) + plan[0], plan[1], plan[2])
        self.first[z] = pfns[0]
        self.pages_allocated += ppz
        return z

    def release(self, cls: ClassState, z: cython.Py_ssize_t) -> None:
        """Give the frames back and forget the zspage. Kernel: __free_zspage."""
        pfn: cython.Py_ssize_t = self.first[z]
        nxt: cython.Py_ssize_t
        k: cython.Py_ssize_t
        for k in range(cls.ppz):
            nxt = self.frame_next[pfn]
            self.frame_zspage[pfn] = NO_ZSPAGE
            self.arena.free_frame(pfn)
            pfn = nxt
        self.pages_allocated -= cls.ppz
        cls.allocated -= cls.objs
        self.cls[z] = NO_CLASS
        self.free_ids[self.nfree] = z
        self.nfree += 1

    def frame(self, z: cython.Py_ssize_t, k: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """Frame k of zspage z. Kernel: get_first_zpdesc + k x get_next_zpdesc."""
        pfn: cython.Py_ssize_t = self.first[z]
        while k:
            pfn = self.frame_next[pfn]
            k -= 1
        return pfn

    # -- fullness lists -------------------------------------------------------------------

    def insert(self, cls: ClassState, z: cython.Py_ssize_t, g: cython.Py_ssize_t) -> None:
        """Put z at the head of group g's list (4.8: second, if it has fewer objects in use
        than the head). Kernel: insert_zspage."""
        cls.counts[g] += 1
        self.group[z] = g
        if g == cls.full:
            self.prev[z] = ON_FULL       # the full list's order is never observed
            self.next[z] = NIL
            return
        head: cython.Py_ssize_t = cls.heads[g]
        if head == NIL:
            self.prev[z] = NIL
            self.next[z] = NIL
            cls.heads[g] = z
            cls.mask |= 1 << g
        elif cls.insert_second and self.inuse[z] < self.inuse[head]:
            after: cython.Py_ssize_t = self.next[head]
            self.next[z] = after
            self.prev[z] = head
            self.next[head] = z
            if after != NIL:
                self.prev[after] = z
        else:
            self.next[z] = head
            self.prev[z] = NIL
            self.prev[head] = z
            cls.heads[g] = z

    def remove(self, cls: ClassState, z: cython.Py_ssize_t) -> None:
        """Unlink z from its group's list; it keeps its recorded group. Kernel: remove_zspage."""
        g: cython.Py_ssize_t = self.group[z]
        p: cython.Py_ssize_t = self.prev[z]
        n: cython.Py_ssize_t = self.next[z]
        cls.counts[g] -= 1
        self.prev[z] = OFF_LIST
        self.next[z] = NIL
        if p == ON_FULL:
            return
        if p == NIL:
            cls.heads[g] = n
            if n == NIL:
                cls.mask &= ~(1 << g)
        else:
            self.next[p] = n
        if n != NIL:
            self.prev[n] = p

    def fix_fullness_group(self, cls: ClassState, z: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """Move z to the list its in-use count says; returns the group. A zspage off every
        list (held by compaction, or isolated in 4.8) only has its group recorded, as in the
        kernel. Kernel: fix_fullness_group."""
        g: cython.Py_ssize_t = cls.grp[self.inuse[z]]
        if g == self.group[z]:
            return g
        if self.prev[z] == OFF_LIST and self.group[z] != -1:
            self.group[z] = g
            return g
        if self.prev[z] != OFF_LIST:
            self.remove(cls, z)
        self.insert(cls, z, g)
        return g

    def putback(self, cls: ClassState, z: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """Insert an off-list zspage at the head of its group; returns the group.
        Kernel: putback_zspage."""
        g: cython.Py_ssize_t = cls.grp[self.inuse[z]]
        self.insert(cls, z, g)
        return g

    def find_get_zspage(self, cls: ClassState) -> cython.Py_ssize_t:
        """The head of the fullest non-full group, or NIL. Kernel: find_get_zspage."""
        m: cython.uint = cls.mask & cls.alloc_mask
        if not m:
            return NIL
        return cls.heads[fls0(m)]

    def take_group_head(self, cls: ClassState, lo: cython.Py_ssize_t, hi: cython.Py_ssize_t,
                        highest: cython.bint) -> cython.Py_ssize_t:
        """Take the head of the highest (or lowest) non-empty group in lo..hi off its list;
        NIL if none. Kernel: isolate_dst_zspage / isolate_src_zspage."""
        m: cython.uint = cls.mask & ((1 << (hi + 1)) - 1) & ~((1 << lo) - 1)
        if not m:
            return NIL
        z: cython.Py_ssize_t = cls.heads[fls0(m) if highest else fls0(m & -m)]
        self.remove(cls, z)
        return z

    # -- freeing --------------------------------------------------------------------------

    def frames_flagged(self, cls: ClassState, z: cython.Py_ssize_t,
                       flags: cython.uint) -> cython.bint:
        """Does a frame of z carry one of ``flags`` (a page lock, an isolation)?"""
        if not self.flagged:
            return False
        pfn: cython.Py_ssize_t = self.first[z]
        k: cython.Py_ssize_t
        for k in range(cls.ppz):
            if self.frame_flags[pfn] & flags:
                return True
            pfn = self.frame_next[pfn]
        return False

    def try_release_empty(self, cls: ClassState, z: cython.Py_ssize_t) -> cython.bint:
        """Release an empty zspage unless a frame of it is locked or isolated.
        Kernel: trylock_zspage + remove_zspage + __free_zspage."""
        if self.isolated[z] or self.frames_flagged(cls, z, FRAME_LOCKED | FRAME_ISOLATED):
            return False
        if self.prev[z] != OFF_LIST:
            self.remove(cls, z)
        self.release(cls, z)
        return True

    def free_zspage(self, cls: ClassState, z: cython.Py_ssize_t) -> cython.bint:
        """Free an empty zspage now, or leave it on the empty list for the deferred-free
        worker when a frame of it is locked by page migration (6.18) or the zspage is
        isolated (4.8: putback frees it later). Returns True when freed now.
        Kernel: free_zspage."""
        if self.isolated[z]:
            return False
        if self.try_release_empty(cls, z):
            return True
        self.kick_deferred_free()
        return False

    def kick_deferred_free(self) -> None:
        """Kernel: kick_deferred_free (schedule_work(&pool->free_work))."""
        self.deferred_pending = True
        if self.worker is not None:
            self.worker.kick()

    # -- queries (cold) -------------------------------------------------------------------

    def class_of_zspage(self, z: cython.Py_ssize_t) -> ClassState:
        return self.classes[self.cls[z]]

    def zspage_of_frame(self, pfn: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """The zspage holding frame ``pfn``, or -1."""
        if pfn < 0 or pfn >= self.frame_cap or self.frame_zspage[pfn] == NO_ZSPAGE:
            return -1
        return self.frame_zspage[pfn]

    def class_of_frame(self, pfn: cython.Py_ssize_t) -> ClassState:
        return self.classes[self.cls[self.frame_zspage[pfn]]]

    def frames_of(self, z: cython.Py_ssize_t) -> list:
        """The frames of zspage z, in chain order."""
        cls: ClassState = self.classes[self.cls[z]]
        return [self.frame(z, k) for k in range(cls.ppz)]

    def live_ids(self) -> list:
        return [z for z in range(self.rows) if self.cls[z] != NO_CLASS]

    def list_of(self, cls: ClassState, g: cython.Py_ssize_t) -> list:
        """Zspage ids of group g, head first (the full group: in row order)."""
        out = []
        z: cython.Py_ssize_t
        if g == cls.full:
            for z in range(self.rows):
                if self.cls[z] == cls.pos and self.prev[z] == ON_FULL:
                    out.append(z)
            return out
        z = cls.heads[g]
        while z != NIL:
            out.append(z)
            z = self.next[z]
        return out

    def first_obj_offset(self, pfn: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """Kernel: get_first_obj_offset."""
        return self.frame_first[pfn]

    def set_frame_flag(self, pfn: cython.Py_ssize_t, flag: cython.uint, on: cython.bint) -> None:
        had: cython.bint = (self.frame_flags[pfn] & flag) != 0
        if on and not had:
            if not self.frame_flags[pfn]:
                self.flagged += 1
            self.frame_flags[pfn] |= flag
        elif had and not on:
            self.frame_flags[pfn] &= ~flag
            if not self.frame_flags[pfn]:
                self.flagged -= 1

    def frame_flag(self, pfn: cython.Py_ssize_t, flag: cython.uint) -> cython.bint:
        return 0 <= pfn < self.frame_cap and (self.frame_flags[pfn] & flag) != 0

    def freeobj_of(self, z: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """Head of z's in-frame free list (-1: none)."""
        return self.freeobj[z]

    def inuse_of(self, z: cython.Py_ssize_t) -> cython.Py_ssize_t:
        return self.inuse[z]

    def group_of(self, z: cython.Py_ssize_t) -> cython.Py_ssize_t:
        return self.group[z]

    def on_list(self, z: cython.Py_ssize_t) -> cython.bint:
        return self.prev[z] != OFF_LIST

    def isolated_count(self, z: cython.Py_ssize_t) -> cython.Py_ssize_t:
        return self.isolated[z]

    def nbytes_rows(self) -> int:
        """Bytes of the per-zspage columns (capacity included)."""
        return sum(len(s) * s.itemsize for s in (
            self._inuse_s, self._freeobj_s, self._group_s, self._cls_s, self._iso_s,
            self._prev_s, self._next_s, self._first_s, self._huge_s, self._freeids_s))

    def nbytes_frames(self) -> int:
        """Bytes of the per-frame columns (capacity included)."""
        return sum(len(s) * s.itemsize for s in (self._fz_s, self._ff_s, self._fn_s, self._fl_s))

    # -- giving metadata back -------------------------------------------------------------

    def trim(self) -> cython.Py_ssize_t:
        """Renumber the highest live rows into the lowest free ones and cut the columns;
        returns how many rows went. Zspage ids are internal (only the per-frame column and
        the list links name them). Single-threaded use only."""
        live: cython.Py_ssize_t = self.rows - self.nfree
        holes = sorted([self.free_ids[i] for i in range(self.nfree) if self.free_ids[i] < live])
        movers = [z for z in range(self.rows - 1, live - 1, -1) if self.cls[z] != NO_CLASS]
        for src, dst in zip(movers, holes):
            self._move_row(src, dst)
        cut: cython.Py_ssize_t = self.rows - live
        self._resize_rows(live)
        self.rows = live
        self.nfree = 0
        # the per-frame columns: cut above the arena's high-water mark
        keep = self.arena.chunks_high << self.arena.chunk_shift
        if keep < self.frame_cap:
            self._resize_frames(keep)
        return cut

    def _move_row(self, src: cython.Py_ssize_t, dst: cython.Py_ssize_t) -> None:
        """Zspage row src becomes row dst (a free row)."""
        cls: ClassState = self.classes[self.cls[src]]
        self.inuse[dst] = self.inuse[src]
        self.freeobj[dst] = self.freeobj[src]
        self.group[dst] = self.group[src]
        self.cls[dst] = self.cls[src]
        self.isolated[dst] = self.isolated[src]
        self.prev[dst] = self.prev[src]
        self.next[dst] = self.next[src]
        self.first[dst] = self.first[src]
        self.huge_row[dst] = self.huge_row[src]
        p: cython.Py_ssize_t = self.prev[dst]
        n: cython.Py_ssize_t = self.next[dst]
        if p != OFF_LIST and p != ON_FULL:
            if p == NIL:
                cls.heads[self.group[dst]] = dst
            else:
                self.next[p] = dst
            if n != NIL:
                self.prev[n] = dst
        if cls.surplus == src:
            cls.surplus = dst
        pfn: cython.Py_ssize_t = self.first[dst]
        k: cython.Py_ssize_t
        for k in range(cls.ppz):
            self.frame_zspage[pfn] = dst
            pfn = self.frame_next[pfn]
        self.cls[src] = NO_CLASS

    # -- invariants -----------------------------------------------------------------------

    def _check(self, surplus=(), deferred_ok: bool = False) -> None:
        """Every list, count, frame and in-frame free list (ids in the module docstring)."""
        from ..errors import CheckError

        def fail(inv, msg):
            raise CheckError(inv, msg)

        cls: ClassState
        live = self.live_ids()
        by_class = {}
        for z in live:
            by_class.setdefault(self.cls[z], []).append(z)
        on_list = {}
        for cls in self.classes:
            mask = 0
            for g in range(cls.nr_groups):
                members = self.list_of(cls, g)
                if g != cls.full:
                    prev = NIL
                    for i, z in enumerate(members):
                        if i > self.rows:
                            fail("ZS-LIST-LINKS", f"cycle in group {g} of class {cls.size}")
                        if self.cls[z] != cls.pos:
                            fail("ZS-LIST-LINKS", f"zspage {z} on a list of class {cls.size} "
                                 f"belongs elsewhere")
                        if self.prev[z] != prev:
                            fail("ZS-LIST-LINKS", f"zspage {z}: prev {self.prev[z]} != {prev}")
                        prev = z
                    if members:
                        mask |= 1 << g
                elif cls.heads[g] != NIL:
                    fail("ZS-LIST-LINKS", f"class {cls.size}: the full list has a head")
                for z in members:
                    if z in on_list:
                        fail("ZS-LIST-LINKS", f"zspage {z} seen twice (group {g} of class "
                             f"{cls.size})")
                    on_list[z] = g
                    if self.group[z] != g:
                        fail("ZS-GROUP", f"zspage {z} on list {g} records group {self.group[z]}")
                    want = cls.grp[self.inuse[z]]
                    if want != g:
                        fail("ZS-GROUP", f"zspage {z} (class {cls.size}, inuse {self.inuse[z]}) "
                             f"on group {g}, should be {want}")
                if len(members) != cls.counts[g]:
                    fail("ZS-GROUP-COUNTS", f"class {cls.size} group {g}: counter "
                         f"{cls.counts[g]}, list has {len(members)}")
            if mask != cls.mask:
                fail("ZS-LIST-LINKS", f"class {cls.size}: mask {cls.mask:#x}, lists say {mask:#x}")
        for z in live:
            if z not in on_list and z not in surplus:
                if self.prev[z] != OFF_LIST or not self.isolated[z]:
                    fail("ZS-ON-LIST", f"zspage {z} (class {self.classes[self.cls[z]].size}) "
                         f"is on no list")
        seen = {}
        total = 0
        P = self.page_size
        for cls in self.classes:
            zs = by_class.get(cls.pos, [])
            if cls.allocated != len(zs) * cls.objs:
                fail("ZS-CLASS-COUNTS", f"class {cls.size}: obj_allocated {cls.allocated} != "
                     f"{len(zs)} zspages * {cls.objs}")
            s = sum(self.inuse[z] for z in zs)
            if s != cls.inuse:
                fail("ZS-CLASS-COUNTS", f"class {cls.size}: obj_used {cls.inuse} != sum of "
                     f"inuse {s}")
            for z in zs:
                inuse = self.inuse[z]
                if not 0 <= inuse <= cls.objs:
                    fail("ZS-INUSE", f"zspage {z}: inuse {inuse} outside 0..{cls.objs}")
                if inuse == 0 and not (deferred_ok or self.isolated[z] or z in surplus):
                    fail("ZS-INUSE", f"zspage {z} (class {cls.size}) is empty but was not freed")
                pfn = self.first[z]
                for k in range(cls.ppz):
                    if pfn in seen:
                        fail("ZS-FRAMES", f"frame {pfn} in zspages {seen[pfn]} and {z}")
                    seen[pfn] = z
                    if pfn >= self.frame_cap or self.frame_zspage[pfn] != z:
                        fail("ZS-FRAMES", f"frame {pfn} of zspage {z} maps elsewhere")
                    if not self.arena.is_used(pfn):
                        fail("ZS-FRAMES", f"frame {pfn} of zspage {z} is free in the arena")
                    if self.frame_first[pfn] != (-k * P) % cls.size:
                        fail("ZS-FRAMES", f"frame {pfn} (#{k} of zspage {z}): first_obj_offset "
                             f"{self.frame_first[pfn]} != {(-k * P) % cls.size}")
                    pfn = self.frame_next[pfn] if k + 1 < cls.ppz else pfn
                total += cls.ppz
                self._check_freelist(cls, z, fail)
        if total != self.pages_allocated:
            fail("ZS-TOTAL-PAGES", f"pages_allocated {self.pages_allocated} != sum over "
                 f"zspages {total}")
        if self.arena.frames_in_use != total:
            fail("ZS-TOTAL-PAGES", f"arena has {self.arena.frames_in_use} frames in use, "
                 f"zspages {total}")

    def _check_freelist(self, cls: ClassState, z, fail) -> None:
        want = cls.objs - self.inuse[z]
        if cls.huge:
            if bool(self.huge_row[z] & 1) != (self.inuse[z] == 1):
                fail("ZS-FREELIST", f"huge zspage {z}: inuse {self.inuse[z]}, handle word "
                     f"{self.huge_row[z]}")
            return
        seen = set()
        idx = self.freeobj[z]
        while idx != -1 and len(seen) <= want:
            if not 0 <= idx < cls.objs:
                fail("ZS-FREELIST", f"zspage {z} (class {cls.size}): free index {idx} out of range")
            if idx in seen:
                fail("ZS-FREELIST", f"zspage {z}: free list loops at {idx}")
            seen.add(idx)
            off = idx * cls.size
            pfn = self.frame(z, off >> self.page_shift)
            link = self.arena.word_get((pfn << self.page_shift) + (off & (self.page_size - 1)))
            if link & 1:
                fail("ZS-FREELIST", f"zspage {z}: free object {idx} carries an allocated tag")
            idx = -1 if link == LINK_END else link >> 1
        if len(seen) != want:
            fail("ZS-FREELIST", f"zspage {z} (class {cls.size}): free list has {len(seen)} "
                 f"entries, objs - inuse = {want}")
