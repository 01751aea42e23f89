"""The kernel's compressed length of a page, measured through a zram device of our own.

zram reports no per-page length, but ``mm_stat`` does move by exactly one page's worth on
each write to an empty slot: ``compr_data_size`` grows by the compressed length, unless
the page is same-filled (``same_pages`` grows instead) or compresses to
``huge_class_size`` or more (stored raw: ``huge_pages`` grows and ``compr_data_size`` by
PAGE_SIZE). :func:`kernel_lengths` writes pages one at a time to fresh slots of a
hot-added device (``zsmalloc.zram.kernel.KernelZram``) and reads ``mm_stat`` after each.

:func:`compare` puts our compressor's lengths beside the kernel's: for each page the
kernel's ``("len", n)``, ``("huge", None)`` or ``("same", None)`` against ours. This is how
lib/lz4 and lib/lzo are checked against lib/lz4 and lib/lzo of the running kernel
(benchmarks/kernel_lengths.py, tests/test_lib_kernel.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

PAGE_SIZE = 4096
SAME, HUGE, LEN = "same", "huge", "len"


def same_filled(page) -> bool:
    """Kernel: page_same_filled (every unsigned long of the page equal)."""
    mv = memoryview(page).cast("B")
    first = bytes(mv[:8])
    return first * (len(mv) // 8) == bytes(mv)


def huge_class_size(page_size: int = PAGE_SIZE) -> int:
    """zs_huge_class_size of this project's 6.18 model (3625 for 4 KiB pages, chain 8)."""
    from ..config import PoolConfig
    from ..core.sizeclass import class_table
    return class_table(PoolConfig(page_size=page_size, profile="linux-6.18",
                                  chain_size=8)).huge_class_size


def classify(comp_len: int, page, hcs: int):
    """What zram does with a page compressed to comp_len: (kind, length or None)."""
    if same_filled(page):
        return SAME, None
    if comp_len >= hcs:
        return HUGE, None
    return LEN, comp_len


def kernel_lengths(pages, algorithm: str, *, slots: int = 16384):
    """The kernel's (kind, length) for each 4 KiB page, through a device of our own
    compressing with ``algorithm`` (hot-added and removed, also on errors).
    Needs root and zram (KernelZramUnavailable otherwise)."""
    from ..zram.kernel import KernelZram
    out = []
    with KernelZram(slots * PAGE_SIZE, algorithm) as kz:
        stat = kz.mm_stat()
        slot = 0
        for page in pages:
            if slot == slots:                  # full: empty it and start again
                kz.discard(0, slots)
                stat = kz.mm_stat()
                slot = 0
            kz.write(slot, page)
            slot += 1
            new = kz.mm_stat()
            if new[5] != stat[5]:              # same_pages
                out.append((SAME, None))
            elif new[7] != stat[7]:            # huge_pages
                out.append((HUGE, None))
            else:
                out.append((LEN, new[1] - stat[1]))   # compr_data_size
            stat = new
    return out


@dataclass
class Comparison:
    """Our lengths against the kernel's, page by page."""
    algorithm: str
    pages: int = 0
    equal: int = 0
    counts: Counter = field(default_factory=Counter)     # kernel kind -> pages
    mismatches: list = field(default_factory=list)       # (index, kernel, ours)

    @property
    def ok(self) -> bool:
        return self.equal == self.pages


def compare(pages, algorithm: str, compress_len, *, slots: int = 16384,
            keep: int = 20) -> Comparison:
    """Compare ``compress_len(page) -> int`` with the kernel for every page."""
    hcs = huge_class_size()
    theirs = kernel_lengths(pages, algorithm, slots=slots)
    c = Comparison(algorithm)
    for i, (page, k) in enumerate(zip(pages, theirs)):
        ours = classify(compress_len(page), page, hcs)
        c.pages += 1
        c.counts[k[0]] += 1
        if ours == k:
            c.equal += 1
        elif len(c.mismatches) < keep:
            c.mismatches.append((i, k, ours))
    return c


def ast_pages(n: int, page_size: int = PAGE_SIZE) -> list:
    """Up to n pages of ``ast.dump`` text of the Python modules installed here (the
    standard library, then site-packages), in sorted file order; each module's dump starts
    a page, its last page zero-padded. (A page source for the exactness checks, beside
    those of zsmalloc.realpages.)"""
    import ast
    import os
    import sysconfig
    import warnings
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    paths = sysconfig.get_paths()
    out: list = []
    for root, dirs, files in (w for top in dict.fromkeys((paths["stdlib"], paths["purelib"]))
                              for w in os.walk(top)):
        dirs[:] = sorted(d for d in dirs if d not in ("test", "tests", "site-packages",
                                                       "__pycache__", "idlelib"))
        for name in sorted(files):
            if len(out) >= n:
                return out
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(root, name), "rb") as f:
                    src = f.read()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    data = ast.dump(ast.parse(src)).encode()
            except (OSError, SyntaxError, ValueError, RecursionError):
                continue
            for o in range(0, len(data), page_size):
                if len(out) >= n:
                    break
                out.append(data[o:o + page_size].ljust(page_size, b"\0"))
    return out
