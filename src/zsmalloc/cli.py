"""Command line: ``zsmalloc <subcommand>`` (also ``python -m zsmalloc``).

A thin front-end: each subcommand parses arguments, calls the library and prints. Heavier
subcommands live in their own modules and are imported only when used.
"""

from __future__ import annotations

import argparse
import json
import sys

from .config import PAGE_SIZES, PROFILES, PoolConfig


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILES, default="linux-6.18",
                   help="kernel behaviour to model (default: linux-6.18)")
    p.add_argument("--chain-size", type=int, default=None,
                   help="max pages per zspage, 1..16 (default: the profile's, 8 or 4 for 4.8)")
    p.add_argument("--page-size", type=int, choices=PAGE_SIZES, default=4096)


def _config(args) -> PoolConfig:
    return PoolConfig(profile=args.profile, chain_size=args.chain_size, page_size=args.page_size)


def cmd_classes(args) -> int:
    """Print the size-class table (like spec Appendix A)."""
    from .core.sizeclass import class_table
    cfg = _config(args)
    t = class_table(cfg)
    if args.json:
        out = {"profile": cfg.profile, "chain_size": cfg.chain_size, "page_size": cfg.page_size,
               "huge_class_size": t.huge_class_size, "nr_indices": t.nr_indices,
               "classes": [{"index": sc.index, "size": sc.size,
                            "pages_per_zspage": sc.pages_per_zspage,
                            "objs_per_zspage": sc.objs_per_zspage, "huge": sc.huge,
                            "first_index": sc.first_index,
                            "request_range": list(t.request_range(sc)),
                            "tail_waste": t.tail_waste(sc)} for sc in t.classes]}
        print(json.dumps(out, indent=1))
        return 0
    print(f"# {cfg.profile}, chain {cfg.chain_size}, page {cfg.page_size}: {len(t.classes)} classes, "
          f"{t.nr_indices} indices, huge_class_size {t.huge_class_size}")
    print(" idx  size ppz objs huge idx range zs_malloc(len) tail waste")
    for sc in t.classes:
        lo, hi = t.request_range(sc)
        print(f"{sc.index:4d} {sc.size:5d} {sc.pages_per_zspage:3d} {sc.objs_per_zspage:4d} "
              f"{'   Y' if sc.huge else '    '} {f'{sc.first_index}-{sc.index}':>9s} "
              f"{f'{lo}-{hi}':>14s} {t.tail_waste(sc):15d}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="zsmalloc", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("classes", help="print the size-class table")
    _add_config_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_classes)

    for mod in _SUBCOMMAND_MODULES:
        try:
            m = __import__(f"zsmalloc.{mod}", fromlist=["register"])
        except ModuleNotFoundError as e:
            if e.name and f"zsmalloc.{mod}".startswith(e.name):
                continue   # that front-end is not part of this build
            raise
        m.register(sub, _add_config_args, _config)
    return ap


# modules that add their own subcommands via register(subparsers, add_config_args, config)
_SUBCOMMAND_MODULES = ["demo", "zram.conform", "trace.cli", "realpages", "report", "nbd.cli",
                       "estimate.cli"]


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): stop quietly, as Unix tools do
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError, MemoryError) as e:
        print(f"zsmalloc {args.cmd}: error: {str(e) or type(e).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
