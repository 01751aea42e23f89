"""The spec §12 reference model (tests/reference/spec12.py), and the real Pool against it.

(a) the reference's own class table against spec §2 / Appendix A;
(b) hand-worked scenarios of the reference pool and zram (§3.1, §4.1, §5, §6.1, §10);
(c) ``zsmalloc.Pool(profile="linux-6.18")`` driven in lockstep with ``RefPool`` through
    seeded random malloc/free/compact sequences, comparing after every step.

The reference imports nothing from ``zsmalloc``; only part (c) touches the package.
"""

from __future__ import annotations

import os
import random
import re

import pytest

try:   # tests/ on sys.path (rootdir-relative "prepend" import, no tests/__init__.py)
    from reference.spec12 import (RefError, RefPool, RefZram, build_classes, class_index,
                                  group_of)
except ImportError:  # tests/ is a package
    from tests.reference.spec12 import (RefError, RefPool, RefZram, build_classes,
                                        class_index, group_of)

SPEC = "/work/shared/spec/kernel-zsmalloc.md"
PAGE = 4096


# ------------------------------------------------------------------------------------------
# (a) class table


@pytest.mark.parametrize("chain, n_classes, huge_len", [(8, 119, 3625), (4, 69, 3257)])
def test_class_count_and_huge_class_size(chain, n_classes, huge_len):
    rep_of, classes, huge = build_classes(chain)
    assert len(rep_of) == 255
    assert len(classes) == n_classes
    assert huge == huge_len
    # the watermark is where requests start landing in the (only) huge class
    assert classes[rep_of[class_index(huge_len + 8)]].huge
    assert not classes[rep_of[class_index(huge_len - 1 + 8)]].huge
    assert [c.index for c in classes.values() if c.huge] == [254]


def test_chain_size_series_matches_appendix_a4():
    # Appendix A.4, min-waste column: distinct classes and largest non-huge class size
    want = {4: (69, 3264), 5: (86, 3408), 6: (94, 3504), 7: (110, 3584), 8: (119, 3632),
            9: (136, 3680), 10: (141, 3712), 11: (153, 3744), 12: (159, 3776),
            13: (173, 3792), 14: (179, 3808), 15: (186, 3840), 16: (192, 3840)}
    got = {}
    for chain in want:
        _, classes, huge = build_classes(chain)
        got[chain] = (len(classes), huge + 7)
    assert got == want


@pytest.mark.parametrize("idx, size, ppz, objs", [
    (0, 32, 1, 128), (1, 48, 3, 256), (7, 144, 7, 199), (11, 208, 3, 59),
    (17, 304, 7, 94), (20, 352, 8, 93), (24, 416, 6, 59), (25, 432, 7, 66),
    (27, 464, 5, 44), (33, 560, 7, 51), (35, 592, 8, 55), (41, 688, 8, 47),
    (45, 752, 7, 38), (64, 1056, 8, 31), (87, 1424, 8, 23), (134, 2176, 8, 15),
    (126, 2048, 1, 2), (225, 3632, 8, 9), (254, 4096, 1, 1)])
def test_spot_values_chain8(idx, size, ppz, objs):
    _, classes, _ = build_classes(8)
    c = classes[idx]
    assert (c.size, c.pages_per_zspage, c.objs_per_zspage) == (size, ppz, objs)


def test_merging_and_request_mapping():
    rep_of, classes, _ = build_classes(8)
    assert rep_of[48] == 49 and classes[49].first_index == 48        # 816: 1 page, 5 objs
    assert all(rep_of[i] == 254 for i in range(226, 255))
    assert rep_of[225] == 225 and rep_of[223] == 225 and rep_of[222] == 222
    pool = RefPool()
    assert pool.class_for(24).size == 32 and pool.class_for(25).size == 48
    assert pool.class_for(330).size == 352
    assert pool.class_for(3624).size == 3632
    assert pool.class_for(3625).size == 4096 and pool.class_for(4096).huge
    assert class_index(4096 + 8) == 254          # capped: index 255 does not exist
    # chain 4 differs from chain 8 exactly where Appendix A says (index 7: 3/85 vs 7/199)
    _, c4, _ = build_classes(4)
    assert (c4[7].pages_per_zspage, c4[7].objs_per_zspage) == (3, 85)


