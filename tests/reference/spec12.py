"""Reference model of zsmalloc + zram (Linux 6.18), written straight from the spec.

This is the single-threaded replay model of ``spec/kernel-zsmalloc.md`` §12, used by the
tests as an oracle for ``zsmalloc.Pool`` and ``zsmalloc.Zram``. It deliberately shares no
code with the package (nothing here imports ``zsmalloc``): the class table is recomputed
from §2, the allocator follows §3.1 / §4.1 / §5 / §6.1, and zram follows §10.2-10.7.

It is written to be obviously correct, not fast: fullness groups are plain lists (head =
index 0), each zspage keeps its free indices in a list used as a stack (pop from the front,
push to the front), and every lookup is a dict. There is no memory, no data, no locking,
no deferred free and no page migration: the kernel does none of those things visibly to
``mm_stat`` when a single writer drives it (§12 preamble, §13).

Public names:
    ClassInfo, build_classes(chain_size=8, page_size=4096), class_index(size, page_size=4096),
    group_of(inuse, objs), RefPool, RefZram, RefError
"""

from __future__ import annotations

from dataclasses import dataclass

# §1 constants (64-bit)
ZS_HANDLE_SIZE = 8
ZS_MIN_ALLOC_SIZE = 32
CLASS_BITS = 8
NR_GROUPS = 12          # ZS_INUSE_RATIO_0, _10 .. _99, _100
GROUP_EMPTY = 0         # ZS_INUSE_RATIO_0
GROUP_FULL = 11         # ZS_INUSE_RATIO_100


class RefError(ValueError):
    """A caller mistake against the reference model (bad size, unknown handle, bad index)."""


# ------------------------------------------------------------------------------------------
# §2 size classes


@dataclass(frozen=True)
class ClassInfo:
    """One representative size class (the highest index of its merged run)."""

    index: int
    size: int
    pages_per_zspage: int
    objs_per_zspage: int
    first_index: int     # lowest class index merged into it

    @property
    def huge(self) -> bool:
        return self.pages_per_zspage == 1 and self.objs_per_zspage == 1


def _nr_indices(page_size: int) -> int:
    # ZS_SIZE_CLASSES = DIV_ROUND_UP(MAX - MIN, DELTA) + 1, DELTA = page_size >> CLASS_BITS
    delta = page_size >> CLASS_BITS
    return (page_size - ZS_MIN_ALLOC_SIZE + delta - 1) // delta + 1


def _chain_size(size: int, page_size: int, chain_size: int) -> int:
    """Kernel: calculate_zspage_chain_size (6.3+ min-waste rule, §2.1 step 2)."""
    if size & (size - 1) == 0:          # power of two: one page, no waste
        return 1
    best_k = 1
    best_waste = page_size % size
    for k in range(2, chain_size + 1):
        waste = (k * page_size) % size
        if waste < best_waste:          # strict: the smallest k wins a tie
            best_k, best_waste = k, waste
    return best_k


def build_classes(chain_size: int = 8, page_size: int = 4096):
    """The class table of zs_create_pool (§2.1, §2.4).

    Returns ``(rep_of, classes, huge_class_size)``: ``rep_of[i]`` is the representative
    index for class index i, ``classes`` maps representative index -> ClassInfo.
    Cost: O(255 * chain_size).
    """
    if not 1 <= chain_size <= 16:
        raise RefError(f"chain_size {chain_size!r} outside 1..16")
    if page_size < 4096 or page_size & (page_size - 1):
        raise RefError(f"page_size {page_size!r} is not a power of two >= 4096")
    delta = page_size >> CLASS_BITS
    n = _nr_indices(page_size)
    rep_of = [0] * n
    created: list[list[int]] = []    # [index, size, ppz, objs, first_index], top-down
    huge_class_size = 0
    for i in range(n - 1, -1, -1):
        size = min(ZS_MIN_ALLOC_SIZE + i * delta, page_size)
        ppz = _chain_size(size, page_size, chain_size)
        objs = ppz * page_size // size
        # §2.4: the first (largest) index that is not (1 page, 1 object) sets the watermark;
        # it is tested per index, before merging.
        if ppz != 1 and objs != 1 and not huge_class_size:
            huge_class_size = size - (ZS_HANDLE_SIZE - 1)
        prev = created[-1] if created else None   # the last class actually created
        if prev is not None and prev[2] == ppz and prev[3] == objs:
            rep_of[i] = prev[0]
            prev[4] = i
            continue
        created.append([i, size, ppz, objs, i])
        rep_of[i] = i
    classes = {c[0]: ClassInfo(*c) for c in reversed(created)}
    return rep_of, classes, huge_class_size


