"""One Python baseline measurement, in a fresh interpreter:
``python -m zsmalloc.report.baseline_child STORE PAGES_FILE PAGE_SIZE`` holds the saved pages
in one store and prints one JSON line (RSS growth, write and read seconds, bad reads).

Its own module, imported by nothing else, so that ``python -m`` runs it cleanly.
"""

from __future__ import annotations

import gc
import json
import sys
import time

from ..config import PoolConfig
from ..realpages import rss
from .baselines import BASELINE_STORES
from .specs import ReportError

__all__ = ["child_main"]


def child_main(argv) -> None:
    """Child entry (``python -m zsmalloc.report.baselines kind path page_size``): hold the
    saved pages in one store; prints one JSON line with the measurements."""
    import cramjam
    from ..realpages import load_pages
    kind, path, P = argv[0], argv[1], int(argv[2])
    pages = load_pages(path, P)
    n = len(pages)
    comp, decomp = cramjam.lz4.compress_block, cramjam.lz4.decompress_block

    # bytes(): a cramjam Buffer may keep spare capacity; a dict of bytes holds exactly them
    def dump(page):
        return bytes(comp(page, store_size=False))

    def load(blob):
        return bytes(decomp(blob, output_len=P))

    # imports before the first RSS sample: only the store's own memory should count
    from ..zram import Zram
    import zict
    dump(pages[0]), load(dump(pages[0]))
    gc.collect()
    gc.disable()
    r0 = rss()
    t0 = time.perf_counter()
    if kind == "zram":
        store = Zram(n * P, "lz4", PoolConfig(page_size=P))
        w = store.write
        for i, pg in enumerate(pages):
            w(i, pg)
        read = store.read
    elif kind == "dict-lz4":
        store = {}
        for i, pg in enumerate(pages):
            store[i] = dump(pg)
        d = store

        def read(i):
            return load(d[i])
    elif kind == "zict-lz4":
        store = zict.Func(dump, load, {})
        for i, pg in enumerate(pages):
            store[i] = pg
        read = store.__getitem__
    else:
        raise ReportError(f"unknown baseline store {kind!r}; use one of {BASELINE_STORES}")
    t1 = time.perf_counter()
    r1 = rss()
    t2 = time.perf_counter()
    for i in range(n):
        read(i)
    t3 = time.perf_counter()
    gc.enable()
    bad = sum(read(i) != pages[i] for i in range(0, n, max(1, n // 200)))
    if kind == "zram":
        m = store.mm_stat()
        extra = {"mem_used_total": m.mem_used_total, "compr_data_size": m.compr_data_size}
    elif kind == "dict-lz4":
        extra = {"compr_data_size": sum(map(len, store.values()))}
    else:
        extra = {"compr_data_size": sum(map(len, store.d.values()))}
    print(json.dumps({"kind": kind, "pages": n, "rss_growth": r1 - r0, "write_s": t1 - t0,
                      "read_s": t3 - t2, "bad_reads": bad, **extra}))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m zsmalloc.report.baseline_child STORE PAGES_FILE PAGE_SIZE "
                 f"(STORE: {', '.join(BASELINE_STORES)})")
    child_main(sys.argv[1:])
