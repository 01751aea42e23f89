"""Conformance with the running kernel: our Zram and a zram device of its own driven op
by op.

Needs root and zram's hot_add (marked ``kernel``; skips with the reason elsewhere).
24,000 operations with crafted pages over 4 seeds and all six mixes, compaction, discards
and mem_limit hits included, and 9,000 with real pages (anon memory, ELF, text, Python
AST dumps) for each of lz4, lzo and lzo-rle; all 9 mm_stat fields and io_stat compared
after every operation, and every page read back from both devices equal to what was
written. The 100,000-operation real-page runs are in docs/results/kernel_lengths.md.
"""

import pytest

import zsmalloc
from zsmalloc.zram import conform


@pytest.fixture(scope="module")
def real_pool():
    return conform.real_page_pool(800 if zsmalloc.COMPILED else 60, seed=5)




@pytest.mark.kernel
@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_conform_all_mixes(seed):
    total = {"compact": 0, "discard": 0, "limit_hits": 0}
    for mix in conform.MIXES:
        r = conform.run(seed, mix, 1000)
        assert r.divergence is None, r.divergence.report()
        assert r.read_mismatches == 0
        assert r.ops == 1000
        for k in total:
            total[k] += r.counts[k]
    # the stream really exercised what it claims
    assert total["compact"] > 0 and total["discard"] > 0 and total["limit_hits"] > 0


def test_generate_ops_is_deterministic_and_covers_kinds():
    a = [str(o) for o in conform.generate_ops(5, "mixed", 3000, 16384)]
    b = [str(o) for o in conform.generate_ops(5, "mixed", 3000, 16384)]
    assert a == b
    kinds = {o.kind for o in conform.generate_ops(5, "mixed", 3000, 16384)}
    assert kinds == {"write", "same", "incompressible", "discard", "compact", "reset_max",
                     "limit", "read"}
    with pytest.raises(ValueError, match="unknown mix"):
        list(conform.generate_ops(1, "nope", 1, 10))


@pytest.mark.kernel
@pytest.mark.parametrize("comp", conform.ALGORITHMS)
def test_conform_real_pages(real_pool, comp):
    ops = 1000 if zsmalloc.COMPILED else 60
    for seed, mix in ((21, "mixed"), (22, "overwrite"), (23, "discard")):
        r = conform.run(seed, mix, ops, 16 << 20, comp=comp, pool=real_pool)
        assert r.divergence is None, r.divergence.report()
        assert r.read_mismatches == 0 and r.ops == ops
        assert r.counts["real"] > ops // 2 and r.counts["write"] == 0
        assert r.comp == comp and r.source == "real"


def test_real_page_ops_are_deterministic():
    a = [str(o) for o in conform.generate_ops(5, "mixed", 2000, 4096, source="real", pool_size=50)]
    b = [str(o) for o in conform.generate_ops(5, "mixed", 2000, 4096, source="real", pool_size=50)]
    assert a == b
    ops = list(conform.generate_ops(5, "mixed", 2000, 4096, source="real", pool_size=50))
    kinds = {o.kind for o in ops}
    assert "real" in kinds and "write" not in kinds
    assert all(0 <= o.value < 50 for o in ops if o.kind == "real")
    # the same stream as crafted, with real pages in place of the crafted writes
    crafted = list(conform.generate_ops(5, "mixed", 2000, 4096))
    assert [(o.kind, o.index) for o in crafted if o.kind != "write"] == \
        [(o.kind, o.index) for o in ops if o.kind != "real"]
    with pytest.raises(ValueError, match="unknown page source"):
        list(conform.generate_ops(1, "mixed", 1, 10, source="fake"))
    with pytest.raises(ValueError, match="pool of at least 1"):
        list(conform.generate_ops(1, "mixed", 1, 10, source="real", pool_size=0))
    with pytest.raises(ValueError, match="needs the real page pool"):
        ops[[o.kind for o in ops].index("real")].page()


def test_run_checks_its_arguments_before_touching_a_device():
    with pytest.raises(ValueError, match="conform checks lz4, lzo, lzo-rle"):
        conform.run(1, "mixed", 10, comp="zstd")
    with pytest.raises(ValueError, match="page 1 is 10 bytes"):
        conform.run(1, "mixed", 10, pool=[bytes(4096), bytes(10)])
    with pytest.raises(ValueError, match="non-empty"):
        conform.run(1, "mixed", 10, pool=[])
