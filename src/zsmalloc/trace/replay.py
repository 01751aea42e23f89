"""Replay a trace: drive a zram device and a pool with its records; report the counters.

``replay(trace, config=None, allocator="zsmalloc")`` -> ReplayResult.

Zram records drive a plain ``zsmalloc.Zram`` through its own steps: ``write_compressed``
(a ``W`` record: the accounting of a page compressed to that length, no data kept),
``write_same`` (``S``), ``write`` (``D``: classified and compressed with the trace's codec,
``comp=`` in the header or the ``comp_algorithm`` argument), ``discard``, ``compact``,
``mem_limit``, ``reset_mem_used_max`` and ``reset``. So the write order and the counters
are the device's (Kernel: zram_write_page, 6.18 order), and the huge threshold is the
replaying configuration's: a trace recorded with one chain size can be replayed with
another. A ``G`` record only counts a read (no data was kept to read back).

Before anything is allocated, the trace is measured (``extent.measure``: one streaming
pass that validates every line) and checked against a cap (``max_size``, default 16 GiB):
the device gets just the slots the trace touches (highest index + 1; mm_stat does not
depend on the disk size), and a trace that would need more than the cap is refused with
the line that needs it.

Pool records (``A``/``F``/``PC``) drive the chosen allocator: ``zsmalloc`` (a Pool with the
replay's configuration) or a peer from ``zsmalloc.peers`` (zbud, z3fold, zblock). Zram
records use zsmalloc, as the kernel's zram does, whatever ``allocator`` says;
``Replayer(zram_allocator=...)`` puts the device on a peer instead (a what-if). A
malloc a peer cannot hold (ObjectTooLarge, the kernel's -ENOSPC) is counted as rejected,
and the later free of that id is skipped.

Replaying with another page size keeps each page's compressed length and fill word (a
what-if); ``D`` records then fail, their page being the wrong size.
Cost: about one Pool.malloc and one Pool.free per write record (~5-10 us), plus the
measuring pass; memory: the pool's frames, the device's slot table and one dict entry per
live pool object.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from ..config import PoolConfig
from ..core.pool import Pool
from ..zram import IoStat, MmStat, Zram
from .extent import DEFAULT_MAX_SIZE, Extent, check_extent, measure
from .format import (Compact, Discard, Free, Malloc, MemLimit, PoolCompact, Reset, ResetMax,
                     TraceError, TraceHeader, ZramData, ZramRead, ZramSame,
                     ZramWrite, read_trace)

__all__ = ["Replayer", "ReplayResult", "replay", "ALLOCATORS", "make_allocator",
           "config_for", "DEFAULT_MAX_SIZE"]

ALLOCATORS = ("zsmalloc", "zbud", "z3fold", "zblock")


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

    ``Replayer(config=None, allocator="zsmalloc", comp_algorithm="lz4", nr_pages=0,
    zram_allocator="zsmalloc")``: ``allocator`` serves pool records, ``zram_allocator`` is
    what the zram device stores in (a peer: a what-if, the same slot layer, ``Zram``'s own);
    ``nr_pages`` is the zram disk in pages (``extent.measure(records).nr_pages``); a zram
    record past it is a ValueError. ``apply(rec)`` raises ValueError for a record the replay
    cannot do (e.g. a size over its page size) and MemoryError when memory runs out;
    ``replay()`` adds the line number.
    """

    def __init__(self, config: PoolConfig | None = None, allocator: str = "zsmalloc",
                 comp_algorithm: str = "lz4", nr_pages: int = 0,
                 zram_allocator: str = "zsmalloc"):
        self.config = PoolConfig() if config is None else config
        if allocator not in ALLOCATORS:
            raise ValueError(f"unknown allocator {allocator!r}; use one of {', '.join(ALLOCATORS)}")
        if zram_allocator not in ALLOCATORS:
            raise ValueError(f"unknown zram allocator {zram_allocator!r}; use one of "
                             f"{', '.join(ALLOCATORS)}")
        self.zram_allocator = zram_allocator
        if type(nr_pages) is not int or nr_pages < 0:
            raise ValueError(f"nr_pages {nr_pages!r} must be a non-negative int")
        self.allocator = allocator
        self.comp_algorithm = comp_algorithm
        self.nr_pages = nr_pages
        self.zram: Zram | None = None
        self.pool = None
        self._ids: dict[int, int | None] = {}      # trace id -> handle (None: rejected)
        self.rejected = 0
        self.records = 0
        self.num_writes = 0
        self.num_reads = 0
        self._failed = 0                           # the device's failed_writes so far
        self.counts: Counter = Counter()

    def _zram(self) -> Zram:
        z = self.zram
        if z is None:
            if not self.nr_pages:
                raise ValueError("a zram record, but this replay has no disk (nr_pages 0: "
                                 "measure the records first)")
            z = self.zram = Zram(self.nr_pages * self.config.page_size, self.comp_algorithm,
                                 self.config, allocator=self.zram_allocator)
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

    def _write(self, write, *args) -> None:
        """A zram write; a refusal by mem_limit (the device counts it in failed_writes) is
        what the trace recorded, so it is replayed, not raised. Any other MemoryError is
        real and propagates."""
        self.num_writes += 1
        try:
            write(*args)
        except (MemoryError, OSError):
            # failed_writes moves only here (and to 0 on reset): the cached count says
            # whether the device counted this failure as its own
            now = self.zram.io_stat().failed_writes
            if now == self._failed:
                raise
            self._failed = now

    def _w(self, r):
        self._write(self._zram().write_compressed, r.index, r.comp_len)

    def _s(self, r):
        self._write(self._zram().write_same, r.index, r.word)

    def _d(self, r):
        P = self.config.page_size
        if len(r.page) != P:
            raise ValueError(f"page for index {r.index} is {len(r.page)} bytes, the replay's "
                             f"page_size is {P}")
        self._write(self._zram().write, r.index, r.page)

    def _g(self, r):
        self._zram()
        if not 0 <= r.index < self.nr_pages:
            raise ValueError(f"index {r.index} out of range: the disk has pages "
                             f"0..{self.nr_pages - 1}")
        self.num_reads += 1

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
        self._failed = 0

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
            res.num_writes = self.num_writes
            res.num_reads = self.num_reads
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
           comp_algorithm: str | None = None, max_size: int = DEFAULT_MAX_SIZE) -> ReplayResult:
    """Replay ``trace`` (a path, a TraceReader or an iterable of records); the counters.

    ``config`` defaults to the trace header's (profile, chain size, page size; see
    ``config_for``). The trace is measured first (a path is read twice; a one-pass iterable
    is kept in a list) and refused with a ValueError naming the line when it needs a disk or
    a pool larger than ``max_size`` bytes. Errors while replaying are TraceError naming the
    record's line. The pools are released before returning.
    """
    if type(max_size) is not int or max_size <= 0:
        raise ValueError(f"max_size {max_size!r} must be a positive int (bytes)")
    path = trace if isinstance(trace, (str, bytes, os.PathLike)) else None
    if path is not None:
        trace = read_trace(path)
    header = getattr(trace, "header", None)
    source = getattr(trace, "name", "<records>")
    try:
        if config is None:
            config = config_for(header)
        if comp_algorithm is None:
            comp_algorithm = (header.comp if header is not None and header.comp else "lz4")
        if allocator not in ALLOCATORS:
            raise ValueError(f"unknown allocator {allocator!r}; use one of "
                             f"{', '.join(ALLOCATORS)}")
        if path is not None:
            ext = measure(trace)            # validates every line before memory is used
            trace = read_trace(path)
        else:
            if not isinstance(trace, (list, tuple)):
                trace = list(trace)
            ext = measure(trace)
        check_extent(ext, config.page_size, max_size, source)
        return _run(trace, config, allocator, comp_algorithm, ext, source)
    finally:
        close = getattr(trace, "close", None)
        if close is not None:
            close()


def _run(records, config, allocator, comp_algorithm, ext: Extent, source) -> ReplayResult:
    rp = Replayer(config, allocator, comp_algorithm, nr_pages=ext.nr_pages)
    try:
        apply = rp.apply
        for rec in records:
            try:
                apply(rec)
            except TraceError:
                raise
            except ValueError as e:
                what = getattr(rec, "CODE", None) or repr(rec)
                raise TraceError(source, getattr(rec, "line", 0) or rp.records + 1,
                                 f"cannot replay {what}: {e}") from None
            except MemoryError:
                raise MemoryError(f"{source}: line {getattr(rec, 'line', 0) or rp.records + 1}: "
                                  f"out of memory replaying {rec.CODE}") from None
        return rp.result()
    finally:
        rp.close()