def _appendix_rows(text, heading):
    block = text[text.index(heading):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    return [line.split() for line in block.strip().splitlines()[1:]]


@pytest.mark.parametrize("heading, chain", [("### A.1", 8), ("### A.2", 4)])
def test_whole_table_matches_appendix(heading, chain):
    if not os.path.exists(SPEC):
        pytest.skip(f"spec file {SPEC} not present on this machine")
    rows = _appendix_rows(open(SPEC, encoding="utf-8").read(), heading)
    want = [(int(r[0]), int(r[1]), int(r[2]), int(r[3]), r[-3], r[-2], int(r[-1]))
            for r in rows]
    _, classes, _ = build_classes(chain)
    got = []
    for c in classes.values():
        lo = 1 if c.first_index == 0 else 32 + (c.first_index - 1) * 16 + 1 - 8
        hi = PAGE if c.huge else c.size - 8
        got.append((c.index, c.size, c.pages_per_zspage, c.objs_per_zspage,
                    f"{c.first_index}-{c.index}", f"{lo}-{hi}",
                    c.pages_per_zspage * PAGE - c.objs_per_zspage * c.size))
    assert got == want


def test_group_of():
    assert group_of(0, 3) == 0 and group_of(3, 3) == 11
    assert group_of(1, 3) == 4 and group_of(2, 3) == 7                 # §4.1 example
    assert group_of(1, 127) == 1                                        # ratio 0 -> 10% group
    assert group_of(255, 256) == 10 and group_of(230, 256) == 9
    assert [group_of(i, 10) for i in range(11)] == [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]


def test_other_page_sizes_build():
    # 16 KiB pages: delta 64, 257 indices; largest request = page size
    rep_of, classes, huge = build_classes(8, 16384)
    assert len(rep_of) == 257 and classes[256].size == 16384 and classes[256].huge
    assert 0 < huge < 16384
    with pytest.raises(RefError, match="12288"):
        build_classes(8, 12288)


# ------------------------------------------------------------------------------------------
# (b) hand-checked scenarios


def _counts(pool, idx):
    alloc, used, groups = pool.class_counts()[idx]
    return alloc, used, {g: n for g, n in enumerate(groups) if n}


def test_single_malloc_and_free():
    p = RefPool()
    h = p.malloc(330)                  # class 352: 8 pages, 93 objects
    assert p.total_pages == 8
    assert _counts(p, 20) == (93, 1, {1: 1})
    p.free(h)
    assert p.total_pages == 0 and _counts(p, 20) == (0, 0, {})
    h = p.malloc(4096)                 # raw page: the huge class, 1 page, full at once
    assert p.total_pages == 1 and _counts(p, 254) == (1, 1, {11: 1})
    p.free(h)
    assert p.total_pages == 0 and p.pages_compacted == 0


def test_bad_input_changes_nothing():
    p = RefPool()
    h = p.malloc(100)
    for bad in (0, -1, 4097, 1.5, None):
        with pytest.raises(RefError, match=re.escape(repr(bad))):
            p.malloc(bad)
    p.free(h)
    with pytest.raises(RefError, match=str(h)):
        p.free(h)
    assert p.total_pages == 0 and p.live_handles() == 0


def test_malloc_takes_head_of_fullest_group():
    p = RefPool()
    hs = [p.malloc(1000) for _ in range(8)]     # class 1024: 1 page, 4 objects; Z0, Z1 full
    assert [p.where(h) for h in hs[:5]] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0)]
    p.free(hs[0])                               # Z0 -> group 8
    p.free(hs[4])                               # Z1 -> group 8, now the head
    assert p.where(p.malloc(1000)) == (1, 0)    # head of group 8, not the older Z0
    assert p.where(p.malloc(1000)) == (0, 0)
    assert p.total_pages == 2


