"""What a page list is like: same-filled pages and the lz4 size distribution of the rest."""

from __future__ import annotations

import statistics

import cramjam

__all__ = ["HUGE_4K", "summarize", "format_summary"]

_lz4 = cramjam.lz4.compress_block
HUGE_4K = 3625                       # zram stores lz4 lengths >= this raw (4 KiB pages, 6.18)


def _same_filled(pg) -> bool:
    w = pg[:8]
    return w == pg[-8:] and w * (len(pg) // 8) == pg


def summarize(pages, huge_threshold: int | None = None) -> dict:
    """Count, same-filled pages and the lz4 size distribution of the other pages.

    Sizes are cramjam's lz4 block lengths (zram's LZ4_compress_fast gives the same); like
    zram, same-filled pages are not compressed and not in the distribution. ``huge`` counts
    lengths >= ``huge_threshold`` (default: 3625 scaled to the page size, zram's raw cut).
    """
    pages = list(pages)
    P = len(pages[0]) if pages else 4096
    if huge_threshold is None:
        if P == 4096:
            huge_threshold = HUGE_4K
        else:
            from ..config import PoolConfig
            from ..core.sizeclass import huge_class_size
            try:
                huge_threshold = huge_class_size(PoolConfig(page_size=P))
            except ValueError:
                huge_threshold = P * HUGE_4K // 4096
    same = 0
    zero = 0
    sizes = []
    for pg in pages:
        if _same_filled(pg):
            same += 1
            zero += not any(pg[:8])
        else:
            sizes.append(len(_lz4(pg, store_size=False)))
    sizes.sort()
    out = {"pages": len(pages), "page_size": P, "same_filled": same, "zero_filled": zero,
           "compressed": len(sizes), "huge": sum(1 for s in sizes if s >= huge_threshold),
           "huge_threshold": huge_threshold}
    if sizes:
        q = lambda f: sizes[min(len(sizes) - 1, int(f * len(sizes)))]
        out.update(min=sizes[0], p10=q(0.10), median=int(statistics.median(sizes)),
                   mean=round(statistics.fmean(sizes), 1), p90=q(0.90), max=sizes[-1],
                   ratio=round(len(sizes) * P / sum(sizes), 2))
    return out


def format_summary(s: dict) -> str:
    lines = [f"{s['pages']} pages of {s['page_size']} B: {s['same_filled']} same-filled "
             f"({s['zero_filled']} zero), {s['compressed']} compressed, {s['huge']} huge "
             f"(lz4 >= {s['huge_threshold']})"]
    if s["compressed"]:
        lines.append(f"lz4 size of the compressed pages: min {s['min']}  p10 {s['p10']}  "
                     f"median {s['median']}  mean {s['mean']}  p90 {s['p90']}  max {s['max']}  "
                     f"(ratio {s['ratio']})")
    return "\n".join(lines)
