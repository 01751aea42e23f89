"""Conformance: drive a zram device of its own and a Zram with the same operations,
compare after each.

``zsmalloc conform --ops N --seed S --mix M`` generates a seeded stream of operations
(writes, same-filled and incompressible pages, overwrites, range discards, compaction,
mem_used_max resets, mem_limit changes), applies each to both devices (the kernel's is
hot-added for the run and removed after: ``KernelZram``) and compares all 9 ``mm_stat``
fields and ``io_stat`` after every operation. On divergence it prints the operation, both
lines and the recent history and exits non-zero.

Two page sources:

* ``--pages crafted`` (default): pages made by ``zram.pages`` to compress to chosen lz4
  lengths (every size class and the huge boundary, on purpose).
* ``--pages real``: pages of real data -- a child process's anonymous memory, ELF files,
  text, and ``ast.dump`` of installed Python modules (``real_page_pool``), or the pages
  of a file saved by ``zsmalloc pages`` (``--page-file``). Their compressed lengths are
  whatever the compressor makes of them, so this mode checks the compressors as much as
  the allocator.

``--comp`` picks the algorithm both devices use: lz4, lzo or lzo-rle (our
``zsmalloc.lib`` compressors, which produce the kernel's bytes).

The stream is a pure function of (seed, mix, ops, pages, source, pool size):
``generate_ops``.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import deque
from dataclasses import dataclass, field

from ..config import PoolConfig
from ..core.sizeclass import class_table
from . import pages as pg

MIXES = ("fill", "boundary", "overwrite", "discard", "limit", "mixed")
SOURCES = ("crafted", "real")
ALGORITHMS = ("lz4", "lzo", "lzo-rle")

# op weights per mix: write, same, incompressible, discard, compact, reset_max, limit, read
_WEIGHTS = {
    "fill":      (80, 6, 4, 2, 1, 1, 0, 6),
    "boundary":  (82, 4, 4, 3, 2, 1, 0, 4),
    "overwrite": (78, 6, 4, 4, 2, 1, 0, 5),
    "discard":   (55, 5, 3, 25, 6, 1, 0, 5),
    "limit":     (62, 5, 5, 10, 4, 4, 6, 4),
    "mixed":     (64, 6, 5, 10, 4, 2, 3, 6),
}
_KINDS = ("write", "same", "incompressible", "discard", "compact", "reset_max", "limit", "read")


@dataclass
class Op:
    kind: str
    index: int = 0
    count: int = 1
    value: int = 0          # comp_len for write, fill word for same, bytes for limit,
                            # pool page number for real
    seed: int = 0           # page content seed

    def __str__(self):
        if self.kind == "write":
            return f"write index={self.index} comp_len={self.value}"
        if self.kind == "real":
            return f"write index={self.index} real page {self.value}"
        if self.kind == "same":
            return f"write index={self.index} same-filled word={self.value:#x}"
        if self.kind == "incompressible":
            return f"write index={self.index} incompressible"
        if self.kind == "discard":
            return f"discard index={self.index} count={self.count}"
        if self.kind == "limit":
            return f"mem_limit {self.value}"
        if self.kind == "read":
            return f"read index={self.index}"
        return self.kind

    def page(self, page_size: int = 4096, pool=None) -> bytes:
        rng = random.Random(self.seed)
        if self.kind == "real":
            if pool is None:
                raise ValueError(f"operation {self} needs the real page pool")
            return pool[self.value]
        if self.kind == "write":
            return pg.craft_page(self.value, rng, page_size)
        if self.kind == "same":
            return pg.same_filled_page(self.value, page_size)
        if self.kind == "incompressible":
            return pg.incompressible_page(rng, page_size)
        raise ValueError(f"operation {self} carries no page")


def _lengths_for(mix: str, rng: random.Random, boundaries: list[int], hcs: int, lo: int, hi: int):
    """A compressed length for one write, shaped by the mix."""
    r = rng.random()
    if mix == "boundary" or (mix == "mixed" and r < 0.3):
        b = rng.choice(boundaries)
        n = b + rng.choice((-1, 0, 1))
    elif r < 0.05:
        n = hcs + rng.randint(-3, 3)                 # around the huge threshold
    elif r < 0.6:
        n = int(rng.triangular(lo, 2600, 900))       # the bulk of real pages
    else:
        n = rng.randint(lo, hi)                      # the whole range, huge included
    return max(lo, min(hi, n))


def generate_ops(seed: int, mix: str, n: int, nr_pages: int, page_size: int = 4096,
                 source: str = "crafted", pool_size: int = 0):
    """Yield ``n`` operations for ``mix``; a pure function of its arguments. With
    ``source="real"`` writes take a page of the real page pool (``pool_size`` pages)
    instead of a crafted one; the stream is otherwise the same."""
    if mix not in MIXES:
        raise ValueError(f"unknown mix {mix!r}; mixes: {', '.join(MIXES)}")
    if source not in SOURCES:
        raise ValueError(f"unknown page source {source!r}; sources: {', '.join(SOURCES)}")
    if source == "real" and pool_size < 1:
        raise ValueError(f"real pages need a pool of at least 1 page, got {pool_size!r}")
    rng = random.Random(f"{seed}:{mix}")
    cfg = PoolConfig(page_size=page_size)
    t = class_table(cfg)
    hcs = t.huge_class_size
    lo, hi = pg.comp_len_range(page_size)
    boundaries = sorted({t.request_range(sc)[1] for sc in t.classes if not sc.huge} |
                        {t.request_range(sc)[0] for sc in t.classes} | {hcs - 1, hcs})
    boundaries = [b for b in boundaries if lo <= b <= hi]
    weights = _WEIGHTS[mix]
    # the working set: overwrite-heavy mixes use few indices, fill uses many
    span = {"overwrite": 256, "limit": 1024}.get(mix, nr_pages)
    span = min(span, nr_pages)
    limit_on = False
    for _ in range(n):
        kind = rng.choices(_KINDS, weights)[0]
        idx = rng.randrange(span)
        s = rng.getrandbits(32)
        if kind == "write":
            comp_len = _lengths_for(mix, rng, boundaries, hcs, lo, hi)
            if source == "real":            # the page from the op's own seed: same stream
                yield Op("real", idx, value=s % pool_size, seed=s)
            else:
                yield Op("write", idx, value=comp_len, seed=s)
        elif kind == "same":
            word = rng.choice((0, 0, 0xFFFF_FFFF_FFFF_FFFF, rng.getrandbits(64), 0x0101010101010101))
            yield Op("same", idx, value=word, seed=s)
        elif kind == "incompressible":
            yield Op("incompressible", idx, seed=s)
        elif kind == "discard":
            count = rng.choice((1, 1, 2, 4, 8, 16, 64))
            idx = min(idx, nr_pages - count)
            yield Op("discard", idx, count=count)
        elif kind == "limit":
            # limit toggles: set just above current use (so writes hit it), or lift it.
            # The byte value is filled in at run time from the current mem_used_total.
            limit_on = not limit_on
            yield Op("limit", value=(rng.randint(0, 48) if limit_on else -1))
        else:
            yield Op(kind, idx)


@dataclass
class Divergence:
    step: int
    op: str
    ours: str
    kernel: str
    ours_io: str
    kernel_io: str
    history: list = field(default_factory=list)

    def report(self) -> str:
        lines = [f"DIVERGENCE at step {self.step}: {self.op}",
                 f"  mm_stat ours  : {self.ours.rstrip()}",
                 f"  mm_stat kernel: {self.kernel.rstrip()}",
                 f"  io_stat ours  : {self.ours_io.rstrip()}",
                 f"  io_stat kernel: {self.kernel_io.rstrip()}",
                 "  fields: " + " ".join(MmFields),
                 "  recent history (oldest first):"]
        lines += [f"    {h}" for h in self.history]
        return "\n".join(lines)


MmFields = ("orig_data_size", "compr_data_size", "mem_used_total", "mem_limit", "mem_used_max",
            "same_pages", "pages_compacted", "huge_pages", "huge_pages_since")


@dataclass
class Result:
    seed: int
    mix: str
    ops: int
    counts: dict
    seconds: float
    final_mm_stat: str
    divergence: Divergence | None = None
    read_mismatches: int = 0
    comp: str = "lz4"
    source: str = "crafted"

    def as_dict(self) -> dict:
        d = {"seed": self.seed, "mix": self.mix, "comp": self.comp, "pages": self.source,
             "ops": self.ops, "counts": self.counts,
             "seconds": round(self.seconds, 2), "final_mm_stat": self.final_mm_stat.strip(),
             "read_mismatches": self.read_mismatches, "divergence": None}
        if self.divergence:
            dv = self.divergence
            d["divergence"] = {"step": dv.step, "op": dv.op, "ours": dv.ours.strip(),
                               "kernel": dv.kernel.strip(), "ours_io": dv.ours_io.strip(),
                               "kernel_io": dv.kernel_io.strip(), "history": dv.history}
        return d


def real_page_pool(n: int, seed: int = 0, page_size: int = 4096) -> list:
    """``n`` real pages: ``realpages.mixed_pages`` (child anonymous memory, ELF, text) for
    three quarters, ``ast.dump`` text of installed Python modules for the rest (fewer when
    the machine has fewer; anonymous pages fill up)."""
    from ..lib.oracle import ast_pages
    from ..realpages import child_anon_pages, mixed_pages
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"real page pool size {n!r} must be an int >= 1")
    asts = ast_pages(n // 4, page_size)
    pool = mixed_pages(n - len(asts), page_size, seed) + asts
    if len(pool) < n:
        pool += child_anon_pages(n - len(pool), page_size, seed + 1)
    random.Random(seed).shuffle(pool)
    return pool


def run(seed: int, mix: str, n: int, disksize: int = 64 << 20, history: int = 20,
        progress=None, comp: str = "lz4", pool=None) -> Result:
    """Run one seeded stream against a zram device of its own and a fresh Zram; stop at
    the first divergence. ``pool``: a list of real pages to write instead of crafted ones."""
    from .device import Zram
    from .kernel import KernelZram

    if comp not in ALGORITHMS:
        raise ValueError(f"unknown compression algorithm {comp!r}; conform checks "
                         f"{', '.join(ALGORITHMS)}")
    page_size = 4096
    if pool is not None:
        pool = list(pool)
        bad = next((i for i, p in enumerate(pool) if len(p) != page_size), None)
        if not pool or bad is not None:
            raise ValueError("the real page pool must be a non-empty list of "
                             f"{page_size}-byte pages" + ("" if bad is None else
                                                          f" (page {bad} is {len(pool[bad])} bytes)"))
    source = "crafted" if pool is None else "real"
    nr_pages = disksize // page_size
    ours = Zram(disksize, comp, PoolConfig(profile="linux-6.18", chain_size=8))
    recent: deque = deque(maxlen=history)
    counts = {k: 0 for k in _KINDS + ("real",)}
    counts["limit_hits"] = 0
    expected: dict[int, bytes] = {}
    mismatches = 0
    t0 = time.perf_counter()
    ops = generate_ops(seed, mix, n, nr_pages, page_size, source, len(pool or ()))
    with KernelZram(disksize, comp) as kz:
        for step, op in enumerate(ops):
            counts[op.kind] += 1
            desc = str(op)
            if op.kind in ("write", "real", "same", "incompressible"):
                page = op.page(page_size, pool)
                ok_ours = ok_kernel = True
                try:
                    ours.write(op.index, page)
                except MemoryError:
                    ok_ours = False
                try:
                    kz.write(op.index, page)
                except MemoryError:
                    ok_kernel = False
                if not ok_ours:
                    counts["limit_hits"] += 1
                    desc += " (refused: mem_limit)"
                if ok_ours and ok_kernel:
                    expected[op.index] = page
                elif ok_ours != ok_kernel:
                    desc += f" [ours {'ok' if ok_ours else 'refused'}, kernel {'ok' if ok_kernel else 'refused'}]"
            elif op.kind == "discard":
                ours.discard(op.index, op.count)
                kz.discard(op.index, op.count)
                for i in range(op.index, op.index + op.count):
                    expected.pop(i, None)
            elif op.kind == "compact":
                ours.compact()
                kz.compact()
            elif op.kind == "reset_max":
                ours.reset_mem_used_max()
                kz.reset_mem_used_max()
            elif op.kind == "limit":
                nbytes = 0 if op.value < 0 else ours.mm_stat().mem_used_total + op.value * page_size
                desc = f"mem_limit {nbytes}"
                ours.mem_limit = nbytes
                kz.set_mem_limit(nbytes)
            elif op.kind == "read":
                want = expected.get(op.index, bytes(page_size))
                a, b = ours.read(op.index), kz.read(op.index)
                if a != want or b != want:
                    mismatches += 1
                    desc += f" (read mismatch: ours {'ok' if a == want else 'WRONG'}, " \
                            f"kernel {'ok' if b == want else 'WRONG'})"
            recent.append(f"{step}: {desc}")
            mo, mk = str(ours.mm_stat()), kz.mm_stat_line()
            io_o, io_k = str(ours.io_stat()), _io_line(kz.io_stat())
            if mo.split() != mk.split() or io_o.split() != io_k.split() or "mismatch" in desc \
                    or "[ours" in desc:
                return Result(seed, mix, step + 1, counts, time.perf_counter() - t0, mk,
                              Divergence(step, desc, mo, mk, io_o, io_k, list(recent)),
                              mismatches, comp, source)
            if progress is not None:
                progress(step)
        # final sweep: every page reads back from both as written
        for i, want in expected.items():
            if ours.read(i) != want or kz.read(i) != want:
                mismatches += 1
        final = kz.mm_stat_line()
    ours.close()
    return Result(seed, mix, n, counts, time.perf_counter() - t0, final, None, mismatches,
                  comp, source)


def _io_line(t) -> str:
    return "%8d %8d %8d %8d\n" % tuple(t)


# -- command line -----------------------------------------------------------------------

def cmd_conform(args) -> int:
    from .kernel import KernelZramUnavailable, kernel_available
    ok, reason = kernel_available()
    if not ok:
        print(f"zsmalloc conform: cannot use a zram device of its own: {reason}", file=sys.stderr)
        return 3
    if args.comp not in ALGORITHMS:
        print(f"zsmalloc conform: unknown --comp {args.comp!r}; choose from "
              f"{', '.join(ALGORITHMS)}", file=sys.stderr)
        return 2
    if args.pages not in SOURCES:
        print(f"zsmalloc conform: unknown --pages {args.pages!r}; choose from "
              f"{', '.join(SOURCES)}", file=sys.stderr)
        return 2
    if args.ops < 1 or args.seeds < 1 or args.pool < 1:
        print("zsmalloc conform: --ops, --seeds and --pool must be at least 1", file=sys.stderr)
        return 2
    if args.page_file and args.pages != "real":
        print("zsmalloc conform: --page-file needs --pages real", file=sys.stderr)
        return 2
    mixes = MIXES if args.mix == "all" else tuple(args.mix.split(","))
    for m in mixes:
        if m not in MIXES:
            print(f"zsmalloc conform: unknown mix {m!r}; mixes: {', '.join(MIXES)}, all",
                  file=sys.stderr)
            return 2
    pool = None
    if args.pages == "real":
        from ..realpages import PageFileError, load_pages
        try:
            pool = load_pages(args.page_file) if args.page_file else \
                real_page_pool(args.pool, args.seed)
        except (OSError, PageFileError) as e:
            print(f"zsmalloc conform: cannot read real pages: {e}", file=sys.stderr)
            return 2
        if not pool:
            print("zsmalloc conform: no real pages to write", file=sys.stderr)
            return 2
        if not args.json:
            print(f"# real pages: {len(pool)} in the pool"
                  f"{' from ' + args.page_file if args.page_file else ''}; "
                  f"compressor {args.comp}", flush=True)
    seeds = list(range(args.seed, args.seed + args.seeds))
    results = []
    status = 0
    for seed in seeds:
        for mix in mixes:
            try:
                r = run(seed, mix, args.ops, args.disksize, comp=args.comp, pool=pool)
            except KernelZramUnavailable as e:
                print(f"zsmalloc conform: cannot use a zram device of its own: {e}",
                      file=sys.stderr)
                return 3
            results.append(r)
            if not args.json:
                c = r.counts
                state = "DIVERGED" if r.divergence else "ok"
                print(f"seed {seed:3d} mix {mix:9s} ops {r.ops:7d} {state:8s} "
                      f"writes {c['write'] + c['real'] + c['same'] + c['incompressible']:6d} "
                      f"discards {c['discard']:5d} compactions {c['compact']:4d} "
                      f"limit hits {c['limit_hits']:4d} reads {c['read']:5d} "
                      f"read mismatches {r.read_mismatches} {r.seconds:6.1f}s  "
                      f"final mm_stat: {r.final_mm_stat.strip()}", flush=True)
                if r.divergence:
                    print(r.divergence.report())
            if r.divergence or r.read_mismatches:
                status = 1
                if not args.keep_going:
                    break
        if status and not args.keep_going:
            break
    if args.json:
        print(json.dumps({"results": [r.as_dict() for r in results], "ok": status == 0}, indent=1))
    elif status == 0:
        total = sum(r.ops for r in results)
        print(f"OK: {len(results)} runs, {total} operations, zero divergences in all 9 mm_stat "
              f"fields and io_stat")
    return status


def register(sub, add_config_args, config_fn) -> None:
    p = sub.add_parser("conform", help="compare a Zram with a zram device of its own "
                                       "(hot-added), op by op")
    p.add_argument("--ops", type=int, default=10000, help="operations per run (default 10000)")
    p.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    p.add_argument("--seeds", type=int, default=1, help="how many seeds from --seed (default 1)")
    p.add_argument("--mix", default="mixed",
                   help=f"operation mix: {', '.join(MIXES)}, a comma list, or all (default mixed)")
    p.add_argument("--disksize", type=int, default=64 << 20, help="bytes (default 64 MiB)")
    p.add_argument("--pages", default="crafted", metavar="SOURCE",
                   help="crafted (pages made to compress to chosen lengths; default) or real "
                        "(anon memory, ELF, text, Python AST dumps)")
    p.add_argument("--page-file", default=None, metavar="PATH",
                   help="with --pages real: the pages of a file saved by 'zsmalloc pages'")
    p.add_argument("--pool", type=int, default=20000,
                   help="with --pages real: how many real pages to draw from (default 20000)")
    p.add_argument("--comp", default="lz4", metavar="ALG",
                   help=f"compressor for both devices: {', '.join(ALGORITHMS)} (default lz4)")
    p.add_argument("--keep-going", action="store_true", help="run every seed/mix even after a failure")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_conform)