def test_free_stack_is_lifo():
    p = RefPool()
    hs = [p.malloc(1000) for _ in range(3)]     # idx 0, 1, 2 of Z0
    p.free(hs[0])
    p.free(hs[2])
    assert p.where(p.malloc(1000)) == (0, 2)    # last freed, first reused
    assert p.where(p.malloc(1000)) == (0, 0)
    assert p.where(p.malloc(1000)) == (0, 3)


def test_compaction_two_objects_per_zspage():
    # class 2048 (ppz 1, objs 2): A = {a0, a1}, B = {b0, b1}; free a0, then b1.
    p = RefPool()
    a0, a1, b0, b1 = (p.malloc(2040) for _ in range(4))
    p.free(a0)
    p.free(b1)                                  # both in group 6; B is the head
    assert p.can_compact() == 1
    # dst = B (head of the fullest group), src = A; a1 goes to B's free head (slot 1)
    assert p.compact() == 1
    assert p.where(a1) == (1, 1) and p.where(b0) == (1, 0)
    assert (p.total_pages, p.pages_compacted) == (1, 1)
    assert _counts(p, 126) == (2, 2, {11: 1})
    assert p.compact() == 0 and p.pages_compacted == 1
    p.free(a1)
    p.free(b0)
    assert p.total_pages == 0 and p.pages_compacted == 1


def test_compaction_worked_example():
    """Class 1024 (1 page, 4 objects), worked by hand from §6.1.

    Z0 = h0..h3, Z1 = h4..h7, Z2 = h8..h11 (object index = position).
    Free h0 -> Z0 3/4, group 8.  Free h4, h6 -> Z1 keeps idx 1, 3, group 6, stack [2, 0].
    Free h9, h10 -> Z2 keeps idx 0, 3, group 6 (head), stack [2, 1].
    ALLOCATED 12, INUSE 7: zs_can_compact = 5 // 4 = 1.
    Iteration 1: dst = Z0 (group 8), src = Z2 (head of group 6). h8 (idx 0, lowest first)
      -> Z0 slot 0; Z0 is full: stop. Z2 keeps h11, 1/4 -> group 3. Z0 -> group 11, dropped.
      Still 12 - 7 = 5 free: can_compact 1.
    Iteration 2: dst = Z1 (only zspage in 10..4), src = Z2 (group 3). h11 -> Z1's free head,
      slot 2. Z2 empty: freed (1 page). Z1 3/4, not full: kept as dst.
      ALLOCATED 8, INUSE 7: can_compact 0, loop ends; Z1 put back in group 8.
    """
    p = RefPool()
    h = [p.malloc(1000) for _ in range(12)]
    for i in (0, 4, 6, 9, 10):
        p.free(h[i])
    assert _counts(p, 62) == (12, 7, {6: 2, 8: 1})
    assert p.can_compact() == 1
    assert p.compact() == 1
    assert p.where(h[8]) == (0, 0)
    assert p.where(h[11]) == (1, 2)
    assert [p.where(h[i]) for i in (1, 2, 3, 5, 7)] == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 3)]
    assert (p.total_pages, p.pages_compacted) == (2, 1)
    assert _counts(p, 62) == (8, 7, {8: 1, 11: 1})
    assert p.compact() == 0
    assert p.where(p.malloc(1000)) == (1, 0)    # Z1's last free slot
    assert _counts(p, 62) == (8, 8, {11: 2})


