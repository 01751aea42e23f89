"""z3fold: up to three objects per page, plus headless pages. Kernel: mm/z3fold.c
(deprecated in 6.13, removed in 6.15; modelled on the final zpdesc-era version).

A z3fold page (4 KiB) is 64 chunks of 64 bytes. The header takes the first
``ZHDR_CHUNKS`` chunks; the *first* object follows it, the *last* is right-justified at the
page end and a *middle* object sits between them, starting at ``start_middle``:

    | hdr | first ... | middle ... |   free   | last |
    0     ZHDR        start_middle                   64 chunks

Pages with a free buddy sit on ``unbuddied[num_free_chunks]`` (one list set: this model is
one CPU, the kernel keeps one per CPU). Allocation is first fit over
``unbuddied[chunks..NCHUNKS-1]`` taking the list head, else a new page. Objects larger than
``PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE`` get a *headless* page of their own (the
object starts at offset 0, no header); requests up to PAGE_SIZE are accepted.

Handles point at a slot in a ``z3fold_buddy_slots`` struct (4 slots, 64-byte aligned) that
holds the object's encoded address ``page | idx [| last_chunks << 2]`` with
``idx = (bud + first_num) & 3``; headless handles are ``page | 1``. The indirection lets
z3fold move objects: after a free the page's compaction work (``do_compact_page``; the
kernel runs it at once for a page that was full, else from a workqueue -- here always at
once) either moves a lone remaining object into another unbuddied page
(``compact_single_buddy``, which frees this page) or slides the middle object
(``z3fold_compact_page``).

Header size: ``sizeof(struct z3fold_header)`` is 88 bytes on 64-bit (list_head, spinlock,
kref, work_struct, two pointers, shorts), which rounds up to 2 chunks: ``ZHDR_CHUNKS = 2``,
``NCHUNKS = 62`` and headless above 3904 bytes. The "NCHUNKS 63" in the source comment
(and in peers.md) is the 2016 layout; ``header_bytes=64`` reproduces it.
"""

from __future__ import annotations

from .base import CheckError, PeerAllocator, check_page_size

NCHUNKS_ORDER = 6
HEADLESS, FIRST, MIDDLE, LAST = 0, 1, 2, 3
BUDDY_MASK = 3
BUDDY_SHIFT = 2
BIG_CHUNK_GAP = 3
#: sizeof(struct z3fold_header) on x86-64 without lock debugging
Z3FOLD_HEADER_BYTES = 88
#: struct z3fold_buddy_slots is SLOTS_ALIGN (64) aligned; a handle is &slots->slot[idx]
SLOTS_ALIGN = 64
_SLOT_WORD = 8
_HEADLESS_BIT = 1                        # 1 << PAGE_HEADLESS, set in headless handles


class Z3Page:
    """One z3fold page: header fields of struct z3fold_header plus the page bytes."""

    __slots__ = ("pfn", "data", "headless", "first_chunks", "middle_chunks", "last_chunks",
                 "start_middle", "first_num", "foreign_handles", "slots", "refcount",
                 "list_idx")

    def __init__(self, pfn: int, page_size: int, headless: bool):
        self.pfn = pfn
        self.data = bytearray(page_size)
        self.headless = headless
        self.first_chunks = self.middle_chunks = self.last_chunks = 0
        self.start_middle = 0
        self.first_num = 0
        self.foreign_handles = 0
        self.slots: int | None = None         # id of this page's buddy-slots struct
        self.refcount = 1                     # kref_init; one per object (+ transient gets)
        self.list_idx = -1                    # unbuddied list index, -1 when on none


