"""Peer allocators (zbud, z3fold, zblock): model tests against a dict, bad input, page counts
that follow from each kernel design, and the density ordering the published comparisons
report (spec/peers.md §1, A5, A6)."""

from __future__ import annotations

import random

import pytest

from zsmalloc.errors import CheckError, InvalidHandle
from zsmalloc.peers import (PEERS, ObjectTooLarge, PeerAllocator, Z3foldPool, ZblockPool,
                            ZbudPool, zblock_table)

CONFIGS = [
    ("zbud", {}), ("zbud", {"page_size": 16384}),
    ("z3fold", {}), ("z3fold", {"page_size": 16384}), ("z3fold", {"header_bytes": 64}),
    ("zblock", {}), ("zblock", {"page_size": 16384}), ("zblock", {"variant": "vmalloc"}),
]


def _make(name, kw):
    return PEERS[name](**kw)


def _ids(c):
    return c[0] + "".join(f"-{k}={v}" for k, v in c[1].items())


# ---- the model test ---------------------------------------------------------------------
def _random_size(rnd: random.Random, p: PeerAllocator) -> int:
    r = rnd.random()
    top = p.max_size
    if r < 0.03:
        return rnd.choice([1, top, max(1, top - 1)])
    if r < 0.45:
        return rnd.randint(1, min(top, p.page_size // 8))
    if r < 0.85:
        return rnd.randint(1, min(top, p.page_size // 2))
    return rnd.randint(p.page_size // 2, top)


@pytest.mark.parametrize("cfg", CONFIGS, ids=_ids)
def test_model_against_dict(cfg):
    """20,000+ seeded mixed ops; every read matches the reference; check() every 500."""
    name, kw = cfg
    p = _make(name, kw)
    rnd = random.Random(f"peers-{_ids(cfg)}")
    ref: dict[int, bytearray] = {}
    handles: list[int] = []
    reads = 0
    for step in range(1, 22001):
        r = rnd.random()
        if r < 0.38 or not handles:
            size = _random_size(rnd, p)
            h = p.malloc(size)
            assert h not in ref, f"malloc returned live handle {h:#x}"
            data = rnd.randbytes(size)
            p.write(h, data)
            ref[h] = bytearray(data)
            handles.append(h)
        elif r < 0.53:
            h = rnd.choice(handles)
            n = rnd.randint(0, len(ref[h]))
            data = rnd.randbytes(n)
            p.write(h, data)
            ref[h][:n] = data
        elif r < 0.70:
            h = rnd.choice(handles)
            if rnd.random() < 0.5:
                assert p.read(h) == ref[h]
            else:
                n = rnd.randint(0, len(ref[h]))
                assert p.read(h, n) == ref[h][:n]
            reads += 1
        else:
            i = rnd.randrange(len(handles))
            h = handles[i]
            handles[i] = handles[-1]
            handles.pop()
            assert p.read(h) == ref.pop(h)
            p.free(h)
        if step % 500 == 0:
            p.check()
            assert p.objects == len(ref)
            assert p.stored_bytes == sum(map(len, ref.values()))
    p.check()
    assert reads > 3000
    for h, data in ref.items():                      # every byte, after all the moves
        assert p.read(h) == data
    if name == "z3fold":                              # the run exercised both move kinds
        assert p.single_buddy_moves > 0 and p.inpage_moves > 0
    for h in list(ref):
        p.free(h)
    p.check()
    assert (p.total_pages, p.objects, p.stored_bytes) == (0, 0, 0)


# ---- bad input --------------------------------------------------------------------------
def _snapshot(p, handles):
    return (p.total_pages, p.objects, p.stored_bytes, [p.read(h) for h in handles])


@pytest.mark.parametrize("cfg", CONFIGS[:1] + CONFIGS[2:3] + CONFIGS[5:6] + CONFIGS[7:],
                         ids=_ids)
def test_bad_input_changes_nothing(cfg):
    p = _make(*cfg)
    rnd = random.Random(5)
    handles = []
    for size in (100, 700, 1500, 3000):
        h = p.malloc(size)
        p.write(h, rnd.randbytes(size))
        handles.append(h)
    gone = p.malloc(200)
    p.free(gone)
    if gone in handles:                       # a freed handle can be reused by the kernel
        gone = None
    before = _snapshot(p, handles)
    bad_sizes = [0, -1, p.page_size + 1, 1.5, "10", None, True, 10**30]
    for bad in bad_sizes:
        with pytest.raises(ValueError) as ei:
            p.malloc(bad)
        assert repr(bad) in str(ei.value) or str(bad) in str(ei.value)
    h0 = handles[0]
    with pytest.raises(ValueError, match="101 bytes"):
        p.write(h0, b"x" * 101)
    with pytest.raises(ValueError, match="bytes-like"):
        p.write(h0, "text")
    for bad_len in (-1, 101, 2.0):
        with pytest.raises(ValueError, match="length"):
            p.read(h0, bad_len)
    unknown = [12345, -7, 0, "x", 1.0, None, (1, 2)]
    if gone is not None:
        unknown.append(gone)
    for bad in unknown:
        for op in (p.free, p.read, lambda h: p.write(h, b"")):
            with pytest.raises(InvalidHandle):
                op(bad)
    assert issubclass(InvalidHandle, ValueError)
    p.check()
    assert _snapshot(p, handles) == before
    p.free(handles[1])
    with pytest.raises(InvalidHandle):
        p.free(handles[1])                                     # double free
    p.check()


@pytest.mark.parametrize("cls", [ZbudPool, Z3foldPool, ZblockPool])
def test_bad_constructor_arguments(cls):
    for bad in (0, 4095, 5000, "4096", 2048):
        with pytest.raises(ValueError, match="page_size"):
            cls(page_size=bad)


def test_check_names_the_broken_invariant():
    p = ZbudPool()
    h = p.malloc(100)
    p._stored += 1                                  # corrupt a counter on purpose
    with pytest.raises(CheckError) as ei:
        p.check()
    assert ei.value.invariant == "peer-stored-bytes" and isinstance(ei.value, AssertionError)
    z = Z3foldPool()
    z.malloc(100)
    next(iter(z._pages.values())).refcount += 1
    with pytest.raises(CheckError, match="z3fold-refcount"):
        z.check()
    b = ZblockPool()
    b.malloc(100)
    next(iter(b._blocks.values())).free_slots -= 1
    with pytest.raises(CheckError, match="zblock-free-slots"):
        b.check()
    del h


def test_registry():
    assert set(PEERS) == {"zbud", "z3fold", "zblock"}
    for name, cls in PEERS.items():
        assert issubclass(cls, PeerAllocator) and cls.name == name
        p = cls()
        assert p.compact() == 0 and p.total_pages == 0 and p.utilization == 1.0


# ---- zbud: two buddies per page ---------------------------------------------------------
def test_zbud_two_buddies_share_a_page_third_needs_another():
    p = ZbudPool()
    a = p.malloc(2048)                      # 32 chunks
    b = p.malloc(1984)                      # 31 chunks: 32 + 31 = NCHUNKS (63)
    assert p.total_pages == 1
    assert a % 4096 == 64                   # first buddy: right after the header chunk
    assert b % 4096 == 4096 - 31 * 64       # last buddy: right-justified at the page end
    assert a // 4096 == b // 4096
    c = p.malloc(10)                        # the page is buddied even with slack left
    assert p.total_pages == 2
    for h in (a, b, c):
        p.free(h)
    assert p.total_pages == 0


def test_zbud_two_half_pages_do_not_fit_one_page():
    p = ZbudPool()
    p.malloc(2048)
    p.malloc(2048)                          # 32 + 32 > 63 chunks: the header costs one
    assert p.total_pages == 2


def test_zbud_three_small_objects_need_two_pages():
    p = ZbudPool()
    hs = [p.malloc(100) for _ in range(3)]
    assert p.total_pages == 2
    assert hs[0] // 4096 == hs[1] // 4096 != hs[2] // 4096


def test_zbud_size_limit_and_first_fit_by_free_chunks():
    p = ZbudPool()
    assert p.max_size == 4096 - 2 * 64 == 3968
    h = p.malloc(3968)
    with pytest.raises(ObjectTooLarge, match="3969"):
        p.malloc(3969)
    assert (p.total_pages, p.objects) == (1, 1)
    p.free(h)
    a = p.malloc(53 * 64)                   # page A: 10 chunks free
    b = p.malloc(23 * 64)                   # does not fit A: page B, 40 free
    c = p.malloc(5 * 64)                    # lowest list with room: A's (10)
    assert p.total_pages == 2
    assert c // 4096 == a // 4096 != b // 4096
    p.free(a)                               # A keeps c, which moves nowhere
    d = p.malloc(58 * 64)                   # 63 - 5 = 58 chunks free in A again
    assert d // 4096 == c // 4096 and p.total_pages == 2
    p.check()


# ---- z3fold: three buddies per page, headless pages, moves ------------------------------
def test_z3fold_three_small_objects_share_a_page():
    p = Z3foldPool()
    hs = [p.malloc(1000) for _ in range(3)]     # first, last, middle: 3 * 16 <= 62 chunks
    assert p.total_pages == 1
    p.malloc(1000)                               # page full: a fourth needs a new page
    assert p.total_pages == 2
    rnd = random.Random(3)
    data = {h: rnd.randbytes(1000) for h in hs}
    for h, d in data.items():
        p.write(h, d)
    assert all(p.read(h) == d for h, d in data.items())
    p.check()


def test_z3fold_header_and_headless_limit():
    p = Z3foldPool()
    assert p.header_size == 128 and p.nchunks == 62      # 88-byte header = 2 chunks
    assert p.headless_limit == 4096 - 128 - 64 == 3904
    a = p.malloc(3904)                                   # 61 chunks, shared page
    b = p.malloc(64)                                     # the 62nd chunk, same page
    assert p.total_pages == 1 and p.headless_pages == 0
    h = p.malloc(3905)                                   # headless: a page of its own
    assert p.total_pages == 2 and p.headless_pages == 1 and h & 1
    p.write(h, b"\xab" * 3905)
    assert p.read(h) == b"\xab" * 3905
    p.malloc(4096)                                       # up to PAGE_SIZE is accepted
    assert p.total_pages == 3
    p.free(h)
    assert p.total_pages == 2
    for x in (a, b):
        p.free(x)
    p.check()
    old = Z3foldPool(header_bytes=64)                    # the 2016 layout, NCHUNKS 63
    assert old.nchunks == 63 and old.headless_limit == 3968
    old.malloc(3968)
    assert old.headless_pages == 0


def test_z3fold_moves_a_lone_object_and_frees_its_page():
    p = Z3foldPool()
    rnd = random.Random(9)
    x1, x2, x3 = (p.malloc(1000) for _ in range(3))     # first, last, middle of page P
    y = p.malloc(1000)                                   # page Q
    data = {h: rnd.randbytes(1000) for h in (x1, x2, x3, y)}
    for h, d in data.items():
        p.write(h, d)
    assert p.total_pages == 2
    p.free(x1)          # middle slides toward the last buddy (gap of 14 >= 3 chunks)
    assert p.inpage_moves == 1 and p.total_pages == 2
    p.free(x2)          # x3 alone: compact_single_buddy moves it into Q, P is freed
    assert p.single_buddy_moves == 1 and p.total_pages == 1
    assert p.read(x3) == data[x3] and p.read(y) == data[y]
    p.check()
    p.free(y)
    p.free(x3)
    assert p.total_pages == 0
    p.check()


def test_z3fold_lone_object_stays_when_no_page_has_room():
    p = Z3foldPool()
    a = p.malloc(3000)
    b = p.malloc(500)
    p.free(a)                        # b alone, no other unbuddied page: it stays
    assert p.total_pages == 1 and p.single_buddy_moves == 0
    p.check()
    del b


# ---- zblock: fixed slots per block ------------------------------------------------------
SPEC_SLOTS = [32, 22, 17, 13, 11, 9, 8, 14, 12, 11, 10, 9, 8, 15, 14, 13, 12, 11, 10, 9, 8,
              15, 14, 13, 12, 11, 10, 9, 7]


def test_zblock_table_matches_spec():
    t = zblock_table(4096)
    assert len(t) == 29
    assert [d.slots_per_block for d in t] == SPEC_SLOTS
    assert [d.pages for d in t] == [1] * 7 + [2] * 6 + [4] * 8 + [8] * 8
    for d in t:                      # slot_size = round_down((PAGE<<order - 32) / n, 8)
        assert d.slot_size == (4096 * d.pages - 32) // d.slots_per_block // 8 * 8
    assert t[0].slot_size == 120     # peers.md: smallest slot about 120 bytes
    assert max(d.slots_per_block for d in zblock_table(16384)) == 181
    assert len(zblock_table(4096, "vmalloc")) == 37


@pytest.mark.parametrize("btype", [0, 6, 8, 15, 28])
def test_zblock_slots_per_block_and_pages(btype):
    p = ZblockPool()
    d = p.table[btype]
    size = min(d.slot_size - 1, p.max_size)        # type 28's slot (4672) > PAGE_SIZE
    assert p.block_type(size) == btype
    hs = [p.malloc(size) for _ in range(d.slots_per_block)]
    assert p.total_pages == d.pages                     # one block holds them all
    extra = p.malloc(size)
    assert p.total_pages == 2 * d.pages                 # one more needs a second block
    assert p.blocks()[btype] == 2
    for i, h in enumerate(hs):                          # slots 0..n-1 of the first block
        assert h & 31 == i and (h % 4096) >> 5 == btype
    p.free(extra)
    assert p.total_pages == d.pages
    for h in hs:
        p.free(h)
    assert p.total_pages == 0
    p.check()


def test_zblock_type_choice_is_strictly_smaller_than_slot():
    p = ZblockPool()
    assert p.block_type(119) == 0 and p.block_type(120) == 1    # size == slot -> next type
    assert p.block_type(1) == 0 and p.block_type(4096) == 28
    for i, d in enumerate(p.table):                              # every boundary
        if d.slot_size <= p.max_size:
            assert p.block_type(d.slot_size - 1) == i
            assert p.block_type(d.slot_size) == i + 1
    assert p.max_size == 4096
    v = ZblockPool(variant="vmalloc")
    assert v.max_size == 4079                    # last slot 4080; the kernel lets 4080
    with pytest.raises(ObjectTooLarge):          # through and indexes past its table
        v.malloc(4080)
    assert v.total_pages == 0


def test_zblock_refilled_block_goes_to_the_tail():
    p = ZblockPool()
    hs = [p.malloc(50) for _ in range(64)]               # two full type-0 blocks A, B
    a_base, b_base = hs[0] // 4096, hs[32] // 4096
    assert a_base != b_base and p.total_pages == 2
    p.free(hs[40])                                       # B gets a free slot first
    p.free(hs[3])                                        # then A
    h1 = p.malloc(50)
    h2 = p.malloc(50)
    assert (h1 // 4096, h1 & 31) == (b_base, 8)          # head of the active list: B
    assert (h2 // 4096, h2 & 31) == (a_base, 3)
    assert p.format_blocks().splitlines()[0] == "0: 2 blocks of 1 pages (total 2 pages)"
    p.check()


# ---- density on a realistic size mix ----------------------------------------------------
def _compressed_page_size(rnd: random.Random) -> int:
    """Sizes like 4 KiB pages after lz4/zstd (ratio ~2.5): mostly 200-1500 B."""
    r = rnd.random()
    if r < 0.60:
        return rnd.randint(200, 1500)
    if r < 0.85:
        return rnd.randint(1500, 3000)
    if r < 0.95:
        return rnd.randint(3000, 3900)
    return rnd.randint(3900, 4096)


@pytest.mark.parametrize("churn", [0, 20000], ids=["fill", "churn"])
def test_density_ordering_matches_published_comparisons(churn):
    """zbud needs more pages per stored byte than z3fold and zblock.

    Published: zbud +32% memory vs zsmalloc (A5), z3fold +1.8% (A6), so zbud/z3fold is
    about 1.32 / 1.018 = 1.30 (derived); the z3fold docs put z3fold at ~2.7x and zbud at
    ~1.7x (a 1.59 ratio). zbud can never hold more than 2 objects per page.
    """
    res = {}
    for name, cls in PEERS.items():
        p = cls()
        rnd = random.Random(11)
        live = []
        for i in range(8000 + churn):
            if i >= 8000:
                j = rnd.randrange(len(live))
                p.free(live[j])
                live[j] = live[-1]
                live.pop()
            size = _compressed_page_size(rnd)
            if size <= p.max_size:          # zbud refuses > 3968 (zswap would reject it)
                live.append(p.malloc(size))
        p.check()
        res[name] = (p.total_pages / p.stored_bytes, p.objects / p.total_pages)
        print(f"{name:7s} pages={p.total_pages} objects={p.objects} "
              f"stored={p.stored_bytes} util={p.utilization:.3f} "
              f"objs/page={p.objects / p.total_pages:.2f}")
    zbud, z3fold, zblock = res["zbud"][0], res["z3fold"][0], res["zblock"][0]
    print(f"zbud/z3fold {zbud / z3fold:.3f}  zbud/zblock {zbud / zblock:.3f}")
    assert zbud > z3fold and zbud > zblock
    assert 1.15 < zbud / z3fold < 1.65            # brackets the published 1.30 and 1.59
    assert res["zbud"][1] <= 2.0 and res["z3fold"][1] <= 3.0