def test_compaction_frees_everything_possible_and_is_idempotent():
    p = RefPool()
    rng = random.Random(7)
    hs = [p.malloc(200) for _ in range(59 * 20)]     # class 208: 3 pages, 59 objects
    rng.shuffle(hs)
    for x in hs[:900]:
        p.free(x)
    live = 59 * 20 - 900
    before = p.total_pages
    freed = p.compact()
    assert freed > 0 and p.total_pages == before - freed
    # 6.4 algorithm: after a pass no class has a whole zspage's worth of free slots
    assert p.can_compact() == 0
    assert p.total_pages == -(-live // 59) * 3
    assert p.compact() == 0 and p.pages_compacted == freed


# ---- zram (§10) --------------------------------------------------------------------------


@pytest.mark.parametrize("comp_len, used", [(330, 32768), (125, 28672), (190, 12288),
                                            (3624, 32768)])
def test_zram_one_page_matches_kernel_box(comp_len, used):
    # the "checked on this machine's kernel" box at the top of the spec
    z = RefZram(16)
    z.write(0, comp_len)
    assert z.mm_stat() == (4096, comp_len, used, 0, used, 0, 0, 0, 0)


def test_zram_huge_and_same():
    z = RefZram(16)
    z.write(0, 3625)
    assert z.mm_stat() == (4096, 4096, 4096, 0, 4096, 0, 0, 1, 1)
    z.write(1, 9000)                            # incompressible: longer than a page
    z.write(2, same=True)
    assert z.mm_stat() == (3 * 4096, 8192, 8192, 0, 8192, 1, 0, 2, 2)
    z.write(0, 100)                             # huge -> normal overwrite
    assert z.mm_stat()[1:3] == (4196, 4096 + 7 * 4096)   # class 112: 7 pages
    assert z.mm_stat()[7:] == (1, 2)            # huge_pages_since never drops
    z.write(2, 100)                             # same -> normal
    assert z.mm_stat()[5] == 0 and z.mm_stat()[0] == 3 * 4096


def test_zram_overwrite_samples_max_before_free():
    z = RefZram(4)
    z.write(0, 4000)                            # huge: 1 page
    z.write(0, 4000)                            # new page allocated before the old is freed
    assert z.mm_stat()[2] == 4096 and z.mm_stat()[4] == 8192
    z.reset_mem_used_max()
    assert z.mm_stat()[4] == 4096
    z.write(0, same=True)                       # no zsmalloc allocation: max not updated
    assert z.mm_stat()[2] == 0 and z.mm_stat()[4] == 4096


def test_zram_mem_limit_keeps_old_data():
    z = RefZram(4)
    z.set_mem_limit(1)                          # PAGE_ALIGN -> 1 page
    assert z.mm_stat()[3] == 4096
    z.write(0, 3700)
    with pytest.raises(MemoryError):
        z.write(1, 3700)                        # 2 pages > 1
    with pytest.raises(MemoryError):
        z.write(0, 3700)                        # overwrite also needs the new page first
    assert z.mm_stat() == (4096, 4096, 4096, 4096, 8192, 0, 0, 1, 1)
    assert z.io_stat() == (0, 2, 0, 0)
    with pytest.raises(MemoryError):
        z.write(2, 100)                         # class 112 needs 7 more pages
    assert z.mm_stat()[4] == 8 * 4096           # ... and mem_used_max saw them
    z.set_mem_limit(0)
    z.write(2, 100)
    assert z.mm_stat()[:4] == (8192, 4196, 8 * 4096, 0)
    with pytest.raises(RefError, match="-5"):
        z.set_mem_limit(-5)


def test_zram_discard_reset_compact():
    z = RefZram(64)
    for i in range(40):
        z.write(i, 1000)                        # class 1024: 4 per page -> 10 pages
    z.write(40, 3700)
    z.write(41, same=True)
    assert z.mm_stat()[:3] == (42 * 4096, 40 * 1000 + 4096, 11 * 4096)
    z.discard(40, 10)                           # huge + same + 8 empty slots
    assert z.io_stat() == (0, 0, 0, 10)
    assert z.mm_stat()[5:] == (0, 0, 0, 1)
    for i in range(0, 40, 2):
        z.discard(i)                            # every zspage left half full
    assert z.mm_stat()[2] == 10 * 4096 and z.io_stat()[3] == 30
    assert z.compact() == 5
    assert z.mm_stat()[2] == 5 * 4096 and z.mm_stat()[6] == 5
    assert z.mm_stat()[4] == 11 * 4096          # compaction never touches mem_used_max
    with pytest.raises(RefError, match="64"):
        z.discard(60, 5)
    with pytest.raises(RefError, match="64"):
        z.write(64, 100)
    z.reset()
    assert z.mm_stat() == (0,) * 9 and z.io_stat() == (0, 0, 0, 0)
    z.write(63, 330)
    assert z.mm_stat()[2] == 32768


# ------------------------------------------------------------------------------------------
# (c) the real Pool against the reference, step by step


def _real_pool_class():
    """zsmalloc.Pool, or skip with the reason the brief gives (it is being written)."""
    zsmalloc = pytest.importorskip("zsmalloc", reason="zsmalloc.Pool not available")
    pool_cls = getattr(zsmalloc, "Pool", None)
    if pool_cls is None:
        try:   # the module may land before the export in __init__
            from zsmalloc.core.pool import Pool as pool_cls
        except ImportError:
            pytest.skip("zsmalloc.Pool not available")
    return pool_cls


def _row_field(row, name):
    return row[name] if isinstance(row, dict) else getattr(row, name)


def _real_counts(pool):
    """{index: (obj_allocated, obj_used, tuple of 12 group counts)} from pool.class_stats()."""
    out = {}
    for row in pool.class_stats():
        out[_row_field(row, "index")] = (_row_field(row, "obj_allocated"),
                                         _row_field(row, "obj_used"),
                                         tuple(_row_field(row, "zspages_per_group")))
    return out


def _boundary_lengths(ref):
    """Lowest and highest request length of every class, plus the huge watermark's edges."""
    lo, hi = {}, {}
    for n in range(1, ref.page_size + 1):
        idx = ref.class_for(n).index
        lo.setdefault(idx, n)
        hi[idx] = n
    h = ref.huge_class_size
    return sorted(set(lo.values()) | set(hi.values()) | {h - 1, h, ref.page_size})


class _Workload:
    """A seeded random malloc/free/compact sequence with growth, churn and shrink phases."""

    # (name, probability that a step is a malloc)
    PHASES = (("grow", 0.85), ("churn", 0.5), ("shrink", 0.12), ("drain", 0.03))

    def __init__(self, seed, ref, max_live=5000):
        self.rng = random.Random(seed)
        self.page = ref.page_size
        self.huge_from = ref.huge_class_size
        self.bounds = _boundary_lengths(ref)
        # a few "hot" lengths per seed so some classes fill many zspages (compaction work)
        self.hot = [self.rng.randint(1, self.huge_from - 1) for _ in range(6)]
        self.max_live = max_live

    def length(self):
        rng, r = self.rng, self.rng.random()
        if r < 0.45:
            return rng.choice(self.hot)
        if r < 0.65:
            return rng.randint(1, self.page // 8)                  # small
        if r < 0.78:
            return rng.randint(self.page // 8, self.huge_from - 1)  # medium / large
        if r < 0.90:
            return rng.choice(self.bounds)                         # class boundaries
        if r < 0.95:
            return rng.randint(1, self.page)
        return rng.randint(self.huge_from, self.page)              # huge

    def ops(self, steps):
        """Yields ('malloc', len) | ('free', k) | ('compact', None); k picks a live handle."""
        rng = self.rng
        live = 0
        done = 0
        while done < steps:
            name, p_malloc = rng.choice(self.PHASES)
            for _ in range(rng.randint(200, 2500)):
                if done >= steps:
                    break
                done += 1
                r = rng.random()
                if r < 0.004:
                    yield "compact", None
                elif live and (r > p_malloc or live >= self.max_live):
                    live -= 1
                    yield "free", rng.randrange(live + 1)
                else:
                    live += 1
                    yield "malloc", self.length()
            if done < steps:
                done += 1
                yield "compact", None     # end of every phase: compaction sees the result


def _lockstep(pool, ref, seed, steps, max_live=5000):
    """Drive pool and ref together; compare after every step. Returns op counts."""
    live = []        # (real handle, ref handle)
    counts = {"malloc": 0, "free": 0, "compact": 0, "freed": 0}
    step = 0
    for step, (op, arg) in enumerate(_Workload(seed, ref, max_live).ops(steps)):
        if op == "malloc":
            live.append((pool.malloc(arg), ref.malloc(arg)))
        elif op == "free":
            # swap-remove a random live pair
            live[arg], live[-1] = live[-1], live[arg]
            real_h, ref_h = live.pop()
            pool.free(real_h)
            ref.free(ref_h)
        else:
            got, want = pool.compact(), ref.compact()
            if got != want:
                pytest.fail(f"seed {seed} step {step}: compact() returned {got}, "
                            f"reference {want}")
            counts["freed"] += want
            got_c, want_c = _real_counts(pool), ref.class_counts()
            if got_c != want_c:
                bad = sorted(i for i in set(got_c) | set(want_c)
                             if got_c.get(i) != want_c.get(i))
                i = bad[0]
                pytest.fail(f"seed {seed} step {step}: after compact, class {i}: "
                            f"{got_c.get(i)} != reference {want_c.get(i)} "
                            f"({len(bad)} classes differ)")
        counts[op] += 1
        if pool.total_pages != ref.total_pages or pool.pages_compacted != ref.pages_compacted:
            pytest.fail(f"seed {seed} step {step} ({op} {arg}): total_pages "
                        f"{pool.total_pages} / pages_compacted {pool.pages_compacted}, "
                        f"reference {ref.total_pages} / {ref.pages_compacted}")
    # end of seed: the whole per-class picture
    assert _real_counts(pool) == ref.class_counts(), f"seed {seed}: class stats differ at end"
    check = getattr(pool, "check", None)
    if check is not None:
        check()
    # drain everything: both pools must end empty
    for real_h, ref_h in live:
        pool.free(real_h)
        ref.free(ref_h)
    assert pool.total_pages == ref.total_pages == 0
    return counts


SEEDS = (1, 2, 3, 4, 5, 6)
STEPS_PER_SEED = 20_000
# live-object caps: small pools (short lists, frequent emptying) up to large ones
MAX_LIVE = {1: 2000, 2: 5000, 3: 20000, 4: 2000, 5: 5000, 6: 20000}


@pytest.mark.parametrize("seed", SEEDS)
def test_pool_matches_reference(seed):
    """zsmalloc.Pool(profile="linux-6.18") and RefPool agree after every one of 20,000 steps.

    Compared: total_pages and pages_compacted after every step, compact()'s return value,
    and the per-class rows of class_stats() (obj_allocated, obj_used, the 12 group counts)
    after every compaction and at the end. 6 seeds = 120,000 steps, a few seconds.
    """
    pool_cls = _real_pool_class()
    pool = pool_cls(profile="linux-6.18")
    ref = RefPool(chain_size=8)
    try:
        counts = _lockstep(pool, ref, seed, STEPS_PER_SEED, MAX_LIVE[seed])
    finally:
        close = getattr(pool, "close", None)
        if close is not None:
            close()
    # the workload really exercised what it claims to
    assert counts["malloc"] > 6000 and counts["free"] > 4000 and counts["compact"] > 20
    assert counts["freed"] > 0, f"seed {seed}: compaction never freed a page"


@pytest.mark.parametrize("chain_size, page_size", [(4, 4096), (16, 4096), (8, 16384)])
def test_pool_matches_reference_other_knobs(chain_size, page_size):
    """The same lockstep comparison, shorter, for other chain and page sizes."""
    pool_cls = _real_pool_class()
    pool = pool_cls(profile="linux-6.18", chain_size=chain_size, page_size=page_size)
    ref = RefPool(chain_size=chain_size, page_size=page_size)
    try:
        counts = _lockstep(pool, ref, 100 + chain_size, 4000, max_live=3000)
    finally:
        close = getattr(pool, "close", None)
        if close is not None:
            close()
    assert counts["compact"] > 3 and counts["freed"] > 0
