"""Zram device rules (spec §10), each on its own; no kernel needed."""

import random

import pytest

import zsmalloc
from zsmalloc.zram import Zram, available_backends as available_codecs, make_backend as make_codec
from zsmalloc.zram.pages import craft_page, incompressible_page, lz4_len, same_filled_page

P = 4096


def fields(z):
    return z.mm_stat()


def test_one_page_per_spec_box():
    rng = random.Random(1)
    for comp_len, mem in [(330, 32768), (125, 28672), (190, 12288), (3624, 32768)]:
        z = Zram(1 << 20)
        z.write(0, craft_page(comp_len, rng))
        m = z.mm_stat()
        assert (m.orig_data_size, m.compr_data_size, m.mem_used_total, m.mem_used_max) == \
            (4096, comp_len, mem, mem)
    z = Zram(1 << 20)
    z.write(0, craft_page(3625, rng))
    m = z.mm_stat()
    assert (m.compr_data_size, m.mem_used_total, m.huge_pages, m.huge_pages_since) == (4096, 4096, 1, 1)


def test_same_filled_pages_allocate_nothing():
    z = Zram(1 << 20)
    for i, word in enumerate((0, 0xABABABABABABABAB, 0x0123456789ABCDEF)):
        pg = same_filled_page(word)
        z.write(i, pg)
        assert z.read(i) == pg
    m = z.mm_stat()
    assert m.same_pages == 3 and m.orig_data_size == 3 * P and m.compr_data_size == 0
    assert m.mem_used_total == 0 and m.mem_used_max == 0
    # a 16-byte pattern is not same-filled
    z.write(5, (b"\x01" * 8 + b"\x02" * 8) * 256)
    assert z.mm_stat().same_pages == 3 and z.mm_stat().mem_used_total > 0


def test_overwrite_allocates_before_free_and_samples_max():
    rng = random.Random(2)
    z = Zram(1 << 20)
    z.write(0, craft_page(330, rng))          # class 352: 8 pages
    z.write(0, craft_page(125, rng))          # class 144: 7 pages, allocated before the free
    m = z.mm_stat()
    assert m.mem_used_total == 7 * P
    assert m.mem_used_max == 15 * P           # both zspages existed at the sample
    z.reset_mem_used_max()
    assert z.mm_stat().mem_used_max == 7 * P


def test_mem_limit_refuses_and_keeps_old_data():
    rng = random.Random(3)
    z = Zram(1 << 20)
    old = craft_page(330, rng)
    z.write(0, old)
    z.mem_limit = 10 * P
    before = z.mm_stat()
    with pytest.raises(MemoryError, match="mem_limit"):
        z.write(1, craft_page(125, rng))      # needs 7 more pages: 15 > 10
    with pytest.raises(MemoryError):
        z.write(0, craft_page(125, rng))      # overwrite refused: old data stays
    after = z.mm_stat()
    assert z.read(0) == old
    assert after.mem_used_max == 15 * P       # sampled by the refused allocation, as the kernel
    assert after._replace(mem_used_max=0) == before._replace(mem_used_max=0) if hasattr(after, "_replace") else \
        (after.orig_data_size, after.compr_data_size, after.mem_used_total) == \
        (before.orig_data_size, before.compr_data_size, before.mem_used_total)
    assert z.io_stat().failed_writes == 2
    z.mem_limit = 0
    z.write(1, craft_page(125, rng))
    assert z.mm_stat().mem_limit == 0


def test_discard_counts_notify_free_and_reads_zero():
    rng = random.Random(4)
    z = Zram(1 << 20)
    for i in range(4):
        z.write(i, craft_page(1000, rng))
    z.discard(1, 2)
    z.discard(200)                            # an empty slot still counts
    assert z.io_stat().notify_free == 3
    assert z.read(1) == bytes(P) and z.read(2) == bytes(P) and z.read(200) == bytes(P)
    assert z.mm_stat().orig_data_size == 2 * P
    assert str(z.io_stat()) == "       0        0        0        3\n"


def test_read_unwritten_is_zero_and_huge_round_trip():
    rng = random.Random(5)
    z = Zram(1 << 20)
    assert z.read(7) == bytes(P)
    pg = incompressible_page(rng)
    z.write(7, pg)
    assert z.read(7) == pg
    assert z.mm_stat().huge_pages == 1
    z.write(7, craft_page(500, rng))
    assert z.mm_stat().huge_pages == 0 and z.mm_stat().huge_pages_since == 1


def test_mm_stat_format_matches_sysfs():
    z = Zram(1 << 20)
    z.write(0, craft_page(330, random.Random(6)))
    assert str(z.mm_stat()) == "    4096      330    32768        0    32768        0        0        0        0\n"
    assert str(z.debug_stat()) == "version: 1\n       0        0\n"


def test_compaction_through_the_device():
    rng = random.Random(7)
    z = Zram(8 << 20)
    pages = {}
    for i in range(1500):
        pages[i] = craft_page(rng.randint(100, 3000), rng)
        z.write(i, pages[i])
    for i in rng.sample(range(1500), 1100):
        z.discard(i)
        del pages[i]
    before = z.mm_stat().mem_used_total
    freed = z.compact()
    assert freed > 0 and z.mm_stat().mem_used_total == before - freed * P
    assert z.mm_stat().pages_compacted == freed
    for i, pg in pages.items():
        assert z.read(i) == pg
    z.pool.check()


@pytest.mark.parametrize("bad,exc", [(-1, ValueError), (256, ValueError), (1 << 70, ValueError),
                                     (1.0, TypeError), ("3", TypeError), (None, TypeError)])
