"""Compression backends for zram. Kernel: drivers/block/zram/zcomp.c and backend_*.c.

Each backend compresses one page into a preallocated buffer of twice the page size (the
kernel's ``dst_len = 2 * PAGE_SIZE``) and returns the length; decompression returns the
page. ``lz4`` is cramjam's LZ4 block compressor, which gives the kernel's lengths on crafted
pages and on 95-99 % of real pages (spec §10.8): it is the one to use for conformance.
"""

from __future__ import annotations

import functools
import zlib


class Codec:
    """One compression backend. ``compress_into(page, buf) -> length``; ``decompress``."""

    name = "?"

    def compress_into(self, page, buf: bytearray) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def decompress(self, data, out_len: int) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self):
        return f"<Codec {self.name}>"


def _lz4_decompress():
    """``decompress(data, out_len) -> bytes`` for an LZ4 block: python-lz4's, a C function
    that decompresses straight into the bytes it returns (cramjam's returns a Buffer that
    costs a second copy; measured 0.3 us a page here). cramjam's when lz4 is missing."""
    try:
        from lz4.block import decompress
        return decompress
    except ImportError:   # pragma: no cover - lz4 is a dependency
        import cramjam
        dec = cramjam.lz4.decompress_block
        return lambda data, out_len: bytes(dec(data, output_len=out_len))


class Lz4(Codec):
    """Kernel: backend_lz4 (LZ4_compress_fast, acceleration ``level``, default 1)."""

    name = "lz4"

    def __init__(self, level: int | None = None):
        import cramjam
        self._c = cramjam.lz4
        self.acceleration = 1 if level is None else int(level)
        if self.acceleration < 1:
            raise ValueError(f"lz4 level (acceleration) {level!r} must be >= 1")
        # a C-level partial: no Python frame per page on the write path
        self.compress_into = functools.partial(self._c.compress_block_into,
                                               acceleration=self.acceleration, store_size=False)
        self.decompress = _lz4_decompress()


class Lz4hc(Codec):
    """Kernel: backend_lz4hc (LZ4_compress_HC, level default 9)."""

    name = "lz4hc"

    def __init__(self, level: int | None = None):
        import cramjam
        self._c = cramjam.lz4
        self.level = 9 if level is None else int(level)
        if not 1 <= self.level <= 12:
            raise ValueError(f"lz4hc level {level!r} must be in 1..12")
        self.decompress = _lz4_decompress()

    def compress_into(self, page, buf):
        return self._c.compress_block_into(page, buf, mode="high_compression",
                                           compression=self.level, store_size=False)


class Zstd(Codec):
    """Kernel: backend_zstd (level default 3; no content size or checksum in the frame)."""

    name = "zstd"

    def __init__(self, level: int | None = None):
        import zstandard
        self.level = 3 if level is None else int(level)
        if not -7 <= self.level <= 22 or self.level == 0:
            raise ValueError(f"zstd level {level!r} must be in -7..22 and not 0")
        self._c = zstandard.ZstdCompressor(level=self.level, write_content_size=False,
                                           write_checksum=False, write_dict_id=False)
        self._d = zstandard.ZstdDecompressor()

    def compress_into(self, page, buf):
        out = self._c.compress(page)
        n = len(out)
        buf[:n] = out
        return n

    def decompress(self, data, out_len):
        return self._d.decompress(bytes(data), max_output_size=out_len)


class Deflate(Codec):
    """Kernel: backend_deflate (raw deflate, window bits 11 by default, level default 6)."""

    name = "deflate"

    def __init__(self, level: int | None = None, winbits: int = 11):
        self.level = 6 if level is None else int(level)
        if not 1 <= self.level <= 9:
            raise ValueError(f"deflate level {level!r} must be in 1..9")
        if not 9 <= winbits <= 15:
            raise ValueError(f"deflate winbits {winbits!r} must be in 9..15")
        self.winbits = winbits

    def compress_into(self, page, buf):
        c = zlib.compressobj(self.level, zlib.DEFLATED, -self.winbits)
        out = c.compress(page) + c.flush()
        n = len(out)
        buf[:n] = out
        return n

    def decompress(self, data, out_len):
        return zlib.decompress(bytes(data), -self.winbits, out_len)


class Lzo(Codec):
    """Kernel: backend_lzo (lzo1x_1). Userspace LZO's lengths may differ (spec §10.8)."""

    name = "lzo"

    def __init__(self, level: int | None = None):
        if level is not None:
            raise ValueError("lzo takes no level")
        import lzo  # python-lzo
        self._lzo = lzo

    def compress_into(self, page, buf):
        out = self._lzo.compress(bytes(page), 1, False)
        n = len(out)
        buf[:n] = out
        return n

    def decompress(self, data, out_len):
        return self._lzo.decompress(bytes(data), False, out_len)


_BACKENDS = {"lz4": Lz4, "lz4hc": Lz4hc, "zstd": Zstd, "deflate": Deflate, "lzo": Lzo}


def available() -> list[str]:
    """Backend names usable here (lzo needs python-lzo)."""
    out = []
    for name, cls in _BACKENDS.items():
        try:
            cls()
        except ImportError:
            continue
        out.append(name)
    return out


def make_codec(name: str, level: int | None = None) -> Codec:
    """The backend called ``name``; ValueError listing the available ones otherwise."""
    cls = _BACKENDS.get(name)
    if cls is None:
        raise ValueError(f"unknown compression algorithm {name!r}; available: {', '.join(available())}")
    try:
        return cls(level)
    except ImportError as e:
        raise ValueError(f"compression algorithm {name!r} is not available here ({e}); "
                         f"available: {', '.join(available())}") from e
