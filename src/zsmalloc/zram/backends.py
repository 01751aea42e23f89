"""zram's compression backends. Kernel: drivers/block/zram/zcomp.c and backend_*.c.

A backend compresses one page into a buffer of at least twice the page size (the kernel's
``dst_len = 2 * PAGE_SIZE``) and returns the length, and decompresses an object back into
a page. ``make_backend(name, level)`` takes the names sysfs uses.

The interface (``Backend``, a compiled class: see backends.pxd) is what the compiled zram
device calls, at C speed:

``compress_into(src, dst) -> int``
    compress the bytes-like ``src`` into the writable ``dst``; returns the length.
``decompress(src, out_len) -> bytes``
    exactly ``out_len`` bytes, or ``DecompressError`` (a corrupt or truncated object).
``decompress_into(src, dst) -> int``
    into a writable buffer; returns the length written, or ``DecompressError``.

Backends written in this project (``native``: ``lz4``, ``lzo``, ``lzo-rle``, from
``zsmalloc.lib``) produce the kernel's bytes, so compressed lengths and every counter built
on them equal the kernel's; they run without the GIL inside these calls, so threads
compress in parallel. The others call a library (cramjam, zstandard, zlib): ``lz4hc``,
``zstd``, ``deflate``, and ``Lz4Cramjam`` (LZ4 1.10, kept for comparisons; no sysfs name).
"""

from __future__ import annotations

import threading

import cython
import zlib

from ..lib import lz4 as _lz4
from ..lib import lzo as _lzo
from ..lib.lz4 import decompress as lz4_decompress, decompress_at as lz4_decompress_at
from ..lib.lzo import decompress as lzo_decompress, decompress_at as lzo_decompress_at
from ..lib.errors import DecompressError

__all__ = ["Backend", "Lz4", "Lzo", "LzoRle", "Lz4Cramjam", "Lz4hc", "Zstd", "Deflate",
           "DecompressError", "make_backend", "available"]


class Backend:
    """One compression backend. Kernel: struct zcomp_ops."""

    def __init__(self, name: str, level=None, native: bool = False):
        self.name = name
        self.level = level
        self.native = native

    def compress_into(self, src, dst) -> cython.Py_ssize_t:
        raise NotImplementedError

    def decompress_into(self, src, dst) -> cython.Py_ssize_t:
        raise NotImplementedError

    def decompress(self, src, out_len: cython.Py_ssize_t) -> bytes:
        out = bytearray(out_len)
        n = self.decompress_into(src, out)
        if n != out_len:
            raise DecompressError(f"{self.name}: object decompresses to {n} bytes, not {out_len}")
        return bytes(out)

    def decompress_at(self, src, start: cython.Py_ssize_t, n: cython.Py_ssize_t,
                      out_len: cython.Py_ssize_t) -> bytes:
        """``decompress`` of the ``n`` bytes at ``start`` in the buffer ``src`` (an object
        where it lies in the pool's memory)."""
        return self.decompress(memoryview(src)[start:start + n], out_len)

    def __repr__(self):
        return f"<zram backend {self.name}{'' if self.level is None else f' level {self.level}'}>"


class _Library(Backend):
    """A backend whose compressor is a library function returning bytes."""

    def compress_into(self, src, dst) -> cython.Py_ssize_t:
        out = self._compress(src)
        n = len(out)
        if n > len(dst):
            raise ValueError(f"{self.name}: {n} compressed bytes do not fit a {len(dst)}-byte buffer")
        dst[:n] = out
        return n

    def decompress_into(self, src, dst) -> cython.Py_ssize_t:
        try:
            out = self._decompress(bytes(src), len(dst))
        except Exception as e:
            raise DecompressError(f"{self.name}: {e}") from None
        n = len(out)
        if n > len(dst):
            raise DecompressError(f"{self.name}: object decompresses past {len(dst)} bytes")
        dst[:n] = out
        return n


def _lz4_acceleration(level) -> int:
    """Kernel: lz4_setup_params (level unset: LZ4_ACCELERATION_DEFAULT; below 1: -EINVAL)."""
    if level is None:
        return 1
    if isinstance(level, bool) or not isinstance(level, int) or level < 1:
        raise ValueError(f"lz4 level (acceleration) {level!r} must be an int >= 1")
    return level


class Lz4(Backend):
    """The kernel's LZ4 (lib/lz4, 1.7.3), written here: zsmalloc.lib.lz4. Kernel:
    backend_lz4 (LZ4_compress_fast with acceleration ``level``, default 1;
    LZ4_decompress_safe). Runs without the GIL."""

    def __init__(self, level=None):
        accel = _lz4_acceleration(level)
        super().__init__("lz4", level, native=True)
        self.acceleration = accel

    def compress_into(self, src, dst) -> cython.Py_ssize_t:
        return _lz4.compress_into(src, dst, self.acceleration)

    def decompress_into(self, src, dst) -> cython.Py_ssize_t:
        return _lz4.decompress_into(src, dst)

    def decompress(self, src, out_len: cython.Py_ssize_t) -> bytes:
        return lz4_decompress(src, out_len)

    def decompress_at(self, src, start: cython.Py_ssize_t, n: cython.Py_ssize_t,
                      out_len: cython.Py_ssize_t) -> bytes:
        return lz4_decompress_at(src, start, n, out_len)


