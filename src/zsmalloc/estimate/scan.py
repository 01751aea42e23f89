"""Which pages of a process the swap path would take, read in batches.

A page is *eligible* when MADV_PAGEOUT (and reclaim without sharing) would push it to swap:
present, anonymous (pagemap's PM_FILE clear: that also excludes shmem and the page cache
of private file mappings, but keeps their copied-on-write pages), mapped only by this
process (PM_MMAP_EXCLUSIVE), in a mapping that is neither locked, hugetlb nor a pfn map.
Kernel: madvise_cold_or_pageout_pte_range (skips shared folios and non-LRU pages),
can_madv_lru_vma (VM_LOCKED, VM_PFNMAP, VM_HUGETLB refuse MADV_PAGEOUT).

Everything else is counted, not read: pages mapped by several processes or the shared
zero page, pages already swapped out, pages in locked mappings, and pages the kernel would
not let us read (``unreadable``).

Pages are grouped into *units*, the atoms of sampling and of the page-size what-ifs: an
aligned block of ``unit_pages`` system pages, widened to a whole large folio where one
spans more. A large folio (a THP, known from /proc/kpageflags as root) is swapped out
whole, so the swap layer's zero-page rule looks at all of it: ``Batch.folio_start`` marks
where each folio begins.

Memory: one batch (about ``batch_pages`` pages) at a time, whatever the process's size.
"""

from __future__ import annotations

import random
from array import array
from dataclasses import dataclass, field

from .procfs import (KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, PM_FILE, PM_MMAP_EXCLUSIVE,
                     PM_PFN_MASK, PM_PRESENT, PM_SWAP, SYS_PAGE, KpageFlags, ProcessMemory, Vma)

# page kinds (pure classification of one pagemap entry)
ABSENT, ELIGIBLE, SHARED, ZERO_PAGE, SWAPPED, FILE = range(6)

_NOT_PAGEABLE = {"lo": "locked", "ht": "hugetlb", "pf": "pfnmap", "io": "io"}


def page_kind(entry: int, zero_pfn: int = 0) -> int:
    """What one pagemap entry is, for the swap path. Kernel: pte_to_pagemap_entry."""
    if entry & PM_PRESENT:
        if entry & PM_FILE:
            return FILE
        if entry & PM_MMAP_EXCLUSIVE:
            return ELIGIBLE
        # anon but not exclusive: the shared zero page (no struct page) or a shared folio
        if zero_pfn and entry & PM_PFN_MASK == zero_pfn:
            return ZERO_PAGE
        return SHARED
    if entry & PM_SWAP:
        return SWAPPED
    return ABSENT


def vma_refusal(vma: Vma) -> str | None:
    """Why MADV_PAGEOUT would never push this mapping's pages out, or None.

    Shared mappings hold shmem or file pages (not anonymous memory); VM_LOCKED, VM_HUGETLB,
    VM_PFNMAP and VM_IO mappings are refused. Kernel: can_madv_lru_vma."""
    if not vma.private:
        return "shared"
    for flag, why in _NOT_PAGEABLE.items():
        if flag in vma.vmflags:
            return why
    return None


@dataclass
class ScanCounts:
    """What a scan saw, in system pages."""

    eligible: int = 0       # resident, anonymous, exclusive: what the swap path takes
    read: int = 0           # eligible pages read (all of them unless sampling)
    unreadable: int = 0     # eligible, but /proc/PID/mem returned nothing for them
    shared: int = 0         # anonymous but mapped more than once (fork, KSM) or the zero page
    zero_page: int = 0      # mapped to the shared zero page (known as root only)
    swapped: int = 0        # already in swap: not read (reading would swap them in)
    locked: int = 0         # resident in a locked/hugetlb mapping: never paged out
    large_folios: int = 0   # large folios (THP) among the eligible pages
    units: int = 0          # sampling units (eligible)
    units_read: int = 0

    def add(self, other: "ScanCounts") -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class Batch:
    """Consecutive eligible pages of one process, in address order, with their bytes."""

    pid: int
    addrs: list = field(default_factory=list)
    folio_start: bytearray = field(default_factory=bytearray)  # 1: page begins a folio
    unit_start: bytearray = field(default_factory=bytearray)   # 1: page begins a unit
    data: bytearray | None = None

    def __len__(self) -> int:
        return len(self.addrs)

    def page(self, i: int) -> memoryview:
        return memoryview(self.data)[i * SYS_PAGE:(i + 1) * SYS_PAGE]


