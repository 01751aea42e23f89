"""Replay a trace: drive a zram model and a pool with its records; report the counters.

``replay(trace, config=None, allocator="zsmalloc")`` -> ReplayResult.

Zram records drive ``ZramModel``: zram's accounting over a real ``zsmalloc.Pool``, fed with
compressed lengths instead of data. Its write path is ``Zram.write``'s, step for step
(6.18, spec §10.3): same-filled pages take no object; otherwise malloc the new object
(``page_size`` bytes if the length reaches the huge threshold), raise ``mem_used_max`` to the
pool's pages, refuse the write if over ``mem_limit`` (free the new object, keep the old
slot, count a failed write), then free the old slot and install the new one. The huge
threshold is the replaying configuration's (``huge_class_size``, or 3073 for linux-4.8), so
a trace recorded with one chain size can be replayed with another. ``D`` records are
classified and compressed with the trace's codec (``comp=`` in the header, or the
``comp_algorithm`` argument).

Pool records (``A``/``F``/``PC``) drive the chosen allocator: ``zsmalloc`` (a Pool with the
replay's configuration) or a peer from ``zsmalloc.peers`` (zbud, z3fold, zblock). A malloc a
peer cannot hold (ObjectTooLarge, the kernel's -ENOSPC) is counted as rejected, and the
later free of that id is skipped.

Replaying with another page size keeps each page's compressed length and fill word (a
what-if); ``D`` records then fail, their page being the wrong size.
Cost: about one Pool.malloc and one Pool.free per write record (~5-10 us); memory: the
pool's frames and one dict entry per live slot or object.
"""

from __future__ import annotations

import os
from array import array
from collections import Counter
from dataclasses import dataclass, field

from ..config import PoolConfig
from ..core.pool import Pool
from ..zram import IoStat, MmStat, Zram
from .format import (Compact, Discard, Free, Malloc, MemLimit, PoolCompact, Reset, ResetMax,
                     TraceError, TraceHeader, ZramData, ZramRead, ZramSame,
                     ZramWrite, read_trace)

__all__ = ["ZramModel", "Replayer", "ReplayResult", "replay", "ALLOCATORS", "make_allocator",
           "config_for"]

ALLOCATORS = ("zsmalloc", "zbud", "z3fold", "zblock")

class ZramModel(Zram):
    """A Zram driven by compressed lengths instead of data. Kernel: zram_drv.c.

    ``ZramModel(config=None, comp_algorithm="lz4")``. It *is* ``zsmalloc.Zram`` (same write
    order, same counters: ``write_compressed`` / ``write_same`` are the device's own steps),
    with two differences for traces: the slot table grows to the highest index seen (a trace
    need not give a disk size), and a read only counts (no page data is kept).
    """

    _INITIAL_PAGES = 256

    def __init__(self, config: PoolConfig | None = None, comp_algorithm: str = "lz4"):
        cfg = PoolConfig() if config is None else config
        super().__init__(self._INITIAL_PAGES * cfg.page_size, comp_algorithm, cfg)

    def _check_index(self, index) -> None:
        if type(index) is not int or index < 0:
            raise ValueError(f"index {index!r} must be a non-negative int")
        if index >= self.nr_pages:
            self._grow(index + 1)

    def _grow(self, n: int) -> None:
        new = max(n, 2 * self.nr_pages)
        extra = array("Q", [0]) * (new - self.nr_pages)
        self.slot_handle.extend(extra)
        self.slot_flags.extend(extra)
        self.nr_pages = new
        self.disksize = new * self.page_size

    def write_len(self, index: int, comp_len: int) -> bool:
        """A write of a page compressing to ``comp_len``; False if mem_limit refused it."""
        try:
            self.write_compressed(index, comp_len)
        except MemoryError:
            return False
        return True

    def write_page(self, index: int, page) -> bool:
        """A write with data, classified and compressed as Zram.write does; False if refused."""
        if len(page) != self.page_size:
            raise ValueError(f"page for index {index} is {len(page)} bytes, the replay's "
                             f"page_size is {self.page_size}")
        try:
            self.write(index, page)
        except (MemoryError, OSError):      # refused by mem_limit, or compression failed
            return False
        return True

    def read(self, index) -> None:
        self._check_index(index)
        self.num_reads += 1

    def discard(self, index, count: int = 1) -> None:
        """Kernel: zram_bio_discard (notify_free counts every page, empty or not)."""
        if type(count) is int and count > 0:
            self._check_index(index + count - 1)
        super().discard(index, count)


