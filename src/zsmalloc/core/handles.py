"""The handle table: the numbers users hold, and where each object lives.

Kernel: cache_alloc_handle / cache_free_handle (the zs_handle slab), record_obj,
handle_to_obj, location_to_obj, obj_to_location. A kernel handle is the address of an 8-byte
slab object holding ``obj`` (pfn and object index). Here a handle names a row of flat columns:
``loc`` (8 bytes: the kernel's obj plus a tag and the generation's high bits), ``gen_lo``
(2 bytes) and ``size`` (2 bytes: the size asked for, minus one, so a write past it is
refused). Bit layouts: ``zsmalloc.core.layout``. No Python object per allocation.

Free rows are chained through ``loc`` (LIFO, like a slab's freelist). A row is *reserved*
between ``alloc`` and ``record_obj`` (neither tagged nor on the free chain), which is how the
kernel policies take a handle before they hold the class lock.

Invariants (``_check``): HT-FREE-CHAIN the free chain holds every untagged row that is not
reserved, once; HT-LIVE ``live`` equals tagged + reserved rows.

Costs: alloc and release O(1) (amortised: the columns double when full); 12 bytes a row.
"""

from array import array

import cython

from ..errors import InvalidHandle
from .columns import resized
from .layout import (GEN_HI_SHIFT, GEN_LO_BITS, GEN_LO_MASK, GEN_MASK, HANDLE_MAX, IDX_BITS,
                     IDX_MASK, LOC_MASK, MAX_ROWS, PFN_MASK, PFN_SHIFT, ROW_BITS, ROW_MASK, TAG)




def obj_make(pfn: cython.ulonglong, idx: cython.ulonglong) -> cython.ulonglong:
    """The kernel's obj for object ``idx`` of a zspage, whose first byte is in frame ``pfn``.
    Kernel: location_to_obj."""
    return (pfn << IDX_BITS) | idx


def obj_pfn(obj: cython.ulonglong) -> cython.ulonglong:
    """Kernel: obj_to_location (the frame)."""
    return obj >> IDX_BITS


def obj_idx(obj: cython.ulonglong) -> cython.ulonglong:
    """Kernel: obj_to_location (the object index)."""
    return obj & IDX_MASK