def _is_pow2(n: int) -> bool:
    return n >= 2 and n & (n - 1) == 0


def folio_starts(entries, kflags) -> bytearray:
    """1 where a page starts a folio, for a run of eligible, address-contiguous pages.

    A large folio is a compound head followed by its tails at consecutive frames; it is
    kept whole only if all its pages are in the run (else MADV_PAGEOUT splits it, and its
    pages go out one by one). Kernel: madvise_folio_pte_batch / split_folio.
    """
    n = len(entries)
    out = bytearray(b"\x01") * n
    i = 0
    while i < n:
        if kflags[i] & KPF_COMPOUND_HEAD:
            pfn = entries[i] & PM_PFN_MASK
            j = i + 1
            while j < n and kflags[j] & KPF_COMPOUND_TAIL and \
                    entries[j] & PM_PFN_MASK == pfn + (j - i):
                j += 1
            if _is_pow2(j - i):
                out[i + 1:j] = bytes(j - i - 1)
            i = j
        else:
            i += 1
    return out


class Scanner:
    """Walks one process's mappings and yields :class:`Batch` es of eligible pages.

    ``unit_pages``: system pages per sampling / what-if unit (a power of two).
    ``sample``: fraction of units to read (None: all), drawn with ``rng``.
    ``kpf``: a :class:`KpageFlags` (root) to find large folios in THP-eligible mappings.
    ``zero_pfn``: the shared zero page's frame, to tell it from shared anonymous pages.
    ``checkpoint``: called between chunks (Ctrl-C handling).
    """

    CHUNK = 16384          # pagemap entries per read (128 KiB)

    def __init__(self, pm: ProcessMemory, *, unit_pages: int = 1, sample: float | None = None,
                 rng: random.Random | None = None, kpf: KpageFlags | None = None,
                 zero_pfn: int = 0, batch_pages: int = 256, checkpoint=None):
        if not _is_pow2(unit_pages) and unit_pages != 1:
            raise ValueError(f"unit_pages {unit_pages!r} must be a power of two")
        self.pm = pm
        self.unit_pages = unit_pages
        self.sample = sample
        self.rng = rng or random.Random(0)
        self.kpf = kpf if kpf is not None and kpf.available else None
        self.zero_pfn = zero_pfn
        self.batch_pages = batch_pages
        self.checkpoint = checkpoint or (lambda: None)
        self.counts = ScanCounts()
        self.refused: dict[str, int] = {}      # why -> mappings
        self.vmas: list[Vma] = []
        self.thp_unknown = False               # THP mappings but no kpageflags to see folios

    # -- pagemap pass --------------------------------------------------------------------

    def runs(self, vma: Vma):
        """(pagemap entries, start address) of each run of contiguous eligible pages."""
        c = self.counts
        zp = self.zero_pfn
        refusal = vma_refusal(vma)
        if refusal == "shared":
            return
        for off in range(0, vma.pages, self.CHUNK):
            self.checkpoint()
            start = vma.start + off * SYS_PAGE
            n = min(self.CHUNK, vma.pages - off)
            ents = self.pm.pagemap(start, n)
            if len(ents) < n and not self.pm.alive():
                raise self.pm.gone()
            run_start = -1
            for i, e in enumerate(ents):
                k = page_kind(e, zp) if e else ABSENT
                if k == ELIGIBLE and refusal is None:
                    if run_start < 0:
                        run_start = i
                    continue
                if run_start >= 0:
                    yield ents[run_start:i], start + run_start * SYS_PAGE
                    run_start = -1
                if k == ELIGIBLE:
                    c.locked += 1
                elif k == SHARED:
                    c.shared += 1
                elif k == ZERO_PAGE:
                    c.zero_page += 1
                elif k == SWAPPED:
                    c.swapped += 1
            if run_start >= 0:
                yield ents[run_start:], start + run_start * SYS_PAGE

    # -- batches -------------------------------------------------------------------------

    def batches(self):
        """Yield batches of eligible pages with their bytes, in address order."""
        self.vmas = self.pm.smaps()
        for v in self.vmas:
            why = vma_refusal(v)
            if why:
                self.refused[why] = self.refused.get(why, 0) + 1
        U = self.unit_pages * SYS_PAGE
        c = self.counts
        b = Batch(self.pm.pid)
        last_key = None
        keep = True
        for vma in self.vmas:
            use_kpf = self.kpf is not None and vma.thp_eligible
            if vma.thp_eligible and vma.anon_huge_kb and self.kpf is None:
                self.thp_unknown = True
            for ents, addr in self.runs(vma):
                if use_kpf:
                    fstart = folio_starts(ents, self.kpf.flags(e & PM_PFN_MASK for e in ents))
                else:
                    fstart = None
                for i in range(len(ents)):
                    a = addr + i * SYS_PAGE
                    in_folio = fstart is not None and not fstart[i]
                    if fstart is not None and fstart[i] and i + 1 < len(ents) and not fstart[i + 1]:
                        c.large_folios += 1
                    key = a // U
                    new_unit = not in_folio and key != last_key
                    if new_unit and len(b) >= self.batch_pages:
                        yield from self._emit(b)
                        b = Batch(self.pm.pid)
                    last_key = key
                    c.eligible += 1
                    if new_unit:
                        c.units += 1
                        keep = self.sample is None or self.rng.random() < self.sample
                        if keep:
                            c.units_read += 1
                    if not keep:
                        continue
                    b.addrs.append(a)
                    b.unit_start.append(1 if new_unit else 0)
                    b.folio_start.append(0 if in_folio else 1)
        if len(b):
            yield from self._emit(b)

    def _emit(self, b: Batch):
        self._read(b)
        if len(b):
            yield b

    def _read(self, b: Batch) -> None:
        """Fill ``b.data``; drop pages that cannot be read (counted in ``unreadable``)."""
        n = len(b)
        data = bytearray(n * SYS_PAGE)
        mv = memoryview(data)
        bad = []
        i = 0
        while i < n:
            j = i + 1
            while j < n and b.addrs[j] == b.addrs[j - 1] + SYS_PAGE:
                j += 1
            got = self.pm.read_into(mv[i * SYS_PAGE:j * SYS_PAGE], b.addrs[i])
            if got != (j - i) * SYS_PAGE:
                if not self.pm.alive():
                    raise self.pm.gone()
                for k in range(i, j):      # retry page by page: keep what can be read
                    if self.pm.read_into(mv[k * SYS_PAGE:(k + 1) * SYS_PAGE],
                                         b.addrs[k]) != SYS_PAGE:
                        bad.append(k)
            i = j
        mv.release()
        if bad:
            self.counts.unreadable += len(bad)
            drop = set(bad)
            keep = [k for k in range(n) if k not in drop]
            nd = bytearray(len(keep) * SYS_PAGE)
            for new, k in enumerate(keep):
                nd[new * SYS_PAGE:(new + 1) * SYS_PAGE] = data[k * SYS_PAGE:(k + 1) * SYS_PAGE]
            ustart = bytearray(b.unit_start[k] for k in keep)
            fstart = bytearray(b.folio_start[k] for k in keep)
            # a dropped unit or folio head passes its mark to the next kept page
            for k in bad:
                nxt = next((p for p, kk in enumerate(keep) if kk > k), None)
                if nxt is not None:
                    if b.unit_start[k]:
                        ustart[nxt] = 1
                    if b.folio_start[k]:
                        fstart[nxt] = 1
            b.addrs = [b.addrs[k] for k in keep]
            b.unit_start, b.folio_start, data = ustart, fstart, nd
        self.counts.read += len(b.addrs)
        b.data = data


