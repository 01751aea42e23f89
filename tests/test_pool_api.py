"""Pool contract: bad input, object layout, list discipline and compaction order."""

import random

import pytest

import zsmalloc
from zsmalloc.core.layout import FULL_618


def _snapshot(pool):
    return (pool.total_pages, pool.objects, pool.pages_compacted,
            [r.as_dict() for r in pool.class_stats()], pool.arena.frames_in_use)


@pytest.fixture(params=["linux-6.18", "linux-4.8"])
def pool(request):
    p = zsmalloc.Pool(profile=request.param)
    rng = random.Random(3)
    for _ in range(500):
        h = p.malloc(rng.randint(1, 4096))
        p.write(h, b"x")
    return p


@pytest.mark.parametrize("bad", [0, -1, 4097, 10**9, 1.5, "12", None, True])
def test_malloc_bad_size(pool, bad):
    before = _snapshot(pool)
    with pytest.raises(ValueError, match=repr(bad).replace("(", r"\(").replace(".", r"\.")):
        pool.malloc(bad)
    assert _snapshot(pool) == before
    pool.check()


def test_bad_handles(pool):
    h = pool.malloc(100)
    pool.write(h, b"a" * 100)
    pool.free(h)
    before = _snapshot(pool)
    made_up = [h, 0, -5, 123456789, 1 << 40, (0x7FFE << 32) | 1, 1 << 63, 1 << 70, -(1 << 70),
               "h", None, 2.0, True]
    for bad in made_up:
        for op in (pool.free, lambda x: pool.read(x, 1), lambda x: pool.write(x, b"z")):
            with pytest.raises(zsmalloc.InvalidHandle, match="not a live handle"):
                op(bad)
    assert _snapshot(pool) == before
    pool.check()


def test_stale_handle_after_reuse_is_refused(pool):
    h1 = pool.malloc(200)
    pool.free(h1)
    h2 = pool.malloc(200)      # very likely reuses the same row
    pool.write(h2, b"live" * 50)
    with pytest.raises(zsmalloc.InvalidHandle):
        pool.free(h1)
    with pytest.raises(zsmalloc.InvalidHandle):
        pool.write(h1, b"oops")
    assert pool.read(h2) == b"live" * 50


def test_write_longer_than_allocation(pool):
    h = pool.malloc(100)
    pool.write(h, b"k" * 100)
    before = _snapshot(pool)
    with pytest.raises(ValueError, match="101 bytes .* allocation of 100"):
        pool.write(h, b"z" * 101)
    with pytest.raises(ValueError, match="read length 101"):
        pool.read(h, 101)
    with pytest.raises(ValueError, match="read length -1"):
        pool.read(h, -1)
    assert _snapshot(pool) == before
    assert pool.read(h) == b"k" * 100
    pool.check()


def test_handle_kept_in_object_header_and_lifo_reuse():
    pool = zsmalloc.Pool()
    hs = [pool.malloc(100) for _ in range(5)]      # class 112: objects 0..4 of one zspage
    z = pool.zspage_of(hs[0])
    for i, h in enumerate(hs):
        assert pool.object_handle(z, i) == h       # header holds the handle, index order
    pool.free(hs[1])
    pool.free(hs[3])
    assert pool.object_handle(z, 1) == pool.object_handle(z, 3) == 0
    assert pool.zspages.freeobj_of(z) == 3         # last freed first
    h = pool.malloc(100)
    assert pool.location(h)[1] == 3
    h = pool.malloc(100)
    assert pool.location(h)[1] == 1
    pool.check()


def test_huge_objects_have_no_header():
    pool = zsmalloc.Pool()
    data = bytes(range(256)) * 16
    h = pool.malloc(4096)
    pool.write(h, data)
    assert pool.read(h) == data
    assert pool.class_of(h).huge
    assert pool.total_pages == 1
    assert pool.arena.frame_bytes(pool.frame_of(h)) == data   # all 4096 bytes are payload
    pool.free(h)
    assert pool.total_pages == 0


def test_spanning_object_round_trip():
    pool = zsmalloc.Pool()
    # class 352 (ppz 8, objs 93): object 11 starts at 3872 and runs into frame 1
    hs = [pool.malloc(340) for _ in range(12)]
    blobs = [bytes([i]) * 340 for i in range(12)]
    for h, b in zip(hs, blobs):
        pool.write(h, b)
    assert all(pool.read(h) == b for h, b in zip(hs, blobs))
    off = 11 * 352
    assert off // 4096 == 0 and (off + 352) > 4096
    pool.check()


def test_empty_zspage_freed_at_once():
    pool = zsmalloc.Pool()
    h = pool.malloc(330)
    assert pool.total_pages == 8
    pool.free(h)
    assert pool.total_pages == 0 and pool.arena.frames_in_use == 0