class HandleTable:
    """Rows of handles. Not locked: the pool's lock policy serialises calls (a leaf lock)."""

    def __init__(self):
        self.cap = 0
        self.rows = 1              # row 0 is never used: 0 is never a handle
        self.free_head = 0
        self.live = 0
        self.gen_floor = 0         # generations of trimmed rows: rows made later start above
        self._loc_store = array("Q")
        self._gen_store = array("H")
        self._size_store = array("H")
        self._grow(64)

    def _grow(self, need: cython.Py_ssize_t) -> None:
        self._resize(max(need, 2 * self.cap, 64))

    def _resize(self, cap: cython.Py_ssize_t) -> None:
        """New columns first, then the swap (``core.columns``)."""
        loc = resized(self._loc_store, cap)
        gen = resized(self._gen_store, cap)
        size = resized(self._size_store, cap)
        self._loc_store = loc
        self._gen_store = gen
        self._size_store = size
        self.loc = loc
        self.gen_lo = gen
        self.size = size
        self.cap = cap

    def alloc(self, req_size: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """A reserved row with a new generation. Kernel: cache_alloc_handle.
        MemoryError when all 2**30 - 1 rows are live (row 0 is never used)."""
        row: cython.Py_ssize_t = self.free_head
        g: cython.ulonglong
        if row:
            self.free_head = (self.loc[row] & LOC_MASK) >> 1
            g = (self.gen(row) + 1) & GEN_MASK
        else:
            if self.rows >= MAX_ROWS:
                raise MemoryError(f"handle table full: {MAX_ROWS} live handles")
            if self.rows == self.cap:
                self._grow(self.rows + 1)
            row = self.rows
            self.rows += 1
            g = (self.gen_floor + 1) & GEN_MASK
        self.loc[row] = (g >> GEN_LO_BITS) << GEN_HI_SHIFT
        self.gen_lo[row] = g & GEN_LO_MASK
        self.size[row] = req_size - 1
        self.live += 1
        return row

    def release(self, row: cython.Py_ssize_t) -> None:
        """Back on the free chain (its generation stays). Kernel: cache_free_handle."""
        self.loc[row] = (self.loc[row] & ~LOC_MASK) | (self.free_head << 1)
        self.free_head = row
        self.live -= 1

    def gen(self, row: cython.Py_ssize_t) -> cython.ulonglong:
        return ((self.loc[row] >> GEN_HI_SHIFT) << GEN_LO_BITS) | self.gen_lo[row]

    def set_generation(self, row: cython.Py_ssize_t, g: cython.ulonglong) -> None:
        """Give a free row generation ``g`` (mod 2**33), as if it had been reused that many
        times: tests and studies reach the wrap without 2**32 mallocs. ValueError for a
        row that is live or out of range."""
        if not 0 < row < self.rows or self.loc[row] & TAG:
            raise ValueError(f"row {row} is not a free row of this table")
        g &= GEN_MASK
        self.loc[row] = (self.loc[row] & LOC_MASK) | ((g >> GEN_LO_BITS) << GEN_HI_SHIFT)
        self.gen_lo[row] = g & GEN_LO_MASK

    def handle_of(self, row: cython.Py_ssize_t) -> cython.ulonglong:
        return (self.gen(row) << ROW_BITS) | row

    def row_of(self, handle) -> cython.Py_ssize_t:
        """The row of a live handle, or InvalidHandle naming it. Kernel: handle_to_obj
        (which cannot refuse anything)."""
        return self.checked(handle) & ROW_MASK

    def checked(self, handle) -> cython.ulonglong:
        """A live handle as a 64-bit value, or InvalidHandle naming it."""
        h: cython.longlong
        if type(handle) is not int:
            raise InvalidHandle(f"handle {handle!r} is not a live handle of this pool")
        if cython.compiled:
            overflow: cython.int = 0
            h = PyLong_AsLongLongAndOverflow(handle, cython.address(overflow))
            if overflow:
                h = 0                          # far too large: not a handle
        else:
            h = handle if 0 < handle <= HANDLE_MAX else 0
        if not 0 < h <= HANDLE_MAX:
            raise InvalidHandle(f"handle {handle!r} is not a live handle of this pool")
        row: cython.Py_ssize_t = h & ROW_MASK
        if row >= self.rows or not self.loc[row] & TAG or self.gen(row) != h >> ROW_BITS:
            raise InvalidHandle(f"handle {handle!r} is not a live handle of this pool")
        return h

    def is_live(self, row: cython.Py_ssize_t) -> cython.bint:
        return 0 < row < self.rows and (self.loc[row] & TAG) != 0

    def located(self, row: cython.Py_ssize_t, handle: cython.ulonglong) -> cython.ulonglong:
        """The tagged location word (obj << 1 | 1) of a live row whose handle is ``handle``
        (0: any live handle of the row), or 0. Kernel: handle_to_obj."""
        w: cython.ulonglong = self.loc[row]
        if not w & TAG:
            return 0
        if handle != 0 and (((w >> GEN_HI_SHIFT) << GEN_LO_BITS) | self.gen_lo[row]) != \
                handle >> ROW_BITS:
            return 0
        return w & LOC_MASK

    def obj(self, row: cython.Py_ssize_t) -> cython.ulonglong:
        """The kernel's obj of a live row (pfn and index). Kernel: handle_to_obj."""
        return (self.loc[row] & LOC_MASK) >> 1

    def record_obj(self, row: cython.Py_ssize_t, obj: cython.ulonglong) -> None:
        """Point a row at an object (keeps the generation). Kernel: record_obj."""
        self.loc[row] = (self.loc[row] & ~LOC_MASK) | (obj << 1) | TAG

    def requested(self, row: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """The size given to malloc for this row."""
        return self.size[row] + 1

    def live_rows(self) -> list:
        """Every row holding an object, ascending."""
        loc = self.loc
        return [r for r in range(1, self.rows) if loc[r] & TAG]

    def trim(self) -> cython.Py_ssize_t:
        """Cut the free rows after the last live one (rows are never renumbered: users hold
        them); returns how many went. A cut row's generation is remembered so that a stale
        handle stays refused when the row comes back."""
        free = self._free_rows()
        last: cython.Py_ssize_t = self.rows - 1
        while last > 0 and last in free:
            last -= 1
        cut: cython.Py_ssize_t = self.rows - 1 - last
        if cut * 4 < self.rows:
            return 0
        top: cython.ulonglong = self.gen_floor
        r: cython.Py_ssize_t
        for r in range(last + 1, self.rows):
            top = max(top, self.gen(r))
        self.gen_floor = top
        # rebuild the free chain over what is left, lowest row first
        head: cython.Py_ssize_t = 0
        for r in range(last, 0, -1):
            if r in free:
                self.loc[r] = (self.loc[r] & ~LOC_MASK) | (head << 1)
                head = r
        self.free_head = head
        self.rows = last + 1
        self._resize(max(self.rows, 64))
        return cut

    def nbytes(self) -> int:
        """Bytes of the table's columns (capacity included)."""
        return sum(len(s) * s.itemsize for s in (self._loc_store, self._gen_store, self._size_store))

    def _free_rows(self) -> set:
        out = set()
        r = self.free_head
        while r:
            if r in out or r >= self.rows:
                break
            out.add(r)
            r = (self.loc[r] & LOC_MASK) >> 1
        return out

    def _check(self) -> None:
        from ..errors import CheckError
        free = set()
        r = self.free_head
        while r:
            if r in free:
                raise CheckError("HT-FREE-CHAIN", f"handle free chain loops at row {r}")
            if not 0 < r < self.rows or self.loc[r] & TAG:
                raise CheckError("HT-FREE-CHAIN", f"handle free chain holds row {r}, which is "
                                 f"{'live' if 0 < r < self.rows else 'out of range'}")
            free.add(r)
            r = (self.loc[r] & LOC_MASK) >> 1
        untagged = sum(1 for r in range(1, self.rows) if not self.loc[r] & TAG)
        reserved = untagged - len(free)
        tagged = self.rows - 1 - untagged
        if self.live != tagged + reserved:
            raise CheckError("HT-LIVE", f"live counter {self.live}, rows in use {tagged} "
                             f"+ reserved {reserved}")
