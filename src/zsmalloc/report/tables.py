"""Results as tables: memory efficiency per configuration and the published comparisons."""

from __future__ import annotations

__all__ = ["PUBLISHED", "SOURCES", "efficiency_rows", "efficiency_markdown", "published_check",
           "published_markdown", "reference", "pct"]

#: where each published figure comes from: texts a reader can open (the kernel's own
#: commits and documentation, by name; mailing-list patches by subject)
SOURCES = {
    "zbud": "Linux commit \"mm: zbud: remove zbud\" (Yosry Ahmed, 2025)",
    "z3fold": "Linux commit 7a2369b74abf \"mm: z3fold: deprecate CONFIG_Z3FOLD\"",
    "zblock": "\"[PATCH v2] mm: add zblock allocator\" (Vitaly Wool, linux-mm, 2025)",
    "chain": "Linux Documentation/mm/zsmalloc.rst, section on chain size",
    "compaction": "Linux commit \"zsmalloc: rework compaction algorithm\" (Sergey Senozhatsky, "
                  "2023)",
}

#: published memory use relative to zsmalloc (+ means more memory)
PUBLISHED = {
    "zbud": ("+32 % (1.5G vs 1.13G, kernel build under zswap)", SOURCES["zbud"]),
    "z3fold": ("+1.8 % (same test)", SOURCES["z3fold"]),
    "zblock": ("ratio 'lower than zsmalloc's', 'higher than z3fold and zbud'", SOURCES["zblock"]),
    "chain4": ("+2.1 % (mem_used_max 655175680 vs 641703936, chain 4 vs 8)", SOURCES["chain"]),
}


def reference(results, page_size):
    for r in results:
        if r.spec.is_reference and r.spec.page_size == page_size:
            return r
    return None


def efficiency_rows(results: list) -> list[dict]:
    """One dict per result: pages used (end, mean over the run, peak), MiB, compressed MiB,
    memory per compressed byte, effective ratio and the ratios vs 6.18 chain 8."""
    rows = []
    for r in results:
        P = r.spec.page_size
        ref = reference(results, P)
        rows.append({
            "label": r.spec.label, "allocator": r.spec.allocator, "page_size": P,
            "pages": r.final_pages, "mib": r.final_pages * P / 2**20,
            "mean_pages": r.mean_pages, "peak_pages": r.peak_pages,
            "compr_mib": r.compr_bytes / 2**20, "overhead": r.overhead,
            "ratio": r.orig_bytes / (r.final_pages * P) if r.final_pages else float("nan"),
            "vs_ref": r.final_pages / ref.final_pages if ref and ref.final_pages else None,
            "vs_ref_mean": r.mean_pages / ref.mean_pages if ref and ref.mean_pages else None,
            "moved": r.moved if r.spec.is_zsmalloc else None,
            "moved_lower_bound": r.moved_lower_bound,
            "pages_compacted": r.pages_compacted if r.spec.is_zsmalloc else None,
            "raw_pages": r.raw_pages,
        })
    return rows


def pct(x) -> str:
    return "–" if x is None else f"{100 * (x - 1):+.1f} %"


def efficiency_markdown(rows: list[dict]) -> str:
    """The efficiency table as Markdown."""
    out = ["| configuration | pages used | MiB | mean pages | peak pages | compressed MiB | "
           "memory / compressed byte | effective ratio | vs 6.18 c8 (end) | vs 6.18 c8 (mean) |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for d in rows:
        out.append(f"| {d['label']} | {d['pages']:,} | {d['mib']:.1f} | {d['mean_pages']:,.0f} | "
                   f"{d['peak_pages']:,} | {d['compr_mib']:.1f} | {d['overhead']:.3f} | "
                   f"{d['ratio']:.2f} | {pct(d['vs_ref'])} | {pct(d['vs_ref_mean'])} |")
    return "\n".join(out) + "\n"


def published_check(results: list, page_size: int = 4096) -> list[dict]:
    """Measured memory vs zsmalloc 6.18 chain 8 next to the published figures (4 KiB)."""
    ref = reference(results, page_size)
    if ref is None:
        return []
    by = {}
    for r in results:
        if r.spec.page_size == page_size:
            by[r.spec.label.split(" ")[0] if not r.spec.is_zsmalloc else r.spec.label] = r
    out = []

    def add(key, name, r, pub, src, sign):
        end = r.final_pages / ref.final_pages - 1
        mean = r.mean_pages / ref.mean_pages - 1
        out.append({"comparison": name, "published": pub, "source": src,
                    "end": end, "mean": mean, "agrees": (end > 0) == sign and (mean > 0) == sign,
                    "agrees_end": (end > 0) == sign})
    for peer in ("zbud", "z3fold", "zblock"):
        if peer in by:
            add(peer, f"{peer} vs zsmalloc 6.18 c8", by[peer], *PUBLISHED[peer], True)
    c4 = by.get("zsmalloc 6.18 c4")
    if c4 is not None:
        add("chain4", "zsmalloc 6.18 chain 4 vs 8", c4, *PUBLISHED["chain4"], True)
    return out


def published_markdown(rows: list[dict]) -> str:
    out = ["| comparison | published | source | measured (end) | measured (mean over run) | same direction |",
           "| --- | --- | --- | ---: | ---: | --- |"]
    for d in rows:
        same = "yes" if d["agrees"] else ("at the end only" if d["agrees_end"] else "no")
        out.append(f"| {d['comparison']} | {d['published']} | {d['source']} | "
                   f"{100 * d['end']:+.1f} % | {100 * d['mean']:+.1f} % | {same} |")
    return "\n".join(out) + "\n"
