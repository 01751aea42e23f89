"""Recorders: wrappers around a Zram or a pool that write each operation to a trace.

``RecordingZram(zram, writer)`` and ``RecordingPool(pool, writer)`` offer the same methods
as what they wrap; every other attribute (``mm_stat``, ``io_stat``, ``pool``...) is passed
through. Each operation is performed, then recorded, both under one lock, so the trace's
order is the order the device saw, even with several threads.

What a zram write records is what the device decides (see zsmalloc.trace.format): ``S`` with
the fill word for a same-filled page (Kernel: page_same_filled, the same rule here), else
``W`` with the compressed length, computed with a codec of the device's algorithm (the
device's public API does not tell the length, so the recorder compresses each page once
more: the price of not reaching into the device's slot table). A write refused by
``mem_limit`` is recorded before its MemoryError goes on, so a replay refuses it too. With ``data=True`` the page itself is kept (``D``), so the trace can
be replayed with another compressor. Writes that fail before reaching the pool (bad index
or length, a codec error) are not recorded.

``demo_session`` drives a device with a short seeded mix of crafted pages, for trying the
recorder and ``zsmalloc replay`` out.
"""

from __future__ import annotations

import random
import threading

from ..zram import pages as _pages
from ..zram.backends import make_backend
from .format import TraceWriter

__all__ = ["RecordingZram", "RecordingPool", "demo_session"]


class RecordingZram:
    """A Zram that records its operations. ``RecordingZram(zram, writer, data=False)``.

    ``writer`` is a TraceWriter whose header's page size is the device's (ValueError
    otherwise); ``TraceWriter.for_zram(zram, path)`` makes one. The device must be fresh
    (nothing stored, statistics zero: ``reset()`` it first); a ``mem_limit`` it already has
    is recorded first. Cost over the bare device:
    one trace line per operation (~2 us), plus one compression per write that is not
    same-filled.
    """

    def __init__(self, zram, writer: TraceWriter, *, data: bool = False):
        if writer.header.page_size != zram.page_size:
            raise ValueError(f"trace page_size {writer.header.page_size} differs from the "
                             f"device's {zram.page_size}")
        nr = writer.header.nr_pages
        if nr is not None and nr < zram.nr_pages:
            raise ValueError(f"trace disksize {writer.header.disksize} is smaller than the "
                             f"device's {zram.disksize}")
        m, io = zram.mm_stat(), zram.io_stat()
        if m.orig_data_size or m.mem_used_total or m.mem_used_max or m.pages_compacted \
                or m.huge_pages_since or io.failed_writes or io.notify_free:
            raise ValueError(f"RecordingZram needs a fresh device (reset() it first); this "
                             f"one has mm_stat {str(m).split()} io_stat {str(io).split()}")
        self.zram = zram
        self.writer = writer
        self.data = bool(data)
        if zram.mem_limit:           # the one setting a fresh device may carry
            writer.mem_limit(zram.mem_limit)
        self._lock = threading.Lock()
        self._buf = bytearray(2 * zram.page_size)     # Kernel: zcomp dst_len = 2 * PAGE_SIZE
        self._codec = make_backend(zram.comp_algorithm)

    def __getattr__(self, name):
        return getattr(self.zram, name)

    def __repr__(self):
        return f"<RecordingZram {self.zram!r} -> {self.writer.name}>"

    def _comp_len(self, page) -> int:
        """The compressed length as the device computes it (its codec, its buffer size)."""
        return self._codec.compress_into(page, self._buf)

    def write(self, index, page) -> None:
        """Kernel: zram_write_page. Records ``S``/``W`` (or ``D``), including refused writes."""
        z = self.zram
        with self._lock:
            try:
                z.write(index, page)
            except MemoryError:   # refused by mem_limit: recorded, so a replay refuses it
                self._record_write(index, page)
                raise
            self._record_write(index, page)

    def _record_write(self, index, page) -> None:
        w = self.writer
        word = _same_word(page)
        if word is not None:
            w.zram_same(index, word)
        elif self.data:
            w.zram_data(index, page)
        else:
            w.zram_write(index, self._comp_len(page))

    def read(self, index) -> bytes:
        """Kernel: zram_read_page. Records ``G``."""
        with self._lock:
            out = self.zram.read(index)
            self.writer.zram_read(index)
        return out

    def discard(self, index, count: int = 1) -> None:
        """Kernel: zram_bio_discard. Records ``X``."""
        with self._lock:
            self.zram.discard(index, count)
            self.writer.discard(index, count)

    def slot_free_notify(self, index) -> None:
        """Kernel: zram_slot_free_notify. Recorded as ``X index 1`` (the same effect here)."""
        with self._lock:
            self.zram.slot_free_notify(index)
            self.writer.discard(index, 1)

    def compact(self) -> int:
        """Kernel: compact_store. Records ``C``."""
        with self._lock:
            freed = self.zram.compact()
            self.writer.compact()
        return freed

    @property
    def mem_limit(self) -> int:
        return self.zram.mem_limit

    @mem_limit.setter
    def mem_limit(self, nbytes) -> None:
        """Kernel: mem_limit_store. Records ``L``."""
        with self._lock:
            self.zram.mem_limit = nbytes
            self.writer.mem_limit(nbytes)

    def reset_mem_used_max(self) -> None:
        """Kernel: mem_used_max_store. Records ``M``."""
        with self._lock:
            self.zram.reset_mem_used_max()
            self.writer.reset_mem_used_max()

    def reset(self) -> None:
        """Kernel: reset_store. Records ``R``."""
        with self._lock:
            self.zram.reset()
            self.writer.reset()


