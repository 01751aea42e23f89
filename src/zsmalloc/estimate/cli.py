"""``zsmalloc estimate``: predict what zram as swap would use for live processes.

    zsmalloc estimate --pid PID [--pid PID ...] [--comp ALG ...] [--chain-size N ...]
                      [--page-size N ...] [--profile P] [--sample FRACTION] [--json]
                      [--no-freeze] [--no-peers] [--verify]

Reads the resident anonymous pages of each process (root, or the processes' owner) through
/proc/PID/pagemap and /proc/PID/mem, stopping each process only while it is scanned, and
prints per configuration the mm_stat zram would show after swapping them all out, the
ratio of mem_used_total to the resident size, and zbud, z3fold and zblock beside it.
``--verify`` (root) then swaps the processes out to a zram device of its own and prints
predicted against measured (see :mod:`zsmalloc.estimate.verify`).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import time

from ..config import PAGE_SIZES, PROFILES, PoolConfig
from .model import EstimateConfig
from .procfs import SYS_PAGE

DEFAULT_EXTRA = ("lz4", "lzo-rle", "zstd")
FIELDS = ("orig_data_size", "compr_data_size", "mem_used_total", "mem_limit", "mem_used_max",
          "same_pages", "pages_compacted", "huge_pages", "huge_pages_since")


# ---------------------------------------------------------------------------------------
# the running kernel's defaults
# ---------------------------------------------------------------------------------------

def _kernel_config(name: str) -> str | None:
    """A CONFIG_ value of the running kernel (/proc/config.gz or /boot/config-*), or None."""
    import gzip
    import platform
    for path, opener in (("/proc/config.gz", gzip.open),
                         (f"/boot/config-{platform.release()}", open)):
        try:
            with opener(path, "rt") as f:
                for line in f:
                    if line.startswith(name + "="):
                        return line.split("=", 1)[1].strip().strip('"')
        except OSError:
            continue
    return None


def kernel_defaults() -> tuple[str, int | None, str]:
    """(compressor, chain size or None, where the compressor came from)."""
    chain = _kernel_config("CONFIG_ZSMALLOC_CHAIN_SIZE")
    chain = int(chain) if chain and chain.isdigit() else None
    try:
        from ..zram.kernel import kernel_available, kernel_default_algorithm
        ok, _ = kernel_available()
        if ok:
            return kernel_default_algorithm(), chain, "a fresh zram device"
    except (OSError, ValueError, ImportError):
        pass
    comp = _kernel_config("CONFIG_ZRAM_DEF_COMP")
    if comp:
        return comp, chain, "the kernel config"
    return "lzo-rle", chain, "the upstream default (kernel not readable)"


# ---------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------

def _pid(text: str) -> int:
    try:
        pid = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"pid {text!r} is not a number") from None
    if pid <= 0:
        raise argparse.ArgumentTypeError(f"pid {text!r} must be positive")
    return pid


def _fraction(text: str) -> float:
    try:
        f = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"sample fraction {text!r} is not a number") from None
    if not 0 < f <= 1:
        raise argparse.ArgumentTypeError(f"sample fraction {text!r} must be in (0, 1]")
    return f


def _int(what: str):
    def conv(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} {text!r} is not a whole number") from None
    return conv


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pid", type=_pid, action="extend", nargs="+", required=True,
                   metavar="PID", help="process to scan (repeat or list several)")
    p.add_argument("--comp", action="extend", nargs="+", metavar="ALG",
                   help="compressor(s) (default: the kernel's, then lz4, lzo-rle, zstd)")
    p.add_argument("--chain-size", type=_int("chain size"), action="extend", nargs="+",
                   metavar="N", help="zspage chain size(s), 1..16 (default: the kernel's)")
    p.add_argument("--page-size", type=_int("page size"), action="extend", nargs="+",
                   metavar="N", help=f"page size(s): {', '.join(map(str, PAGE_SIZES))} "
                                     f"(default: the system's)")
    p.add_argument("--profile", choices=PROFILES, default="linux-6.18",
                   help="kernel behaviour, swap layer included (default: linux-6.18)")
    p.add_argument("--sample", type=_fraction, metavar="FRACTION",
                   help="read only this fraction of pages and extrapolate (95 %% intervals)")
    p.add_argument("--seed", type=_int("seed"), default=0, help="sampling seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-freeze", action="store_true",
                   help="do not stop the processes while they are scanned")
    p.add_argument("--no-peers", action="store_true", help="leave out zbud, z3fold, zblock")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--verify", action="store_true",
                   help="root: swap the processes out to a zram device of our own and "
                        "compare with the kernel's mm_stat")


def register(sub, add_config_args=None, config_fn=None) -> None:
    """Add ``estimate`` to the ``zsmalloc`` command line (see zsmalloc.cli)."""
    p = sub.add_parser("estimate", help="predict zram's memory use for live processes",
                       description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.set_defaults(func=cmd_estimate)


# ---------------------------------------------------------------------------------------
# configurations
# ---------------------------------------------------------------------------------------

def resolve_configs(args) -> tuple[list, list]:
    """(configurations, notes). ValueError for a value asked for that cannot be used."""
    from ..zram.backends import available, make_backend
    notes = []
    have = set(available())
    if args.comp:
        comps = list(dict.fromkeys(args.comp))
        for c in comps:
            make_backend(c)          # ValueError naming it and what there is
    else:
        kcomp, _, source = kernel_defaults()
        comps = []
        for c in dict.fromkeys((kcomp,) + DEFAULT_EXTRA):
            if c in have:
                comps.append(c)
            else:
                notes.append(f"{c}: not available in this model yet (have: "
                             f"{', '.join(sorted(have))}); left out")
        if not comps:
            raise ValueError(f"none of the default compressors is available "
                             f"(have: {', '.join(sorted(have))}); pass --comp")
        notes.insert(0, f"kernel default compressor {kcomp} (from {source})")
    if args.chain_size:
        chains = list(dict.fromkeys(args.chain_size))
    else:
        kchain = kernel_defaults()[1] if args.profile != "linux-4.8" else None
        chains = [kchain or PoolConfig(profile=args.profile).chain_size]
    sizes = list(dict.fromkeys(args.page_size or [SYS_PAGE]))
    for P in sizes:
        if P not in PAGE_SIZES or P % SYS_PAGE:
            raise ValueError(f"page size {P} not supported: use one of "
                             f"{', '.join(str(s) for s in PAGE_SIZES if s % SYS_PAGE == 0)}")
    configs = []
    for comp, chain, P in itertools.product(comps, chains, sizes):
        PoolConfig(profile=args.profile, chain_size=chain, page_size=P)   # validates
        configs.append(EstimateConfig(comp, chain, P, args.profile))
    return configs, notes


def check_pids(pids) -> list:
    from .procfs import ProcessGone
    out = list(dict.fromkeys(pids))
    for pid in out:
        if pid == os.getpid():
            raise ValueError(f"pid {pid} is this process: it cannot scan itself")
        if not os.path.exists(f"/proc/{pid}"):
            raise ProcessGone(f"process {pid} does not exist")
    return out


# ---------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def progress_bar(enabled: bool, total: int, label: str):
    """A rich progress bar on stderr yielding ``advance(n)``; a no-op when disabled."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TransferSpeedColumn)

    class _Rate(TransferSpeedColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return f"{speed:,.0f} pages/s" if speed else "? pages/s"

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  _Rate(), TimeElapsedColumn(), console=Console(stderr=True),
                  transient=True) as prog:
        task = prog.add_task(label, total=max(total, 1))
        yield lambda n: prog.advance(task, n)


