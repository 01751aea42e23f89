"""The devices an estimate feeds: one ``Zram`` per configuration, peers beside it, and the
extrapolation of a sample with its confidence interval.

Each configuration gets a real :class:`zsmalloc.Zram`, fed page by page with what the swap
layer writes (``write_same`` / ``write_compressed`` with the length only: the device's own
code decides same-filled, huge and size class, and counts). Its ``mm_stat()`` *is* the
prediction. Slot indices are given in order from 0; they do not change any counter, since a
swap-out of a process only ever writes fresh slots.

Memory: a Zram keeps its frames, so each configuration costs about the ``mem_used_total``
it predicts (the peers about as much each); the pages themselves are never kept.

Sampling (``--sample F``): units (see :mod:`zsmalloc.estimate.scan`) are read with
probability F. Every count is estimated with the ratio estimator against the known number
of eligible pages X (the pagemap pass sees them all): ``T = X * sum(y) / sum(x)`` over the
units read, with the usual variance ``M^2 (1 - n/M) / n * s_e^2`` (M units, n read,
s_e^2 the variance of the residuals ``y - R x``). ``mem_used_total`` is rebuilt from the
extrapolated object count of each size class: zspages are whole, so each class in use also
costs the unused part of its last zspage, and classes too rare to be sampled are estimated
(see ``ClassCosts.pages_expected``). Its interval comes from the per-object share of a
zspage, ``pages_per_zspage / objs_per_zspage``, widened by half the missed classes' pages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config import PoolConfig
from ..core.sizeclass import class_table
from ..zram import MmStat, Zram

Z95 = 1.959963984540054          # two-sided 95 % normal quantile


@dataclass(frozen=True)
class EstimateConfig:
    """One configuration to predict: compressor, chain size, page size, kernel profile."""

    comp_algorithm: str
    chain_size: int
    page_size: int
    profile: str

    def pool_config(self) -> PoolConfig:
        return PoolConfig(profile=self.profile, chain_size=self.chain_size,
                          page_size=self.page_size)

    @property
    def label(self) -> str:
        return (f"{self.comp_algorithm} chain {self.chain_size} "
                f"{self.page_size // 1024}K {self.profile}")

    def as_dict(self) -> dict:
        return {"comp_algorithm": self.comp_algorithm, "chain_size": self.chain_size,
                "page_size": self.page_size, "profile": self.profile}


class ClassCosts:
    """Per compressed length: the size class it lands in and its share of a zspage in pages.

    From the public class table (``zsmalloc.class_table``) and the device's huge threshold;
    used only to extrapolate samples (the full prediction is the Zram's own count)."""

    def __init__(self, cfg: PoolConfig, huge_threshold: int):
        P = cfg.page_size
        t = class_table(cfg)
        self.classes = {sc.index: sc for sc in t.classes}
        self.index = [0] * (P + 1)
        self.share = [0.0] * (P + 1)
        for n in range(1, P + 1):
            sc = t.for_request(P if n >= huge_threshold else n)
            self.index[n] = sc.index
            self.share[n] = sc.pages_per_zspage / sc.objs_per_zspage

    def pages_expected(self, sample_counts: dict, scale: float) -> tuple[float, float]:
        """Expected pages for a population sampled as ``sample_counts`` (objects per class in
        the sample, each standing for ``scale`` objects): (pages, pages for classes the
        sample missed).

        Each class in use costs whole zspages, so a class holding one object costs a whole
        zspage: small classes matter, and a sample misses some. Per class seen, the
        extrapolated count N gives N * ppz / objs pages plus the unused part of its last
        zspage: on average half of one (less the last object) when N >= objs, else
        ppz * (1 - N / objs). Classes the sample missed: Chao1's estimate of their number
        (f1^2 / 2 f2 from the classes seen once and twice), each one zspage of the size of
        the classes seen once, nearly empty."""
        pages = 0.0
        ones, twos, once_ppz = 0, 0, []
        for idx, k in sample_counts.items():
            sc = self.classes[idx]
            ppz, objs = sc.pages_per_zspage, sc.objs_per_zspage
            n = k * scale
            pages += n * ppz / objs
            if n >= objs:
                pages += ppz * (1 - 1 / objs) / 2
            else:
                pages += ppz * (1 - n / objs)
            if k == 1:
                ones += 1
                once_ppz.append(ppz)
            elif k == 2:
                twos += 1
        missed = 0.0
        if ones and scale > 1:
            unseen = ones * ones / (2 * twos) if twos else ones * (ones - 1) / 2
            unseen = min(unseen, len(self.classes) - len(sample_counts))
            missed = unseen * sum(once_ppz) / len(once_ppz)
        return pages + missed, missed

    def pages_for(self, counts: dict) -> int:
        """Pages used by ``counts[class index]`` objects per class, written once each."""
        total = 0
        for idx, n in counts.items():
            sc = self.classes[idx]
            total += -(-n // sc.objs_per_zspage) * sc.pages_per_zspage
        return total


# sampled quantities, per unit: y vectors in this order
_Y = ("orig_pages", "compr_data_size", "same_pages", "huge_pages", "mem_pages")


@dataclass
class SampleSums:
    """Running sums for the ratio estimator: n, sum x, sum x^2 and, per y, sum y, y^2, xy."""

    n: int = 0
    sx: float = 0.0
    sxx: float = 0.0
    sy: list = field(default_factory=lambda: [0.0] * len(_Y))
    syy: list = field(default_factory=lambda: [0.0] * len(_Y))
    sxy: list = field(default_factory=lambda: [0.0] * len(_Y))

    def add(self, x: float, y: list) -> None:
        self.n += 1
        self.sx += x
        self.sxx += x * x
        for k, v in enumerate(y):
            self.sy[k] += v
            self.syy[k] += v * v
            self.sxy[k] += x * v

    def estimate(self, k: int, X: float, M: int) -> tuple[float, float]:
        """(total, half-width of the 95 % interval) of y number ``k``."""
        if self.n == 0 or self.sx == 0:
            return 0.0, 0.0
        R = self.sy[k] / self.sx
        total = R * X
        if self.n < 2 or M <= self.n:
            return total, 0.0
        se2 = (self.syy[k] - 2 * R * self.sxy[k] + R * R * self.sxx) / (self.n - 1)
        var = M * M * (1 - self.n / M) / self.n * max(se2, 0.0)
        return total, Z95 * math.sqrt(var)


class ConfigModel:
    """A Zram of one configuration fed with the pages the swap layer writes."""

    def __init__(self, cfg: EstimateConfig, disk_pages: int, sampling: bool = False):
        self.cfg = cfg
        self.zram = Zram(disk_pages * cfg.page_size, cfg.comp_algorithm, cfg.pool_config())
        self.nr_pages = disk_pages
        self.next_index = 0
        self.pages_in = 0              # pages offered (after regrouping to the page size)
        self.zero_skipped = 0          # kept in the swap layer's zeromap
        self.sampling = sampling
        self.costs = ClassCosts(cfg.pool_config(), self.zram.huge_threshold) if sampling else None
        self.class_counts: dict = {}
        self.sums = SampleSums()

    def _index(self) -> int:
        i = self.next_index
        if i >= self.nr_pages:
            raise ValueError(f"more pages than the model device holds ({self.nr_pages}): "
                             f"a process grew a lot during the scan; run the estimate again")
        self.next_index = i + 1
        return i

    def feed(self, words: list, lens: list, written: bytearray, unit_start: bytearray,
             unit_x: list | None = None) -> None:
        """Write one batch: ``words[i]`` the fill word of a same-filled page (else None),
        ``lens[i]`` its compressed length, ``written[i]`` whether swap writes it at all.
        With sampling, ``unit_x`` gives each unit's number of eligible system pages."""
        z = self.zram
        P = self.cfg.page_size
        n = len(words)
        self.pages_in += n
        if not self.sampling:
            for i in range(n):
                if not written[i]:
                    self.zero_skipped += 1
                    continue
                w = words[i]
                if w is not None:
                    z.write_same(self._index(), w)
                else:
                    z.write_compressed(self._index(), lens[i])
            return
        costs, counts, huge_at = self.costs, self.class_counts, z.huge_threshold
        y = None
        u = -1
        for i in range(n):
            if unit_start[i]:
                if y is not None:
                    self.sums.add(unit_x[u], y)
                u += 1
                y = [0, 0, 0, 0, 0.0]
            if not written[i]:
                self.zero_skipped += 1
                continue
            y[0] += 1
            w = words[i]
            if w is not None:
                z.write_same(self._index(), w)
                y[2] += 1
                continue
            L = lens[i]
            z.write_compressed(self._index(), L)
            huge = L >= huge_at
            if huge:
                L = P                  # stored raw: a page-sized object
            y[1] += L
            y[3] += huge
            y[4] += costs.share[L]
            idx = costs.index[L]
            counts[idx] = counts.get(idx, 0) + 1
        if y is not None:
            self.sums.add(unit_x[u], y)

    def mm_stat(self) -> MmStat:
        return self.zram.mm_stat()

    def extrapolate(self, X: float, M: int) -> tuple[dict, dict]:
        """Estimated mm_stat fields and their 95 % half-widths, for X eligible system pages
        in M units (sampling only)."""
        P = self.cfg.page_size
        s = self.sums
        est, half = {}, {}
        scale = X / s.sx if s.sx else 0.0
        for k, name in enumerate(_Y):
            est[name], half[name] = s.estimate(k, X, M)
        if self.sums.n >= M:          # everything was read: the exact count
            mem = self.costs.pages_for(self.class_counts)
            missed = 0.0
        else:
            mem, missed = self.costs.pages_expected(self.class_counts, scale)
            mem = round(mem)
        fields = {
            "orig_data_size": round(est["orig_pages"]) * P,
            "compr_data_size": round(est["compr_data_size"]),
            "mem_used_total": mem * P,
            "mem_limit": 0,
            "mem_used_max": mem * P,
            "same_pages": round(est["same_pages"]),
            "pages_compacted": 0,
            "huge_pages": round(est["huge_pages"]),
            "huge_pages_since": round(est["huge_pages"]),
        }
        hw = {
            "orig_data_size": half["orig_pages"] * P,
            "compr_data_size": half["compr_data_size"],
            "mem_used_total": (half["mem_pages"] + missed / 2) * P,
            "mem_used_max": (half["mem_pages"] + missed / 2) * P,
            "same_pages": half["same_pages"],
            "huge_pages": half["huge_pages"],
            "huge_pages_since": half["huge_pages"],
        }
        return fields, hw

    def close(self) -> None:
        self.zram.close()


class PeerModels:
    """zbud, z3fold and zblock, each under a Zram of its own (zram's one slot layer over the
    allocator protocol), fed the same writes by length.

    Kernel: the zpool allocators (zbud, z3fold; zblock as proposed) under zram's
    zram_write_page order. ``PeerModels(pool_config, nr_pages)``: the zsmalloc model's
    configuration (page size and huge threshold come from it) and the disk in pages. Page
    sizes a peer does not support are reported, not fatal."""

    def __init__(self, pool_config, nr_pages: int):
        from ..peers import PEERS
        from ..zram.device import Zram
        self.page_size = pool_config.page_size
        self.stores = {}
        self.unsupported = {}
        for name in PEERS:
            try:
                self.stores[name] = Zram(nr_pages * self.page_size, "lz4", pool_config,
                                         allocator=name)
            except ValueError as e:
                self.unsupported[name] = str(e)
        self.next_index = 0

    def write(self, code: int) -> None:
        """The next page written by the swap layer: its compressed length, or -1 for a
        same-filled page (the fill word does not change any count)."""
        idx = self.next_index
        self.next_index += 1
        if code < 0:
            for z in self.stores.values():
                z.write_same(idx, 0)
        else:
            for z in self.stores.values():
                z.write_compressed(idx, code)

    def feed(self, words: list, lens: list, written: bytearray) -> None:
        for i in range(len(words)):
            if written[i]:
                self.write(-1 if words[i] is not None else lens[i])

    def total_pages(self) -> dict:
        return {name: z.mm_stat().mem_used_total // self.page_size
                for name, z in self.stores.items()}