def make_allocator(name: str, config: PoolConfig):
    """A fresh allocator for pool records: a zsmalloc Pool or a peer of ``config.page_size``."""
    if name == "zsmalloc":
        return Pool(config, name="replay")
    if name not in ALLOCATORS:
        raise ValueError(f"unknown allocator {name!r}; use one of {', '.join(ALLOCATORS)}")
    try:
        from ..peers import PEERS
    except ImportError as e:
        raise ValueError(f"allocator {name!r} is not available in this build ({e})") from None
    cls = PEERS.get(name)
    if cls is None:
        raise ValueError(f"allocator {name!r} is not available; peers here: {', '.join(PEERS)}")
    return cls(page_size=config.page_size)


@dataclass
class ReplayResult:
    """What a replay ends with. Zram fields are None when the trace had no zram record,
    pool fields when it had no pool record."""

    config: PoolConfig
    allocator: str
    records: int = 0
    counts: dict = field(default_factory=dict)      # record code -> how many
    mm_stat: MmStat | None = None
    io_stat: IoStat | None = None
    total_pages: int | None = None                   # the zram pool's
    pages_compacted: int | None = None
    num_writes: int | None = None
    num_reads: int | None = None
    pool_total_pages: int | None = None
    pool_pages_compacted: int | None = None
    pool_objects: int | None = None
    pool_rejected: int | None = None

    def as_dict(self) -> dict:
        d = {"profile": self.config.profile, "chain_size": self.config.chain_size,
             "page_size": self.config.page_size, "allocator": self.allocator,
             "records": self.records, "counts": dict(self.counts)}
        if self.mm_stat is not None:
            d["zram"] = {"mm_stat": dict(zip(MmStat.FIELDS, self.mm_stat)),
                         "io_stat": {"failed_reads": self.io_stat.failed_reads,
                                     "failed_writes": self.io_stat.failed_writes,
                                     "notify_free": self.io_stat.notify_free},
                         "total_pages": self.total_pages, "pages_compacted": self.pages_compacted,
                         "num_writes": self.num_writes, "num_reads": self.num_reads}
        if self.pool_total_pages is not None:
            d["pool"] = {"allocator": self.allocator, "total_pages": self.pool_total_pages,
                         "pages_compacted": self.pool_pages_compacted,
                         "objects": self.pool_objects, "rejected": self.pool_rejected}
        return d

    def format(self) -> str:
        cfg = self.config
        counts = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        out = [f"config: {cfg.profile}, chain {cfg.chain_size}, page {cfg.page_size}",
               f"records: {self.records} ({counts or 'none'})"]
        if self.mm_stat is not None:
            out.append(f"mm_stat: {str(self.mm_stat).strip()}")
            w = max(map(len, MmStat.FIELDS))
            out += [f"  {k:<{w}} {v}" for k, v in zip(MmStat.FIELDS, self.mm_stat)]
            out.append(f"io_stat: {str(self.io_stat).strip()}  (failed_reads failed_writes 0 "
                       f"notify_free)")
            out.append(f"total_pages: {self.total_pages}  pages_compacted: {self.pages_compacted}"
                       f"  writes: {self.num_writes}  reads: {self.num_reads}")
        if self.pool_total_pages is not None:
            out.append(f"pool ({self.allocator}): total_pages {self.pool_total_pages}  "
                       f"pages_compacted {self.pool_pages_compacted}  objects "
                       f"{self.pool_objects}  rejected {self.pool_rejected}")
        return "\n".join(out)


