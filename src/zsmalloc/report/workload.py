"""The report's workload: real pages, the swap-like operations over them, and one
recorded run on our Zram whose trace every configuration replays."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from ..config import PoolConfig
from ..realpages import swap_in_wave
from .specs import DEFAULT_ROUNDS, ReportError

__all__ = ["default_ops", "gather_pages", "Recording", "record_workload"]

def default_ops(npages: int, seed: int = 0, nr_slots: int | None = None, rounds: int = DEFAULT_ROUNDS):
    """The report's workload as ``realpages`` operations (a list).

    Fill slots ``0..nr_slots-1``, then ``rounds`` times: swap-out (30-80 % of the free
    slots written again; none free in the first round); overwrite 20-50 % of the used slots
    with other pages; swap-in (runs of 1-32 slots read and then discarded until 20-40 % of
    the slots are freed); one to three idle periods; a compaction. So every compaction
    meets the holes a swap-in wave left, and the run ends just after one.
    Deterministic for (npages, seed, nr_slots, rounds).
    """
    if isinstance(npages, bool) or not isinstance(npages, int) or npages < 1:
        raise ReportError(f"npages {npages!r} must be a positive int")
    if nr_slots is None:
        nr_slots = npages
    if isinstance(nr_slots, bool) or not isinstance(nr_slots, int) or nr_slots < 1:
        raise ReportError(f"nr_slots {nr_slots!r} must be a positive int")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ReportError(f"rounds {rounds!r} must be a non-negative int")
    rng = random.Random(seed)
    ops = [("write", i, i % npages) for i in range(nr_slots)]
    used = set(range(nr_slots))
    for _ in range(rounds):
        free = sorted(set(range(nr_slots)) - used)
        for i in rng.sample(free, int(len(free) * rng.uniform(0.3, 0.8))):
            ops.append(("write", i, rng.randrange(npages)))
            used.add(i)
        for i in rng.sample(sorted(used), int(len(used) * rng.uniform(0.2, 0.5))):
            ops.append(("write", i, rng.randrange(npages)))
        ops.extend(swap_in_wave(rng, nr_slots, used))
        ops.extend([("idle",)] * rng.randint(1, 3))
        ops.append(("compact",))
    return ops


def gather_pages(n4k: int, page_size: int, seed: int = 0, stats: dict | None = None) -> list:
    """``n4k * 4096 // page_size`` mixed real pages of ``page_size`` bytes (same total bytes)."""
    from ..realpages import mixed_pages
    n = max(1, n4k * 4096 // page_size)
    return mixed_pages(n, page_size, seed, stats=stats)


@dataclass
class Recording:
    """A workload recorded on our Zram: the trace's records and what the device ended with."""

    page_size: int
    trace_path: str
    records: list
    mm_stat: object
    total_pages: int
    counts: dict
    summary: dict
    seconds: float
    ops: int


def record_workload(pages: list, ops: list, trace_path: str, seed_note: str = "") -> Recording:
    """Run ``ops`` on a fresh Zram (lz4, linux-6.18 chain 8) recording a trace to ``trace_path``.

    Returns the records (read back from the file, so they are what a later ``zsmalloc
    replay`` sees) and the device's final mm_stat. Cost: one lz4 compression per write.
    """
    from ..realpages import apply, summarize
    from ..trace.format import TraceWriter, read_trace
    from ..trace.recorder import RecordingZram
    from ..zram import Zram
    P = len(pages[0])
    nr = 1 + max((op[1] + (op[2] - 1 if op[0] == "discard" else 0))
                 for op in ops if len(op) > 1)
    t0 = time.perf_counter()
    z = Zram(nr * P, "lz4", PoolConfig(page_size=P))
    try:
        with TraceWriter.for_zram(z, trace_path) as w:
            if seed_note:
                w.comment(seed_note)
            rz = RecordingZram(z, w)
            counts = apply(rz, pages, ops)
        mm = z.mm_stat()
        total = z.pool.total_pages
    finally:
        z.close()
    with read_trace(trace_path) as r:
        records = list(r)
    return Recording(P, trace_path, records, mm, total, counts, summarize(pages),
                     time.perf_counter() - t0, len(ops))
