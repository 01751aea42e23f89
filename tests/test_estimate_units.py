"""zsmalloc.estimate without a subject process: page classification, the swap layer's rules,
folio grouping, page-size regrouping, and the sampling extrapolation against the Zram."""

import random

import pytest

import zsmalloc
from zsmalloc.estimate.engine import fill_word
from zsmalloc.estimate.model import ConfigModel, EstimateConfig, SampleSums
from zsmalloc.estimate.procfs import (KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL, PM_FILE,
                                      PM_MMAP_EXCLUSIVE, PM_PRESENT, PM_SWAP, Vma, parse_smaps)
from zsmalloc.estimate.scan import (ELIGIBLE, FILE, SHARED, SWAPPED, ZERO_PAGE, ABSENT, Batch,
                                    folio_starts, page_kind, pages_of, vma_refusal)
from zsmalloc.estimate.swapmodel import SwapRules
from zsmalloc.estimate.verify import error_pct, runs_of

P = 4096


def test_page_kind_follows_the_pagemap_bits():
    assert page_kind(PM_PRESENT | PM_MMAP_EXCLUSIVE | 1234) == ELIGIBLE
    assert page_kind(PM_PRESENT | PM_FILE | PM_MMAP_EXCLUSIVE | 1234) == FILE
    assert page_kind(PM_PRESENT | 1234, zero_pfn=99) == SHARED
    assert page_kind(PM_PRESENT | 99, zero_pfn=99) == ZERO_PAGE
    assert page_kind(PM_SWAP | 5) == SWAPPED
    assert page_kind(0) == ABSENT


def test_parse_smaps_and_refusals():
    text = (
        "7f0000000000-7f0000004000 rw-p 00000000 00:00 0 \n"
        "Size:                 16 kB\nAnonHugePages:       2048 kB\nTHPeligible:    1\n"
        "VmFlags: rd wr mr mw me ac sd \n"
        "7f0000004000-7f0000005000 rw-s 00000000 00:01 12 /dev/zero (deleted)\n"
        "VmFlags: rd wr sh mr mw me ms sd \n"
        "7f0000005000-7f0000006000 rw-p 00000000 00:00 0 \n"
        "THPeligible:    0\nVmFlags: rd wr mr mw me lo ac sd \n")
    v = parse_smaps(text)
    assert [(x.start, x.end) for x in v] == [(0x7f0000000000, 0x7f0000004000),
                                             (0x7f0000004000, 0x7f0000005000),
                                             (0x7f0000005000, 0x7f0000006000)]
    assert v[0].thp_eligible and v[0].anon_huge_kb == 2048 and v[0].pages == 4
    assert [vma_refusal(x) for x in v] == [None, "shared", "locked"]


def test_swap_rules_zero_folios():
    r = SwapRules.for_profile("linux-6.18")
    zero = bytearray([1, 0, 1, 1, 1, 0])
    small = bytearray([1] * 6)
    assert r.written(zero, small) == bytearray([0, 1, 0, 0, 0, 1])
    # pages 1..3 form one large folio with a non-zero page: written whole, zero pages too;
    # pages 4..5: a folio of one zero page and one non-zero page: written
    folios = bytearray([1, 1, 0, 0, 1, 0])
    assert r.written(zero, folios) == bytearray([0, 1, 1, 1, 1, 1])
    # an all-zero large folio stays in the zeromap
    assert r.written(bytearray([1, 1, 1, 0]), bytearray([1, 0, 0, 1])) == bytearray([0, 0, 0, 1])
    old = SwapRules.for_profile("linux-4.8")
    assert old.written(zero, small) == bytearray([1] * 6)
    assert SwapRules.for_profile("tuned").zeromap


def test_folio_starts_keeps_only_whole_power_of_two_folios():
    H, T = KPF_COMPOUND_HEAD, KPF_COMPOUND_TAIL
    ents = [PM_PRESENT | (100 + i) for i in range(8)]
    # a 4-page folio at frames 100..103, then a small page, then a head with one tail
    # followed by a page at the wrong frame (a broken run: not a whole folio)
    kf = [H, T, T, T, 0, H, T, 0]
    assert folio_starts(ents, kf) == bytearray([1, 0, 0, 0, 1, 1, 0, 1])
    kf = [H, T, T, 0, 0, 0, 0, 0]          # 3 pages: not a power of two, kept small
    assert folio_starts(ents, kf) == bytearray([1] * 8)
    ents2 = list(ents)
    ents2[1] = PM_PRESENT | 500            # tail at a different frame: not this folio
    assert folio_starts(ents2, [H, T, 0, 0, 0, 0, 0, 0]) == bytearray([1] * 8)


