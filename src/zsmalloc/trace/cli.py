"""Subcommands ``zsmalloc replay TRACE`` and ``zsmalloc record-demo OUT``.

``replay`` reads a zstrace file (docs/trace-format.md), drives a zram model and/or a pool
with it, and prints the counters: the 9 mm_stat fields, io_stat, total pages and pages
compacted (``--json`` for a machine-readable dict). The configuration defaults to the one
in the trace's header; ``--profile``/``--chain-size``/``--page-size`` override it.
``record-demo`` records a short seeded Zram session on crafted pages, to try things with.
"""

from __future__ import annotations

import json

from ..config import PoolConfig
from .extent import DEFAULT_MAX_SIZE, format_size, parse_size
from .replay import ALLOCATORS, config_for, replay


def cmd_replay(args) -> int:
    from .format import read_trace
    parse_size(args.max_size, "--max-size")        # a bad value before any file is read
    with read_trace(args.trace) as tr:
        header = tr.header
    cfg = config_for(header, args.profile, args.chain_size, args.page_size)
    res = replay(args.trace, cfg, args.allocator, comp_algorithm=args.comp,
                 max_size=parse_size(args.max_size, "--max-size"))
    if args.json:
        d = res.as_dict()
        d["trace"] = args.trace
        print(json.dumps(d, indent=1))
    else:
        print(f"trace: {args.trace}")
        print(res.format())
    return 0


def cmd_record_demo(args) -> int:
    from ..zram import Zram
    from .format import TraceWriter
    from .recorder import RecordingZram, demo_session
    cfg = PoolConfig(profile=args.profile or "linux-6.18", chain_size=args.chain_size,
                     page_size=args.page_size or 4096)
    disksize = parse_size(args.disksize, "--disksize")
    cap = parse_size(args.max_size, "--max-size")
    if disksize > cap:       # the slot table is allocated at once: check before it is
        raise ValueError(f"--disksize {args.disksize} is {format_size(disksize)}, over the cap "
                         f"of {format_size(cap)}; raise it with --max-size if that is meant")
    z = Zram(disksize, "lz4", cfg)
    try:
        with TraceWriter.for_zram(z, args.out) as w:
            w.comment(f"zsmalloc record-demo --ops {args.ops} --seed {args.seed}"
                      f"{' --data' if args.data else ''}")
            rz = RecordingZram(z, w, data=args.data)
            summary = demo_session(rz, args.ops, args.seed)
        m = z.mm_stat()
    finally:
        z.close()
    if args.json:
        print(json.dumps({"out": args.out, "records": w.records, "summary": summary,
                          "mm_stat": dict(zip(m.FIELDS, m)),
                          "io_stat": list(z.io_stat().as_tuple())}, indent=1))
        return 0
    print(f"wrote {w.records} records to {args.out} "
          f"({cfg.profile}, chain {cfg.chain_size}, page {cfg.page_size})")
    print("session: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    print(f"mm_stat: {str(m).strip()}")
    print(f"io_stat: {str(z.io_stat()).strip()}")
    print(f"replay it with: zsmalloc replay {args.out}")
    return 0


def register(sub, add_config_args, config_fn) -> None:
    p = sub.add_parser("replay", help="replay a zstrace file and print the resulting counters",
                       description="Replay a zstrace file (docs/trace-format.md) and print "
                                   "mm_stat, io_stat, total pages and pages compacted. "
                                   "--profile, --chain-size and --page-size default to the "
                                   "settings in the trace's header.")
    p.add_argument("trace", help="trace file (docs/trace-format.md; .gz is decompressed)")
    add_config_args(p)
    # None = "as in the trace's header" (add_config_args's defaults are the library's)
    p.set_defaults(profile=None, page_size=None, chain_size=None)
    p.add_argument("--allocator", choices=ALLOCATORS, default="zsmalloc",
                   help="allocator for the pool records (A/F/PC); zram records always use "
                        "zsmalloc, as zram does")
    p.add_argument("--max-size", default=str(DEFAULT_MAX_SIZE), metavar="SIZE",
                   help=f"refuse a trace that needs a disk (highest index + 1 pages) or live "
                        f"pool objects larger than this, before using memory (default "
                        f"{format_size(DEFAULT_MAX_SIZE).replace(' ', '')}; K/M/G/T suffixes)")
    p.add_argument("--comp", default=None,
                   help="compressor for D (data) records (default: the trace's comp=, else lz4)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("record-demo", help="record a short Zram session on crafted pages",
                       description="Record a short seeded Zram session (crafted pages, "
                                   "overwrites, discards, compaction, mem_limit with refused "
                                   "writes, mem_used_max resets) into a zstrace file.")
    p.add_argument("out", help="trace file to write (.gz compresses)")
    add_config_args(p)
    p.set_defaults(profile=None, page_size=None, chain_size=None)
    p.add_argument("--ops", type=int, default=2000, help="operations (default 2000)")
    p.add_argument("--seed", type=int, default=1, help="seed (default 1)")
    p.add_argument("--disksize", default="64M",
                   help="device size: bytes, or with a K/M/G/T suffix (default 64M)")
    p.add_argument("--max-size", default=str(DEFAULT_MAX_SIZE), metavar="SIZE",
                   help=f"refuse a --disksize above this (default "
                        f"{format_size(DEFAULT_MAX_SIZE).replace(' ', '')})")
    p.add_argument("--data", action="store_true",
                   help="keep each page's data (D records) so other compressors can replay it")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_record_demo)
