"""An estimate run: scan processes, look at each page once per page size and compress it once
per compressor, and feed every configuration's devices.

Work per batch: regroup to each page size, find same-filled pages (every 8-byte word
equal; zero ones are what the swap layer keeps in its zeromap), compress the others once
per compressor, then let each configuration's swap rules and devices take them.
Compression runs on threads, one per compressor (a compressor object is used by one
thread at a time), one batch ahead of the feeding: compressors that release the GIL (the
native backends, zstd) then use both cores, even with a single compressor.
"""

from __future__ import annotations

import os
import random
import time
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..zram.backends import make_backend
from .model import ConfigModel, EstimateConfig
from .peerproc import PeerProcess
from .procfs import SYS_PAGE, KpageFlags, ProcessMemory, comm, status_kb, zero_pfn
from .scan import Batch, Scanner, ScanCounts, pages_of
from .swapmodel import SwapRules


def fill_word(page: bytes) -> int | None:
    """The fill word if all 8-byte words of ``page`` are equal, else None.
    Kernel: page_same_filled (zram) — its first test is word 0 against the last word."""
    w0 = page[:8]
    if w0 == page[-8:] and page[8:] == page[:-8]:
        return int.from_bytes(w0, "little")
    return None


def _compress_all(backend, pages: list, page_size: int) -> array:
    buf = bytearray(2 * page_size)           # Kernel: the per-CPU stream's 2-page buffer
    ci = backend.compress_into
    return array("i", [ci(p, buf) for p in pages])


@dataclass
class ProcessReport:
    """One scanned process."""

    pid: int
    comm: str
    counts: ScanCounts
    refused: dict
    thp_unknown: bool
    seconds: float

    def as_dict(self) -> dict:
        return {"pid": self.pid, "comm": self.comm, **self.counts.as_dict(),
                "refused_mappings": self.refused, "seconds": round(self.seconds, 3)}


@dataclass
class ConfigResult:
    """The prediction for one configuration."""

    config: EstimateConfig
    mm_stat: dict                 # the nine fields by kernel name
    pages: int                    # pages (of this page size) offered to the swap layer
    zero_skipped: int             # of those, kept in the zeromap (never reach zram)
    half_width: dict | None = None   # sampling: 95 % half-widths per field
    peers: dict = field(default_factory=dict)     # name -> bytes used (None: unsupported)

    def as_dict(self, resident_bytes: int) -> dict:
        d = self.config.as_dict()
        d["mm_stat"] = dict(self.mm_stat)
        d["pages"] = self.pages
        d["zero_pages_skipped"] = self.zero_skipped
        used = self.mm_stat["mem_used_total"]
        d["ratio"] = round(used / resident_bytes, 6) if resident_bytes else None
        if self.half_width is not None:
            d["ci95"] = {k: [round(self.mm_stat[k] - h), round(self.mm_stat[k] + h)]
                         for k, h in self.half_width.items()}
        d["peers"] = {k: ({"mem_used_total": v, "ratio": round(v / resident_bytes, 6)
                           if resident_bytes else None} if v is not None else None)
                      for k, v in self.peers.items()}
        return d


class _Record:
    """Per-page results kept for a replay over a subset of pages (``--verify``)."""

    def __init__(self, comps):
        self.pid = array("i")
        self.addr = array("Q")
        self.written = bytearray()
        self.words: dict = {}
        self.lens = {c: array("i") for c in comps}

    def add(self, pid, addrs, words, lens_by_comp, written):
        base = len(self.addr)
        self.pid.extend([pid] * len(addrs))
        self.addr.extend(addrs)
        self.written += written
        for i, w in enumerate(words):
            if w is not None:
                self.words[base + i] = w
        for c, lens in lens_by_comp.items():
            self.lens[c].extend(lens)


