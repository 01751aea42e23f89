"""ZramDisk: bytes in and out of a page-based Zram, against a bytearray as the reference."""

from __future__ import annotations

import random
import sys
import threading
import time

import pytest

import zsmalloc
from zsmalloc.nbd.disk import NotFast, RangeLock, ZramDisk


def make(disk_pages=64, page_size=4096, concurrent=False, comp="lz4"):
    z = zsmalloc.Zram(disk_pages * page_size, comp, zsmalloc.PoolConfig(page_size=page_size),
                      concurrent=concurrent)
    return z, ZramDisk(z)


def chunk(rnd: random.Random, n: int) -> bytes:
    kind = rnd.randrange(4)
    if kind == 0:
        return rnd.randbytes(n)                                # incompressible (huge pages)
    if kind == 1:
        return bytes(n)                                        # zeros (same-filled)
    if kind == 2:
        return (rnd.randbytes(8) * (n // 8 + 1))[:n]           # one repeated word
    return (b"compressible %d " % rnd.randrange(99) * (n // 10 + 1))[:n]


@pytest.mark.parametrize("page_size,seed", [(4096, 1), (4096, 2), (16384, 3)])
def test_random_operations_match_a_bytearray(page_size, seed):
    rnd = random.Random(seed)
    z, d = make(48, page_size)
    P, size = page_size, d.size
    ref = bytearray(size)
    for step in range(300):
        op = rnd.randrange(10)
        off = rnd.choice((rnd.randrange(size), rnd.randrange(size // P) * P))
        n = rnd.choice((1, 511, P, 3 * P, rnd.randrange(1, 5 * P)))
        n = min(n, size - off) or 1
        if off + n > size:
            off = size - n
        if op < 5:
            data = chunk(rnd, n)
            d.pwrite(off, data)
            ref[off:off + n] = data
        elif op < 7:
            assert d.pread(off, n) == ref[off:off + n], f"step {step}"
        elif op == 7:
            freed = d.trim(off, n)
            first, end = -(-off // P), (off + n) // P
            assert freed == max(0, end - first)
            for i in range(first, end):                        # whole pages only
                ref[i * P:(i + 1) * P] = bytes(P)
        else:
            d.write_zeroes(off, n, no_hole=op == 9)
            ref[off:off + n] = bytes(n)
        if step % 50 == 0:
            z.pool.check()
    assert d.pread(0, size) == ref
    z.pool.check()
    z.close()


def test_partial_discard_zeroes_nothing_and_frees_nothing():
    z, d = make(8)
    page = bytes(range(256)) * 16                  # compressible, not same-filled
    d.pwrite(0, page * 3)
    before = z.mm_stat()
    assert d.trim(100, 4000) == 0                  # inside one page: ignored
    assert d.trim(4095, 4096) == 0                 # touches two pages, covers neither
    assert z.mm_stat().orig_data_size == before.orig_data_size
    assert d.pread(0, 3 * 4096) == page * 3
    assert d.trim(100, 2 * 4096) == 1              # covers page 1 only
    assert d.pread(0, 3 * 4096) == page + bytes(4096) + page
    assert z.mm_stat().orig_data_size == 2 * 4096
    assert z.io_stat().notify_free == 1
    z.close()


def test_write_zeroes_discards_or_stores_zero_pages_and_patches_partial_ones():
    z, d = make(8)
    page = bytes(range(256)) * 16                  # compressible, not same-filled
    d.pwrite(0, page * 8)
    assert z.mm_stat().same_pages == 0
    d.write_zeroes(4096, 2 * 4096)                 # whole pages: discarded, as zram does
    assert z.io_stat().notify_free == 2
    assert z.mm_stat().orig_data_size == 6 * 4096
    d.write_zeroes(4 * 4096, 4096, no_hole=True)   # stored as a same-filled zero page
    assert z.mm_stat().same_pages == 1
    assert z.mm_stat().orig_data_size == 6 * 4096
    d.write_zeroes(5 * 4096 + 10, 20)              # partial: read-modify-write
    patched = page[:10] + bytes(20) + page[30:]
    assert d.pread(5 * 4096, 4096) == patched
    with pytest.raises(NotFast):                   # a fast zero that needs a RMW is refused
        d.write_zeroes(6 * 4096 + 1, 4096, fast=True)
    assert d.pread(6 * 4096, 4096) == page
    d.write_zeroes(6 * 4096, 4096, fast=True)      # aligned: fine
    assert d.pread(0, 8 * 4096) == (page + bytes(2 * 4096) + page + bytes(4096) + patched
                                    + bytes(4096) + page)
    z.close()


def test_on_discard_hook_counts_freed_pages():
    z, d = make(8)
    seen = []
    d.on_discard = seen.append
    d.trim(0, 3 * 4096 + 5)
    d.trim(10, 20)
    d.write_zeroes(4 * 4096, 2 * 4096)
    d.write_zeroes(7 * 4096, 4096, no_hole=True)
    assert seen == [3, 2]
    z.close()


def test_bad_ranges_are_value_errors_and_change_nothing():
    z, d = make(4)
    d.pwrite(0, b"x" * 100)
    for off, n in ((-1, 10), (0, 0), (4 * 4096 - 1, 2), (4 * 4096, 1), (0.5, 3)):
        with pytest.raises(ValueError):
            d.pread(off, n)
        with pytest.raises(ValueError):
            d.pwrite(off, b"y" * n if isinstance(n, int) and n > 0 else b"")
        with pytest.raises(ValueError):
            d.trim(off, n)
    assert d.pread(0, 100) == b"x" * 100
    z.close()


def test_mem_limit_refusal_keeps_the_old_data():
    z, d = make(64)
    rnd = random.Random(5)
    old = rnd.randbytes(4 * 4096)
    d.pwrite(0, old)
    z.mem_limit = z.mm_stat().mem_used_total + 2 * 4096
    new = rnd.randbytes(32 * 4096)                 # incompressible: needs 32 more pages
    with pytest.raises(MemoryError):
        d.pwrite(0, new)
    assert z.io_stat().failed_writes == 1
    got = d.pread(0, 32 * 4096)
    # pages are written in order until one is refused: that one and the rest are unchanged
    written = next(i for i in range(32) if got[i * 4096:(i + 1) * 4096] != new[i * 4096:(i + 1) * 4096])
    assert written >= 1
    assert got[written * 4096:] == (old + bytes(28 * 4096))[written * 4096:]
    # a partial write to a page is refused the same way, leaving that page as it was
    before = d.pread(written * 4096, 4096)
    with pytest.raises(MemoryError):
        d.pwrite(written * 4096 + 7, rnd.randbytes(100))
    assert d.pread(written * 4096, 4096) == before
    z.close()


def test_concurrent_partial_writes_to_shared_pages_lose_nothing():
    """Threads patch disjoint 512-byte slices of the same pages: every slice survives.

    Without the range lock, one thread's read-modify-write undoes another's.
    """
    z, d = make(8, concurrent=True)
    nthreads, rounds = 8, 40
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)                    # switch threads as often as possible
    errors = []

    def worker(k):
        try:
            for r in range(rounds):
                pat = bytes([k * 16 + r % 16]) * 512
                for page in range(4):
                    d.pwrite(page * 4096 + k * 512, pat)
        except Exception as e:                     # pragma: no cover - reported below
            errors.append(e)

    try:
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors
    want = b"".join(bytes([k * 16 + (rounds - 1) % 16]) * 512 for k in range(nthreads))
    for page in range(4):
        assert d.pread(page * 4096, 4096) == want, f"page {page}"
    z.close()


def test_range_lock_serialises_overlaps_only():
    lock = RangeLock()
    order = []
    with lock.hold(0, 10):
        t = threading.Thread(target=lambda: [lock.hold(5, 6).__enter__(), order.append("overlap")])
        t.start()
        with lock.hold(11, 20):                    # disjoint: no wait
            order.append("disjoint")
        time.sleep(0.05)
        assert order == ["disjoint"]               # the overlapping holder still waits
        order.append("release")
    t.join(5)
    assert order == ["disjoint", "release", "overlap"]


def test_zstd_device_is_safe_to_share_between_threads():
    """zstd's backend shares one compressor between threads; the disk serialises its calls
    (without that, this crashes the interpreter)."""
    z, d = make(512, concurrent=True, comp="zstd")
    datas = [random.Random(k).randbytes(2048) * 32 for k in range(4)]   # 64 KiB each
    errors = []

    def worker(k):
        try:
            for r in range(60):
                off = (k * 128 + r % 8 * 8) * 4096           # each thread its own pages
                d.pwrite(off, datas[k])
                assert d.pread(off, len(datas[k])) == datas[k]
        except Exception as e:                     # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    z.close()
