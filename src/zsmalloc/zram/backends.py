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

Backends written in this project (``native``) run without the GIL inside these calls, so
threads compress in parallel. The others call a library (cramjam, zstandard, zlib).
"""

from __future__ import annotations

import cython
import zlib


class DecompressError(ValueError):
    """A compressed object that does not decompress (corrupt, truncated, or not a page)."""


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


class Lz4Cramjam(_Library):
    """LZ4 block via cramjam (LZ4 1.10). Kernel: backend_lz4 (LZ4_compress_fast,
    acceleration ``level``, default 1). Its lengths differ from the kernel's lib/lz4 on a few
    per cent of real pages (1-6 bytes shorter)."""

    def __init__(self, level=None):
        import cramjam
        accel = 1 if level is None else int(level)
        if accel < 1:
            raise ValueError(f"lz4 level (acceleration) {level!r} must be >= 1")
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
        c = zstandard.ZstdCompressor(level=lv, write_content_size=False, write_checksum=False,
                                     write_dict_id=False)
        d = zstandard.ZstdDecompressor()
        self._compress = c.compress
        self._decompress = lambda data, cap: d.decompress(data, max_output_size=cap)


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


_BACKENDS = {"lz4": Lz4Cramjam, "lz4hc": Lz4hc, "zstd": Zstd, "deflate": Deflate}


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
