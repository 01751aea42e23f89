"""Zspages and fullness groups: how a class's zspages are grouped and listed.

A zspage is a chain of ``pages_per_zspage`` frames holding ``objs_per_zspage`` objects of one
class. Here a zspage is a *row* (an integer id) in flat per-pool arrays, not a Python object:
that keeps our metadata near the kernel's (DESIGN.md §2). Its columns live in
:class:`ZspageTable`; each class's fullness lists are intrusive doubly linked lists through
the ``prev``/``next`` columns, exactly like the kernel's ``list_head`` (insert at the head,
consumers take the head, a zspage whose group does not change keeps its place).

Kernel: struct zspage, get_fullness_group, insert_zspage, remove_zspage, fix_fullness_group.

Group numbering (per profile) is chosen so that "preferred for allocation" is always the
highest eligible group, which lets ``find_get_zspage`` be one ``bit_length`` on a bitmask:

===========  ===================================================  =======================
profile      groups                                               allocation scans
===========  ===================================================  =======================
6.18         0 = ZS_INUSE_RATIO_0, 1..10 = 10%..99%, 11 = 100%    10, 9, ..., 1, 0
4.8          0 = ZS_EMPTY, 1 = ALMOST_EMPTY, 2 = ALMOST_FULL,     2, 1, 0
             3 = ZS_FULL
===========  ===================================================  =======================
"""

from __future__ import annotations

from array import array

#: ``prev`` value of a zspage that is on no list (isolated by compaction or migration)
OFF_LIST = -2
#: ``prev`` value of a zspage on its class's *full* list. Nothing ever takes from that list
#: (allocation and compaction never look at it, and a zspage leaving it goes to the head of
#: another), so its order is unobservable: we keep its count only, which halves the list
#: work of the common full <-> 99 % flip.
ON_FULL = -3
NIL = -1

GROUPS_618 = 12
FULL_618 = 11
GROUP_NAMES_618 = ["0%"] + [f"{10 * g}%" for g in range(1, 10)] + ["99%", "100%"]

ZS_EMPTY, ZS_ALMOST_EMPTY, ZS_ALMOST_FULL, ZS_FULL = 0, 1, 2, 3
GROUP_NAMES_48 = ["empty", "almost_empty", "almost_full", "full"]


