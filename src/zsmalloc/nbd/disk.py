"""A byte-addressed disk over a page-based Zram: what an NBD export reads and writes.

NBD clients address bytes; zram stores whole pages. Requests that cover whole pages go
straight through; a page only partly covered is read, patched and written back whole, as
zram's own partial I/O does (Kernel: zram_bvec_read_partial / zram_bvec_write_partial).
A discard frees only the whole pages it covers: a partial page at either end is skipped,
zeroing nothing and freeing nothing (Kernel: zram_bio_discard).

Concurrency: the Zram is shared by every connection. Reads need nothing more than the
device's own slot locks. Writes (and trims, and write-zeroes) hold their page range in a
:class:`RangeLock`, so a read-modify-write of a page never interleaves with another write
to that page (which would silently undo the other write); writes to disjoint ranges run
side by side.

Whole pages go to the device in bulk (``Zram.write_pages`` / ``Zram.read_pages``: one bio of
many pages).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager


class NotFast(Exception):
    """A fast write-zeroes (NBD_CMD_FLAG_FAST_ZERO) that would need a read-modify-write."""


class RangeLock:
    """Holders of overlapping page ranges take turns; disjoint ranges are held at once.

    Cost: O(ranges held) per acquire, which is at most one per connection.
    """

    def __init__(self):
        self._cv = threading.Condition(threading.Lock())
        self._held: list[tuple[int, int]] = []

    @contextmanager
    def hold(self, first: int, last: int):
        """Hold pages ``first..last`` (inclusive) for the ``with`` block."""
        item = (first, last)
        with self._cv:
            while any(a <= last and first <= b for a, b in self._held):
                self._cv.wait()
            self._held.append(item)
        try:
            yield
        finally:
            with self._cv:
                self._held.remove(item)
                self._cv.notify_all()


class ZramDisk:
    """``size`` bytes addressed by byte, stored in ``zram`` (one Zram, shared by threads).

    ``on_discard(pages)`` (settable) is called after pages are freed, e.g. to wake a
    background compactor.
    """

    def __init__(self, zram):
        self.zram = zram
        self.page_size = zram.page_size
        self.size = zram.disksize
        self._ranges = RangeLock()
        self._zero_page = bytes(self.page_size)
        self.on_discard = None

    def _check(self, offset, length) -> None:
        if type(offset) is not int or type(length) is not int or offset < 0 or length < 1:
            raise ValueError(f"offset {offset!r} / length {length!r}: need an offset >= 0 "
                             f"and a length >= 1")
        if offset + length > self.size:
            raise ValueError(f"offset {offset} + length {length} is past the end of the "
                             f"{self.size}-byte disk")

    def _pages(self, offset: int, length: int) -> tuple[int, int]:
        """First and last page touched by ``offset .. offset+length-1``."""
        P = self.page_size
        return offset // P, (offset + length - 1) // P

    # -- read / write -------------------------------------------------------------------

    def pread(self, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset``. Kernel: zram_bio_read (+ _read_partial)."""
        self._check(offset, length)
        first, last = self._pages(offset, length)
        data = self.zram.read_pages(first, last - first + 1)
        start = offset - first * self.page_size
        if start == 0 and length == len(data):
            return data
        return data[start:start + length]     # partial page(s): read whole, copy the part

    def pwrite(self, offset: int, data) -> None:
        """Store ``data`` at ``offset``. Kernel: zram_bio_write (+ _write_partial).

        MemoryError when the device refuses a page over its mem_limit: the pages before it
        are written, that page and the rest keep their old data.
        """
        n = len(data)
        self._check(offset, n)
        P = self.page_size
        first, last = self._pages(offset, n)
        mv = memoryview(data)
        with self._ranges.hold(first, last):
            index, pos = first, 0
            head = offset - first * P
            if head or n < P:
                pos = min(P - head, n)
                self._write_partial(index, head, mv[:pos])
                index += 1
            whole = (n - pos) // P
            if whole:
                self.zram.write_pages(index, mv[pos:pos + whole * P])
                pos += whole * P
                index += whole
            if pos < n:
                self._write_partial(index, 0, mv[pos:])

    def _write_partial(self, index: int, start: int, part) -> None:
        """Patch part of one page. Kernel: zram_bvec_write_partial (read, copy in, write)."""
        page = bytearray(self.zram.read(index))
        page[start:start + len(part)] = part
        self.zram.write(index, page)

    # -- trim / zero / flush ------------------------------------------------------------

    def trim(self, offset: int, length: int) -> int:
        """Discard the whole pages in the range; returns how many. Kernel: zram_bio_discard.

        A partial page at either end is skipped (not zeroed, not freed), as the kernel
        skips it: a discard exists to save memory, and patching a page saves none.
        """
        self._check(offset, length)
        P = self.page_size
        first = -(-offset // P)
        end = (offset + length) // P
        if end <= first:
            return 0
        with self._ranges.hold(first, end - 1):
            self.zram.discard(first, end - first)
        if self.on_discard is not None:
            self.on_discard(end - first)
        return end - first

    def write_zeroes(self, offset: int, length: int, *, no_hole: bool = False,
                     fast: bool = False) -> None:
        """Make the range read as zeros.

        Whole pages are discarded (Kernel: REQ_OP_WRITE_ZEROES goes to zram_bio_discard),
        or, with ``no_hole``, stored as same-filled zero pages (no pool memory either way).
        Partial pages at the ends are patched with zeros by read-modify-write; ``fast``
        (NBD_CMD_FLAG_FAST_ZERO) refuses such a request with NotFast before changing anything.
        """
        self._check(offset, length)
        P = self.page_size
        first, last = self._pages(offset, length)
        head = offset - first * P
        tail = (offset + length) - last * P          # bytes of the last page covered
        if fast and (head or tail != P):
            raise NotFast(f"zeroing {offset}+{length} needs a read-modify-write of a partial page")
        with self._ranges.hold(first, last):
            a, b = first, last + 1                     # whole pages: a .. b-1
            if head or length < P:
                k = min(P - head, length)
                self._write_partial(first, head, self._zero_page[:k])
                a += 1
            if last >= a and tail != P:
                self._write_partial(last, 0, self._zero_page[:tail])
                b -= 1
            if b > a:
                if no_hole:
                    for i in range(a, b):     # the write path stores a same-filled page
                        self.zram.write(i, self._zero_page)
                else:
                    self.zram.discard(a, b - a)
        if b > a and not no_hole and self.on_discard is not None:
            self.on_discard(b - a)

    def flush(self) -> None:
        """Nothing to do: a write is in RAM when it returns (Kernel: zram has no cache)."""
