"""``zsmalloc demo``: fill a Zram with real pages, print its mm_stat and class table.

The built-in default: pages from the resident memory of a child Python process we start,
from ELF files and from text on this machine (``zsmalloc.realpages``), written to a 64 MiB
Zram, part overwritten and discarded, then compacted. Prints mm_stat before and after
compaction, the debugfs-style class table and every page read back checked.
"""

from __future__ import annotations

import random
import sys
import time


def _pages(n: int, seed: int, source: str):
    if source == "crafted":
        from .zram.pages import craft_page
        rng = random.Random(seed)
        return [craft_page(max(26, min(4114, int(rng.triangular(26, 4114, 900)))), rng)
                for _ in range(n)]
    from . import realpages
    fn = {"mixed": realpages.mixed_pages, "anon": realpages.child_anon_pages,
          "elf": realpages.elf_pages, "text": realpages.text_pages}[source]
    return list(fn(n, seed=seed)) if source in ("mixed", "anon") else list(fn(n))


def cmd_demo(args) -> int:
    from .zram import Zram
    cfg = args._config
    t0 = time.perf_counter()
    pages = _pages(args.pages, args.seed, args.source)
    if not pages:
        print("zsmalloc demo: no pages could be read", file=sys.stderr)
        return 2
    P = cfg.page_size
    if P != 4096:   # real pages are 4 KiB; glue them into larger pages for what-if runs
        k = P // 4096
        pages = [b"".join(pages[i:i + k]) for i in range(0, len(pages) - k + 1, k)]
    t_read = time.perf_counter() - t0
    disk = max(64 << 20, len(pages) * P)
    z = Zram(disk, args.algorithm, cfg)
    rng = random.Random(args.seed)
    expect = {}
    t0 = time.perf_counter()
    for i, pg in enumerate(pages):
        z.write(i, pg)
        expect[i] = pg
    # swap-like churn: overwrite a tenth, discard a third
    for i in rng.sample(range(len(pages)), len(pages) // 10):
        pg = pages[rng.randrange(len(pages))]
        z.write(i, pg)
        expect[i] = pg
    for i in rng.sample(range(len(pages)), len(pages) // 3):
        z.discard(i)
        expect.pop(i)
    t_write = time.perf_counter() - t0
    before = z.mm_stat()
    freed = z.compact()
    after = z.mm_stat()
    bad = sum(1 for i, pg in expect.items() if z.read(i) != pg)
    bad += sum(1 for i in range(len(pages)) if i not in expect and z.read(i) != bytes(P))
    print(f"zsmalloc demo: {len(pages)} {args.source} pages ({P} B), {cfg.profile} chain "
          f"{cfg.chain_size}, {args.algorithm}; read {t_read:.1f}s, wrote {t_write:.1f}s")
    print("mm_stat fields: orig_data_size compr_data_size mem_used_total mem_limit mem_used_max "
          "same_pages pages_compacted huge_pages huge_pages_since")
    print(f"mm_stat before compact: {str(before).rstrip()}")
    print(f"mm_stat after compact:  {str(after).rstrip()}   ({freed} pages freed)")
    if after.mem_used_total:
        print(f"compression ratio {after.orig_data_size / max(1, after.compr_data_size):.2f}, "
              f"memory efficiency {after.compr_data_size / after.mem_used_total:.1%} "
              f"(compressed bytes / pool memory)")
    print()
    print(z.pool.format_classes() if args.all_classes else _nonempty_classes(z.pool))
    print(f"read back {len(pages)} pages: {'all correct' if not bad else f'{bad} WRONG'}")
    z.pool.check()
    return 1 if bad else 0


def _nonempty_classes(pool) -> str:
    """The class table with only classes that hold zspages (use --all-classes for all)."""
    lines = pool.format_classes().splitlines()
    head, rows, total = lines[0], lines[1:-2], lines[-1]
    keep = [r for r in rows if int(r.split()[-5]) > 0]
    return "\n".join([head] + keep + ["", total])


def register(sub, add_config_args, config_fn) -> None:
    p = sub.add_parser("demo", help="fill a Zram with real pages; print mm_stat and classes")
    add_config_args(p)
    p.add_argument("--pages", type=int, default=20000, help="pages to write (default 20000)")
    p.add_argument("--source", choices=("mixed", "anon", "elf", "text", "crafted"), default="mixed")
    p.add_argument("--algorithm", default="lz4")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--all-classes", action="store_true", help="print every class, not only used ones")

    def run(args):
        args._config = config_fn(args)
        return cmd_demo(args)
    p.set_defaults(func=run)
