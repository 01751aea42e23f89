"""``zsmalloc pages SOURCE N OUT``: read N real pages, save them, print their lz4 sizes.

The pages are held in memory until they are saved, so N is checked first against the
memory the machine has available (and OUT against where it will be written); a long read
reports each child process's progress on stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time

from .anon import child_anon_pages
from .common import mem_available
from .files import elf_pages, text_pages
from .mixed import mixed_pages
from .pagefile import save_pages
from .summary import format_summary, summarize

__all__ = ["SOURCES", "cmd_pages", "register", "check_request"]

SOURCES = ("anon", "elf", "text", "mixed")


def check_request(n: int, page_size: int, out: str, available: int | None = None) -> None:
    """ValueError naming N or OUT when the request cannot be met: N below 1, N pages (held
    in memory, plus as much again while they are saved and summarized) above half the
    memory available, or OUT in a directory that is missing or not writable."""
    if n < 1:
        raise ValueError(f"N {n} must be at least 1")
    avail = mem_available() if available is None else available
    need = n * page_size
    if avail is not None and 2 * need > avail:
        most = max(0, avail // 2 // page_size)
        raise ValueError(f"N {n} pages of {page_size} bytes is {need / 2**30:,.1f} GiB, held in "
                         f"memory before saving: more than half of the {avail / 2**30:.1f} GiB "
                         f"available now; ask for at most {most:,}")
    d = os.path.dirname(os.path.abspath(out))
    if os.path.isdir(out):
        raise ValueError(f"OUT {out!r} is a directory; give a file name")
    if not os.path.isdir(d) or not os.access(d, os.W_OK):
        raise ValueError(f"OUT {out!r}: directory {d!r} is missing or not writable")


def _progress(pages: int, n: int) -> None:
    end = "\r" if sys.stderr.isatty() else "\n"
    print(f"# read {pages:,} of {n:,} anon pages", end=end, file=sys.stderr, flush=True)


def cmd_pages(args) -> int:
    """Read N pages from SOURCE, save them to OUT, print the compressed-size distribution."""
    P = args._config.page_size
    n = args.n
    check_request(n, P, args.out)
    t0 = time.perf_counter()
    extra: dict = {}
    if args.source == "anon":
        pages = child_anon_pages(n, P, args.seed, stats=extra, on_child=_progress)
    elif args.source == "mixed":
        pages = mixed_pages(n, P, args.seed, stats=extra, on_child=_progress)
    elif args.source == "elf":
        pages = elf_pages(n, P)
    else:
        pages = text_pages(n, P)
    t_read = time.perf_counter() - t0
    if not pages:
        raise ValueError(f"no {args.source} pages could be read on this machine")
    save_pages(pages, args.out)
    s = summarize(pages)
    if args.json:
        print(json.dumps({"source": args.source, "out": args.out, "seconds": round(t_read, 2),
                          **{k: v for k, v in extra.items() if k not in ("children", "sources")}, **s}, indent=1))
        return 0
    short = f" (only {len(pages)} of {n} available)" if len(pages) < n else ""
    print(f"# {args.source}: wrote {len(pages)} pages to {args.out}{short}, read in {t_read:.1f}s")
    if "resident" in extra:
        print(f"# child processes: {len(extra['children'])}, resident anon pages "
              f"{extra['resident']}, failed reads {extra['read_failed']}")
    if args.source == "mixed":
        print(f"# mix: anon {extra['anon']}, elf {extra['elf']}, text {extra['text']}")
    print(format_summary(s))
    return 0


def register(sub, add_config_args, config_fn) -> None:
    p = sub.add_parser("pages", help="save real pages (child anon memory, ELF, text) to a file")
    p.add_argument("source", choices=SOURCES, help="anon, elf, text or mixed (60/25/15)")
    p.add_argument("n", type=int, help="number of pages")
    p.add_argument("out", help="output file (ZSPAGES1 format)")
    add_config_args(p)
    p.add_argument("--seed", type=int, default=0, help="child heap and shuffle seed (default 0)")
    p.add_argument("--json", action="store_true", help="machine-readable summary")

    def run(args):
        args._config = config_fn(args)
        return cmd_pages(args)
    p.set_defaults(func=run)