def run_estimate(args, configs, notes, guard=None) -> dict:
    """Scan every process into an Estimate; returns the report dict (see ``render``)."""
    import contextlib as cl
    from .engine import Estimate, disk_pages_for
    from .guard import Frozen
    from .procfs import ProcessMemory
    pids = check_pids(args.pid)
    disk = disk_pages_for(pids)
    show = not args.no_progress and not args.json and sys.stderr.isatty()
    t0 = time.perf_counter()
    with Estimate(configs, disk_pages=disk, sample=args.sample, seed=args.seed,
                  peers=not args.no_peers,
                  checkpoint=guard.checkpoint if guard else None) as est:
        with progress_bar(show, disk * 4 // 5, "scanning") as advance:
            for pid in pids:
                with ProcessMemory(pid) as pm:
                    frz = cl.nullcontext() if args.no_freeze else Frozen(pid, pm.pidfd)
                    with frz:
                        est.scan(pm, advance)
        results = est.results()          # waits for the peers: part of the run's time
        return build_report(est, results, time.perf_counter() - t0, notes, args)


def build_report(est, results, seconds: float, notes, args) -> dict:
    c = est.counts
    resident = c.eligible * SYS_PAGE
    notes = list(notes)
    for p in est.processes:
        if p.thp_unknown:
            notes.append(f"process {p.pid} has transparent huge pages, but folio sizes need "
                         f"/proc/kpageflags (root): counted as small folios")
    if not est.zero_pfn:
        notes.append("the shared zero page cannot be told from shared pages without root: "
                     "both are counted as 'shared'")
    return {
        "pages": c.eligible,
        "page_size": SYS_PAGE,
        "resident_bytes": resident,
        "sample": args.sample,
        "seconds": round(seconds, 3),
        "pages_per_second": round(c.eligible / seconds) if seconds else None,
        "processes": [p.as_dict() for p in est.processes],
        "counts": c.as_dict(),
        "configs": [r.as_dict(resident) for r in results],
        "notes": notes,
    }


def cmd_estimate(args) -> int:
    from .guard import DeferredSignals
    # Ctrl-C is held from here on: even reading the kernel's default compressor hot-adds
    # and removes a device, and a stopped process must always be let go
    with DeferredSignals() as guard:
        configs, notes = resolve_configs(args)
        if args.verify:
            from .verify import cmd_verify
            return cmd_verify(args, configs, notes, guard)
        report = run_estimate(args, configs, notes, guard)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        render(report)
    return 0


# ---------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------

def _mib(n) -> str:
    return f"{n / (1 << 20):,.1f}"


def render(report: dict, file=None) -> None:
    """The report as text: a header, the mm_stat table, the memory table, notes."""
    from rich.console import Console
    from rich.table import Table
    con = Console(file=file or sys.stdout, width=max(120, Console().width))
    c = report["counts"]
    procs = ", ".join(f"{p['pid']} ({p['comm']}) {p['eligible']:,} pages"
                      for p in report["processes"])
    con.print(f"Resident anonymous memory of {procs}: {report['pages']:,} pages "
              f"({_mib(report['resident_bytes'])} MiB), scanned in {report['seconds']:.2f} s"
              + (f" ({report['pages_per_second']:,} pages/s)" if report['pages_per_second'] else ""),
              highlight=False)
    if report["sample"]:
        con.print(f"Sampled: {c['units_read']:,} of {c['units']:,} units "
                  f"({report['sample']:g}); figures are estimates with 95 % intervals",
                  highlight=False)
    left = [f"{c[k]:,} {what}" for k, what in (
        ("shared", "shared with other processes or the zero page"),
        ("swapped", "already in swap"), ("locked", "in locked mappings"),
        ("unreadable", "unreadable")) if c[k]]
    if left:
        con.print("Not counted: " + "; ".join(left), highlight=False)
    labels = [f"{r['comp_algorithm']} chain {r['chain_size']} {r['page_size'] // 1024}K"
              for r in report["configs"]]
    t = Table(title="predicted mm_stat of zram as swap", title_justify="left",
              caption="bytes; same_pages, huge_pages: pages", caption_justify="left")
    t.add_column("mm_stat field")
    for label in labels:
        t.add_column(label, justify="right")
    sampled = bool(report["sample"])
    for f in FIELDS:
        cells = []
        for r in report["configs"]:
            cell = f"{r['mm_stat'][f]:,}"
            ci = r.get("ci95", {}).get(f) if sampled else None
            if ci and ci[1] > ci[0]:
                cell += f" ±{(ci[1] - ci[0]) / 2:,.0f}"
            cells.append(cell)
        t.add_row(f, *cells)
    con.print(t)
    t = Table(title="Memory used (MiB) and mem_used_total / resident size",
              title_justify="left")
    for col in ("configuration", "zsmalloc", "ratio", "±95 %", "zero pages kept by swap",
                "zbud", "z3fold", "zblock"):
        t.add_column(col, justify="left" if col == "configuration" else "right")
    for label, r in zip(labels, report["configs"]):
        used = r["mm_stat"]["mem_used_total"]
        ci = r.get("ci95", {}).get("mem_used_total")
        pm = "" if not ci else f"{(ci[1] - ci[0]) / 2 / (1 << 20):,.1f}"
        peers = []
        for name in ("zbud", "z3fold", "zblock"):
            v = r["peers"].get(name)
            peers.append("-" if v is None else f"{_mib(v['mem_used_total'])} ({v['ratio']:.1%})")
        t.add_row(label, _mib(used), f"{r['ratio']:.1%}" if r["ratio"] is not None else "-",
                  pm, f"{r['zero_pages_skipped']:,}", *peers)
    con.print(t)
    con.print(f"profile {report['configs'][0]['profile']}; the swap layer keeps zero-filled "
              f"pages out of zram since Linux 6.12" if report["configs"][0]["profile"] != "linux-4.8"
              else "profile linux-4.8: the swap layer writes every page", highlight=False)
    for n in report["notes"]:
        con.print(f"note: {n}", highlight=False)


def main(argv=None) -> int:
    """``python -m zsmalloc.estimate``: the subcommand on its own, with zsmalloc's error style."""
    ap = argparse.ArgumentParser(prog="zsmalloc estimate", description=__doc__.split("\n\n")[0])
    add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        return cmd_estimate(args)
    except KeyboardInterrupt:
        print("zsmalloc estimate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError, MemoryError) as e:
        print(f"zsmalloc estimate: error: {e}", file=sys.stderr)
        return 2
