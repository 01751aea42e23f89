"""``zsmalloc report``: one real-page workload across kernels, chain sizes, page sizes and
allocators, written up as Markdown with plots.

What it does, in order:

1. **Pages.** ``realpages.mixed_pages`` (child-process anonymous memory, ELF and text, about
   60/25/15 %) for each page size, the same total bytes at every page size.
2. **Workload.** :func:`default_ops`: fill every slot, then ``rounds`` times an overwrite
   wave, a swap-in wave (runs of slots read, then discarded), a refill of part of the freed
   slots (swap-out again), an idle period and a compaction (what zram's shrinker or
   ``echo 1 > compact`` does when the machine is quiet). The last operation is a compaction.
3. **Record once.** The ops run on our ``Zram`` (lz4, linux-6.18, chain 8) wrapped in
   ``trace.RecordingZram``: the trace (``workload-<P>.zstrace.gz`` in the output directory)
   holds each write's lz4 length, same-filled fill words, reads, discards and compactions.
   Reads are checked against the data last written.
4. **Replay per configuration.** zsmalloc configurations replay the trace through
   ``trace.replay.Replayer`` (zram's exact accounting over a real ``Pool``; each
   configuration uses its own huge threshold, as its kernel's zram would). Peers (zbud,
   z3fold, zblock) replay it through the same ``Replayer``, over ``Zram(allocator=peer)``:
   zram's one slot layer over the allocator protocol: a write mallocs the new object before freeing the old one, a length at or
   above the huge threshold of linux-6.18 chain 8 is stored as a full page, a same-filled
   page stores nothing; a size above a peer's largest object (zbud: 3968 B at 4 KiB) is held
   as one raw page outside it, which costs one page just as zsmalloc's huge class does.
   Replaying 6.18 chain 8 must give the recorded device's ``mm_stat`` exactly; the report
   says whether it did.
5. **Python baselines.** The same pages held by our ``Zram``, a dict of lz4-compressed bytes
   and ``zict.Func`` over a dict, each in a fresh interpreter: RSS growth, write and read
   throughput, median of several runs (:func:`measure_baselines`).
6. **Report.** ``report.md`` with tables and PNG plots (matplotlib, Agg): pages used over
   time, memory per compressed byte, objects moved by compaction, the per-class fullness
   heat map of zsmalloc 6.18 (before the last compaction and at the end), the baselines.

Objects moved by compaction (the kernel's ``zs_object_copy`` count, as in the commit "zsmalloc: rework
compaction algorithm") are
read from the pool's own ``objs_moved`` counter (one per zs_object_copy). Peers have no
compaction (0 moves).

Terms: *pages used* = frames the allocator holds (zs_get_total_pages, mem_used_total / P);
*memory per compressed byte* = pages used x page size / compressed bytes stored (zram's
``compr_data_size``; 1.0 would be a perfect allocator, higher is worse); *vs 6.18 c8* =
pages used / pages used by zsmalloc linux-6.18 chain 8 at the same page size.
"""

from .baselines import BASELINE_STORES, baseline_markdown, baseline_rows, measure_baselines
from .cli import cmd_report, register
from .explain import explain_published, partial_pages, zblock_slot_for
from .markdown import PNGS
from .run import run_report
from .runs import RunResult, run_spec, zblock_waste
from .specs import (ALLOCATORS, DEFAULT_PAGES, DEFAULT_ROUNDS, QUICK_PAGES, ReportError, RunSpec,
                    make_specs)
from .tables import (PUBLISHED, efficiency_markdown, efficiency_rows, published_check,
                     published_markdown)
from .workload import Recording, default_ops, gather_pages, record_workload

# old private names that benchmarks/bench_baselines.py still calls
from .tables import pct as _pct, reference as _reference  # noqa: E402,F401

__all__ = ["ReportError", "RunSpec", "RunResult", "Recording", "default_ops", "gather_pages",
           "record_workload", "run_spec", "make_specs",
           "efficiency_rows", "efficiency_markdown", "published_check", "published_markdown",
           "explain_published", "measure_baselines", "baseline_rows", "baseline_markdown",
           "zblock_waste", "zblock_slot_for", "partial_pages", "BASELINE_STORES", "PUBLISHED",
           "PNGS", "run_report", "cmd_report", "register", "DEFAULT_PAGES", "QUICK_PAGES",
           "DEFAULT_ROUNDS", "ALLOCATORS"]
