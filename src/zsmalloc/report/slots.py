"""zram's slot layer by lengths over any allocator (the peers have no zram of their own).

To be replaced by the device's own slot layer over an allocator protocol once the core
has one: everything that depends on it is here."""

from __future__ import annotations

from .specs import ReportError

__all__ = ["SlotStore", "replay_slots"]

class SlotStore:
    """zram's slot layer over any allocator, driven by lengths. Kernel: zram_write_page's
    malloc-new / free-old order, zram_free_page, zram_bio_discard.

    ``SlotStore(allocator, page_size, huge_threshold)``. A length >= ``huge_threshold`` is
    stored as a ``page_size`` object; a size the allocator cannot take (above its
    ``max_size``) is kept as one raw page outside it (counted in ``raw_pages``, and in
    ``total_pages``). Same-filled pages take no object. No data is stored (lengths only).
    Cost: one malloc and at most one free per write.
    """

    def __init__(self, allocator, page_size: int, huge_threshold: int):
        self.alloc = allocator
        self.page_size = page_size
        self.huge_threshold = huge_threshold
        self.max_size = getattr(allocator, "max_size", page_size)
        # index -> (handle, stored size); (0, size) is a raw page, (0, 0) a same-filled page
        self.slots: dict[int, tuple] = {}
        self.raw_pages = 0
        self.compr_data_size = 0
        self.max_used_pages = 0

    @property
    def total_pages(self) -> int:
        return self.alloc.total_pages + self.raw_pages

    @property
    def pages_stored(self) -> int:
        return len(self.slots)

    def write_len(self, index: int, comp_len: int) -> None:
        """A write of a page compressing to ``comp_len`` bytes."""
        size = self.page_size if comp_len >= self.huge_threshold else comp_len
        if size > self.max_size:
            h = 0
            self.raw_pages += 1
        else:
            h = self.alloc.malloc(size)
        total = self.alloc.total_pages + self.raw_pages   # Kernel: zram_can_store_page
        if total > self.max_used_pages:
            self.max_used_pages = total
        self._free(index)
        self.slots[index] = (h, size)
        self.compr_data_size += size

    def write_same(self, index: int) -> None:
        """A write of a same-filled page: no object. Kernel: zram_write_same_filled_page."""
        self._free(index)
        self.slots[index] = (0, 0)

    def _free(self, index: int) -> None:
        s = self.slots.pop(index, None)
        if s is None:
            return
        h, size = s
        if h:
            self.alloc.free(h)
        elif size:
            self.raw_pages -= 1
        self.compr_data_size -= size

    def discard(self, index: int, count: int = 1) -> None:
        for i in range(index, index + count):
            self._free(i)

    def compact(self) -> int:
        return self.alloc.compact() or 0


def replay_slots(st: SlotStore, records, *, step: int = 0, samples: list | None = None,
                 on_progress=None, tick: int = 4096) -> int:
    """Drive a SlotStore with zram records (W, S, X, C; G only counts); compactions done.

    With ``step`` > 0, appends ``(record number, total_pages)`` to ``samples`` every
    ``step`` records. ReportError for a record kind a slot layer cannot replay.
    """
    from ..trace.format import Compact, Discard, ZramRead, ZramSame, ZramWrite
    compactions = 0
    for k, rec in enumerate(records):
        t = type(rec)
        if t is ZramWrite:
            st.write_len(rec.index, rec.comp_len)
        elif t is ZramSame:
            st.write_same(rec.index)
        elif t is Discard:
            st.discard(rec.index, rec.count)
        elif t is Compact:
            st.compact()
            compactions += 1
        elif t is not ZramRead:
            raise ReportError(f"record {rec!r} is not one this report replays on a peer")
        if step and k % step == 0:
            samples.append((k + 1, st.total_pages))
        if on_progress is not None and k % tick == 0:
            on_progress(k)
    return compactions