def test_fill_word():
    assert fill_word(bytes(P)) == 0
    assert fill_word(b"\xab" * P) == int.from_bytes(b"\xab" * 8, "little")
    w = (0x0102030405060708).to_bytes(8, "little")
    assert fill_word(w * 512) == 0x0102030405060708
    assert fill_word(bytes(P - 1) + b"\x01") is None
    assert fill_word(b"\x01" + bytes(P - 1)) is None
    assert fill_word(w * 256 + bytes(8) + w * 255) is None


def test_pages_of_regroups_to_a_larger_page_size():
    b = Batch(1)
    base = 0x10000 * 7
    b.addrs = [base, base + P, base + 3 * P, base + 4 * 4 * P]   # block 0 (3 pages), block 4
    b.unit_start = bytearray([1, 0, 0, 1])
    b.folio_start = bytearray([1, 1, 1, 1])
    b.data = bytes(b"\x01" * P + b"\x02" * P + b"\x03" * P + b"\x04" * P)
    pages, ustart, fstart = pages_of(b, 16384)
    assert len(pages) == 2 and ustart == bytearray([1, 1]) and fstart == bytearray([1, 1])
    assert bytes(pages[0]) == b"\x01" * P + b"\x02" * P + bytes(P) + b"\x03" * P
    assert bytes(pages[1]) == b"\x04" * P + bytes(3 * P)
    same, _, _ = pages_of(b, P)
    assert [bytes(x) for x in same] == [b"\x01" * P, b"\x02" * P, b"\x03" * P, b"\x04" * P]


def test_runs_of_and_error_pct():
    assert runs_of([0, P, 2 * P, 5 * P, 7 * P, 8 * P]) == [(0, 3 * P), (5 * P, P), (7 * P, 2 * P)]
    assert runs_of([]) == []
    assert error_pct(101, 100) == pytest.approx(1.0)
    assert error_pct(0, 0) == 0.0 and error_pct(1, 0) is None


def _random_feed(n, seed):
    rng = random.Random(seed)
    words, lens, written = [], [], bytearray()
    for _ in range(n):
        k = rng.random()
        if k < 0.05:
            words.append(0)
            lens.append(0)
            written.append(0)              # a zero page the swap layer keeps
        elif k < 0.10:
            words.append(0xABAB)
            lens.append(0)
            written.append(1)
        else:
            words.append(None)
            lens.append(rng.choice([rng.randint(26, 4200), rng.randint(200, 1500)]))
            written.append(1)
    return words, lens, written


@pytest.mark.parametrize("chain,profile", [(8, "linux-6.18"), (4, "linux-4.8"), (16, "linux-6.18")])
def test_extrapolation_of_a_full_sample_is_the_zram_itself(chain, profile):
    """With every unit read, the class-count extrapolation must reproduce the Zram's own
    mm_stat exactly: the same size classes, huge rule and zspage rounding."""
    cfg = EstimateConfig("lz4", chain, P, profile)
    n = 20000
    words, lens, written = _random_feed(n, chain)
    m = ConfigModel(cfg, n + 1, sampling=True)
    try:
        m.feed(words, lens, written, bytearray([1] * n), [1] * n)
        fields, half = m.extrapolate(n, n)
        assert fields == dict(zip(zsmalloc.MmStat.FIELDS, m.mm_stat()))
        assert all(h == 0 for h in half.values())      # everything read: no uncertainty
        assert m.zero_skipped == written.count(0)
    finally:
        m.close()


def test_sampling_interval_covers_the_truth():
    """Sample 10 % of units of a known population 40 times: the 95 % interval of
    mem_used_total should hold the full-population figure in most of them."""
    cfg = EstimateConfig("lz4", 8, P, "linux-6.18")
    n = 30000
    words, lens, written = _random_feed(n, 5)
    full = ConfigModel(cfg, n + 1)
    full.feed(words, lens, written, bytearray([1] * n))
    truth = full.mm_stat().mem_used_total
    full.close()
    hits = 0
    for seed in range(40):
        rng = random.Random(seed)
        keep = [i for i in range(n) if rng.random() < 0.1]
        m = ConfigModel(cfg, n + 1, sampling=True)
        m.feed([words[i] for i in keep], [lens[i] for i in keep],
               bytearray(written[i] for i in keep), bytearray([1] * len(keep)), [1] * len(keep))
        est, half = m.extrapolate(n, n)
        m.close()
        assert abs(est["mem_used_total"] - truth) < 0.05 * truth
        hits += abs(est["mem_used_total"] - truth) <= half["mem_used_total"]
    assert hits >= 32           # nominal 38 of 40; a broken variance would miss far more


def test_sample_sums_ratio_estimator():
    s = SampleSums()
    for x, y in [(1, 2.0), (1, 4.0), (2, 6.0)]:
        s.add(x, [y, 0, 0, 0, 0.0])
    total, half = s.estimate(0, X=100, M=80)
    assert total == pytest.approx(300.0)        # R = 12 / 4 = 3
    assert half > 0
    assert s.estimate(0, X=100, M=3)[1] == 0.0  # every unit read