def pages_of(batch: Batch, page_size: int):
    """The batch as pages of ``page_size`` bytes: ``(pages, unit_start, folio_start)``.

    For the system page size the pages are the batch's own. For a larger what-if page
    size, each aligned block that holds an eligible page becomes one page, its other parts
    zero (memory a process never touched reads as zeros on a kernel with that page size),
    and each such page is a folio of its own.
    """
    n = len(batch)
    if page_size == SYS_PAGE:
        mv = memoryview(batch.data)
        return ([mv[i * SYS_PAGE:(i + 1) * SYS_PAGE] for i in range(n)],
                batch.unit_start, batch.folio_start)
    k = page_size // SYS_PAGE
    pages, ustart = [], bytearray()
    cur_key, cur = None, None
    for i, a in enumerate(batch.addrs):
        key = a // page_size
        if key != cur_key:
            if cur is not None:
                pages.append(bytes(cur))
            cur_key, cur = key, bytearray(page_size)
            ustart.append(batch.unit_start[i])
        o = (a // SYS_PAGE % k) * SYS_PAGE
        cur[o:o + SYS_PAGE] = batch.data[i * SYS_PAGE:(i + 1) * SYS_PAGE]
    if cur is not None:
        pages.append(bytes(cur))
    return pages, ustart, bytearray(b"\x01") * len(pages)