def test_618_groups_insert_at_head_and_keep_place():
    pool = zsmalloc.Pool()
    cls = pool.class_for(2000)                 # class 2048: 1 page, 2 objects
    a = pool.malloc(2000)
    b = pool.malloc(2000)                      # zspage A full
    c = pool.malloc(2000)                      # zspage B, 1/2 -> 50% group (6)
    zt = pool.zspages
    zA, zB = pool.zspage_of(a), pool.zspage_of(c)
    assert zt.group_of(zA) == FULL_618 and zt.group_of(zB) == 6
    pool.free(a)                               # A -> group 6, at the head
    assert zt.list_of(cls, 6) == [zA, zB]
    pool.malloc(2000)                          # takes the head (A) -> full again
    assert zt.list_of(cls, 6) == [zB]
    del b


def test_48_inuse_optimisation_inserts_second():
    pool = zsmalloc.Pool(profile="linux-4.8")
    cls = pool.class_for(100)                  # class 112
    n = cls.objs
    zt = pool.zspages
    first = [pool.malloc(100) for _ in range(n)]          # zspage 1 full
    second = [pool.malloc(100) for _ in range(n)]         # zspage 2 full
    z1, z2 = pool.zspage_of(first[0]), pool.zspage_of(second[0])
    # free 2 from z1 (-> ALMOST_FULL, head), then 1 from z2 (more inuse than head -> head)
    pool.free(first[0]); pool.free(first[1])
    pool.free(second[0])
    assert zt.list_of(cls, 2) == [z2, z1]
    # free more from z1 (moves nowhere while still ALMOST_FULL) ... now a third zspage
    third = [pool.malloc(100) for _ in range(n + 2)]      # fills z2, z1 then a new one
    pool.check()
    del third


def test_compaction_618_moves_lowest_index_into_fullest():
    pool = zsmalloc.Pool()
    assert pool.class_for(1000).size == 1024    # 1 page, 4 objects
    hs = [pool.malloc(1000) for _ in range(8)]  # two full zspages
    for i, h in enumerate(hs):
        pool.write(h, bytes([i]) * 1000)
    pool.free(hs[0]); pool.free(hs[1]); pool.free(hs[2])   # zspage 1: 1/4 (group 3)
    pool.free(hs[7])                                       # zspage 2: 3/4 (group 8)
    assert pool.can_compact() == 1
    assert pool.compact() == 1
    assert pool.total_pages == 1 and pool.pages_compacted == 1
    for i in (3, 4, 5, 6):
        assert pool.read(hs[i]) == bytes([i]) * 1000
    # the moved object (index 3 of zspage 1) took zspage 2's last-freed slot (index 3)
    assert pool.location(hs[3])[1] == 3
    assert pool.compact() == 0
    pool.check()


def test_frames_go_back_to_the_os():
    pool = zsmalloc.Pool()
    hs = [pool.malloc(3000) for _ in range(2000)]
    for h in hs:
        pool.write(h, b"\xAA" * 3000)
    arena = pool.arena
    assert arena.chunks_mapped >= 2
    rss_kb = arena.resident_bytes
    full = rss_kb()
    for h in hs[: len(hs) * 3 // 4]:
        pool.free(h)
    pool.flush()
    pool.compact()
    pool.flush()
    after = rss_kb()
    assert after < full * 0.5, (full, after)
    for h in hs[len(hs) * 3 // 4:]:
        pool.free(h)
    assert arena.chunks_mapped == 0           # emptied chunks are given back
    assert rss_kb() == 0


@pytest.mark.parametrize("concurrent", [False, True])
def test_malloc_with_data(concurrent):
    pool = zsmalloc.Pool(concurrent=concurrent)
    for n in (1, 100, 340, 3000, 4096):          # 340: class 352 objects span frames
        hs = [pool.malloc(n, bytes([i % 251]) * n) for i in range(20)]
        assert all(pool.read(h) == bytes([i % 251]) * n for i, h in enumerate(hs))
    before = (pool.total_pages, pool.objects)
    with pytest.raises(ValueError, match="does not fit"):
        pool.malloc(10, b"x" * 11)
    assert (pool.total_pages, pool.objects) == before
    pool.check()


def test_metadata_given_back_after_churn():
    pool = zsmalloc.Pool(zsmalloc.PoolConfig(chunk_frames=64))
    rng = random.Random(11)
    live = {}
    for _ in range(30000):
        n = rng.randint(1, 4096)
        h = pool.malloc(n, rng.randbytes(8) * (n // 8))
        live[h] = n
    order = sorted(live)                      # free the newest three quarters: tails go
    dead = order[len(order) // 4:]
    for h in dead:
        pool.free(h)
        del live[h]
    rows_before = pool.zspages.rows
    md_before = pool.metadata_bytes()["total"]
    pool.compact()
    pool.shrink_arena()
    assert pool.zspages.rows == len(pool.zspages.live_ids()) < rows_before / 2
    assert pool.handles.rows <= max(h & ((1 << 30) - 1) for h in live) + 1
    assert pool.metadata_bytes()["total"] < md_before / 2
    pool.check()
    for h in live:
        assert len(pool.read(h)) == live[h]
    with pytest.raises(zsmalloc.InvalidHandle):
        pool.read(dead[-1])                   # its row was cut off
    for _ in range(2000):                     # rows come back with new generations
        h = pool.malloc(100)
        assert h not in dead
    pool.check()
