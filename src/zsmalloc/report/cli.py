"""``zsmalloc report``: the command line."""

from __future__ import annotations

from .run import run_report
from .specs import DEFAULT_PAGES, DEFAULT_ROUNDS, QUICK_PAGES
from .tables import efficiency_markdown

__all__ = ["cmd_report", "register"]

def _command_line(args) -> str:
    """The options that were given, as a command line (for the report's header)."""
    parts = ["zsmalloc report", f"--out {args.out}"]
    for opt, default in (("pages", None), ("profiles", "linux-6.18,linux-4.8"),
                         ("chains", "4,8,16"), ("page_sizes", "4096,16384"),
                         ("allocators", "zsmalloc,zbud,z3fold,zblock"), ("seed", 0),
                         ("rounds", None), ("baseline_runs", None)):
        v = getattr(args, opt)
        if v != default:
            parts.append(f"--{opt.replace('_', '-')} {v}")
    for flag in ("quick", "no_baselines"):
        if getattr(args, flag):
            parts.append(f"--{flag.replace('_', '-')}")
    return " ".join(parts)


def cmd_report(args) -> int:
    res = run_report(args.out, pages=args.pages, quick=args.quick, profiles=args.profiles,
                     chains=args.chains, page_sizes=args.page_sizes, allocators=args.allocators,
                     seed=args.seed, rounds=args.rounds, baseline_runs=args.baseline_runs,
                     baselines=not args.no_baselines, progress=not args.no_progress,
                     command=_command_line(args))
    print(f"wrote {res['report']} and {len(res['pngs'])} plots in {res['seconds']:.1f} s")
    print(efficiency_markdown(res["rows"]))
    return 0


def register(sub, add_config_args, config_fn) -> None:
    """Add ``zsmalloc report`` (add_config_args/config_fn unused: the report sweeps configs)."""
    p = sub.add_parser("report", help="run a real-page workload across configurations and "
                                      "allocators; write report.md with plots")
    p.add_argument("--out", default="report", help="output directory (default ./report)")
    p.add_argument("--pages", type=int, default=None,
                   help=f"4 KiB pages' worth of data (default {DEFAULT_PAGES}, --quick {QUICK_PAGES})")
    p.add_argument("--quick", action="store_true", help="small and fast (tests, trying it out)")
    p.add_argument("--profiles", default="linux-6.18,linux-4.8",
                   help="comma-separated kernel profiles (default linux-6.18,linux-4.8)")
    p.add_argument("--chains", default="4,8,16",
                   help="chain sizes for 6.18 (4.8 always uses 4; default 4,8,16)")
    p.add_argument("--page-sizes", default="4096,16384", help="default 4096,16384")
    p.add_argument("--allocators", default="zsmalloc,zbud,z3fold,zblock",
                   help="default zsmalloc,zbud,z3fold,zblock")
    p.add_argument("--seed", type=int, default=0, help="pages and workload seed (default 0)")
    p.add_argument("--rounds", type=int, default=None,
                   help=f"workload rounds (default {DEFAULT_ROUNDS}, --quick 2)")
    p.add_argument("--baseline-runs", type=int, default=None,
                   help="runs per Python baseline (default 3, --quick 1)")
    p.add_argument("--no-baselines", action="store_true", help="skip the Python baselines")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_report)
