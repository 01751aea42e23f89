"""The seed thread's race, reproduced: N writers find a class full at the same moment.

Kernel: zs_malloc drops the class lock around alloc_zspage, so N writers that find a class
full each allocate a zspage (the 2016 review thread on "zsmalloc: page migration support").
A barrier in ``Pool.slow_path_hook`` (called with the class lock dropped, before
alloc_zspage) releases the N writers together, deterministically. The ``tuned`` profile's
slow path (``core.pool.TunedSlowPath``) needs only the minimum. Used by tests/test_threads.py
and benchmarks/bench_race.py.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .config import PoolConfig
from .core.pool import Pool


@dataclass(frozen=True)
class RaceResult:
    """What ``race`` measured: zspages and pages created by the N writers, pages held after,
    and the minimum zspages / pages that N objects need."""

    writers: int
    zspages_created: int
    pages_created: int
    pages_held: int
    min_zspages: int
    min_pages: int
    class_size: int


def race(profile: str, n: int, size: int = 1000, timeout: float = 30.0) -> RaceResult:
    """N writers of ``size`` bytes released together into a full class (kernel locks,
    ``concurrent=True``). RuntimeError if a writer does not finish in ``timeout`` seconds."""
    pool = Pool(PoolConfig(profile=profile), concurrent=True)
    cls = pool.class_for(size)
    for _ in range(cls.objs):              # fill one zspage: the class is now full
        pool.malloc(size)
    z0, p0, held0 = pool.zspages_created, pool.pages_created, pool.total_pages
    barrier = threading.Barrier(n)

    def hook(p, c):
        if c is cls:
            try:
                barrier.wait(timeout=timeout / 3)
            except threading.BrokenBarrierError:
                pass
    pool.slow_path_hook = hook
    ts = [threading.Thread(target=pool.malloc, args=(size,), name=f"race-writer-{i}")
          for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout)
    if any(t.is_alive() for t in ts):
        raise RuntimeError(f"race writers hung ({profile}, N={n}, size {size})")
    pool.slow_path_hook = None
    pool.check()
    zmin = -(-n // cls.objs)
    return RaceResult(n, pool.zspages_created - z0, pool.pages_created - p0,
                      pool.total_pages - held0, zmin, zmin * cls.ppz, cls.size)
