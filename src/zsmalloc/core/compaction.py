"""Compaction: move objects out of sparse zspages into fuller ones, free the emptied ones.

Kernel: zs_compact, __zs_compact, zs_can_compact, isolate_src_zspage, isolate_dst_zspage,
migrate_zspage, putback_zspage. Two strategies, chosen once per pool from the profile:

``Compact618`` (6.4's "rework compaction algorithm"; linux-6.18 and tuned)
    Classes from the largest index down. Per class, while zs_can_compact > 0: keep a
    destination (head of the fullest group 99 % .. 10 %) until it is full; take a source (head
    of the emptiest group 10 % .. 99 %); move the source's objects, lowest index first, into the
    destination's free slots; put the source back, or free it when empty. The destination is
    put back when full, or when someone waits for the pool lock (then the locks are dropped
    for a moment, Kernel: cond_resched). Locks: pool (write) -> class -> zspage write trylock
    on the source.
``Compact48`` (the 2016 code)
    Source = head of ALMOST_EMPTY else ALMOST_FULL; destinations one after another
    (ALMOST_FULL else ALMOST_EMPTY), each put back as soon as it is full. Only the class lock
    is held; a pinned handle (an open zs_map_object) is skipped. Our one departure: a source
    left non-empty by pinned objects ends that class's pass (the kernel would spin on the same
    source until the mapper unpins; with a user-held pin, forever).

Interrupts: between classes (``interrupts.deferred``): a Ctrl-C there stops the compaction
with every zspage on its list and every counter right.
Cost: O(objects moved) copies of ``class.size`` bytes plus O(classes).
"""

import cython

from .interrupts import deferred
from .layout import NIL
from .locks import LockPolicy
from .obj import obj_allocated, obj_copy, obj_free, obj_malloc
from .pool import Pool
from .zspage import ClassState, ZspageTable


def zs_can_compact(cls: ClassState) -> cython.Py_ssize_t:
    """Pages this class could give back. Kernel: zs_can_compact."""
    if cls.allocated <= cls.inuse:
        return 0
    return (cls.allocated - cls.inuse) // cls.objs * cls.ppz


def zs_compact(pool: Pool) -> cython.Py_ssize_t:
    """Compact every class; returns pages freed by this call. Kernel: zs_compact."""
    pool._live()
    policy: LockPolicy = pool.policy
    compactor: Compactor = pool.compactor
    freed: cython.Py_ssize_t = 0
    n: cython.Py_ssize_t
    policy.op_enter()
    try:
        if not policy.compaction_begin():
            return 0                  # Kernel: one compaction context at a time (6.4)
        try:
            with deferred() as safe:
                for cls in reversed(pool.classes):
                    n = compactor.compact_class(pool, cls)
                    pool.pages_compacted += n
                    freed += n
                    safe.point()
        finally:
            policy.compaction_end()
        policy.leaf_lock()
        pool.arena.flush()
        policy.leaf_unlock()
    finally:
        policy.op_exit()
    return freed


def move_object(pool: Pool, cls: ClassState, src: cython.Py_ssize_t, idx: cython.Py_ssize_t,
                row: cython.Py_ssize_t, dst: cython.Py_ssize_t) -> None:
    """Move one allocated object from (src, idx) into dst's next free slot. Kernel: the loop
    body of migrate_zspage: obj_malloc(dst), zs_object_copy, record_obj, obj_free(src). Only
    ``inuse`` changes; groups are fixed by the caller's putback."""
    zt: ZspageTable = pool.zspages
    used = pool.handles.obj(row)
    free = obj_malloc(zt, cls, dst, row)
    obj_copy(zt, cls, free, used)
    pool.policy.leaf_lock()
    pool.handles.record_obj(row, free)
    pool.policy.leaf_unlock()
    obj_free(zt, cls, used)
    pool.objs_moved += 1


