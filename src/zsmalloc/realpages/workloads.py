"""Swap-like workloads over a page list, for a ``zsmalloc.Zram`` (or anything with
``write/read/discard/compact``): a fill, overwrite waves, swap-in-like discard waves, and
idle periods followed by compaction. :func:`workload_ops` makes the operations (no I/O),
:func:`apply` runs them and checks every read.
"""

from __future__ import annotations

import random

__all__ = ["WORKLOADS", "workload_ops", "swap_in_wave", "apply"]

WORKLOADS = ("fill", "overwrite-waves", "discard-waves", "idle-compact")


def workload_ops(pages, kind: str, seed: int = 0, nr_slots: int | None = None, *, waves: int = 4):
    """Operations over ``pages`` for a Zram of at least ``nr_slots`` pages (a generator).

    Yields ``("write", index, page_idx)`` (write ``pages[page_idx]`` at ``index``),
    ``("read", index)``, ``("discard", index, count)``, ``("compact",)`` and ``("idle",)``.
    Every kind starts by filling slots ``0 .. nr_slots-1`` (pages cycled if fewer); then

    * ``fill``: nothing more;
    * ``overwrite-waves``: ``waves`` times, 20-50 % of the slots rewritten with other pages;
    * ``discard-waves`` (swap-in like): ``waves`` times, runs of 1-32 slots are read and
      then discarded (20-40 % of the slots), then some of the free slots are written again;
    * ``idle-compact``: ``waves`` times, scattered discards and overwrites, an idle period
      (no writes), then a compaction.

    ``nr_slots`` defaults to ``len(pages)``. Deterministic for a given seed and page count.
    """
    npages = len(pages)
    if npages == 0:
        raise ValueError("workload needs at least one page")
    if kind not in WORKLOADS:
        raise ValueError(f"unknown workload kind {kind!r}; kinds: {', '.join(WORKLOADS)}")
    if nr_slots is None:
        nr_slots = npages
    if isinstance(nr_slots, bool) or not isinstance(nr_slots, int) or nr_slots < 1:
        raise ValueError(f"nr_slots must be a positive int, got {nr_slots!r}")
    if isinstance(waves, bool) or not isinstance(waves, int) or waves < 0:
        raise ValueError(f"waves must be a non-negative int, got {waves!r}")
    return _ops(npages, kind, seed, nr_slots, waves)


def swap_in_wave(rng, nr_slots: int, used: set):
    """A swap-in wave: runs of 1-32 slots are read, then discarded, until 20-40 % of the
    slots are freed. Yields ("read", i) and ("discard", start, count); updates ``used``."""
    goal = int(nr_slots * rng.uniform(0.2, 0.4))
    freed = 0
    for _ in range(4 * nr_slots):
        if freed >= goal:
            break
        start = rng.randrange(nr_slots)
        count = min(rng.randint(1, 32), nr_slots - start)
        run = [i for i in range(start, start + count) if i in used]
        if not run:
            continue
        for i in run:               # swap-in reads the pages, then frees the slots
            yield ("read", i)
        yield ("discard", start, count)
        used.difference_update(run)
        freed += len(run)


def _ops(npages, kind, seed, nr_slots, waves):
    rng = random.Random(seed)
    for i in range(nr_slots):
        yield ("write", i, i % npages)
    if kind == "fill":
        return
    used = set(range(nr_slots))
    for _ in range(waves):
        if kind == "overwrite-waves":
            for i in rng.sample(range(nr_slots), int(nr_slots * rng.uniform(0.2, 0.5))):
                yield ("write", i, rng.randrange(npages))
        elif kind == "discard-waves":
            yield from swap_in_wave(rng, nr_slots, used)
            free = sorted(set(range(nr_slots)) - used)
            for i in rng.sample(free, int(len(free) * rng.uniform(0.3, 0.8))):
                yield ("write", i, rng.randrange(npages))
                used.add(i)
        else:   # idle-compact
            for i in rng.sample(range(nr_slots), int(nr_slots * rng.uniform(0.2, 0.4))):
                if rng.random() < 0.7:
                    yield ("discard", i, 1)
                else:
                    yield ("write", i, rng.randrange(npages))
            for _ in range(rng.randint(1, 3)):
                yield ("idle",)
            yield ("compact",)


def apply(zram, pages, ops, *, on_idle=None) -> dict:
    """Run ``ops`` (from :func:`workload_ops`) on ``zram``; returns counts per operation.

    ``("idle",)`` calls ``on_idle()`` if given (e.g. a sleep, or a mm_stat sample) and
    otherwise does nothing. ``read`` operations are checked against what was last written
    there (zeros after a discard); the result has ``read_mismatches`` and
    ``pages_compacted`` (pages freed by the compactions).
    """
    counts = {"write": 0, "read": 0, "discard": 0, "compact": 0, "idle": 0,
              "read_mismatches": 0, "pages_compacted": 0}
    where: dict = {}          # index -> page_idx last written there
    zero = None
    for op in ops:
        name = op[0]
        if name == "write":
            _, i, p = op
            zram.write(i, pages[p])
            where[i] = p
        elif name == "read":
            i = op[1]
            got = zram.read(i)
            p = where.get(i)
            if p is None:
                if zero is None:
                    zero = bytes(len(got))
                ok = got == zero
            else:
                ok = got == pages[p]
            counts["read_mismatches"] += not ok
        elif name == "discard":
            _, i, c = op
            zram.discard(i, c)
            for j in range(i, i + c):
                where.pop(j, None)
        elif name == "compact":
            counts["pages_compacted"] += zram.compact() or 0
        elif name == "idle":
            if on_idle is not None:
                on_idle()
        else:
            raise ValueError(f"unknown operation {op!r}")
        counts[name] += 1
    return counts