def test_bad_index(bad, exc):
    z = Zram(1 << 20)                         # 256 pages
    z.write(0, same_filled_page(1))
    before = z.mm_stat(), z.io_stat()
    with pytest.raises(exc, match="index"):
        z.write(bad, bytes(P))
    with pytest.raises(exc, match="index"):
        z.read(bad)
    with pytest.raises(exc, match="index"):
        z.discard(bad)
    assert (z.mm_stat(), z.io_stat()) == before


@pytest.mark.parametrize("page", [[0] * P, "x" * P, 12, None, memoryview(bytes(2 * P))[::2]])
def test_bad_page_type_is_a_type_error_not_a_device_failure(page):
    """A caller's type error is a TypeError and never counts as a failed write."""
    z = Zram(1 << 20)
    z.write(0, craft_page(300, random.Random(1)))
    before = z.mm_stat(), z.io_stat(), z.num_writes
    with pytest.raises(TypeError):
        z.write(0, page)
    with pytest.raises(TypeError):
        z.write_pages(0, page)
    assert (z.mm_stat(), z.io_stat(), z.num_writes) == before
    assert lz4_len(z.read(0)) == 300


def test_bad_page_length_count_and_disksize():
    z = Zram(1 << 20)
    with pytest.raises(ValueError, match="4095 bytes"):
        z.write(0, bytes(4095))
    with pytest.raises(ValueError, match="runs past"):
        z.discard(250, 10)
    for bad in (0, -4096, 1.5, "1M"):
        with pytest.raises(ValueError, match="disksize"):
            Zram(bad)
    with pytest.raises(ValueError, match="fill word"):
        z.write_same(0, 1 << 64)
    with pytest.raises(TypeError, match="fill word"):
        z.write_same(0, 1.0)
    with pytest.raises(ValueError, match="mem_limit"):
        z.mem_limit = -1
    assert z.mm_stat().orig_data_size == 0 and z.io_stat().notify_free == 0


def test_unknown_algorithm_lists_available():
    with pytest.raises(ValueError, match="unknown compression algorithm 'lzma'.*lz4"):
        Zram(1 << 20, "lzma")


@pytest.mark.parametrize("name", available_codecs())
def test_codecs_round_trip(name):
    rng = random.Random(8)
    z = Zram(1 << 20, name)
    pages = [craft_page(rng.randint(100, 4000), rng) for _ in range(20)] + [incompressible_page(rng)]
    for i, pg in enumerate(pages):
        z.write(i, pg)
    for i, pg in enumerate(pages):
        assert z.read(i) == pg
    buf = bytearray(2 * P)
    n = make_codec(name).compress_into(pages[0], buf)
    assert 0 < n <= 2 * P


def test_reset_frees_everything_and_stays_usable():
    rng = random.Random(9)
    z = Zram(1 << 20)
    for i in range(50):
        z.write(i, craft_page(rng.randint(100, 4000), rng))
    z.mem_limit = 1 << 20
    z.discard(3)
    z.reset()
    assert tuple(z.mm_stat()) == (0,) * 9
    assert z.io_stat().as_tuple() == (0, 0, 0, 0)
    assert z.read(0) == bytes(P)
    pg = craft_page(700, rng)
    z.write(0, pg)
    assert z.read(0) == pg


@pytest.mark.parametrize("page_size", [16384, 65536])
def test_large_page_devices(page_size):
    rng = random.Random(10)
    z = Zram(4 << 20, config=zsmalloc.PoolConfig(page_size=page_size))
    pages = {}
    for i in range(40):
        pg = b"".join(craft_page(rng.randint(100, 4000), rng) for _ in range(page_size // 4096))
        z.write(i, pg)
        pages[i] = pg
    for i, pg in pages.items():
        assert z.read(i) == pg
    assert z.mm_stat().orig_data_size == 40 * page_size
    with pytest.raises(ValueError, match=f"must be {page_size}"):
        z.write(0, bytes(4096))


def test_48_profile_uses_max_zpage_size():
    rng = random.Random(11)
    z = Zram(1 << 20, config=zsmalloc.PoolConfig(profile="linux-4.8"))
    z.write(0, craft_page(3072, rng))
    assert z.mm_stat().huge_pages == 0
    z.write(1, craft_page(3073, rng))
    assert z.mm_stat().huge_pages == 1


@pytest.mark.parametrize("concurrent", [False, True])
def test_page_buffer_types_and_near_same_filled(concurrent):
    """bytes, bytearray and memoryview pages all work, same-filled ones included; a page
    whose first and last words agree but whose middle differs is not same-filled."""
    z = Zram(1 << 20, concurrent=concurrent)
    same = same_filled_page(0x0123456789ABCDEF)
    near = bytearray(same)
    near[2000] ^= 0xFF
    pages = [same, bytearray(same), memoryview(same), bytes(near), memoryview(bytes(near)),
             craft_page(700, random.Random(3))]
    for i, pg in enumerate(pages):
        z.write(i, pg)
    for i, pg in enumerate(pages):
        assert z.read(i) == bytes(pg)
    m = z.mm_stat()
    assert m.same_pages == 3
    assert m.mem_used_total > 0 and m.compr_data_size > 0


def test_corrupt_object_fails_the_read_and_counts():
    """A stored object that no longer decompresses to a page: OSError naming the index,
    failed_reads counted, the slot left as it was (the kernel's -EIO on read)."""
    z = Zram(1 << 20)
    z.write(5, craft_page(900, random.Random(4)))
    h = z.slot(5)[0]
    z.pool.write(h, b"\xff" * 16)          # break the LZ4 block's first sequences
    with pytest.raises(OSError, match="page 5"):
        z.read(5)
    assert z.io_stat().failed_reads == 1
    assert z.mm_stat().compr_data_size == 900
