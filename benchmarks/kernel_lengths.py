"""Our compressors' lengths against the running kernel's, page by page, on real pages.

Run from the repository root, as root (it hot-adds a zram device of its own per
algorithm and removes it after)::

    PYTHONPATH=src python benchmarks/kernel_lengths.py [--pages 100000] [--markdown]

Pages: a quarter each of a child process's anonymous memory, ELF files, text files and
``ast.dump`` text of the installed Python modules (a source short of pages is made up by
anonymous memory). For each algorithm (lz4, lzo, lzo-rle) every page goes to a fresh slot
of the device and the kernel's length is the change of mm_stat's compr_data_size
(``zsmalloc.lib.oracle``); same-filled pages (same_pages moves) and pages stored raw
(huge_pages moves: compressed length >= huge_class_size 3625) show no length and are
counted apart: ours must call them same-filled / huge too. cramjam's LZ4 1.10 is measured
the same way beside ours, for comparison.

Exit status 1 if any page of ours differs from the kernel.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Printer, Table, header_lines  # noqa: E402

import cramjam  # noqa: E402

import zsmalloc  # noqa: E402
from zsmalloc import realpages as rp  # noqa: E402
from zsmalloc.lib import lz4 as L, lzo as Z, oracle  # noqa: E402

KINDS = ("anon", "elf", "text", "ast")
CHECKS = [
    ("lz4", "zsmalloc.lib.lz4", lambda p: len(L.compress(p))),
    ("lzo", "zsmalloc.lib.lzo", lambda p: len(Z.compress(p))),
    ("lzo-rle", "zsmalloc.lib.lzo (rle)", lambda p: len(Z.compress(p, rle=True))),
    ("lz4", "cramjam LZ4 1.10 (comparison)",
     lambda p: len(cramjam.lz4.compress_block(p, store_size=False))),
]


def gather(n: int, seed: int = 0):
    """n pages, a quarter of each kind where the machine has them; (pages, kinds)."""
    share = n // 4
    elf = rp.elf_pages(share)
    text = rp.text_pages(share)
    ast = oracle.ast_pages(share)
    anon = rp.child_anon_pages(n - len(elf) - len(text) - len(ast), seed=seed)
    pages = anon + elf + text + ast
    kinds = ["anon"] * len(anon) + ["elf"] * len(elf) + ["text"] * len(text) + ["ast"] * len(ast)
    return pages, kinds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=100_000, help="pages in all (default 100000)")
    ap.add_argument("--seed", type=int, default=0, help="child heap seed (default 0)")
    ap.add_argument("--markdown", action="store_true", help="plain Markdown output")
    args = ap.parse_args(argv)
    if args.pages < 4:
        ap.error(f"--pages {args.pages} must be at least 4")
    ok, reason = __import__("zsmalloc.zram.kernel", fromlist=["kernel_available"]).kernel_available()
    if not ok:
        print(f"kernel_lengths: cannot use a zram device of its own: {reason}", file=sys.stderr)
        return 3

    out = Printer(markdown=args.markdown)
    out.heading("Compressed lengths: ours against the kernel's, page by page", 1)
    cmd = "PYTHONPATH=src python benchmarks/kernel_lengths.py" + \
        (f" --pages {args.pages}" if args.pages != 100_000 else "") + \
        (" --markdown" if args.markdown else "")
    for line in header_lines(cmd):
        out.text(line)
    out.text(f"- zsmalloc compiled: {zsmalloc.COMPILED} ({zsmalloc.MODE_REASON})")

    t0 = time.perf_counter()
    pages, kinds = gather(args.pages, args.seed)
    have = Counter(kinds)
    out.text(f"- pages: {len(pages)} ({', '.join(f'{k} {have[k]}' for k in KINDS)}), "
             f"gathered in {time.perf_counter() - t0:.0f} s\n")

    summary = Table("Every page: kernel length (mm_stat compr_data_size change) = ours",
                    ["compressor", "zram algorithm", "pages", "equal", "differ",
                     "with a length", "huge (raw)", "same-filled", "seconds"])
    per_kind = Table("Pages that differ from the kernel, by kind",
                     ["compressor"] + list(KINDS))
    firsts = []
    status = 0
    for alg, label, fn in CHECKS:
        t = time.perf_counter()
        c = oracle.compare(pages, alg, fn, keep=len(pages))
        secs = time.perf_counter() - t
        bad = Counter(kinds[i] for i, _, _ in c.mismatches)
        summary.add(label, alg, f"{c.pages:,}", f"{c.equal:,}", f"{c.pages - c.equal:,}",
                    f"{c.counts[oracle.LEN]:,}", f"{c.counts[oracle.HUGE]:,}",
                    f"{c.counts[oracle.SAME]:,}", f"{secs:.0f}")
        per_kind.add(label, *(f"{bad[k]:,}" for k in KINDS))
        if c.mismatches:
            i, k, o = c.mismatches[0]
            firsts.append(f"{label}: page {i} ({kinds[i]}): kernel {k}, this compressor {o}")
        if not label.startswith("cramjam") and not c.ok:
            status = 1
    out.table(summary)
    out.table(per_kind)
    # The one cause of cramjam's differences: LZ4 >= 1.8.2 probes one position closer to
    # the end. Ours with that rule (lz4_182=True) should give cramjam's bytes exactly.
    ident = Table("Byte-identical blocks, ours against cramjam's LZ4 1.10",
                  ["ours", "pages", "identical to LZ4 1.10", "differ"])
    for label, flag in (("kernel rule (1.7.3: stop at forwardIp > mflimit)", False),
                        ("LZ4 1.8.2+ rule (stop at forwardIp > mflimit + 1)", True)):
        same = sum(L.compress(p, lz4_182=flag) == bytes(cramjam.lz4.compress_block(p, store_size=False))
                   for p in pages)
        ident.add(label, f"{len(pages):,}", f"{same:,}", f"{len(pages) - same:,}")
    out.table(ident)
    if firsts:
        out.text("First difference of each compressor that has one:\n")
        for f in firsts:
            out.text(f"- {f}")
    out.text("\n" + ("OK: ours equals the kernel on every page for lz4, lzo and lzo-rle"
                     if status == 0 else "FAILED: ours differs from the kernel"))
    return status


if __name__ == "__main__":
    sys.exit(main())
