"""Compression algorithms as the kernel's lib/ has them, written in this project.

* :mod:`zsmalloc.lib.lz4` -- LZ4 block compression (Kernel: lib/lz4/lz4_compress.c,
  lz4_decompress.c): ``LZ4_compress_fast`` as zram calls it, ``LZ4_decompress_safe``.
* :mod:`zsmalloc.lib.lzo` -- LZO1X-1 and its run-length variant lzo-rle
  (Kernel: lib/lzo/lzo1x_compress.c, lzo1x_decompress_safe.c).

Each compressor produces the kernel's bytes, so compressed lengths, and from them every
zram counter, equal the kernel's. Each decompressor checks every index itself (the
compiled build runs without bounds checks) and raises :class:`DecompressError` on a
corrupt or truncated stream. Both run without the GIL when compiled (Cython pure-Python
mode: the ``.pxd`` beside each module gives the C types); ``ZSMALLOC_PURE=1`` runs the same
``.py`` as plain Python, with the same results, slowly.

See docs/compressors.md for how the algorithms work and where ours follow the kernel.
"""

from .errors import DecompressError

__all__ = ["DecompressError"]