class Z3foldPool(PeerAllocator):
    """z3fold allocator over real pages. Kernel: struct z3fold_pool (z3fold_create_pool).

    ``single_buddy_moves`` and ``inpage_moves`` count the two kinds of object moves;
    ``leaked_slot_structs`` counts buddy-slots structs the kernel would leak (see
    ``_release_page``).
    """

    name = "z3fold"

    def __init__(self, page_size: int = 4096, header_bytes: int = Z3FOLD_HEADER_BYTES):
        super().__init__(check_page_size(page_size))
        if isinstance(header_bytes, bool) or not isinstance(header_bytes, int) \
                or header_bytes <= 0:
            raise ValueError(f"header_bytes {header_bytes!r} must be a positive int")
        self.chunk_shift = page_size.bit_length() - 1 - NCHUNKS_ORDER
        self.chunk_size = cs = 1 << self.chunk_shift
        self.header_size = (header_bytes + cs - 1) // cs * cs          # ZHDR_SIZE_ALIGNED
        if self.header_size > page_size - cs:                          # the BUILD_BUG_ON
            raise ValueError(f"header_bytes {header_bytes} leaves no room in a "
                             f"{page_size}-byte page")
        self.zhdr_chunks = self.header_size >> self.chunk_shift
        self.total_chunks = page_size >> self.chunk_shift              # 64
        self.nchunks = self.total_chunks - self.zhdr_chunks            # 62 (63 in 2016)
        self._unbuddied: list[dict[int, None]] = [{} for _ in range(self.nchunks)]
        self._pages: dict[int, Z3Page] = {}
        self._free_pfns: list[int] = []
        self._next_pfn = 1
        self._slots: dict[int, list[int]] = {}        # slots id -> 4 encoded addresses
        self._free_sids: list[int] = []
        self._next_sid = 1
        self.single_buddy_moves = 0
        self.inpage_moves = 0
        self.leaked_slot_structs = 0

    @property
    def max_size(self) -> int:
        return self.page_size

    @property
    def headless_limit(self) -> int:
        """Largest size stored in a shared page; anything larger gets a headless page."""
        return self.page_size - self.header_size - self.chunk_size

    @property
    def total_pages(self) -> int:
        """Kernel: z3fold_get_pool_pages (pool->pages_nr)."""
        return len(self._pages)

    @property
    def headless_pages(self) -> int:
        return sum(1 for zp in self._pages.values() if zp.headless)

    # ---- small helpers ------------------------------------------------------------------
    def _size_to_chunks(self, size: int) -> int:
        return (size + self.chunk_size - 1) >> self.chunk_shift

    def _new_page(self, headless: bool) -> Z3Page:
        """alloc_page + init_z3fold_page (+ alloc_slots for a normal page)."""
        pfn = self._free_pfns.pop() if self._free_pfns else self._take_pfn()
        zp = self._pages[pfn] = Z3Page(pfn, self.page_size, headless)
        if not headless:
            zp.slots = self._alloc_slots()
        return zp

    def _take_pfn(self) -> int:
        self._next_pfn += 1
        return self._next_pfn - 1

    def _release_page(self, zp: Z3Page) -> None:
        """Kernel: __release_z3fold_page (pages_nr-- now; the stale list frees it later)."""
        self._list_del(zp)
        if zp.slots is not None and not any(self._slots[zp.slots]):
            # an unused slots struct that __z3fold_alloc gave this page for a moved-in
            # (foreign) object: nothing in the kernel frees it; count it, drop our copy
            del self._slots[zp.slots]
            self._free_sids.append(zp.slots)
            self.leaked_slot_structs += 1
        del self._pages[zp.pfn]
        self._free_pfns.append(zp.pfn)

    def _alloc_slots(self) -> int:
        sid = self._free_sids.pop() if self._free_sids else self._take_sid()
        self._slots[sid] = [0, 0, 0, 0]
        return sid

    def _take_sid(self) -> int:
        self._next_sid += 1
        return self._next_sid - 1

    def _num_free_chunks(self, zp: Z3Page) -> int:
        """Kernel: num_free_chunks (the larger gap around a middle object)."""
        if zp.middle_chunks:
            before = 0 if zp.first_chunks else zp.start_middle - self.zhdr_chunks
            after = 0 if zp.last_chunks else \
                self.total_chunks - (zp.start_middle + zp.middle_chunks)
            return max(before, after)
        return self.nchunks - zp.first_chunks - zp.last_chunks

    def _add_to_unbuddied(self, zp: Z3Page) -> None:
        """Kernel: add_to_unbuddied (list_add at the head, only if a buddy is free)."""
        if not (zp.first_chunks and zp.middle_chunks and zp.last_chunks):
            i = self._num_free_chunks(zp)
            self._unbuddied[i][zp.pfn] = None
            zp.list_idx = i

    def _list_del(self, zp: Z3Page) -> None:
        if zp.list_idx >= 0:
            del self._unbuddied[zp.list_idx][zp.pfn]
            zp.list_idx = -1

    def _get_free_buddy(self, zp: Z3Page, chunks: int) -> int:
        """Kernel: get_free_buddy."""
        if zp.middle_chunks:
            if not zp.first_chunks and chunks <= zp.start_middle - self.zhdr_chunks:
                return FIRST
            if not zp.last_chunks:
                return LAST
            return HEADLESS
        if not zp.first_chunks:
            return FIRST
        if not zp.last_chunks:
            return LAST
        return MIDDLE

    def _place(self, zp: Z3Page, bud: int, chunks: int) -> int:
        """Record a buddy's chunks (the ``found:`` block); return its byte offset."""
        if bud == FIRST:
            zp.first_chunks = chunks
            return self.header_size
        if bud == LAST:
            zp.last_chunks = chunks
            return self.page_size - (chunks << self.chunk_shift)
        zp.middle_chunks = chunks
        zp.start_middle = zp.first_chunks + self.zhdr_chunks
        return zp.start_middle << self.chunk_shift

    def _encoded(self, zp: Z3Page, bud: int) -> int:
        """The value a slot holds for (page, bud). Kernel: __encode_handle's ``h``."""
        h = zp.pfn * self.page_size + ((bud + zp.first_num) & BUDDY_MASK)
        if bud == LAST:
            h |= zp.last_chunks << BUDDY_SHIFT
        return h

    def _encode_handle(self, zp: Z3Page, bud: int) -> int:
        """Store the encoded address in the page's slots; return &slot. Kernel: encode_handle."""
        idx = (bud + zp.first_num) & BUDDY_MASK
        slots = self._slots[zp.slots]
        if slots[idx]:
            raise CheckError("z3fold-slot-reuse", f"slot {idx} of slots {zp.slots} is live")
        slots[idx] = self._encoded(zp, bud)
        return zp.slots * SLOTS_ALIGN + idx * _SLOT_WORD

    def _decode(self, handle: int) -> tuple[Z3Page, int, int]:
        """(page, buddy, slot value) of a non-headless handle. Kernel: handle_to_buddy."""
        value = self._slots[handle // SLOTS_ALIGN][(handle // _SLOT_WORD) & BUDDY_MASK]
        zp = self._pages[value // self.page_size]
        return zp, (value - zp.first_num) & BUDDY_MASK, value

    def _z3fold_alloc(self, chunks: int) -> Z3Page | None:
        """Take the first unbuddied page with >= chunks free. Kernel: __z3fold_alloc."""
        for i in range(chunks, self.nchunks):
            lst = self._unbuddied[i]
            if lst:
                zp = self._pages[next(reversed(lst))]
                del lst[zp.pfn]
                zp.list_idx = -1
                zp.refcount += 1                       # kref_get
                if zp.slots is None:
                    zp.slots = self._alloc_slots()
                return zp
        return None

    # ---- the interface ------------------------------------------------------------------
    def malloc(self, size: int) -> int:
        """Allocate a buddy or a headless page. Kernel: z3fold_alloc.

        Cost: O(NCHUNKS) list scan, at most one new page.
        """
        size = self._check_size(size)
        if size > self.headless_limit:
            zp = self._new_page(headless=True)
            handle = zp.pfn * self.page_size | _HEADLESS_BIT
        else:
            chunks = self._size_to_chunks(size)
            zp = self._z3fold_alloc(chunks)
            if zp is None:
                zp = self._new_page(headless=False)
                bud = FIRST
            else:
                bud = self._get_free_buddy(zp, chunks)
                if bud == HEADLESS:        # the kernel WARNs and retries; cannot happen here
                    raise CheckError("z3fold-free-buddy", f"page {zp.pfn} listed but full")
            self._place(zp, bud, chunks)
            self._add_to_unbuddied(zp)
            handle = self._encode_handle(zp, bud)
        self._size[handle] = size
        self._stored += size
        return handle

    def free(self, handle: int) -> None:
        """Free an object, then compact its page as the kernel's work item would.

        Kernel: z3fold_free + do_compact_page (compact_single_buddy, z3fold_compact_page).
        Cost: O(1), plus an O(NCHUNKS) scan and a chunk copy when a lone object moves.
        """
        size = self._live_size(handle)
        del self._size[handle]
        self._stored -= size
        if handle & _HEADLESS_BIT:
            self._release_page(self._pages[handle // self.page_size])
            return
        zp, bud, _ = self._decode(handle)
        if bud == FIRST:
            zp.first_chunks = 0
        elif bud == MIDDLE:
            zp.middle_chunks = 0
        else:
            zp.last_chunks = 0
        self._free_handle(handle, zp)
        zp.refcount -= 1
        if zp.refcount == 0:
            self._release_page(zp)
            return
        # NEEDS_COMPACTING: do_compact_page takes the page off its list, then either moves
        # a lone object elsewhere (and the page dies) or compacts in place and relists it
        self._list_del(zp)
        if zp.foreign_handles == 0 and self._buddy_single(zp) and \
                self._compact_single_buddy(zp):
            zp.refcount -= 1
            if zp.refcount == 0:
                self._release_page(zp)
            return
        self._compact_page(zp)
        self._add_to_unbuddied(zp)

    def _free_handle(self, handle: int, zp: Z3Page) -> None:
        """Clear the slot; drop an emptied slots struct. Kernel: free_handle."""
        sid = handle // SLOTS_ALIGN
        slots = self._slots[sid]
        slots[(handle // _SLOT_WORD) & BUDDY_MASK] = 0
        if zp.slots != sid:
            zp.foreign_handles -= 1
        if not any(slots):
            if zp.slots == sid:
                zp.slots = None
            del self._slots[sid]
            self._free_sids.append(sid)

    @staticmethod
    def _buddy_single(zp: Z3Page) -> bool:
        return not ((zp.first_chunks and zp.middle_chunks) or
                    (zp.first_chunks and zp.last_chunks) or
                    (zp.middle_chunks and zp.last_chunks))

    def _compact_single_buddy(self, zp: Z3Page) -> bool:
        """Move a page's only object into another unbuddied page. Kernel: compact_single_buddy.

        Never allocates a page (__z3fold_alloc only searches the lists). The handle stays
        in this page's slots struct and becomes a *foreign* handle of the new page.
        """
        slots = self._slots[zp.slots]
        cs = self.chunk_shift
        if zp.first_chunks and slots[(FIRST + zp.first_num) & BUDDY_MASK]:
            bud, off, chunks = FIRST, self.header_size, zp.first_chunks
        elif zp.middle_chunks and slots[(MIDDLE + zp.first_num) & BUDDY_MASK]:
            bud, off, chunks = MIDDLE, zp.start_middle << cs, zp.middle_chunks
        elif zp.last_chunks and slots[(LAST + zp.first_num) & BUDDY_MASK]:
            bud, off, chunks = LAST, self.page_size - (zp.last_chunks << cs), zp.last_chunks
        else:
            return False
        new = self._z3fold_alloc(chunks)
        if new is None:
            return False
        new_bud = self._get_free_buddy(new, chunks)
        if new_bud == HEADLESS:                                       # out_fail
            new.refcount -= 1
            self._add_to_unbuddied(new)
            return False
        dst = self._place(new, new_bud, chunks)
        new.foreign_handles += 1
        nbytes = chunks << cs
        new.data[dst:dst + nbytes] = zp.data[off:off + nbytes]
        slots[(bud + zp.first_num) & BUDDY_MASK] = self._encoded(new, new_bud)
        self._add_to_unbuddied(new)
        if bud == FIRST:
            zp.first_chunks = 0
        elif bud == MIDDLE:
            zp.middle_chunks = 0
        else:
            zp.last_chunks = 0
        self.single_buddy_moves += 1
        return True

    def _compact_page(self, zp: Z3Page) -> bool:
        """Slide the middle object toward its neighbour. Kernel: z3fold_compact_page."""
        if not zp.middle_chunks:
            return False
        if not zp.first_chunks and not zp.last_chunks:
            self._move_middle(zp, self.zhdr_chunks)
            zp.first_chunks = zp.middle_chunks        # the middle becomes the first buddy;
            zp.middle_chunks = 0                      # first_num++ keeps its handle valid
            zp.start_middle = 0
            zp.first_num = (zp.first_num + 1) & BUDDY_MASK
            return True
        # moving data is expensive: only for a gap of at least BIG_CHUNK_GAP chunks
        if zp.first_chunks and not zp.last_chunks and \
                zp.start_middle - (zp.first_chunks + self.zhdr_chunks) >= BIG_CHUNK_GAP:
            self._move_middle(zp, zp.first_chunks + self.zhdr_chunks)
            return True
        if zp.last_chunks and not zp.first_chunks and \
                self.total_chunks - (zp.last_chunks + zp.start_middle + zp.middle_chunks) \
                >= BIG_CHUNK_GAP:
            self._move_middle(zp, self.total_chunks - zp.last_chunks - zp.middle_chunks)
            return True
        return False

    def _move_middle(self, zp: Z3Page, dst_chunk: int) -> None:
        """Kernel: mchunk_memmove (whole chunks), then start_middle = dst."""
        cs = self.chunk_shift
        src, n = zp.start_middle << cs, zp.middle_chunks << cs
        zp.data[dst_chunk << cs:(dst_chunk << cs) + n] = zp.data[src:src + n]
        zp.start_middle = dst_chunk
        self.inpage_moves += 1

    def _locate(self, handle: int) -> tuple[bytearray, int]:
        """Kernel: z3fold_map."""
        if handle & _HEADLESS_BIT:
            return self._pages[handle // self.page_size].data, 0
        zp, bud, value = self._decode(handle)
        if bud == FIRST:
            return zp.data, self.header_size
        if bud == MIDDLE:
            return zp.data, zp.start_middle << self.chunk_shift
        last_chunks = (value % self.page_size) >> BUDDY_SHIFT         # handle_to_chunks
        return zp.data, self.page_size - (last_chunks << self.chunk_shift)

    # ---- invariants ---------------------------------------------------------------------
    def check(self) -> None:
        """Invariants: layout, list placement, refcounts, slots and handles, counters."""
        self._check_counters()
        per_page: dict[int, int] = {}        # pfn -> live handles
        seen: set[tuple[int, int]] = set()    # (pfn, bud) already claimed by a handle
        foreign: dict[int, int] = {}
        for h, size in self._size.items():
            if h & _HEADLESS_BIT:
                zp = self._pages.get(h // self.page_size)
                if zp is None or not zp.headless or h % self.page_size != _HEADLESS_BIT:
                    raise CheckError("z3fold-headless-handle", f"handle {h:#x} is bad")
                if size <= self.headless_limit:
                    raise CheckError("z3fold-headless-size", f"{size} B in a headless page")
                per_page[zp.pfn] = per_page.get(zp.pfn, 0) + 1
                continue
            sid, idx = h // SLOTS_ALIGN, (h // _SLOT_WORD) & BUDDY_MASK
            value = self._slots.get(sid, (0, 0, 0, 0))[idx]
            zp = self._pages.get(value // self.page_size) if value else None
            if zp is None or zp.headless:
                raise CheckError("z3fold-handle-page", f"handle {h:#x} points at no page")
            bud = (value - zp.first_num) & BUDDY_MASK
            chunks = (0, zp.first_chunks, zp.middle_chunks, zp.last_chunks)[bud]
            if chunks != self._size_to_chunks(size):
                raise CheckError("z3fold-chunks", f"handle {h:#x}: {chunks} chunks, {size} B")
            if bud == LAST and (value % self.page_size) >> BUDDY_SHIFT != zp.last_chunks:
                raise CheckError("z3fold-last-chunks", f"handle {h:#x} encodes a stale size")
            if (zp.pfn, bud) in seen:
                raise CheckError("z3fold-handle-unique",
                                 f"two handles for buddy {bud} of page {zp.pfn}")
            seen.add((zp.pfn, bud))
            per_page[zp.pfn] = per_page.get(zp.pfn, 0) + 1
            if sid != zp.slots:
                foreign[zp.pfn] = foreign.get(zp.pfn, 0) + 1
        for sid, slots in self._slots.items():
            for idx, value in enumerate(slots):
                if value and sid * SLOTS_ALIGN + idx * _SLOT_WORD not in self._size:
                    raise CheckError("z3fold-slot-leak", f"slot {sid}/{idx} has no handle")
        owners = {zp.slots for zp in self._pages.values() if zp.slots is not None}
        for sid, slots in self._slots.items():
            if not any(slots) and sid not in owners:
                raise CheckError("z3fold-slots-leak", f"empty slots struct {sid} kept")
        if not owners <= set(self._slots):
            raise CheckError("z3fold-slots-dangling", "a page names a freed slots struct")
        listed = {}
        for i, lst in enumerate(self._unbuddied):
            for pfn in lst:
                if pfn in listed or pfn not in self._pages:
                    raise CheckError("z3fold-list-once", f"page {pfn} listed twice or dead")
                listed[pfn] = i
        for pfn, zp in self._pages.items():
            n = per_page.get(pfn, 0)
            if zp.headless:
                if n != 1 or zp.list_idx != -1 or pfn in listed:
                    raise CheckError("z3fold-headless-page", f"headless page {pfn} broken")
                continue
            f, m, l, sm = zp.first_chunks, zp.middle_chunks, zp.last_chunks, zp.start_middle
            nbuds = (f > 0) + (m > 0) + (l > 0)
            if nbuds == 0 or n != nbuds or zp.refcount != nbuds:
                raise CheckError("z3fold-refcount",
                                 f"page {pfn}: {nbuds} buddies, {n} handles, ref {zp.refcount}")
            end_first = self.zhdr_chunks + f
            start_last = self.total_chunks - l
            if m and not (sm >= end_first and sm + m <= start_last):
                raise CheckError("z3fold-overlap", f"page {pfn}: middle [{sm},+{m}) overlaps")
            if end_first > start_last:
                raise CheckError("z3fold-overlap", f"page {pfn}: first/last overlap")
            want = -1 if (f and m and l) else self._num_free_chunks(zp)
            if zp.list_idx != want or listed.get(pfn, -1) != want:
                raise CheckError("z3fold-list-index",
                                 f"page {pfn} on list {zp.list_idx}, want {want}")
            if zp.foreign_handles != foreign.get(pfn, 0):
                raise CheckError("z3fold-foreign",
                                 f"page {pfn}: foreign_handles {zp.foreign_handles} != "
                                 f"{foreign.get(pfn, 0)}")
        if len(listed) != sum(1 for zp in self._pages.values() if zp.list_idx >= 0):
            raise CheckError("z3fold-list-pages", "list membership and list_idx disagree")
