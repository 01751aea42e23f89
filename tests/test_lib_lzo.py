"""zsmalloc.lib.lzo: the kernel's lzo1x_1 / lzo-rle compressors and a safe
lzo1x_decompress_safe.

Round trips (hypothesis) for both bitstream versions over inputs up to 70 KB (more than
one 48 KiB chunk), zero runs of every length around the lzo-rle limits, liblzo2
(python-lzo, if installed) decoding our lzo streams and ours decoding liblzo2's, the
compress_bound that lzo-rle needs, and fuzzed corrupt and truncated streams decompressed
between guard bytes. Runs compiled or under ``ZSMALLOC_PURE=1`` (smaller counts).
Byte-exactness against the running kernel is in tests/test_lib_kernel.py.
"""

import random

import pytest
from hypothesis import given, settings, HealthCheck

from zsmalloc.lib import lzo as Z
from zsmalloc.lib import DecompressError

from test_lib_common import (COMPILED, EXAMPLES, FUZZ, inputs, page_like, corruptions,
                             check_guarded_decompress)

try:
    import lzo as liblzo
except ImportError:          # optional: pip install "python-lzo>=1.15" (needs liblzo2-dev)
    liblzo = None

SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
needs_liblzo = pytest.mark.skipif(liblzo is None, reason="python-lzo is not installed")


@SETTINGS
@given(inputs(), inputs(max_size=2000))
def test_round_trip_both_versions(data, head):
    for rle in (False, True):
        c = Z.compress(data, rle)
        assert len(c) <= Z.compress_bound(len(data))
        assert Z.decompress(c, len(data)) == data
        assert c[:2] == b"\x11\x01" if rle else c[:1] != b"\x11" or not data
    # a zero run right after a prefix: runs that start mid-stream
    data = head + bytes(len(data) % 5000) + head
    assert Z.decompress(Z.compress(data, True), len(data)) == data


@needs_liblzo
@SETTINGS
@given(inputs())
def test_liblzo_reads_ours_and_ours_reads_liblzo(data):
    c = Z.compress(data)
    assert liblzo.decompress(c, False, len(data)) == data
    ref = liblzo.compress(data, 1, False)
    assert Z.decompress(ref, len(data)) == data


@pytest.mark.parametrize("run", [3, 4, 5, 11, 12, 2050, 2051, 2052, 2055, 4103, 6000])
def test_zero_runs(run):
    """lzo-rle encodes 4..2051 zero bytes as one 4-byte instruction; longer runs take
    several; shorter ones are ordinary data."""
    rng = random.Random(run)
    data = rng.randbytes(50) + bytes(run) + rng.randbytes(50)
    c = Z.compress(data, rle=True)
    assert Z.decompress(c, len(data)) == data
    assert Z.decompress(Z.compress(data), len(data)) == data
    if 4 <= run <= 2051:
        assert c.count(b"\xfc\xff") >= 1          # the run instruction's 0xfffc word


@pytest.mark.parametrize("size", [4096, 16384, 49151, 49152, 49153, 65536, 100_000])
def test_chunks(size):
    """Inputs are compressed in chunks of 0xc000 (lzo) / 0xbfff (lzo-rle) bytes."""
    if not COMPILED and size > 16384:
        pytest.skip("pure mode: large inputs are slow")
    data = page_like(random.Random(size), size)
    for rle in (False, True):
        c = Z.compress(data, rle)
        assert Z.decompress(c, size) == data
        assert len(c) < size
        if liblzo is not None and not rle:
            assert liblzo.decompress(c, False, size) == data


def test_compress_bound_holds_for_lzo_rle():
    """4 zero bytes then 4 other bytes, repeated: lzo-rle spends 9 bytes per 8 where it
    keeps finding the runs; the kernel's lzo1x_worst_compress (n + n/16 + 69) is too small
    for that, ours is not."""
    worst = 0
    for seed in range(20 if COMPILED else 3):
        rng = random.Random(seed)
        data = b"".join(bytes(4) + bytes(b | 1 for b in rng.randbytes(4)) for _ in range(512))
        c = Z.compress(data, rle=True)
        assert Z.decompress(c, len(data)) == data
        worst = max(worst, len(c))
    assert worst <= Z.compress_bound(4096)
    with pytest.raises(ValueError, match="smaller than compress_bound"):
        Z.compress_into(bytes(4096), bytearray(Z.compress_bound(4096) - 1))


def test_empty_and_tiny():
    for n in range(0, 25):
        data = bytes(range(1, n + 1))
        for rle in (False, True):
            assert Z.decompress(Z.compress(data, rle), n) == data
    assert Z.compress(b"") == b"\x11\x00\x00"          # just the end marker
    assert Z.compress(b"", True) == b"\x11\x01\x11\x00\x00"


def test_decompress_errors():
    data = page_like(random.Random(5), 4096)
    c = Z.compress(data, rle=True)
    with pytest.raises(DecompressError, match="OUTPUT_OVERRUN"):
        Z.decompress(c, 4000)
    with pytest.raises(DecompressError, match="not 4097"):
        Z.decompress(c, 4097)
    with pytest.raises(DecompressError, match="INPUT_OVERRUN"):
        Z.decompress(c[:-3], 4096)
    with pytest.raises(DecompressError, match="INPUT_NOT_CONSUMED"):
        Z.decompress(c + b"\0", 4096)
    with pytest.raises(DecompressError, match="INPUT_OVERRUN"):
        Z.decompress(b"\x11", 10)
    with pytest.raises(DecompressError, match="LOOKBEHIND"):
        # 1 literal, then an M2 match 8 bytes back
        Z.decompress(bytes([18, ord("a"), 0x5c, 0x01, 0x11, 0, 0]), 20)
    with pytest.raises(TypeError, match="dst must be a writable"):
        Z.decompress_into(c, bytes(4096))
    with pytest.raises(ValueError, match="out_len"):
        Z.decompress(c, None)


def test_fuzzed_streams_stay_in_bounds():
    rng = random.Random(12)
    valid = [Z.compress(page_like(rng, rng.choice((64, 4096, 9000))), rng.random() < 0.5)
             for _ in range(20)]
    ok = errors = 0
    for _ in range(FUZZ):
        bad = corruptions(rng, rng.choice(valid))
        cap = rng.choice((0, 1, 100, 4096, 9000))
        kind, _ = check_guarded_decompress(Z.decompress_into, bad, cap, DecompressError)
        ok += kind == "ok"
        errors += kind == "error"
    assert errors > FUZZ // 2 and ok > 0


def test_overlapping_matches():
    for off in range(1, 17):
        pat = bytes(range(1, off + 1))
        data = b"x" * 7 + pat * (5000 // off) + b"tail-literals"
        for rle in (False, True):
            c = Z.compress(data, rle)
            assert len(c) < 200
            assert Z.decompress(c, len(data)) == data
