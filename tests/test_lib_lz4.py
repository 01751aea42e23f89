"""zsmalloc.lib.lz4: the kernel's LZ4_compress_fast and a safe LZ4_decompress_safe.

Round trips (hypothesis) over random, small-alphabet and page-like inputs up to 70 KB
(both hash-table types), cross-checks with python-lz4 and cramjam (LZ4 1.10) in both
directions, the one documented difference from LZ4 >= 1.8.2, and fuzzed corrupt and
truncated blocks decompressed between guard bytes. Runs compiled or under
``ZSMALLOC_PURE=1`` (smaller counts). Byte-exactness against the running kernel is in
tests/test_lib_kernel.py.
"""

import random

import cramjam
import lz4.block
import pytest
from hypothesis import given, settings, HealthCheck

from zsmalloc.lib import lz4 as L
from zsmalloc.lib import DecompressError

from test_lib_common import (COMPILED, EXAMPLES, FUZZ, inputs, page_like, corruptions,
                             check_guarded_decompress)

SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(inputs())
def test_round_trip_and_reference_decoders(data):
    c = L.compress(data)
    assert len(c) <= L.compress_bound(len(data))
    assert L.decompress(c, len(data)) == data
    out = bytearray(len(data) + 10)
    assert L.decompress_into(c, out) == len(data) and out[:len(data)] == data
    # the format is LZ4's: the reference decoder reads our blocks
    assert lz4.block.decompress(c, uncompressed_size=len(data)) == data if data else True


@SETTINGS
@given(inputs())
def test_decodes_lz4_1_10_blocks(data):
    ref = bytes(cramjam.lz4.compress_block(data, store_size=False))
    assert L.decompress(ref, len(data)) == data


@pytest.mark.parametrize("size", [4096, 16384, 65536, 65547, 100_000])
def test_page_sizes_and_both_table_types(size):
    """4, 16 and 64 KiB pages use the 16-bit table; from 64 KiB + 11 bytes the 32-bit one."""
    if not COMPILED and size > 16384:
        pytest.skip("pure mode: large inputs are slow")
    data = page_like(random.Random(size), size)
    c = L.compress(data)
    assert L.decompress(c, size) == data
    assert lz4.block.decompress(c, uncompressed_size=size) == data
    assert len(c) < size * 0.9         # page-like data compresses


def test_same_as_lz4_1_10_except_near_the_end():
    """LZ4 1.10 compresses a page to the same bytes unless it found a match the kernel's
    1.7.3 cannot: one starting within the last 13 bytes searched (forwardIp > mflimit
    stops 1.7.3 one position earlier). So ours is never shorter, and where they differ
    the blocks agree up to the last sequences."""
    rng = random.Random(7)
    differ = 0
    for i in range(200 if COMPILED else 10):
        data = page_like(rng, 4096)
        ours, ref = L.compress(data), bytes(cramjam.lz4.compress_block(data, store_size=False))
        assert len(ours) >= len(ref)
        if ours != ref:
            differ += 1
            # same encoding of everything but the tail of the page
            common = next(k for k in range(min(len(ours), len(ref))) if ours[k] != ref[k])
            assert common > len(ref) - 64
    assert differ < (200 if COMPILED else 10)


def test_the_1_8_2_search_rule_gives_lz4_1_10s_bytes():
    """The one difference: with the search of LZ4 1.8.2+ (one more position probed before
    the end), ours produces LZ4 1.10's blocks byte for byte."""
    rng = random.Random(8)
    for i in range(200 if COMPILED else 10):
        data = page_like(rng, rng.choice((100, 4096, 16384 if COMPILED else 4096)))
        ref = bytes(cramjam.lz4.compress_block(data, store_size=False))
        assert L.compress(data, lz4_182=True) == ref


def test_small_inputs_are_literals():
    for n in range(0, 13):
        data = bytes(range(n))
        c = L.compress(data)
        assert c == bytes([n << 4]) + data                     # one literal-only sequence
    assert L.compress(b"") == b"\x00"
    assert L.decompress(b"\x00", 0) == b""


def test_acceleration():
    data = page_like(random.Random(3), 4096)
    c1, c8 = L.compress(data, 1), L.compress(data, 8)
    assert L.decompress(c8, 4096) == data
    assert len(c8) >= len(c1)
    assert c1 == L.compress(data)
    for bad in (0, -1, 1.5, "2", True, None):
        with pytest.raises(ValueError, match="acceleration"):
            L.compress(data, bad)


def test_compress_into_errors_change_nothing():
    data = page_like(random.Random(4), 4096)
    n = len(L.compress(data))
    small = bytearray(b"\x11" * (n - 1))
    with pytest.raises(ValueError, match="do not compress into a"):
        L.compress_into(data, small)
    exact = bytearray(n)
    assert L.compress_into(data, exact) == n
    with pytest.raises(TypeError, match="dst must be a writable"):
        L.compress_into(data, bytes(8192))
    with pytest.raises(TypeError, match="src must be"):
        L.compress_into(1234, bytearray(10))
    # any contiguous buffer is bytes
    assert L.compress_into(memoryview(bytearray(data)), bytearray(8192)) == n


def test_decompress_errors():
    c = L.compress(page_like(random.Random(5), 4096))
    with pytest.raises(DecompressError, match="decompresses to 4096 bytes, not 4095|larger than"):
        L.decompress(c, 4095)
    with pytest.raises(DecompressError, match="not 4097"):
        L.decompress(c, 4097)
    with pytest.raises(DecompressError, match="truncated"):
        L.decompress(c[:-3], 4096)
    with pytest.raises(DecompressError):
        L.decompress(b"", 4096)
    with pytest.raises(DecompressError, match="before the start"):
        L.decompress(bytes([0x10, ord("a"), 9, 0, 0x10, ord("b")]), 10)   # offset 9 > 1
    with pytest.raises(DecompressError, match="before the start"):
        L.decompress(bytes([0x10, ord("a"), 0, 0, 0x00]), 10)             # offset 0
    with pytest.raises(ValueError, match="out_len"):
        L.decompress(c, -1)
    assert issubclass(DecompressError, ValueError)


def test_fuzzed_blocks_stay_in_bounds():
    """Corrupt, truncated and random blocks: a DecompressError or some output, never a
    write outside the output or a read past the input."""
    rng = random.Random(11)
    valid = [L.compress(page_like(rng, rng.choice((64, 4096, 9000)))) for _ in range(20)]
    ok = errors = 0
    for i in range(FUZZ):
        bad = corruptions(rng, rng.choice(valid))
        cap = rng.choice((0, 1, 100, 4096, 9000))
        kind, _ = check_guarded_decompress(L.decompress_into, bad, cap, DecompressError)
        ok += kind == "ok"
        errors += kind == "error"
    assert errors > FUZZ // 2 and ok > 0       # both outcomes were exercised


def test_overlapping_matches():
    """Matches closer than their length (runs): offsets 1..16 and long lengths."""
    for off in range(1, 17):
        pat = bytes(range(1, off + 1))
        data = b"x" * 7 + pat * (5000 // off) + b"tail-literals"
        c = L.compress(data)
        assert len(c) < 100
        assert L.decompress(c, len(data)) == data