def class_index(size: int, page_size: int = 4096) -> int:
    """Kernel: get_size_class_index; ``size`` already includes the 8-byte handle (§3.1)."""
    delta = page_size >> CLASS_BITS
    idx = 0
    if size > ZS_MIN_ALLOC_SIZE:
        idx = (size - ZS_MIN_ALLOC_SIZE + delta - 1) // delta
    return min(_nr_indices(page_size) - 1, idx)


def group_of(inuse: int, objs: int) -> int:
    """Kernel: get_fullness_group (6.4+ in-use-ratio groups, §4.1)."""
    if inuse == 0:
        return GROUP_EMPTY
    if inuse == objs:
        return GROUP_FULL
    return (100 * inuse // objs) // 10 + 1


# ------------------------------------------------------------------------------------------
# §12 items 1-5: the pool


class _Zspage:
    """One zspage: its free-index stack, its objects (index -> handle), its group."""

    __slots__ = ("serial", "cls", "inuse", "group", "free", "objs")

    def __init__(self, serial: int, cls: "_Class"):
        self.serial = serial
        self.cls = cls
        self.inuse = 0
        self.group = None            # None while isolated by compaction / not yet inserted
        self.free = list(range(cls.info.objs_per_zspage))   # head = free[0]
        self.objs: dict[int, int] = {}


class _Class:
    """A representative class: 12 group lists (head first) and the OBJS_* counters."""

    __slots__ = ("info", "groups", "allocated", "inuse")

    def __init__(self, info: ClassInfo):
        self.info = info
        self.groups: list[list[_Zspage]] = [[] for _ in range(NR_GROUPS)]
        self.allocated = 0
        self.inuse = 0


class RefPool:
    """Single-threaded zsmalloc pool, 6.18 behaviour, per spec §12 items 1-5.

    ``malloc(length) -> handle``, ``free(handle)``, ``compact() -> pages freed``;
    attributes ``total_pages`` (zs_get_total_pages) and ``pages_compacted``.
    """

    def __init__(self, chain_size: int = 8, page_size: int = 4096):
        self.chain_size = chain_size
        self.page_size = page_size
        self.rep_of, infos, self.huge_class_size = build_classes(chain_size, page_size)
        self.classes: dict[int, _Class] = {i: _Class(c) for i, c in infos.items()}
        self.total_pages = 0
        self.pages_compacted = 0
        self._handles: dict[int, tuple[_Zspage, int]] = {}
        self._next_handle = 1
        self._next_serial = 0

    # -- list discipline (§4.1) ------------------------------------------------------------

    @staticmethod
    def _insert(cls: _Class, zs: _Zspage, g: int) -> None:
        """Kernel: insert_zspage — at the list HEAD."""
        cls.groups[g].insert(0, zs)
        zs.group = g

    @staticmethod
    def _remove(cls: _Class, zs: _Zspage) -> None:
        """Kernel: remove_zspage."""
        cls.groups[zs.group].remove(zs)
        zs.group = None

    def _fix_fullness(self, cls: _Class, zs: _Zspage) -> int:
        """Kernel: fix_fullness_group — unchanged group keeps its list position."""
        g = group_of(zs.inuse, cls.info.objs_per_zspage)
        if g != zs.group:
            self._remove(cls, zs)
            self._insert(cls, zs, g)
        return g

    def _free_zspage(self, cls: _Class, zs: _Zspage) -> None:
        """Kernel: free_zspage (all trylocks succeed in a single-threaded model)."""
        self._remove(cls, zs)
        cls.allocated -= cls.info.objs_per_zspage
        self.total_pages -= cls.info.pages_per_zspage

    # -- object stack (§3.2, §3.3) --------------------------------------------------------

    def _obj_malloc(self, zs: _Zspage, handle: int) -> int:
        idx = zs.free.pop(0)
        zs.objs[idx] = handle
        zs.inuse += 1
        self._handles[handle] = (zs, idx)
        return idx

    @staticmethod
    def _obj_free(zs: _Zspage, idx: int) -> None:
        del zs.objs[idx]
        zs.free.insert(0, idx)
        zs.inuse -= 1

    # -- public API ------------------------------------------------------------------------

    def class_for(self, length: int) -> ClassInfo:
        """The representative class serving ``malloc(length)``."""
        return self.classes[self.rep_of[class_index(length + ZS_HANDLE_SIZE, self.page_size)]].info

    def malloc(self, length: int) -> int:
        """Kernel: zs_malloc (§3.1, §12.3). Returns a new unique handle."""
        if type(length) is not int or length <= 0 or length > self.page_size:
            raise RefError(f"malloc length {length!r} outside 1..{self.page_size}")
        cls = self.classes[self.rep_of[class_index(length + ZS_HANDLE_SIZE, self.page_size)]]
        handle = self._next_handle
        self._next_handle += 1
        zs = None
        for g in range(10, -1, -1):          # find_get_zspage: groups 99% .. 0%, head
            if cls.groups[g]:
                zs = cls.groups[g][0]
                break
        if zs is not None:
            self._obj_malloc(zs, handle)
            self._fix_fullness(cls, zs)
        else:
            zs = _Zspage(self._next_serial, cls)
            self._next_serial += 1
            self._obj_malloc(zs, handle)
            self._insert(cls, zs, group_of(zs.inuse, cls.info.objs_per_zspage))
            self.total_pages += cls.info.pages_per_zspage
            cls.allocated += cls.info.objs_per_zspage
        cls.inuse += 1
        return handle

    def free(self, handle: int) -> None:
        """Kernel: zs_free (§5, §12.4)."""
        try:
            zs, idx = self._handles.pop(handle)
        except (KeyError, TypeError):
            raise RefError(f"unknown or freed handle {handle!r}") from None
        cls = zs.cls
        cls.inuse -= 1
        self._obj_free(zs, idx)
        if self._fix_fullness(cls, zs) == GROUP_EMPTY:
            self._free_zspage(cls, zs)

    @staticmethod
    def can_compact_class(cls: _Class) -> int:
        """Kernel: zs_can_compact."""
        if cls.allocated <= cls.inuse:
            return 0
        return (cls.allocated - cls.inuse) // cls.info.objs_per_zspage * cls.info.pages_per_zspage

    def can_compact(self) -> int:
        """The shrinker's count: sum of zs_can_compact over representative classes."""
        return sum(self.can_compact_class(c) for c in self.classes.values())

    def _isolate(self, cls: _Class, groups) -> _Zspage | None:
        for g in groups:
            if cls.groups[g]:
                zs = cls.groups[g][0]
                self._remove(cls, zs)
                return zs
        return None

    def _putback(self, cls: _Class, zs: _Zspage) -> int:
        """Kernel: putback_zspage — head of its (recomputed) group."""
        g = group_of(zs.inuse, cls.info.objs_per_zspage)
        self._insert(cls, zs, g)
        return g

    def _migrate(self, cls: _Class, src: _Zspage, dst: _Zspage) -> None:
        """Kernel: migrate_zspage — src objects lowest index first into dst's free head."""
        n = cls.info.objs_per_zspage
        for idx in sorted(src.objs):
            handle = src.objs[idx]
            self._obj_malloc(dst, handle)     # rewrites _handles[handle]
            self._obj_free(src, idx)
            if dst.inuse == n or src.inuse == 0:
                break

    def _compact_class(self, cls: _Class) -> int:
        """Kernel: __zs_compact (6.4+ algorithm, §6.1)."""
        freed = 0
        dst = None
        src = None
        while self.can_compact_class(cls) > 0:
            if dst is None:
                dst = self._isolate(cls, range(10, 0, -1))     # isolate_dst_zspage
                if dst is None:
                    break
            src = self._isolate(cls, range(1, 11))             # isolate_src_zspage
            if src is None:
                break
            self._migrate(cls, src, dst)
            if self._putback(cls, src) == GROUP_EMPTY:
                self._free_zspage(cls, src)
                freed += cls.info.pages_per_zspage
            src = None
            if group_of(dst.inuse, cls.info.objs_per_zspage) == GROUP_FULL:
                self._putback(cls, dst)
                dst = None
        if src is not None:
            self._putback(cls, src)
        if dst is not None:
            self._putback(cls, dst)
        return freed

    def compact(self) -> int:
        """Kernel: zs_compact — classes 254 -> 0, representatives only; pages freed."""
        total = 0
        for i in range(len(self.rep_of) - 1, -1, -1):
            if self.rep_of[i] == i:
                total += self._compact_class(self.classes[i])
        self.pages_compacted += total
        return total

    # -- inspection ------------------------------------------------------------------------

    def class_counts(self) -> dict[int, tuple[int, int, tuple[int, ...]]]:
        """Per representative index: (obj_allocated, obj_used, zspages in groups 0..11)."""
        return {i: (c.allocated, c.inuse, tuple(len(l) for l in c.groups))
                for i, c in self.classes.items()}

    def where(self, handle: int) -> tuple[int, int]:
        """(zspage serial, object index) holding ``handle``; serials count zspage creations."""
        try:
            zs, idx = self._handles[handle]
        except KeyError:
            raise RefError(f"unknown or freed handle {handle!r}") from None
        return zs.serial, idx

    def live_handles(self) -> int:
        return len(self._handles)


# ------------------------------------------------------------------------------------------
# §10 zram


_SAME, _HUGE, _NORMAL = "same", "huge", "normal"


class RefZram:
    """Single-threaded zram device model (6.18), driven with compressed lengths, not data.

    Slots hold ``None`` (empty) or ``(kind, handle, size)``. Counters follow §10.2.
    """

    PAGE = 4096

    def __init__(self, disksize_pages: int, chain_size: int = 8):
        if type(disksize_pages) is not int or disksize_pages <= 0:
            raise RefError(f"disksize_pages {disksize_pages!r} must be a positive int")
        self.disksize_pages = disksize_pages
        self.chain_size = chain_size
        self._init()

    def _init(self) -> None:
        self.pool = RefPool(self.chain_size)
        self.huge_class_size = self.pool.huge_class_size
        self.slots: list[tuple | None] = [None] * self.disksize_pages
        self.limit_pages = 0
        self.pages_stored = 0
        self.compr_data_size = 0
        self.max_used_pages = 0
        self.same_pages = 0
        self.huge_pages = 0
        self.huge_pages_since = 0
        self.failed_reads = 0
        self.failed_writes = 0
        self.notify_free = 0

    def _check_index(self, index: int) -> None:
        if type(index) is not int or not 0 <= index < self.disksize_pages:
            raise RefError(f"slot index {index!r} outside 0..{self.disksize_pages - 1}")

    def _free_slot(self, index: int) -> None:
        """Kernel: zram_free_page."""
        slot = self.slots[index]
        if slot is None:
            return                          # handle 0: nothing stored, no counter changes
        kind, handle, size = slot
        if kind == _HUGE:
            self.huge_pages -= 1
        if kind == _SAME:
            self.same_pages -= 1
        else:
            self.pool.free(handle)
            self.compr_data_size -= size
        self.pages_stored -= 1
        self.slots[index] = None

    def _can_store(self) -> bool:
        """Kernel: zram_can_store_page — the only place mem_used_max rises."""
        used = self.pool.total_pages
        if used > self.max_used_pages:
            self.max_used_pages = used
        return not self.limit_pages or used <= self.limit_pages

    def write(self, index: int, comp_len: int | None = None, same: bool = False) -> None:
        """Kernel: zram_write_page, 6.18 order (§10.3).

        ``same=True`` takes the same-filled path (``comp_len`` is then ignored: the kernel
        tests for same-filled pages before compressing). Otherwise ``comp_len`` is the
        kernel's compressed length; ``>= huge_class_size`` stores the raw page.
        Raises MemoryError (old content kept, failed_writes + 1) over ``mem_limit``.
        """
        self._check_index(index)
        if same:
            self._free_slot(index)
            self.slots[index] = (_SAME, 0, 0)
            self.same_pages += 1
            self.pages_stored += 1
            return
        if type(comp_len) is not int or comp_len <= 0:
            raise RefError(f"comp_len {comp_len!r} must be a positive int (or same=True)")
        huge = comp_len >= self.huge_class_size
        size = self.PAGE if huge else comp_len
        handle = self.pool.malloc(size)
        if not self._can_store():
            used = self.pool.total_pages
            self.pool.free(handle)
            self.failed_writes += 1         # zram_bio_write counts any write error
            raise MemoryError(f"zram write to slot {index}: {used} pages in use "
                              f"> mem_limit {self.limit_pages} pages")
        self._free_slot(index)
        self.slots[index] = (_HUGE if huge else _NORMAL, handle, size)
        self.compr_data_size += size
        if huge:
            self.huge_pages += 1
            self.huge_pages_since += 1
        self.pages_stored += 1

    def discard(self, index: int, count: int = 1) -> None:
        """Kernel: zram_bio_discard over whole pages (§10.6): notify_free += count."""
        if type(count) is not int or count <= 0:
            raise RefError(f"discard count {count!r} must be a positive int")
        self._check_index(index)
        self._check_index(index + count - 1)
        for i in range(index, index + count):
            self._free_slot(i)
            self.notify_free += 1

    def compact(self) -> int:
        """Kernel: compact_store -> zs_compact. Returns pages freed."""
        return self.pool.compact()

    def set_mem_limit(self, nbytes: int) -> None:
        """Kernel: mem_limit_store — PAGE_ALIGN(bytes) >> PAGE_SHIFT; 0 = no limit."""
        if type(nbytes) is not int or nbytes < 0:
            raise RefError(f"mem_limit {nbytes!r} must be a non-negative int")
        self.limit_pages = (nbytes + self.PAGE - 1) // self.PAGE

    def reset_mem_used_max(self) -> None:
        """Kernel: mem_used_max_store("0") — set to the current total."""
        self.max_used_pages = self.pool.total_pages

    def reset(self) -> None:
        """Kernel: reset_store, then the same disksize again: everything back to zero."""
        self._init()

    def mm_stat(self) -> tuple[int, ...]:
        """The 9 fields of /sys/block/zramX/mm_stat (§10.2), in kernel order."""
        p = self.PAGE
        return (self.pages_stored * p, self.compr_data_size, self.pool.total_pages * p,
                self.limit_pages * p, self.max_used_pages * p, self.same_pages,
                self.pool.pages_compacted, self.huge_pages, self.huge_pages_since)

    def io_stat(self) -> tuple[int, int, int, int]:
        """failed_reads, failed_writes, 0 (old invalid_io), notify_free."""
        return (self.failed_reads, self.failed_writes, 0, self.notify_free)
