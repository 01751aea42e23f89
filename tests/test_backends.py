"""zram's compression backends (zsmalloc.zram.backends): the sysfs names, the native
lz4 / lzo / lzo-rle backends written in this project, the library ones, the three
methods the zram device calls, and the GIL being released while native ones run."""

import random
import threading

import pytest

import zsmalloc
from zsmalloc.zram import Zram, DecompressError as ZramDecompressError
from zsmalloc.zram.backends import (Backend, DecompressError, Lz4, Lz4Cramjam, Lzo, LzoRle,
                                    available, make_backend)
from zsmalloc.lib import lz4 as L, lzo as Z

from test_lib_common import page_like

NATIVE = ("lz4", "lzo", "lzo-rle")


def test_sysfs_names():
    names = available()
    for name in NATIVE + ("lz4hc", "zstd", "deflate"):
        assert name in names
    assert isinstance(make_backend("lz4"), Lz4)
    assert isinstance(make_backend("lzo"), Lzo) and not make_backend("lzo").rle
    assert isinstance(make_backend("lzo-rle"), LzoRle) and make_backend("lzo-rle").rle
    for name in NATIVE:
        b = make_backend(name)
        assert b.name == name and b.native and isinstance(b, Backend)
    for name in ("lz4hc", "zstd", "deflate"):
        assert not make_backend(name).native
    assert not Lz4Cramjam().native and Lz4Cramjam().name == "lz4"


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError) as e:
        make_backend("lzo_rle")
    msg = str(e.value)
    assert "'lzo_rle'" in msg
    for name in NATIVE:
        assert name in msg


def test_levels():
    assert make_backend("lz4", 4).acceleration == 4
    assert make_backend("lz4").acceleration == 1
    for bad in (0, -2, "x"):
        with pytest.raises(ValueError, match="lz4 level"):
            make_backend("lz4", bad)
    with pytest.raises(ValueError, match="lzo-rle has no compression level"):
        make_backend("lzo-rle", 3)


@pytest.mark.parametrize("name", NATIVE)
def test_the_three_methods(name):
    b = make_backend(name)
    page = page_like(random.Random(1), 4096)
    buf = bytearray(8192)
    n = b.compress_into(page, buf)
    comp = bytes(buf[:n])
    assert comp == (L.compress(page) if name == "lz4" else Z.compress(page, name == "lzo-rle"))
    out = b.decompress(comp, 4096)
    assert type(out) is bytes and out == page
    dst = bytearray(4096)
    assert b.decompress_into(comp, dst) == 4096 and dst == page
    with pytest.raises(DecompressError):
        b.decompress(comp[: n // 2], 4096)
    with pytest.raises(DecompressError):
        b.decompress(comp, 4095)
    assert DecompressError is ZramDecompressError and issubclass(DecompressError, ValueError)


@pytest.mark.parametrize("name", NATIVE)
def test_zram_device_uses_them(name):
    z = Zram(1 << 20, name)
    rng = random.Random(2)
    pages = [page_like(rng, 4096) for _ in range(20)]
    for i, p in enumerate(pages):
        z.write(i, p)
    for i, p in enumerate(pages):
        assert z.read(i) == p
    b = make_backend(name)
    buf = bytearray(8192)
    expect = sum(min(b.compress_into(p, buf), 4096) for p in pages)
    # nothing in these pages is same-filled or huge: compr_data_size is the sum of lengths
    assert z.mm_stat().compr_data_size == expect
    z.close()


def test_lz4_matches_cramjam_on_decoding():
    page = page_like(random.Random(3), 4096)
    buf = bytearray(8192)
    n = Lz4Cramjam().compress_into(page, buf)
    assert make_backend("lz4").decompress(bytes(buf[:n]), 4096) == page


@pytest.mark.skipif(not zsmalloc.COMPILED, reason="pure mode holds the GIL by nature")
@pytest.mark.parametrize("name", NATIVE)
def test_gil_is_released(name):
    """While one thread compresses 48 MB, another runs Python code: it records times
    inside the middle half of the call (impossible if the call held the GIL)."""
    import time
    b = make_backend(name)
    data = page_like(random.Random(4), 1 << 16) * 768
    dst = bytearray(Z.compress_bound(len(data)))
    stamps = []
    running = threading.Event()
    stop = threading.Event()

    def other():
        running.set()
        while not stop.is_set():
            stamps.append(time.perf_counter())

    t = threading.Thread(target=other)
    t.start()
    running.wait()
    try:
        t0 = time.perf_counter()
        b.compress_into(data, dst)
        t1 = time.perf_counter()
    finally:
        stop.set()
        t.join()
    lo, hi = t0 + (t1 - t0) / 4, t1 - (t1 - t0) / 4
    assert any(lo < s < hi for s in stamps)