class Estimate:
    """Predictions for several configurations from the pages of one or more processes.

    ``disk_pages``: system pages the model devices hold (all processes together).
    ``sample``: fraction of units to read, or None. ``peers``: also zbud, z3fold, zblock.
    ``record``: keep per-page results (system page size only) for :meth:`replay`.
    """

    def __init__(self, configs: list, *, disk_pages: int, sample: float | None = None,
                 seed: int = 0, peers: bool = True, record: bool = False, checkpoint=None):
        if not configs:
            raise ValueError("no configuration to estimate")
        self.configs = list(configs)
        self.sample = sample
        self.rng = random.Random(seed)
        self.checkpoint = checkpoint or (lambda: None)
        self.page_sizes = sorted({c.page_size for c in self.configs})
        self.unit_pages = self.page_sizes[-1] // SYS_PAGE
        self.backends = {}
        for c in self.configs:
            key = (c.comp_algorithm, c.page_size)
            if key not in self.backends:
                self.backends[key] = make_backend(c.comp_algorithm)
        self.models = [ConfigModel(c, disk_pages * SYS_PAGE // c.page_size + 1,
                                   sampling=sample is not None) for c in self.configs]
        self.peer_sets = {}            # (comp, page size, swap rules) -> set number
        specs = []
        for m in self.models if peers else ():
            c = m.cfg
            key = (c.comp_algorithm, c.page_size, SwapRules.for_profile(c.profile))
            if key not in self.peer_sets:
                self.peer_sets[key] = len(specs)
                specs.append((c.pool_config(), disk_pages * SYS_PAGE // c.page_size + 1))
        self.peers = PeerProcess(specs) if specs else None
        self.executors = {k: ThreadPoolExecutor(1, thread_name_prefix=f"compress-{k[0]}")
                          for k in self.backends}
        self.record = _Record([c for (c, P) in self.backends if P == SYS_PAGE]) if record else None
        self.counts = ScanCounts()
        self.processes: list[ProcessReport] = []
        self.kpf = KpageFlags()
        self.zero_pfn = zero_pfn()
        self.seconds = 0.0
        self._closed = False

    # -- feeding -------------------------------------------------------------------------

    def _prepare(self, b: Batch) -> dict:
        """Regroup, find same-filled pages, and start the compressions of one batch."""
        prep = {"batch": b}
        data = bytes(b.data)
        b.data = data
        for P in self.page_sizes:
            if P == SYS_PAGE:
                pages = [data[i * P:(i + 1) * P] for i in range(len(b))]
                ustart, fstart = b.unit_start, b.folio_start
            else:
                views, ustart, fstart = pages_of(b, P)
                pages = [bytes(v) for v in views]
            words = [fill_word(p) for p in pages]
            zero = bytearray(1 if w == 0 else 0 for w in words)
            todo = [i for i, w in enumerate(words) if w is None]
            futs = {}
            for (comp, PP), be in self.backends.items():
                if PP == P:
                    futs[comp] = self.executors[(comp, P)].submit(
                        _compress_all, be, [pages[i] for i in todo], P)
            prep[P] = (words, zero, todo, ustart, fstart, futs)
        if self.sample is not None:
            xs, n = [], 0
            for s in b.unit_start:
                if s:
                    if n:
                        xs.append(n)
                    n = 0
                n += 1
            if n:
                xs.append(n)
            prep["unit_x"] = xs
        return prep

    def _apply(self, prep: dict) -> None:
        """Wait for a batch's compressions and feed every device."""
        lens_by = {}
        for P in self.page_sizes:
            words, zero, todo, ustart, fstart, futs = prep[P]
            for comp, fut in futs.items():
                packed = fut.result()
                lens = [0] * len(words)
                for k, i in enumerate(todo):
                    lens[i] = packed[k]
                lens_by[(comp, P)] = lens
        written_by = {}
        for m in self.models:
            c = m.cfg
            words, zero, todo, ustart, fstart, futs = prep[c.page_size]
            rules = SwapRules.for_profile(c.profile)
            wkey = (c.page_size, rules)
            if wkey not in written_by:
                written_by[wkey] = rules.written(zero, fstart)
            m.feed(words, lens_by[(c.comp_algorithm, c.page_size)], written_by[wkey], ustart,
                   prep.get("unit_x"))
        for (comp, P, rules), k in self.peer_sets.items():
            words, zero, todo, ustart, fstart, futs = prep[P]
            wkey = (P, rules)
            if wkey not in written_by:
                written_by[wkey] = rules.written(zero, fstart)
            self.peers.feed(k, words, lens_by[(comp, P)], written_by[wkey])
        if self.record is not None:
            b = prep["batch"]
            words, zero, todo, ustart, fstart, futs = prep[SYS_PAGE]
            rules = SwapRules.for_profile("linux-6.18")
            self.record.add(b.pid, b.addrs, words,
                            {c: lens_by[(c, SYS_PAGE)] for c in self.record.lens},
                            rules.written(zero, fstart))

    def scan(self, pm: ProcessMemory, progress=None) -> ProcessReport:
        """Scan one process (the caller stops it, if wanted) and feed its pages.

        ``progress(n)`` is called with the number of eligible pages done since the last call.
        """
        t0 = time.perf_counter()
        sc = Scanner(pm, unit_pages=self.unit_pages, sample=self.sample, rng=self.rng,
                     kpf=self.kpf, zero_pfn=self.zero_pfn, checkpoint=self.checkpoint)
        pending = None
        seen = 0
        for b in sc.batches():
            prep = self._prepare(b)
            if pending is not None:
                self._apply(pending)
            pending = prep
            if progress is not None:
                progress(sc.counts.eligible - seen)
                seen = sc.counts.eligible
            self.checkpoint()
        if pending is not None:
            self._apply(pending)
        if progress is not None and sc.counts.eligible > seen:
            progress(sc.counts.eligible - seen)
        dt = time.perf_counter() - t0
        self.seconds += dt
        rep = ProcessReport(pm.pid, comm(pm.pid), sc.counts, sc.refused, sc.thp_unknown, dt)
        self.counts.add(sc.counts)
        self.processes.append(rep)
        return rep

    def add_page(self, page: bytes) -> None:
        """Write one page straight to every system-page-size device, outside the swap rules
        (the swap header mkswap writes)."""
        w = fill_word(page)
        for m in self.models:
            if m.cfg.page_size != SYS_PAGE:
                continue
            if w is not None:
                m.zram.write_same(m._index(), w)
            else:
                be = self.backends[(m.cfg.comp_algorithm, SYS_PAGE)]
                m.zram.write_compressed(m._index(), be.compress_into(page, bytearray(2 * SYS_PAGE)))

    # -- results -------------------------------------------------------------------------

    def results(self) -> list[ConfigResult]:
        out = []
        c = self.counts
        totals = self.peers.totals() if self.peers is not None else []
        for m in self.models:
            half = None
            if self.sample is None:
                mm = dict(zip(m.mm_stat().FIELDS, m.mm_stat()))
                pages, zskip = m.pages_in, m.zero_skipped
            else:
                # population: eligible pages that could be read, in units
                frac_bad = c.unreadable / c.read if c.read else 0.0
                X = (c.eligible) * (1 - frac_bad)
                mm, half = m.extrapolate(X, c.units)
                scale = X / m.sums.sx if m.sums.sx else 0.0
                pages, zskip = round(m.pages_in * scale), round(m.zero_skipped * scale)
            r = ConfigResult(m.cfg, mm, pages, zskip, half)
            rules = SwapRules.for_profile(m.cfg.profile)
            k = self.peer_sets.get((m.cfg.comp_algorithm, m.cfg.page_size, rules))
            if k is not None:
                peer_pages, unsupported = totals[k]
                scale = 1.0
                if self.sample is not None and m.sums.sx:
                    scale = X / m.sums.sx
                for name, tp in peer_pages.items():
                    r.peers[name] = round(tp * scale) * m.cfg.page_size
                for name in unsupported:
                    r.peers[name] = None
            out.append(r)
        return out

    def replay(self, config: EstimateConfig, keep, header: bytes | None = None, lens=None):
        """mm_stat of a fresh device fed only the recorded pages for which ``keep(pid, addr)``
        is true (plus ``header`` first): the prediction for the pages that really went out.
        ``lens`` replaces the recorded compressed lengths (e.g. the kernel's own)."""
        from ..zram import Zram
        rec = self.record
        if rec is None or config.page_size != SYS_PAGE:
            raise ValueError("replay needs record=True and the system page size")
        z = Zram((len(rec.addr) + 2) * SYS_PAGE, config.comp_algorithm, config.pool_config())
        try:
            idx = 0
            if header is not None:
                w = fill_word(header)
                if w is not None:
                    z.write_same(0, w)
                else:
                    z.write(0, header)
                idx = 1
            if lens is None:
                lens = rec.lens[config.comp_algorithm]
            for i in range(len(rec.addr)):
                if not rec.written[i] or not keep(rec.pid[i], rec.addr[i]):
                    continue
                w = rec.words.get(i)
                if w is not None:
                    z.write_same(idx, w)
                else:
                    z.write_compressed(idx, lens[i])
                idx += 1
            return z.mm_stat()
        finally:
            z.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for ex in self.executors.values():
            ex.shutdown(wait=True, cancel_futures=True)
        if self.peers is not None:
            self.peers.close()
        for m in self.models:
            m.close()
        self.kpf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def disk_pages_for(pids) -> int:
    """System pages the model devices need for these processes: their resident anonymous
    pages now, with room for growth until each is scanned."""
    total = 0
    for pid in pids:
        total += status_kb(pid, "RssAnon") * 1024 // SYS_PAGE
    return total + total // 4 + 4096
