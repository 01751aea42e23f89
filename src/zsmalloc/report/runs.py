"""One replay of the recorded workload per configuration: pages used over time and at
the end, objects moved by compaction, and where a zblock pool's bytes go."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from .specs import ReportError, RunSpec

__all__ = ["RunResult", "run_spec", "zblock_waste"]

@dataclass
class RunResult:
    """What one replay ended with, plus its samples over time."""

    spec: RunSpec
    records: int = 0
    samples: list = field(default_factory=list)        # (record number, pages used)
    final_pages: int = 0
    peak_pages: int = 0
    mean_pages: float = 0.0
    compr_bytes: int = 0
    orig_bytes: int = 0
    moved: int = 0
    moved_lower_bound: bool = False                    # True: objects moved twice count once
    pages_compacted: int = 0
    compactions: int = 0
    raw_pages: int = 0
    max_size: int = 0                                  # largest object the allocator takes
    objects: int = 0                                   # live objects at the end (not same-filled)
    huge_objects: int = 0                              # of which stored as a full page
    waste: dict | None = None                          # zblock: where the bytes go (zblock_waste)
    compact_at: list = field(default_factory=list)     # record numbers of the compactions
    mm_stat: object = None
    classes_before_last_compact: list | None = None
    classes_end: list | None = None
    seconds: float = 0.0

    @property
    def overhead(self) -> float:
        """pages x page size / compressed bytes (1.0 = no waste)."""
        return self.final_pages * self.spec.page_size / self.compr_bytes if self.compr_bytes else float("nan")


def run_spec(spec: RunSpec, records: list, *, samples: int = 400, keep_classes: bool = False,
             on_progress=None) -> RunResult:
    """Replay ``records`` (W/S/G/X/C) with ``spec``; pages used over time and at the end.

    ``on_progress(k)`` is called every few thousand records. Cost: about one malloc and
    one free per write record.
    """
    from ..trace.format import Compact
    n = len(records)
    step = max(1, n // max(1, samples))
    res = RunResult(spec, records=n)
    P = spec.page_size
    res.compact_at = [i + 1 for i, r in enumerate(records) if type(r) is Compact]
    last_compact = res.compact_at[-1] - 1 if res.compact_at else -1
    t0 = time.perf_counter()
    tick = 4096
    from ..trace.extent import measure
    from ..trace.replay import Replayer
    # one slot layer for every allocator: zram's own (Zram over the allocator protocol)
    rp = Replayer(spec.config, nr_pages=measure(records).nr_pages,
                  zram_allocator=spec.allocator)
    apply = rp.apply
    try:
        z = None
        for k, rec in enumerate(records):
            if type(rec) is Compact and z is not None:
                if keep_classes and k == last_compact and spec.is_zsmalloc:
                    res.classes_before_last_compact = z.pool.class_stats()
                counter = getattr(z.pool, "objs_moved", 0)     # Kernel: zs_object_copy calls
                apply(rec)
                res.moved += getattr(z.pool, "objs_moved", 0) - counter
                res.compactions += 1
            else:
                apply(rec)
                if z is None:
                    z = rp.zram
            if k % step == 0 and z is not None:
                res.samples.append((k + 1, z.mm_stat().mem_used_total // P))
            if on_progress is not None and k % tick == 0:
                on_progress(k)
        z = rp.zram
        if z is None:
            raise ReportError("the workload has no zram records to replay")
        m = z.mm_stat()
        res.samples.append((n, m.mem_used_total // P))
        res.mm_stat = m
        res.final_pages = m.mem_used_total // P
        res.peak_pages = m.mem_used_max // P
        res.compr_bytes = m.compr_data_size
        res.orig_bytes = m.orig_data_size
        res.pages_compacted = m.pages_compacted
        res.objects = m.orig_data_size // P - m.same_pages
        res.huge_objects = m.huge_pages
        res.raw_pages = z.raw_pages
        if spec.is_zsmalloc:
            if keep_classes:
                res.classes_end = z.pool.class_stats()
        else:
            res.max_size = z.pool.max_size
            if spec.allocator == "zblock":
                res.waste = zblock_waste(z.pool)
    finally:
        rp.close()
    res.mean_pages = statistics.fmean(p for _, p in res.samples) if res.samples else 0.0
    res.seconds = time.perf_counter() - t0
    return res


def zblock_waste(alloc) -> dict:
    """Where a zblock pool's bytes go: objects, slot rounding, free slots, block headers.

    Slot rounding = sum over live objects of (slot size of its type - its size); free slots
    = empty slots of the allocated blocks. Cost: O(live objects).
    """
    table = alloc.table
    used_slot_bytes = 0
    for size in alloc._size.values():          # live handle -> size asked for
        used_slot_bytes += table[alloc._type_of(size)].slot_size
    blocks = alloc.blocks()
    slot_bytes = sum(c * d.slots_per_block * d.slot_size for c, d in zip(blocks, table))
    total = alloc.total_pages * alloc.page_size
    return {"objects": alloc.stored_bytes, "rounding": used_slot_bytes - alloc.stored_bytes,
            "free_slots": slot_bytes - used_slot_bytes, "headers_tails": total - slot_bytes,
            "total": total}