class Lzo(Backend):
    """The kernel's LZO1X-1 (lib/lzo), written here: zsmalloc.lib.lzo. Kernel: backend_lzo
    (lzo1x_1_compress, lzo1x_decompress_safe); ``LzoRle``: backend_lzorle
    (lzorle1x_1_compress). LZO has no level. Runs without the GIL."""

    def __init__(self, level=None, rle: bool = False):
        name = "lzo-rle" if rle else "lzo"
        if level is not None:
            raise ValueError(f"{name} has no compression level (got {level!r})")
        super().__init__(name, None, native=True)
        self.rle = bool(rle)

    def compress_into(self, src, dst) -> cython.Py_ssize_t:
        return _lzo.compress_into(src, dst, self.rle)

    def decompress_into(self, src, dst) -> cython.Py_ssize_t:
        return _lzo.decompress_into(src, dst)

    def decompress(self, src, out_len: cython.Py_ssize_t) -> bytes:
        return lzo_decompress(src, out_len)

    def decompress_at(self, src, start: cython.Py_ssize_t, n: cython.Py_ssize_t,
                      out_len: cython.Py_ssize_t) -> bytes:
        return lzo_decompress_at(src, start, n, out_len)


class LzoRle(Lzo):
    """lzo-rle, the kernel's default zram compressor. Kernel: backend_lzorle."""

    def __init__(self, level=None):
        super().__init__(level, rle=True)


class Lz4Cramjam(_Library):
    """LZ4 block via cramjam (LZ4 1.10), for comparisons: not what ``make_backend("lz4")``
    returns. Its lengths differ from the kernel's lib/lz4 on a few per cent of real pages
    (1-6 bytes shorter: LZ4 1.8.2 and later search one byte closer to the end of the
    input; see docs/compressors.md)."""

    def __init__(self, level=None):
        import cramjam
        accel = _lz4_acceleration(level)
        super().__init__("lz4", level)
        self.acceleration = accel
        c = cramjam.lz4
        self._cj = c
        self._compress = lambda src: c.compress_block(src, acceleration=accel, store_size=False)
        try:
            from lz4.block import decompress as lz4_decompress
            self._decompress = lambda data, cap: lz4_decompress(data, uncompressed_size=cap)
        except ImportError:   # pragma: no cover - lz4 is a dependency
            self._decompress = lambda data, cap: bytes(c.decompress_block(data, output_len=cap))

    def compress_into(self, src, dst) -> cython.Py_ssize_t:
        return self._cj.compress_block_into(src, dst, acceleration=self.acceleration,
                                            store_size=False)


class Lz4hc(_Library):
    """Kernel: backend_lz4hc (LZ4_compress_HC, level default 9)."""

    def __init__(self, level=None):
        import cramjam
        lv = 9 if level is None else int(level)
        if not 1 <= lv <= 12:
            raise ValueError(f"lz4hc level {level!r} must be in 1..12")
        super().__init__("lz4hc", lv)
        c = cramjam.lz4
        self._compress = lambda src: c.compress_block(src, mode="high_compression",
                                                      compression=lv, store_size=False)
        self._decompress = lambda data, cap: bytes(c.decompress_block(data, output_len=cap))


class Zstd(_Library):
    """Kernel: backend_zstd (level default 3; no content size, checksum or dict id)."""

    def __init__(self, level=None):
        import zstandard
        lv = 3 if level is None else int(level)
        if not -7 <= lv <= 22 or lv == 0:
            raise ValueError(f"zstd level {level!r} must be in -7..22 and not 0")
        super().__init__("zstd", lv)
        # python-zstandard's (de)compressor objects are not thread-safe: one per thread,
        # as the kernel keeps one zstd context per CPU stream
        tls = threading.local()

        def ctx():
            if not hasattr(tls, "c"):
                tls.c = zstandard.ZstdCompressor(level=lv, write_content_size=False,
                                                 write_checksum=False, write_dict_id=False)
                tls.d = zstandard.ZstdDecompressor()
            return tls
        self._compress = lambda src: ctx().c.compress(src)
        self._decompress = lambda data, cap: ctx().d.decompress(data, max_output_size=cap)


class Deflate(_Library):
    """Kernel: backend_deflate (raw deflate, window bits 11, level default 6)."""

    def __init__(self, level=None, winbits: int = 11):
        lv = 6 if level is None else int(level)
        if not 1 <= lv <= 9:
            raise ValueError(f"deflate level {level!r} must be in 1..9")
        if not 9 <= winbits <= 15:
            raise ValueError(f"deflate winbits {winbits!r} must be in 9..15")
        super().__init__("deflate", lv)

        def compress(src):
            c = zlib.compressobj(lv, zlib.DEFLATED, -winbits)
            return c.compress(src) + c.flush()
        self._compress = compress
        self._decompress = lambda data, cap: zlib.decompress(data, -winbits, cap)


# The names sysfs uses (/sys/block/zramN/comp_algorithm).
_BACKENDS = {"lzo": Lzo, "lzo-rle": LzoRle, "lz4": Lz4, "lz4hc": Lz4hc, "zstd": Zstd,
             "deflate": Deflate}


def available() -> list:
    """Backend names usable here."""
    out = []
    for name, cls in _BACKENDS.items():
        try:
            cls()
        except ImportError:
            continue
        out.append(name)
    return out


def make_backend(name, level=None) -> Backend:
    """The backend called ``name`` (the names sysfs uses); ValueError listing the ones there are."""
    cls = _BACKENDS.get(name)
    if cls is None:
        raise ValueError(f"unknown compression algorithm {name!r}; available: {', '.join(available())}")
    try:
        return cls(level)
    except ImportError as e:
        raise ValueError(f"compression algorithm {name!r} is not available here ({e}); "
                         f"available: {', '.join(available())}") from e