class Replayer:
    """Apply records one at a time; ``result()`` at any point (e.g. every 100 records).

    ``Replayer(config=None, allocator="zsmalloc", comp_algorithm="lz4")``. ``apply(rec)``
    raises ValueError (for a record the replay cannot do, e.g. a size over its page size)
    and MemoryError as the pool does; ``replay()`` adds the line number.
    """

    def __init__(self, config: PoolConfig | None = None, allocator: str = "zsmalloc",
                 comp_algorithm: str = "lz4"):
        self.config = PoolConfig() if config is None else config
        if allocator not in ALLOCATORS:
            raise ValueError(f"unknown allocator {allocator!r}; use one of {', '.join(ALLOCATORS)}")
        self.allocator = allocator
        self.comp_algorithm = comp_algorithm
        self.zram: ZramModel | None = None
        self.pool = None
        self._ids: dict[int, int | None] = {}      # trace id -> handle (None: rejected)
        self.rejected = 0
        self.records = 0
        self.counts: Counter = Counter()

    def _zram(self) -> ZramModel:
        z = self.zram
        if z is None:
            if self.allocator != "zsmalloc":
                raise ValueError(f"zram records need the zsmalloc allocator (zram stores in "
                                 f"zsmalloc); --allocator {self.allocator} replays pool records only")
            z = self.zram = ZramModel(self.config, self.comp_algorithm)
        return z

    def _pool(self):
        p = self.pool
        if p is None:
            p = self.pool = make_allocator(self.allocator, self.config)
        return p

    def apply(self, rec) -> None:
        """Apply one record."""
        fn = _DISPATCH.get(type(rec))
        if fn is None:
            raise ValueError(f"not a trace record: {rec!r}")
        fn(self, rec)
        self.records += 1
        self.counts[rec.CODE] += 1

    def _w(self, r):
        self._zram().write_len(r.index, r.comp_len)

    def _s(self, r):
        self._zram().write_same(r.index, r.word)

    def _d(self, r):
        self._zram().write_page(r.index, r.page)

    def _g(self, r):
        self._zram().read(r.index)

    def _x(self, r):
        self._zram().discard(r.index, r.count)

    def _c(self, r):
        self._zram().compact()

    def _l(self, r):
        self._zram().mem_limit = r.nbytes

    def _m(self, r):
        self._zram().reset_mem_used_max()

    def _r(self, r):
        self._zram().reset()

    def _a(self, r):
        pool = self._pool()
        if r.id in self._ids:   # the reader checks this; records made in code may not be
            raise ValueError(f"A: id {r.id} is already live")
        try:
            self._ids[r.id] = pool.malloc(r.size)
        except ValueError as e:
            if type(e).__name__ != "ObjectTooLarge":
                raise
            self._ids[r.id] = None
            self.rejected += 1

    def _f(self, r):
        pool = self._pool()
        try:
            h = self._ids.pop(r.id)
        except KeyError:
            raise ValueError(f"F: id {r.id} is not live") from None
        if h is not None:
            pool.free(h)

    def _pc(self, r):
        self._pool().compact()

    def result(self) -> ReplayResult:
        res = ReplayResult(self.config, self.allocator, self.records, dict(self.counts))
        z = self.zram
        if z is not None:
            res.mm_stat = z.mm_stat()
            res.io_stat = z.io_stat()
            res.total_pages = z.pool.total_pages
            res.pages_compacted = z.pool.pages_compacted
            res.num_writes = z.num_writes
            res.num_reads = z.num_reads
        p = self.pool
        if p is not None:
            res.pool_total_pages = p.total_pages
            res.pool_pages_compacted = getattr(p, "pages_compacted", 0)
            res.pool_objects = p.objects
            res.pool_rejected = self.rejected
        return res

    def close(self) -> None:
        """Release the pools' memory."""
        if self.zram is not None:
            self.zram.close()
        close = getattr(self.pool, "close", None)
        if close is not None:
            close()


_DISPATCH = {ZramWrite: Replayer._w, ZramSame: Replayer._s, ZramData: Replayer._d,
             ZramRead: Replayer._g, Discard: Replayer._x, Compact: Replayer._c,
             MemLimit: Replayer._l, ResetMax: Replayer._m, Reset: Replayer._r,
             Malloc: Replayer._a, Free: Replayer._f, PoolCompact: Replayer._pc}


def config_for(header: TraceHeader | None, profile=None, chain_size=None, page_size=None) -> PoolConfig:
    """The replay configuration: each setting given here, else the trace header's.

    A chain size from the header is kept only when the profile is the header's (another
    profile brings its own default chain size).
    """
    h = header
    prof = profile or (h.profile if h and h.profile else "linux-6.18")
    if chain_size is None and h is not None and h.chain_size is not None \
            and (profile is None or profile == h.profile):
        chain_size = h.chain_size
    if page_size is None:
        page_size = h.page_size if h is not None else 4096
    return PoolConfig(profile=prof, chain_size=chain_size, page_size=page_size)


def replay(trace, config: PoolConfig | None = None, allocator: str = "zsmalloc", *,
           comp_algorithm: str | None = None) -> ReplayResult:
    """Replay ``trace`` (a path, a TraceReader or an iterable of records); the counters.

    ``config`` defaults to the trace header's (profile, chain size, page size; see
    ``config_for``). Errors while replaying are TraceError naming the record's line.
    The pools are released before returning.
    """
    if isinstance(trace, (str, bytes, os.PathLike)):
        trace = read_trace(trace)
    header = getattr(trace, "header", None)
    if config is None:
        config = config_for(header)
    if comp_algorithm is None:
        comp_algorithm = (header.comp if header is not None and header.comp else "lz4")
    source = getattr(trace, "name", "<records>")
    rp = Replayer(config, allocator, comp_algorithm)
    try:
        apply = rp.apply
        for rec in trace:
            try:
                apply(rec)
            except TraceError:
                raise
            except ValueError as e:
                what = getattr(rec, "CODE", None) or repr(rec)
                raise TraceError(source, getattr(rec, "line", 0) or rp.records + 1,
                                 f"cannot replay {what}: {e}") from None
        return rp.result()
    finally:
        rp.close()
        close = getattr(trace, "close", None)
        if close is not None:
            close()
