"""zblock: blocks of 1-8 pages, each cut into a fixed whole number of equal slots.
Kernel: mm/zblock.c + mm/zblock.h (Vitaly Wool / Igor Belousov, 2025; queued in mm for
6.16, never in mainline).

A *block type* is (slot_size, slots_per_block, pages per block); a request goes to the
first type whose slot is strictly larger than it (``size < slot_size``; the kernel's rbtree
of ``[this_slot_size, next_slot_size)`` intervals gives type ``i + 1``, so a request of
exactly ``slot_size[i]`` bytes lands in type ``i + 1``). Each type has an active list of
blocks with free slots; allocation claims the lowest free slot of the list head, else a
new block. A block goes back to the *tail* of the active list when it gets its first free
slot and is freed when it has no used slot. No compaction, no migration.

    | header | slot 0 | slot 1 | ... | slot n-1 | tail waste |
    0        HDR      HDR + slot_size

Two revisions of the table (``variant``):

``"order"`` (default) -- the LKML v2 posting that peers.md describes: blocks of 2**order
    pages (order 0..3), 29 types on 4 KiB pages (slots per block 32, 22, 17, 13, 11, 9, 8 |
    14..8 | 15..8 | 15..9, 7), 36 on 16 KiB. Header = list_head + slot bitmap + u32 = 32
    bytes (4 KiB). Handle = block | type << SLOT_BITS | slot. Sizes up to PAGE_SIZE.
``"vmalloc"`` -- the later revision (vwool/linux-mm): 1..8 pages per block (vmalloc), 37
    types on 4 KiB ordered by slot size, header = bitmap + list_head + rcu_head + type +
    free count = 48 bytes, handle = block | slot. Requests above the last slot size
    (4080 bytes on 4 KiB) get -ENOSPC. A request of *exactly* the last slot size passes
    that check and then indexes one past the table in the kernel (an out-of-bounds
    ``block_lists[ARRAY_SIZE]``); here it is refused as -ENOSPC too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .base import CheckError, ObjectTooLarge, PeerAllocator, check_page_size

VARIANTS = ("order", "vmalloc")

# (slots_per_block, pages_per_block), in the kernel's order
_ORDER_16K_EXTRA = [(181, 1), (150, 1), (116, 1), (94, 1), (72, 1), (54, 1), (42, 1)]
_ORDER_COMMON = [(32, 1), (22, 1), (17, 1), (13, 1), (11, 1), (9, 1), (8, 1),
                 (14, 2), (12, 2), (11, 2), (10, 2), (9, 2), (8, 2),
                 (15, 4), (14, 4), (13, 4), (12, 4), (11, 4), (10, 4), (9, 4), (8, 4),
                 (15, 8), (14, 8), (13, 8), (12, 8), (11, 8), (10, 8), (9, 8), (7, 8)]
_VMALLOC_4K = [(28, 1), (18, 1), (12, 1), (10, 1), (17, 2), (15, 2), (13, 2), (6, 1),
               (11, 2), (5, 1), (19, 4), (9, 2), (17, 4), (4, 1), (23, 6), (11, 3), (7, 2),
               (10, 3), (19, 6), (6, 2), (14, 5), (8, 3), (5, 2), (12, 5), (9, 4), (15, 7),
               (2, 1), (15, 8), (9, 5), (12, 7), (13, 8), (6, 4), (11, 8), (9, 7), (6, 5),
               (9, 8), (4, 4)]
_VMALLOC_OTHER = [(185, 1), (113, 1), (86, 1), (72, 1), (58, 1), (49, 1), (42, 1), (37, 1),
                  (33, 1), (59, 2), (27, 1), (25, 1), (23, 1), (21, 1), (39, 2), (37, 2),
                  (35, 2), (33, 2), (31, 2), (29, 2), (27, 2), (25, 2), (12, 1), (11, 1),
                  (21, 2), (10, 1), (19, 2), (9, 1), (17, 2), (8, 1), (15, 2), (14, 2),
                  (27, 4), (13, 2), (25, 4), (12, 2), (23, 4), (11, 2), (21, 4), (10, 2),
                  (19, 4), (9, 2), (17, 4), (4, 1), (23, 6), (11, 3), (7, 2), (10, 3),
                  (16, 5), (6, 2), (11, 4), (8, 3), (5, 2), (7, 3), (11, 5), (4, 2), (9, 5),
                  (8, 5), (3, 2), (7, 6), (4, 4)]


@dataclass(frozen=True)
class BlockDesc:
    """One block type. Kernel: struct block_desc."""

    slot_size: int
    slots_per_block: int
    pages: int                # 1 << order in the "order" variant


def _round8(n: int) -> int:
    return (n + 7) & ~7


def slot_bits(page_size: int, variant: str) -> int:
    """Kernel: SLOT_BITS (bits of a handle that name the slot)."""
    if variant == "order":
        return 5 if page_size == 4096 else 8
    return 6 if page_size == 4096 else 8


def header_size(page_size: int, variant: str) -> int:
    """Kernel: ZBLOCK_HEADER_SIZE = round_up(sizeof(struct zblock_block), 8) on 64-bit."""
    bitmap = ((1 << slot_bits(page_size, variant)) + 63) // 64 * 8
    if variant == "order":
        return _round8(16 + bitmap + 4)          # list_head, bitmap, u32 free_slots
    return _round8(bitmap + 16 + 16 + 2 + 2)     # bitmap, list_head, rcu_head, 2 shorts


@lru_cache(maxsize=None)
def zblock_table(page_size: int = 4096, variant: str = "order") -> tuple[BlockDesc, ...]:
    """The block-descriptor table. Kernel: block_desc[] with SLOT_SIZE(nslots, order)."""
    check_page_size(page_size, (4096, 16384) if variant == "order" else None)
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} unknown; use one of {VARIANTS}")
    if variant == "order":
        rows = (_ORDER_16K_EXTRA if page_size == 16384 else []) + _ORDER_COMMON
    else:
        rows = _VMALLOC_4K if page_size == 4096 else _VMALLOC_OTHER
    hdr = header_size(page_size, variant)
    table = tuple(BlockDesc(((page_size * pages - hdr) // n) & ~7, n, pages)
                  for n, pages in rows)
    if any(b.slot_size <= a.slot_size for a, b in zip(table, table[1:])):
        raise ValueError("block descriptors not in ascending order")   # create_rbtree
    return table


class ZBlock:
    """One block: base frame, type, bytes, used-slot bitmap, free count."""

    __slots__ = ("base", "type", "data", "bitmap", "free_slots")

    def __init__(self, base: int, btype: int, nbytes: int, nslots: int):
        self.base = base
        self.type = btype
        self.data = bytearray(nbytes)
        self.bitmap = 1                        # alloc_block claims slot 0 at once
        self.free_slots = nslots - 1


class ZblockPool(PeerAllocator):
    """zblock allocator over real blocks. Kernel: struct zblock_pool (zblock_create_pool)."""

    name = "zblock"

    def __init__(self, page_size: int = 4096, variant: str = "order"):
        if variant not in VARIANTS:
            raise ValueError(f"variant {variant!r} unknown; use one of {VARIANTS}")
        self.table = zblock_table(page_size, variant)
        super().__init__(page_size)
        self.variant = variant
        self.slot_bits = slot_bits(page_size, variant)
        self.header_size = header_size(page_size, variant)
        n = len(self.table)
        self._active: list[dict[int, None]] = [{} for _ in range(n)]   # head = first key
        self._block_count = [0] * n
        self._blocks: dict[int, ZBlock] = {}                            # base pfn -> block
        self._free_bases: dict[int, list[int]] = {}                     # pages -> bases
        self._next_base = 1
        self._pages = 0
        last = self.table[-1].slot_size
        self._max = min(page_size, last - 1)

    @property
    def max_size(self) -> int:
        return self._max

    @property
    def total_pages(self) -> int:
        """Kernel: zblock_get_total_pages (sum of block_count * pages per block)."""
        return self._pages

    def block_type(self, size: int) -> int:
        """Index of the type that serves ``size``. Kernel: the rbtree walk in zblock_alloc."""
        size = self._check_size(size)
        return self._type_of(size)

    def _type_of(self, size: int) -> int:
        t = self.table
        if size < t[0].slot_size:
            return 0
        lo, hi = 0, len(t) - 1          # the node i with t[i] <= size < next(i)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if t[mid].slot_size <= size:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1                   # may be len(t): -ENOSPC (callers check max_size)

    def blocks(self) -> list[int]:
        """Blocks per type (block_list->block_count)."""
        return list(self._block_count)

    def format_blocks(self) -> str:
        """The debugfs ``zblock/blocks`` file. Kernel: zblock_blocks_show."""
        return "".join(f"{i}: {c} blocks of {d.pages} pages (total {c * d.pages} pages)\n"
                       for i, (c, d) in enumerate(zip(self._block_count, self.table)))

    def _handle(self, blk: ZBlock, slot: int) -> int:
        base = blk.base * self.page_size
        if self.variant == "order":
            return base | blk.type << self.slot_bits | slot
        return base | slot

    def malloc(self, size: int) -> int:
        """Claim a slot. Kernel: zblock_alloc (find_and_claim_block, alloc_block).

        Cost: O(log types) type lookup, O(1) claim, at most one new block.
        """
        size = self._check_size(size)
        btype = self._type_of(size)
        if btype >= len(self.table):       # unreachable while max_size holds; kept as kernel
            raise ObjectTooLarge(f"size {size} has no zblock type (kernel: -ENOSPC)")
        desc = self.table[btype]
        active = self._active[btype]
        if active:
            blk = self._blocks[next(iter(active))]          # list_first_entry
            blk.free_slots -= 1
            if blk.free_slots == 0:
                del active[blk.base]                        # to the full list
            free_bits = ~blk.bitmap & (blk.bitmap + 1)      # lowest clear bit
            slot = free_bits.bit_length() - 1
            blk.bitmap |= free_bits
        else:
            pool = self._free_bases.get(desc.pages)
            if pool:
                base = pool.pop()
            else:
                base = self._next_base
                self._next_base += desc.pages
            blk = self._blocks[base] = ZBlock(base, btype, desc.pages * self.page_size,
                                              desc.slots_per_block)
            slot = 0
            self._block_count[btype] += 1
            self._pages += desc.pages
            if blk.free_slots:
                self._list_add_head(active, base)
        handle = self._handle(blk, slot)
        self._size[handle] = size
        self._stored += size
        return handle

    @staticmethod
    def _list_add_head(active: dict[int, None], base: int) -> None:
        if active:                       # never while single-threaded: alloc_block only
            items = dict.fromkeys([base, *active])          # runs on an empty list
            active.clear()
            active.update(items)
        else:
            active[base] = None

    def free(self, handle: int) -> None:
        """Release a slot; free the block when it has none used. Kernel: zblock_free.

        Cost: O(1).
        """
        size = self._live_size(handle)
        blk = self._blocks[handle // self.page_size]
        slot = handle & ((1 << self.slot_bits) - 1)
        desc = self.table[blk.type]
        del self._size[handle]
        self._stored -= size
        blk.bitmap &= ~(1 << slot)
        blk.free_slots += 1
        if blk.free_slots == desc.slots_per_block:
            self._active[blk.type].pop(blk.base, None)
            del self._blocks[blk.base]
            self._free_bases.setdefault(desc.pages, []).append(blk.base)
            self._block_count[blk.type] -= 1
            self._pages -= desc.pages
        elif blk.free_slots == 1:
            self._active[blk.type][blk.base] = None         # list_move_tail to active

    def _locate(self, handle: int) -> tuple[bytearray, int]:
        """Kernel: zblock_map (header + slot * slot_size)."""
        blk = self._blocks[handle // self.page_size]
        slot = handle & ((1 << self.slot_bits) - 1)
        return blk.data, self.header_size + slot * self.table[blk.type].slot_size

    def check(self) -> None:
        """Invariants: slot bitmaps, free counts, list placement, handles, page count."""
        self._check_counters()
        used: dict[int, int] = {}
        for h, size in self._size.items():
            blk = self._blocks.get(h // self.page_size)
            if blk is None:
                raise CheckError("zblock-handle-block", f"handle {h:#x} points at no block")
            slot = h & ((1 << self.slot_bits) - 1)
            if self.variant == "order" and (h % self.page_size) >> self.slot_bits != blk.type:
                raise CheckError("zblock-handle-type", f"handle {h:#x} names another type")
            if not blk.bitmap >> slot & 1:
                raise CheckError("zblock-slot-free", f"handle {h:#x} names a free slot")
            if self._type_of(size) != blk.type:
                raise CheckError("zblock-type", f"{size} B stored in type {blk.type}")
            used[blk.base] = used.get(blk.base, 0) + 1
        counts = [0] * len(self.table)
        pages = 0
        for base, blk in self._blocks.items():
            desc = self.table[blk.type]
            n_used = bin(blk.bitmap).count("1")
            if blk.bitmap >> desc.slots_per_block:
                raise CheckError("zblock-bitmap-range", f"block {base}: bit past the last slot")
            if n_used == 0 or blk.free_slots != desc.slots_per_block - n_used:
                raise CheckError("zblock-free-slots",
                                 f"block {base}: free_slots {blk.free_slots}, used {n_used}")
            if used.get(base, 0) != n_used:
                raise CheckError("zblock-handle-count", f"block {base}: handles != used slots")
            if (base in self._active[blk.type]) != (blk.free_slots > 0):
                raise CheckError("zblock-active-list", f"block {base} on the wrong list")
            counts[blk.type] += 1
            pages += desc.pages
        if counts != self._block_count:
            raise CheckError("zblock-block-count", f"block_count {self._block_count} != "
                                                   f"{counts}")
        if pages != self._pages:
            raise CheckError("zblock-total-pages", f"total_pages {self._pages} != {pages}")
        if sum(len(a) for a in self._active) != sum(
                1 for b in self._blocks.values() if b.free_slots):
            raise CheckError("zblock-active-list", "a dead block is on an active list")
