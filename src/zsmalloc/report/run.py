"""``run_report``: pages, recording, replays, baselines, plots and report.md, in order,
with a progress bar."""

from __future__ import annotations

import os
import time

from ..realpages import mem_available
from . import plots
from .baselines import BASELINE_STORES, baseline_rows, measure_baselines
from .markdown import PNGS, report_markdown
from .runs import run_spec
from .specs import DEFAULT_PAGES, DEFAULT_ROUNDS, QUICK_PAGES, ReportError, make_specs
from .tables import efficiency_rows
from .workload import default_ops, gather_pages, record_workload

__all__ = ["run_report"]

def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                               TextColumn, TimeElapsedColumn)
    return Progress(SpinnerColumn(), TextColumn("{task.description:<34}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), disable=not enabled, transient=False)


def run_report(out_dir: str, *, pages: int | None = None, quick: bool = False,
               profiles="linux-6.18,linux-4.8", chains="4,8,16", page_sizes="4096,16384",
               allocators="zsmalloc,zbud,z3fold,zblock", seed: int = 0,
               rounds: int | None = None, baseline_runs: int | None = None,
               baselines: bool = True, progress: bool = True, command: str | None = None) -> dict:
    """Run the workload for every configuration and write ``out_dir/report.md`` + PNGs.

    Returns ``{"report": path, "pngs": [...], "results": [...], "rows": [...],
    "baselines": [...], "seconds": float}``. ReportError (nothing written) for bad options.
    """
    t_start = time.perf_counter()
    specs = make_specs(profiles, chains, page_sizes, allocators)
    n4k = pages if pages is not None else (QUICK_PAGES if quick else DEFAULT_PAGES)
    if isinstance(n4k, bool) or not isinstance(n4k, int) or n4k < 64:
        raise ReportError(f"--pages {n4k!r} must be an int >= 64")
    rounds = (2 if quick else DEFAULT_ROUNDS) if rounds is None else rounds
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= 100:
        raise ReportError(f"--rounds {rounds!r} must be an int in 1..100")
    runs = (1 if quick else 3) if baseline_runs is None else baseline_runs
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ReportError(f"--baseline-runs {runs!r} must be a positive int")
    for P in {s.page_size for s in specs}:
        if n4k * 4096 // P < 16:
            raise ReportError(f"--pages {n4k} gives fewer than 16 pages of {P} bytes")
    avail = mem_available()
    need = 3 * n4k * 4096        # the pages, the recording device, a replay's pool
    if avail is not None and need > avail // 2:
        raise ReportError(f"--pages {n4k} ({n4k * 4096 / 2**30:,.1f} GiB of pages, about "
                          f"{need / 2**30:,.1f} GiB in use at once) is more than half of the "
                          f"{avail / 2**30:.1f} GiB available; ask for at most "
                          f"{avail // 2 // (3 * 4096):,}")
    os.makedirs(out_dir, exist_ok=True)
    sizes = list(dict.fromkeys(s.page_size for s in specs))
    timings: dict = {}
    recordings: dict = {}
    results: list = []
    base_rows: list = []
    base_P = 4096 if 4096 in sizes else sizes[0]
    heat_spec = next((s for s in specs if s.is_reference and s.page_size == base_P),
                     next((s for s in specs if s.is_zsmalloc and s.profile == "linux-6.18"), None))
    steps = 2 * len(sizes) + len(specs) + (runs * len(BASELINE_STORES) if baselines else 0) + 1
    with _progress(progress) as prog:
        overall = prog.add_task("report", total=steps)
        inner = prog.add_task("", total=1, visible=False)
        base_pages = None
        for P in sizes:
            prog.update(overall, description=f"reading {P // 1024} KiB pages")
            t0 = time.perf_counter()
            pg = gather_pages(n4k, P, seed)
            timings[f"pages {P // 1024}K"] = time.perf_counter() - t0
            if P == base_P:
                base_pages = pg
            prog.advance(overall)
            prog.update(overall, description=f"recording {P // 1024} KiB workload")
            t0 = time.perf_counter()
            ops = default_ops(len(pg), seed, rounds=rounds)
            trace = os.path.join(out_dir, f"workload-{P}.zstrace.gz")
            recordings[P] = record_workload(pg, ops, trace,
                                            f"zsmalloc report workload: seed {seed}, rounds {rounds}")
            timings[f"record {P // 1024}K"] = time.perf_counter() - t0
            if P != base_P:
                del pg
            prog.advance(overall)
            for s in (s for s in specs if s.page_size == P):
                prog.update(overall, description=f"replay {s.label}")
                recs = recordings[P].records
                prog.reset(inner, total=len(recs), visible=True, description="  records")
                r = run_spec(s, recs, keep_classes=s.is_zsmalloc,
                             on_progress=lambda k: prog.update(inner, completed=k))
                prog.update(inner, completed=len(recs))
                results.append(r)
                timings[f"replay {s.label}"] = r.seconds
                prog.advance(overall)
        prog.update(inner, visible=False)
        if baselines:
            prog.update(overall, description="Python baselines")
            t0 = time.perf_counter()
            meas = measure_baselines(base_pages, runs, on_run=lambda: prog.advance(overall))
            base_rows = baseline_rows(meas)
            timings["baselines"] = time.perf_counter() - t0
        del base_pages
        prog.update(overall, description="plots and report")
        t0 = time.perf_counter()
        rows = efficiency_rows(results)
        pngs = []

        def out(key):
            p = os.path.join(out_dir, PNGS[key])
            pngs.append(p)
            return p
        plots.plot_pages_over_time(results, out("time"))
        plots.plot_efficiency(rows, out("efficiency"))
        plots.plot_compaction(results, out("compaction"))
        heat = next((r for r in results if r.spec == heat_spec), None)
        if heat is not None:
            plots.plot_fullness(heat, out("fullness"))
        if base_rows:
            plots.plot_baselines(base_rows, base_P, out("baselines"))
        timings["plots"] = time.perf_counter() - t0
        prog.advance(overall)
        total = time.perf_counter() - t_start
        md = report_markdown(results, rows, recordings, base_rows, base_P, heat, timings, total,
                       n4k, seed, rounds, runs, command)
        path = os.path.join(out_dir, "report.md")
        with open(path, "w") as f:
            f.write(md)
    return {"report": path, "pngs": pngs, "results": results, "rows": rows,
            "baselines": base_rows, "recordings": recordings, "seconds": total}