def free_emptied(pool: Pool, cls: ClassState, z: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """Free a zspage compaction emptied (now, or deferred); returns the pages it counts
    (the kernel counts them in pages_compacted either way). Kernel: free_zspage."""
    pool.policy.leaf_lock()
    try:
        pool.zspages.free_zspage(cls, z)
    finally:
        pool.policy.leaf_unlock()
    return cls.ppz


class Compactor:
    """A compaction strategy: ``compact_class`` returns the pages it freed."""

    def compact_class(self, pool: Pool, cls: ClassState) -> cython.Py_ssize_t:
        raise NotImplementedError


class Compact618(Compactor):
    """Kernel: __zs_compact and migrate_zspage (6.4+)."""

    def compact_class(self, pool: Pool, cls: ClassState) -> cython.Py_ssize_t:
        zt: ZspageTable = pool.zspages
        policy: LockPolicy = pool.policy
        full: cython.Py_ssize_t = cls.full
        src: cython.Py_ssize_t = NIL
        dst: cython.Py_ssize_t = NIL
        freed: cython.Py_ssize_t = 0
        if not zs_can_compact(cls):
            return 0
        policy.compact_class_lock(cls.pos)
        try:
            while zs_can_compact(cls):
                if dst == NIL:
                    dst = zt.take_group_head(cls, 1, full - 1, True)    # isolate_dst_zspage
                    if dst == NIL:
                        break
                src = zt.take_group_head(cls, 1, full - 1, False)       # isolate_src_zspage
                if src == NIL:
                    break
                if not policy.zspage_write_trylock(src):
                    break
                self.migrate_zspage(pool, cls, src, dst)
                policy.zspage_write_unlock(src)
                if zt.putback(cls, src) == 0:
                    freed += free_emptied(pool, cls, src)
                src = NIL
                if cls.grp[zt.inuse[dst]] == full or policy.compaction_contended():
                    zt.putback(cls, dst)
                    dst = NIL
                    policy.compaction_yield(cls.pos)
            if src != NIL:
                zt.putback(cls, src)
            if dst != NIL:
                zt.putback(cls, dst)
        finally:
            policy.compact_class_unlock(cls.pos)
        return freed

    def migrate_zspage(self, pool: Pool, cls: ClassState, src: cython.Py_ssize_t,
                       dst: cython.Py_ssize_t) -> None:
        """Move src's objects, lowest index first, until dst is full or src empty.
        Kernel: migrate_zspage (6.18): find_alloced_obj page by page is index order."""
        zt: ZspageTable = pool.zspages
        n: cython.Py_ssize_t = cls.objs
        idx: cython.Py_ssize_t
        row: cython.Py_ssize_t
        for idx in range(n):
            row = obj_allocated(zt, cls, src, idx)
            if row < 0:
                continue
            move_object(pool, cls, src, idx, row, dst)
            if zt.inuse[dst] == n or zt.inuse[src] == 0:
                break


class Compact48(Compactor):
    """Kernel (4.8): __zs_compact, isolate_zspage, migrate_zspage."""

    def isolate(self, zt: ZspageTable, cls: ClassState, source: cython.bint) -> cython.Py_ssize_t:
        """Source prefers ALMOST_EMPTY (1), destination ALMOST_FULL (2). Kernel: isolate_zspage."""
        first: cython.Py_ssize_t = 1 if source else 2
        second: cython.Py_ssize_t = 2 if source else 1
        z: cython.Py_ssize_t = cls.heads[first]
        if z == NIL:
            z = cls.heads[second]
        if z != NIL:
            zt.remove(cls, z)
        return z

    def compact_class(self, pool: Pool, cls: ClassState) -> cython.Py_ssize_t:
        zt: ZspageTable = pool.zspages
        policy: LockPolicy = pool.policy
        freed: cython.Py_ssize_t = 0
        src: cython.Py_ssize_t = NIL
        dst: cython.Py_ssize_t
        cursor: cython.Py_ssize_t
        stuck: cython.bint
        policy.compact_class_lock(cls.pos)
        try:
            while True:
                src = self.isolate(zt, cls, True)
                if src == NIL:
                    break
                if not zs_can_compact(cls):
                    break
                cursor = 0
                dst = NIL
                while True:
                    dst = self.isolate(zt, cls, False)
                    if dst == NIL:
                        break
                    cursor = self.migrate_zspage(pool, cls, src, dst, cursor)
                    if cursor < 0:             # src exhausted
                        break
                    zt.putback(cls, dst)
                if dst == NIL:
                    break                     # src is still held: put back below
                zt.putback(cls, dst)
                stuck = zt.inuse[src] > 0      # pinned objects were skipped
                if zt.putback(cls, src) == 0:
                    freed += free_emptied(pool, cls, src)
                src = NIL
                if stuck:
                    break
                policy.compaction_yield(cls.pos)   # Kernel: unlock; cond_resched(); lock
            if src != NIL:
                zt.putback(cls, src)
        finally:
            policy.compact_class_unlock(cls.pos)
        return freed

    def migrate_zspage(self, pool: Pool, cls: ClassState, src: cython.Py_ssize_t,
                       dst: cython.Py_ssize_t, cursor: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """Kernel (4.8): migrate_zspage. Returns -1 when src is exhausted, else the index to
        resume from (dst filled up: -ENOMEM leaves the cursor on that object). Checks dst for
        room before each move; objects whose handle is pinned are skipped."""
        zt: ZspageTable = pool.zspages
        policy: LockPolicy = pool.policy
        n: cython.Py_ssize_t = cls.objs
        idx: cython.Py_ssize_t = cursor
        row: cython.Py_ssize_t
        while idx < n:
            row = obj_allocated(zt, cls, src, idx)
            if row >= 0 and policy.trypin(row):
                if zt.inuse[dst] == n:
                    policy.unpin(row)
                    return idx
                move_object(pool, cls, src, idx, row, dst)
                policy.unpin(row)
            idx += 1
        return -1


def make_compactor(profile: str) -> Compactor:
    """The compaction strategy of a profile."""
    return Compact48() if profile == "linux-4.8" else Compact618()
