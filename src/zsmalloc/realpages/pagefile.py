"""Saved pages: the ``ZSPAGES1`` file format (``zsmalloc pages`` writes it).

``b"ZSPAGES1"``, page size (u32 LE), count (u64 LE), then the raw pages.
"""

from __future__ import annotations

import os
import struct

__all__ = ["MAGIC", "PageFileError", "save_pages", "load_pages"]

MAGIC = b"ZSPAGES1"
_HEADER = struct.Struct("<8sIQ")      # magic, page size (u32), count (u64), little-endian


class PageFileError(ValueError):
    """A saved-pages file that is malformed or does not match what the caller expects."""


def save_pages(pages, path) -> int:
    """Write ``pages`` (all the same length) to ``path``; returns the count.

    Format: ``b"ZSPAGES1"``, page size (u32 LE), count (u64 LE), then the raw pages.
    Validates every page before creating the file (a bad list leaves nothing behind), and
    writes through a temporary file renamed into place.
    """
    pages = list(pages)
    if not pages:
        raise ValueError("no pages to save")
    P = len(pages[0])
    if not 0 < P < 1 << 32:
        raise ValueError(f"page 0 has length {P}; pages must be 1 .. 2**32-1 bytes")
    for i, pg in enumerate(pages):
        if len(pg) != P:
            raise ValueError(f"page {i} is {len(pg)} bytes, page 0 is {P}: all pages must "
                             f"have the same size")
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(_HEADER.pack(MAGIC, P, len(pages)))
            for pg in pages:
                f.write(pg)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return len(pages)


def load_pages(path, page_size: int | None = 4096) -> list:
    """The pages saved in ``path`` by :func:`save_pages`.

    ``page_size=None`` accepts the file's own page size. PageFileError (a ValueError) names
    the problem: a bad magic, a truncated header or body, trailing bytes, or a page size
    other than ``page_size``.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise PageFileError(f"{path}: bad magic {data[:len(MAGIC)]!r}, expected {MAGIC!r}")
    if len(data) < _HEADER.size:
        raise PageFileError(f"{path}: truncated header ({len(data)} bytes, need {_HEADER.size})")
    _, P, count = _HEADER.unpack_from(data)
    if P == 0:
        raise PageFileError(f"{path}: page size 0 in the header")
    if page_size is not None and P != page_size:
        raise PageFileError(f"{path}: wrong page size {P}, expected {page_size}")
    body = len(data) - _HEADER.size
    if body < count * P:
        raise PageFileError(f"{path}: truncated: header says {count} pages of {P} bytes "
                            f"({count * P} bytes), file has {body} bytes of pages")
    if body > count * P:
        raise PageFileError(f"{path}: {body - count * P} trailing bytes after {count} pages")
    mv = memoryview(data)
    return [bytes(mv[o:o + P]) for o in range(_HEADER.size, len(data), P)]
