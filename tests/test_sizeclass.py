"""Size-class tables against the spec's Appendix A (computed from the kernel's rules and
checked on this machine's kernel for chain 8)."""

from pathlib import Path

import pytest

import zsmalloc
from zsmalloc.core.sizeclass import chain_size_min_waste, chain_size_usedpc, class_table

DATA = Path(__file__).parent / "data"


def _golden(name):
    rows = []
    for line in (DATA / name).read_text().splitlines():
        f = line.split()
        huge = "Y" in f
        rng = f[5] if huge else f[4]
        lo_idx, hi_idx = map(int, rng.split("-"))
        req = (f[6] if huge else f[5]).split("-")
        rows.append(dict(idx=int(f[0]), size=int(f[1]), ppz=int(f[2]), objs=int(f[3]), huge=huge,
                         first=lo_idx, last=hi_idx, req=(int(req[0]), int(req[1])),
                         waste=int(f[-1])))
    return rows


@pytest.mark.parametrize("chain,name,count,huge_size", [
    (8, "classes_chain8_4k.txt", 119, 3625),
    (4, "classes_chain4_4k.txt", 69, 3257),
])
def test_tables_equal_appendix_a(chain, name, count, huge_size):
    cfg = zsmalloc.PoolConfig(profile="linux-6.18", chain_size=chain)
    got = zsmalloc.size_classes(cfg)
    want = _golden(name)
    assert len(got) == count == len(want)
    assert zsmalloc.huge_class_size(cfg) == huge_size
    t = class_table(cfg)
    for sc, w in zip(got, want):
        assert (sc.index, sc.size, sc.pages_per_zspage, sc.objs_per_zspage, sc.huge) == \
            (w["idx"], w["size"], w["ppz"], w["objs"], w["huge"]), w
        assert sc.first_index == w["first"]
        assert t.request_range(sc) == w["req"]
        assert t.tail_waste(sc) == w["waste"]


def test_default_profile_is_chain8():
    assert len(zsmalloc.size_classes()) == 119
    assert zsmalloc.huge_class_size() == 3625


def test_48_rule_differs_from_chain4_only_at_208():
    a = class_table(zsmalloc.PoolConfig(profile="linux-4.8"))
    b = class_table(zsmalloc.PoolConfig(profile="linux-6.18", chain_size=4))
    diffs = [(i, a.rep[i].size) for i in range(a.nr_indices)
             if (a.rep[i].pages_per_zspage, a.rep[i].objs_per_zspage)
             != (b.rep[i].pages_per_zspage, b.rep[i].objs_per_zspage)]
    assert diffs == [(11, 208)]
    assert (a.rep[11].pages_per_zspage, a.rep[11].objs_per_zspage) == (2, 39)
    assert (b.rep[11].pages_per_zspage, b.rep[11].objs_per_zspage) == (3, 59)
    assert len(a.classes) == 69


def test_chain_rules_units():
    # min-waste: power of two -> 1; strict < keeps the smallest k on ties
    assert chain_size_min_waste(2048, 4096, 8) == 1
    assert chain_size_min_waste(352, 4096, 8) == 8
    assert chain_size_min_waste(144, 4096, 8) == 7
    assert chain_size_usedpc(208, 4096, 4) == 2
    assert chain_size_min_waste(208, 4096, 4) == 3


@pytest.mark.parametrize("chain,count", [(4, 69), (5, 86), (6, 94), (7, 110), (8, 119), (9, 136),
                                         (10, 141), (11, 153), (12, 159), (13, 173), (14, 179),
                                         (15, 186), (16, 192)])
def test_class_counts_per_chain(chain, count):
    # spec A.4, min-waste column (what the code computes; the docs' 123 is the old rule)
    assert len(zsmalloc.size_classes(zsmalloc.PoolConfig(chain_size=chain))) == count


@pytest.mark.parametrize("page_size", [16384, 65536])
def test_large_pages(page_size):
    t = class_table(zsmalloc.PoolConfig(page_size=page_size))
    assert t.delta == page_size // 256
    # Kernel: ZS_SIZE_CLASSES = DIV_ROUND_UP(PAGE_SIZE - 32, PAGE_SIZE >> 8) + 1 = 257 here
    # (255 only for 4 KiB pages, where (4096 - 32) / 16 is exact).
    assert t.nr_indices == 257
    assert t.rep[-1].size == page_size and t.rep[-1].huge
    sizes = [sc.size for sc in t.classes]
    assert sizes == sorted(set(sizes))
    assert all(s % 32 == 0 or s == 32 for s in sizes)
    # every request maps to a class that fits it plus the header (or the huge class)
    for n in (1, 24, 25, page_size // 2, zsmalloc.huge_class_size(
            zsmalloc.PoolConfig(page_size=page_size)) - 1, page_size):
        sc = t.for_request(n)
        assert sc.huge or sc.size >= n + 8


def test_every_request_fits_its_class():
    for cfg in (zsmalloc.PoolConfig(), zsmalloc.PoolConfig(profile="linux-4.8")):
        t = class_table(cfg)
        hcs = t.huge_class_size
        for n in range(1, 4097):
            sc = t.for_request(n)
            if n >= hcs:
                assert sc.huge, n
            else:
                assert not sc.huge and sc.size >= n + 8, n


def test_config_errors():
    with pytest.raises(ValueError, match="profile"):
        zsmalloc.PoolConfig(profile="linux-2.6")
    with pytest.raises(ValueError, match="chain_size 17"):
        zsmalloc.PoolConfig(chain_size=17)
    with pytest.raises(ValueError, match="page_size 8192"):
        zsmalloc.PoolConfig(page_size=8192)
