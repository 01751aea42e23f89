"""``zsmalloc serve``: a compressed RAM disk (a Zram) served over NBD until SIGINT/SIGTERM.

Prints one line when it is ready; SIGUSR1 prints the device's mm_stat and io_stat (the
sysfs lines); any NBD client reads them too, as the export's description
(``nbdinfo URI``).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys

_SIZE = re.compile(r"(\d+)([KMGT]?)(?:I?B)?", re.IGNORECASE)
_SHIFT = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}


def parse_size(text: str) -> int:
    """'192M' -> 201326592: bytes, with an optional K, M, G or T suffix (powers of 1024)."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size: use bytes with an optional K, M, G or T suffix")
    return int(m.group(1)) << _SHIFT[m.group(2).upper()]


def make_zram(size: int, comp: str, config):
    """The served device; a plain Zram is safe to share between the connection threads."""
    from ..zram import Zram
    return Zram(size, comp, config)


def register(sub, add_config_args, config_fn) -> None:
    p = sub.add_parser("serve", help="serve a compressed RAM disk over NBD",
                       description=__doc__.splitlines()[0])
    p.add_argument("--size", required=True, type=parse_size,
                   help="disk size in bytes; K, M, G, T suffixes (e.g. 1G)")
    p.add_argument("--comp", default="lz4", help="compression algorithm (default lz4)")
    add_config_args(p)
    p.add_argument("--mem-limit", type=parse_size, default=0,
                   help="most memory the pool may use (0 = none); writes over it fail (ENOSPC)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--unix", metavar="PATH", help="listen on a unix socket (mode 0600)")
    where.add_argument("--tcp", metavar="HOST:PORT",
                       help="listen on TCP, e.g. 127.0.0.1:10809 (bind other hosts on purpose)")
    p.add_argument("--name", default="", help="export name (default empty; any name is accepted)")
    p.add_argument("--compact-interval", type=float, default=2.0, metavar="SECONDS",
                   help="background compaction: look this often, and after discards; "
                        "0 turns it off (default 2)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log connections (-v) and protocol details (-vv) to stderr")
    p.set_defaults(func=lambda args: cmd_serve(args, config_fn))


def cmd_serve(args, config_fn) -> int:
    from .server import NbdServer, describe, parse_hostport
    if args.size <= 0:
        raise ValueError(f"--size {args.size}: the disk needs at least one byte")
    if args.compact_interval < 0:
        raise ValueError(f"--compact-interval {args.compact_interval}: must be >= 0")
    host_port = parse_hostport(args.tcp) if args.tcp else None
    logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
                        format="zsmalloc serve: %(message)s", stream=sys.stderr)
    zram = make_zram(args.size, args.comp, config_fn(args))
    server = None
    try:
        zram.mem_limit = args.mem_limit
        server = NbdServer(zram, export_name=args.name, compact=args.compact_interval > 0,
                           compact_interval=args.compact_interval or 1.0)
        uri = server.listen_tcp(*host_port) if host_port else server.listen_unix(args.unix)

        def stop(signum, frame):
            server.shutdown()

        def stats(signum, frame):
            print(f"mm_stat {str(zram.mm_stat()).strip()}\nio_stat {str(zram.io_stat()).strip()}",
                  flush=True)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGUSR1, stats)
        print(f"zsmalloc serve: ready on {uri} (pid {os.getpid()}; {describe(zram)})", flush=True)
        server.serve_forever()
    finally:
        if server is not None:
            server.close()
        zram.close()
    return 0