def _same_word(page) -> int | None:
    """The fill word when all 8-byte words of ``page`` are equal. Kernel: page_same_filled."""
    w0 = bytes(page[:8])
    if w0 == bytes(page[-8:]) and w0 * (len(page) // 8) == page:
        return int.from_bytes(w0, "little")
    return None


class RecordingPool:
    """A pool (zsmalloc.Pool or a peer) that records malloc, free and compact.

    ``RecordingPool(pool, writer)``. Handles are the pool's own; the trace names objects by
    ids 0, 1, 2, ... in allocation order (never reused), so a trace does not depend on how an
    allocator encodes handles. ``write``/``read`` pass through unrecorded: no counter depends
    on them. A malloc the pool refuses (bad size, MemoryError) is not recorded. The pool
    must be empty when wrapped (ValueError otherwise).
    Cost: one dict entry per live object and one trace line per operation.
    """

    def __init__(self, pool, writer: TraceWriter):
        if writer.header.page_size != pool.page_size:
            raise ValueError(f"trace page_size {writer.header.page_size} differs from the "
                             f"pool's {pool.page_size}")
        if pool.objects or pool.total_pages or getattr(pool, "pages_compacted", 0):
            raise ValueError(f"RecordingPool needs an empty pool, not one with {pool.objects} "
                             f"objects in {pool.total_pages} pages")
        self.pool = pool
        self.writer = writer
        self._ids: dict[int, int] = {}
        self._next_id = 0
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.pool, name)

    def __repr__(self):
        return f"<RecordingPool {self.pool!r} -> {self.writer.name}>"

    def malloc(self, size) -> int:
        """Kernel: zs_malloc. Records ``A <id> <size>``."""
        with self._lock:
            h = self.pool.malloc(size)
            i = self._next_id
            self.writer.malloc(i, size)
            self._next_id = i + 1
            self._ids[h] = i
        return h

    def free(self, handle) -> None:
        """Kernel: zs_free. Records ``F <id>``."""
        with self._lock:
            self.pool.free(handle)         # raises InvalidHandle for a handle not live
            self.writer.free(self._ids.pop(handle))

    def compact(self) -> int:
        """Kernel: zs_compact. Records ``PC``."""
        with self._lock:
            freed = self.pool.compact()
            self.writer.pool_compact()
        return freed

    def write(self, handle, data) -> None:
        self.pool.write(handle, data)

    def read(self, handle, length=None) -> bytes:
        return self.pool.read(handle, length)

    @property
    def total_pages(self) -> int:
        return self.pool.total_pages


def demo_session(zram, ops: int = 2000, seed: int = 1, *, span: int = 512, on_op=None) -> dict:
    """Drive ``zram`` (a Zram or RecordingZram) with ``ops`` seeded operations; a summary.

    The mix: writes of crafted pages of chosen lz4 lengths (small, any, near the huge
    threshold), same-filled and incompressible pages, overwrites (the writes go to a working
    set of ``span`` indices), range discards, compaction, reads, ``mem_used_max`` resets, and
    ``mem_limit`` switched on just above the current use (so writes get refused) and off
    again. ``on_op(i)`` is called after operation ``i`` (1-based). A pure function of
    (seed, ops, span, page size, disk size). Cost: ~20-40 us per operation.
    """
    if type(ops) is not int or ops < 0:
        raise ValueError(f"ops {ops!r} must be a non-negative int")
    rng = random.Random(seed)
    P = zram.page_size
    nr = zram.nr_pages
    span = max(1, min(span, nr))
    lo, hi = _pages.comp_len_range(P)
    hcs = zram.huge_threshold
    kinds = ("write", "same", "incompressible", "discard", "compact", "read", "reset_max", "limit")
    weights = (66, 7, 4, 8, 3, 7, 2, 3)
    summary = dict.fromkeys(("writes", "same", "incompressible", "refused", "discards",
                             "compactions", "pages_freed", "reads", "reset_max",
                             "limit_changes"), 0)
    limit_on = False
    for i in range(1, ops + 1):
        kind = rng.choices(kinds, weights)[0]
        idx = rng.randrange(span)
        try:
            if kind == "write":
                r = rng.random()
                if r < 0.35:
                    n = rng.randint(lo, min(hi, 700))
                elif r < 0.55:
                    n = rng.randint(max(lo, hcs - 40), min(hi, hcs + 40))
                else:
                    n = rng.randint(lo, hi)
                summary["writes"] += 1
                zram.write(idx, _pages.craft_page(n, rng, P))
            elif kind == "same":
                word = rng.choice((0, 0, 0xFFFF_FFFF_FFFF_FFFF, rng.getrandbits(64)))
                summary["same"] += 1
                zram.write(idx, _pages.same_filled_page(word, P))
            elif kind == "incompressible":
                summary["incompressible"] += 1
                zram.write(idx, _pages.incompressible_page(rng, P))
            elif kind == "discard":
                count = min(rng.choice((1, 1, 2, 8, 32)), nr - idx)
                summary["discards"] += 1
                zram.discard(idx, count)
            elif kind == "compact":
                summary["compactions"] += 1
                summary["pages_freed"] += zram.compact()
            elif kind == "read":
                summary["reads"] += 1
                zram.read(idx)
            elif kind == "reset_max":
                summary["reset_max"] += 1
                zram.reset_mem_used_max()
            else:
                # on: a few pages above the current use, not page-aligned (tests the rounding)
                limit_on = not limit_on
                used = zram.mm_stat().mem_used_total
                summary["limit_changes"] += 1
                zram.mem_limit = used + rng.randint(0, 6) * P + rng.randrange(P) if limit_on else 0
        except MemoryError:
            summary["refused"] += 1
        if on_op is not None:
            on_op(i)
    return summary