def group_table_618(objs: int) -> bytes:
    """inuse -> group, 6.18 ratio groups. Kernel: get_fullness_group (6.4+)."""
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
    """inuse -> group, 4.8 groups (fullness_threshold_frac = 4). Kernel: get_fullness_group (4.8)."""
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
    """Per-class state of one pool. Kernel: struct size_class.

    ``heads[g]``/``counts[g]``: list head and length of fullness group g. ``mask`` has bit g
    set when list g is non-empty and g is a group allocation may take from.
    ``allocated``/``inuse`` are ZS_OBJS_ALLOCATED / ZS_OBJS_INUSE.
    """

    __slots__ = ("index", "size", "ppz", "objs", "huge", "hdr", "grp", "heads", "counts", "mask",
                 "alloc_mask", "full", "allocated", "inuse", "link_plan", "lock", "sc")

    def __init__(self, sc, page_size: int, kernel_48: bool):
        self.sc = sc
        self.index = sc.index
        self.size = sc.size
        self.ppz = sc.pages_per_zspage
        self.objs = sc.objs_per_zspage
        self.huge = sc.huge
        self.hdr = 0 if sc.huge else 8
        if kernel_48:
            self.grp = group_table_48(self.objs)
            ngroups, self.full = 4, ZS_FULL
        else:
            self.grp = group_table_618(self.objs)
            ngroups, self.full = GROUPS_618, FULL_618
        self.heads = [NIL] * ngroups
        self.counts = [0] * ngroups
        self.mask = 0
        self.alloc_mask = (1 << self.full) - 1
        self.allocated = 0
        self.inuse = 0
        self.link_plan = self._link_plan(page_size)
        self.lock = None

    def _link_plan(self, page_size: int):
        """Per frame k: (first word, word step, link values) of the objects starting in it.

        Kernel: init_zspage. Free object j holds ``(j+1) << 1``; the last real object holds
        the end marker. The phantom object past the end (§3.2) is never linked: it is never
        handed out, so leaving it out changes nothing observable.
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
            plan.append(((j0 * size - lo) >> 3, size >> 3, vals))
        return plan


#: free-list end marker as stored (-1 << 1, as an unsigned 64-bit word)
LINK_END = (-1 << 1) & 0xFFFF_FFFF_FFFF_FFFF


class ZspageTable:
    """Columns of every zspage, indexed by zspage id. Kernel: struct zspage (+ its page chain).

    Hot columns (touched on every malloc/free) are lists of small ints, which CPython indexes
    fastest and which cost 8 bytes an entry; cold ones are typed arrays.
    """

    __slots__ = ("chain", "inuse", "freeobj", "group", "cls", "isolated", "prev", "next",
                 "frames", "huge_handle", "free_ids")

    def __init__(self, chain: int):
        self.chain = chain
        self.inuse: list[int] = []
        self.freeobj: list[int] = []      # head of the in-frame free list, -1 = none
        self.group: list[int] = []        # recorded fullness group (-1 before first insert)
        self.cls: list[ClassState | None] = []  # None = free row
        self.isolated: list[int] = []     # 4.8: frames isolated for migration
        self.prev: list[int] = []         # list links: lists index fastest (hot on regroup)
        self.next: list[int] = []
        self.frames = array("I")          # chain * id + k -> pfn of frame k
        self.huge_handle = array("Q")     # huge zspages keep the handle here (kernel: zpdesc->handle)
        self.free_ids = array("i")

    def new(self, cls: ClassState) -> int:
        if self.free_ids:
            z = self.free_ids.pop()
            self.inuse[z] = 0
            self.freeobj[z] = 0
            self.group[z] = -1
            self.cls[z] = cls
            self.isolated[z] = 0
            self.prev[z] = OFF_LIST
            self.next[z] = NIL
            self.huge_handle[z] = 0
            return z
        z = len(self.inuse)
        self.inuse.append(0)
        self.freeobj.append(0)
        self.group.append(-1)
        self.cls.append(cls)
        self.isolated.append(0)
        self.prev.append(OFF_LIST)
        self.next.append(NIL)
        self.frames.extend(array("I", bytes(4 * self.chain)))
        self.huge_handle.append(0)
        return z

    def release(self, z: int) -> None:
        self.cls[z] = None
        self.free_ids.append(z)

    def live_ids(self):
        return [z for z, c in enumerate(self.cls) if c is not None]

    def frames_of(self, z: int) -> list[int]:
        base = z * self.chain
        return list(self.frames[base:base + self.cls[z].ppz])

    # -- fullness lists (Kernel: insert_zspage / remove_zspage) --------------------------

    def insert(self, cls: ClassState, z: int, g: int, inuse_opt: bool) -> None:
        """Put z at the head of group g (4.8: second if it has fewer inuse than the head)."""
        heads, nxt, prv = cls.heads, self.next, self.prev
        cls.counts[g] += 1
        self.group[z] = g
        if g == cls.full:
            prv[z] = ON_FULL
            nxt[z] = NIL
            return
        head = heads[g]
        if head == NIL:
            prv[z] = NIL
            nxt[z] = NIL
            heads[g] = z
            if g != cls.full:
                cls.mask |= 1 << g
        elif inuse_opt and self.inuse[z] < self.inuse[head]:
            after = nxt[head]
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

    def remove(self, cls: ClassState, z: int) -> None:
        """Unlink z from its group's list; it keeps its recorded group."""
        nxt, prv = self.next, self.prev
        g = self.group[z]
        p, n = prv[z], nxt[z]
        if p == ON_FULL:
            prv[z] = OFF_LIST
            cls.counts[g] -= 1
            return
        if p == NIL:
            cls.heads[g] = n
            if n == NIL:
                cls.mask &= ~(1 << g)
        else:
            nxt[p] = n
        if n != NIL:
            prv[n] = p
        prv[z] = OFF_LIST
        nxt[z] = NIL
        cls.counts[g] -= 1

    def list_of(self, cls: ClassState, g: int) -> list[int]:
        """Zspage ids of group g, head first (for stats, checks and tests)."""
        if g == cls.full:
            return [z for z, c in enumerate(self.cls)
                    if c is cls and self.prev[z] == ON_FULL]
        out, z = [], cls.heads[g]
        while z != NIL:
            out.append(z)
            z = self.next[z]
        return out
