"""``python -m zsmalloc.nbd serve ...``: the serve subcommand on its own (same as
``zsmalloc serve`` once registered in zsmalloc.cli)."""

from __future__ import annotations

import argparse
import sys

from ..cli import _add_config_args, _config
from .cli import register


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m zsmalloc.nbd")
    sub = ap.add_subparsers(dest="cmd", required=True)
    register(sub, _add_config_args, _config)
    args = ap.parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, OSError, MemoryError) as e:
        print(f"zsmalloc {args.cmd}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
