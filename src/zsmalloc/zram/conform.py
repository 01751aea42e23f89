"""Conformance: drive /dev/zram0 and a Zram with the same operations, compare after each.

``zsmalloc conform --ops N --seed S --mix M`` generates a seeded stream of operations
(writes of pages crafted to compress to chosen lengths, same-filled and incompressible
pages, overwrites, range discards, compaction, mem_used_max resets, mem_limit changes),
applies each to both devices and compares all 9 ``mm_stat`` fields and ``io_stat`` after
every operation. On divergence it prints the operation, both lines and the recent history
and exits non-zero.

The stream is a pure function of (seed, mix, ops, pages): ``generate_ops``. Pages are made
by ``zram.pages``; their lz4 length is the kernel's (checked in tests/test_kernel_oracle.py).
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import deque
from dataclasses import dataclass, field

from ..config import PoolConfig
from ..sizeclass import class_table
from . import pages as pg

MIXES = ("fill", "boundary", "overwrite", "discard", "limit", "mixed")

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
    value: int = 0          # comp_len for write, fill word for same, bytes for limit
    seed: int = 0           # page content seed

    def __str__(self):
        if self.kind == "write":
            return f"write index={self.index} comp_len={self.value}"
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

    def page(self, page_size: int = 4096) -> bytes:
        rng = random.Random(self.seed)
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


def generate_ops(seed: int, mix: str, n: int, nr_pages: int, page_size: int = 4096):
    """Yield ``n`` operations for ``mix``; a pure function of its arguments."""
    if mix not in MIXES:
        raise ValueError(f"unknown mix {mix!r}; mixes: {', '.join(MIXES)}")
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
            yield Op("write", idx, value=_lengths_for(mix, rng, boundaries, hcs, lo, hi), seed=s)
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

    def as_dict(self) -> dict:
        d = {"seed": self.seed, "mix": self.mix, "ops": self.ops, "counts": self.counts,
             "seconds": round(self.seconds, 2), "final_mm_stat": self.final_mm_stat.strip(),
             "read_mismatches": self.read_mismatches, "divergence": None}
        if self.divergence:
            dv = self.divergence
            d["divergence"] = {"step": dv.step, "op": dv.op, "ours": dv.ours.strip(),
                               "kernel": dv.kernel.strip(), "ours_io": dv.ours_io.strip(),
                               "kernel_io": dv.kernel_io.strip(), "history": dv.history}
        return d


def run(seed: int, mix: str, n: int, disksize: int = 64 << 20, history: int = 20,
        progress=None) -> Result:
    """Run one seeded stream against /dev/zram0 and a fresh Zram; stop at the first divergence."""
    from .device import Zram
    from .kernel import KernelZram

    page_size = 4096
    nr_pages = disksize // page_size
    ours = Zram(disksize, "lz4", PoolConfig(profile="linux-6.18", chain_size=8))
    recent: deque = deque(maxlen=history)
    counts = {k: 0 for k in _KINDS}
    counts["limit_hits"] = 0
    expected: dict[int, bytes] = {}
    mismatches = 0
    t0 = time.perf_counter()
    with KernelZram(disksize, "lz4") as kz:
        for step, op in enumerate(generate_ops(seed, mix, n, nr_pages, page_size)):
            counts[op.kind] += 1
            desc = str(op)
            if op.kind in ("write", "same", "incompressible"):
                page = op.page(page_size)
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
                              Divergence(step, desc, mo, mk, io_o, io_k, list(recent)), mismatches)
            if progress is not None:
                progress(step)
        # final sweep: every page reads back from both as written
        for i, want in expected.items():
            if ours.read(i) != want or kz.read(i) != want:
                mismatches += 1
        final = kz.mm_stat_line()
    ours.close()
    return Result(seed, mix, n, counts, time.perf_counter() - t0, final, None, mismatches)


def _io_line(t) -> str:
    return "%8d %8d %8d %8d\n" % tuple(t)


# -- command line -----------------------------------------------------------------------

def cmd_conform(args) -> int:
    from .kernel import KernelZramUnavailable, kernel_available
    ok, reason = kernel_available()
    if not ok:
        print(f"zsmalloc conform: cannot use /dev/zram0: {reason}", file=sys.stderr)
        return 3
    mixes = MIXES if args.mix == "all" else tuple(args.mix.split(","))
    for m in mixes:
        if m not in MIXES:
            print(f"zsmalloc conform: unknown mix {m!r}; mixes: {', '.join(MIXES)}, all",
                  file=sys.stderr)
            return 2
    seeds = list(range(args.seed, args.seed + args.seeds))
    results = []
    status = 0
    for seed in seeds:
        for mix in mixes:
            try:
                r = run(seed, mix, args.ops, args.disksize)
            except KernelZramUnavailable as e:
                print(f"zsmalloc conform: cannot use /dev/zram0: {e}", file=sys.stderr)
                return 3
            results.append(r)
            if not args.json:
                c = r.counts
                state = "DIVERGED" if r.divergence else "ok"
                print(f"seed {seed:3d} mix {mix:9s} ops {r.ops:7d} {state:8s} "
                      f"writes {c['write'] + c['same'] + c['incompressible']:6d} "
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
    p = sub.add_parser("conform", help="compare a Zram with the kernel's /dev/zram0, op by op")
    p.add_argument("--ops", type=int, default=10000, help="operations per run (default 10000)")
    p.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    p.add_argument("--seeds", type=int, default=1, help="how many seeds from --seed (default 1)")
    p.add_argument("--mix", default="mixed",
                   help=f"operation mix: {', '.join(MIXES)}, a comma list, or all (default mixed)")
    p.add_argument("--disksize", type=int, default=64 << 20, help="bytes (default 64 MiB)")
    p.add_argument("--keep-going", action="store_true", help="run every seed/mix even after a failure")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_conform)
