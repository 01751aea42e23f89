"""Handles: the numbers users hold, and where each object lives.

Kernel: cache_alloc_handle / cache_free_handle, record_obj, handle_to_obj, location_to_obj,
obj_to_location. In the kernel a handle is the address of an 8-byte slab object holding the
encoded location ``(pfn << OBJ_INDEX_BITS) | obj_idx``. Here a handle names a row of one flat
``array('Q')`` (8 bytes per handle, no Python object per allocation), plus a 2-byte row in
an ``array('H')`` with the size asked for, so a write past it is refused.

Word layout of a row (64 bits)::

    allocated:  gen(15) << 49 | pfn(32) << 17 | obj_idx(16) << 1 | 1
    free:       gen(15) << 49 | next free row(32) << 1           | 0

A handle is ``gen << 32 | row``. The generation is bumped each time a row is reused, so a
stale handle (freed, then its row reused) is refused instead of touching another object's
data; the kernel cannot tell those apart, we can for 2 bytes' worth of bits. Row 0 is never
used, so 0 is never a valid handle (the kernel's NULL).
"""

from __future__ import annotations

from array import array

from .errors import InvalidHandle

GEN_SHIFT = 49
GEN_MAX = (1 << 15) - 1
PFN_SHIFT = 17
PFN_MASK = 0xFFFF_FFFF
IDX_MASK = 0xFFFF
ROW_MASK = 0xFFFF_FFFF
HANDLE_GEN_SHIFT = 32
LOC_MASK = (1 << GEN_SHIFT) - 1        # pfn, idx and tag bits of a row
GEN_BITS = ~LOC_MASK & 0xFFFF_FFFF_FFFF_FFFF


def encode(gen: int, pfn: int, idx: int) -> int:
    """Row word of an allocated object. Kernel: location_to_obj (+ the tag bit)."""
    return (gen << GEN_SHIFT) | (pfn << PFN_SHIFT) | (idx << 1) | 1


def decode(word: int) -> tuple[int, int]:
    """(pfn, obj_idx) of an allocated row word. Kernel: obj_to_location."""
    return (word >> PFN_SHIFT) & PFN_MASK, (word >> 1) & IDX_MASK


class HandleTable:
    """Rows of handles with a free chain threaded through them.

    ``words`` and ``sizes`` are read directly by the pool's hot paths. Costs: alloc and free
    O(1) amortised; memory 10 bytes per row ever in use at once.
    """

    __slots__ = ("words", "sizes", "free_head", "live", "gen_floor")

    def __init__(self):
        self.words = array("Q", [0])   # row 0 reserved
        self.sizes = array("H", [0])
        self.free_head = 0
        self.live = 0
        self.gen_floor = 0             # generations of trimmed rows: new rows start above

    def lookup(self, handle) -> int:
        """Row word of a live handle, or InvalidHandle naming it."""
        try:
            w = self.words[handle & ROW_MASK]
            ok = (w & 1) and (w >> GEN_SHIFT) == (handle >> HANDLE_GEN_SHIFT)
        except (TypeError, IndexError):
            ok = False
        if not ok:
            raise InvalidHandle(f"handle {handle!r} is not a live handle of this pool")
        return w

    def check_size(self, row: int) -> int:
        return self.sizes[row] + 1

    def rows_in_use(self):
        """(row, word) of every live handle."""
        words = self.words
        return [(r, w) for r, w in enumerate(words) if w & 1]

    def handle_of_row(self, row: int) -> int:
        return (self.words[row] >> GEN_SHIFT) << HANDLE_GEN_SHIFT | row
