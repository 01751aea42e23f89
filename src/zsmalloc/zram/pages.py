"""Crafted pages: pages whose lz4 compressed length is exactly what a test asks for.

zram's accounting depends on a page's compressed length only (which size class, huge or
not, compr_data_size), so conformance tests need pages of every length.  Three page shapes
("families") give all of them:

* ``"tail"``: zeros, then *k* random bytes (first one non-zero).  The compressed length is
  non-decreasing in *k*, so bisection finds *k*.  For 4 KiB pages it gives every length from
  26 to 4114 except 36 + 255*m (m = 0..15) and 4113: those are the steps where the literal
  run grows a length byte.
* ``"head"``: *k* random bytes (last one non-zero), then zeros (the shape DESIGN.md §3
  names).  It fills the "tail" gaps 36 + 255*m.
* ``"copy"``: random bytes with one short back-reference near the start (*m* bytes that
  repeat the page's first *m* bytes), which splits the literal run in two.  It fills 4113.

So for 4 KiB pages **every** length from 26 (a non-same-filled page is never shorter; the
all-zero page is also 26 but same-filled) to 4114 (incompressible: 4096 literals plus a
token and 17 length bytes) is exact.  For other page sizes a length that no family hits
raises ``ValueError`` (none found for 16 and 64 KiB).

Checked against the running kernel (6.18, lz4; see tests/test_kernel_oracle.py): for every
*k* of both "tail" and "head" pages below the huge threshold the kernel's compr_data_size
equals ``lz4_len``.  Lengths >= 3625 are stored raw by zram, so the kernel cannot confirm
them; there only "huge or not" matters.

Cost: the first request for a length bisects once (about a dozen 4 KiB compressions, then
cached); each page after that is one random draw, one concatenation and one compression to
confirm the length (a few microseconds).
"""

from __future__ import annotations

import random as _random
import struct
import sys

import cramjam

__all__ = ["lz4_len", "craft_page", "comp_len_range", "same_filled_page", "is_same_filled",
           "incompressible_page"]

_compress = cramjam.lz4.compress_block
_WORD = struct.Struct("=Q")          # the kernel's unsigned long, native byte order
_RETRIES = 32


def lz4_len(page) -> int:
    """Compressed length of ``page`` as zram's lz4 backend makes it.

    Kernel: LZ4_compress_fast(src, dst, 4096, 8192, 1) in backend_lz4.c.  cramjam's block
    compressor gives the same length for crafted pages (checked against the kernel).
    Cost: one lz4 compression (~2-5 us for 4 KiB).
    """
    return len(_compress(page, store_size=False))


def _check_page_size(page_size) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 64 \
            or page_size & (page_size - 1):
        raise ValueError(f"page_size must be a power of two >= 64, got {page_size!r}")
    return page_size


def _randbytes(rng, n: int) -> bytes:
    if n <= 0:
        return b""
    f = getattr(rng, "randbytes", None)      # random.Random
    if f is None:
        f = getattr(rng, "bytes", None)      # numpy.random.Generator
    if f is None:
        raise TypeError(f"rng must have randbytes(n) or bytes(n), got {type(rng).__name__}")
    return f(n)


def _nonzero_at(r: bytes, i: int, rng) -> bytes:
    """``r`` with byte ``i`` forced non-zero (a zero there would extend the zero run's match)."""
    if r[i]:
        return r
    b = bytearray(r)
    b[i] = 1 + (_randbytes(rng, 1)[0] % 255)
    return bytes(b)


# ---- page families.  Each builder takes (param, random source, page_size).

def _tail(k: int, rng, page_size: int) -> bytes:
    """zeros(page_size - k) + k random bytes, the first of them non-zero."""
    r = _randbytes(rng, k)
    if k:
        r = _nonzero_at(r, 0, rng)
    return bytes(page_size - k) + r


def _head(k: int, rng, page_size: int) -> bytes:
    """k random bytes, the last of them non-zero, + zeros."""
    r = _randbytes(rng, k)
    if k:
        r = _nonzero_at(r, k - 1, rng)
    return r + bytes(page_size - k)


def _copy(param, rng, page_size: int) -> bytes:
    """a random bytes, a copy of the first m of them, then random bytes to the end."""
    a, m = param
    r = _randbytes(rng, page_size)
    page = bytearray(r)
    page[a:a + m] = r[:m]
    if page[a + m] == page[m]:          # the match must stop after exactly m bytes
        page[a + m] ^= 0xFF
    return bytes(page)


_BUILDERS = {"tail": _tail, "head": _head, "copy": _copy}

# (page_size, comp_len) -> (family, param); found with a fixed reference random block.
_plan_cache: dict = {}
_range_cache: dict = {}
_ref_blocks: dict = {}


class _RefRng:
    """Stands in for an rng while planning: always the same bytes, so plans are reproducible
    and independent of the caller's random stream."""

    __slots__ = ("block",)

    def __init__(self, block: bytes):
        self.block = block

    def randbytes(self, n: int) -> bytes:
        return self.block[:n]


def _ref_len(family: str, param, page_size: int) -> int:
    ref = _ref_blocks.get(page_size)
    if ref is None:
        ref = _ref_blocks[page_size] = _RefRng(_random.Random(0x5EED2AA).randbytes(page_size))
    return lz4_len(_BUILDERS[family](param, ref, page_size))


def comp_len_range(page_size: int = 4096) -> tuple:
    """(shortest, longest) lz4 length a non-same-filled page of ``page_size`` can have."""
    _check_page_size(page_size)
    rng = _range_cache.get(page_size)
    if rng is None:
        lo = _ref_len("tail", 1, page_size)
        hi = _ref_len("tail", page_size, page_size)
        rng = _range_cache[page_size] = (lo, hi)
    return rng


def _bisect(family: str, comp_len: int, page_size: int):
    """Smallest k with len >= comp_len, assuming len non-decreasing in k."""
    lo, hi = 1, page_size
    while lo < hi:
        mid = (lo + hi) // 2
        if _ref_len(family, mid, page_size) < comp_len:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _plan(comp_len: int, page_size: int):
    """Which family and parameter give ``comp_len``; cached.  None if no family does."""
    key = (page_size, comp_len)
    plan = _plan_cache.get(key, False)
    if plan is not False:
        return plan
    plan = None
    for family in ("tail", "head"):
        k = _bisect(family, comp_len, page_size)
        if _ref_len(family, k, page_size) == comp_len:
            plan = (family, k)
            break
    if plan is None:
        # "head" lengths are not quite monotone for 16/64 KiB pages: look near the
        # bisection point before giving up.
        for k in range(max(1, k - 256), min(page_size, k + 256) + 1):
            if _ref_len("head", k, page_size) == comp_len:
                plan = ("head", k)
                break
    if plan is None:
        # Near the top: split the incompressible literal run with one short match.
        for a in (8, 20, 40, 300):
            for m in range(4, 40):
                if a + m + 8 > page_size:
                    break
                if _ref_len("copy", (a, m), page_size) == comp_len:
                    plan = ("copy", (a, m))
                    break
            if plan is not None:
                break
    _plan_cache[key] = plan
    return plan


def craft_page(comp_len: int, rng, page_size: int = 4096) -> bytes:
    """A page (not same-filled) whose lz4 compressed length is exactly ``comp_len``.

    ``rng`` is a ``random.Random`` (or a numpy Generator); the page's random bytes come
    from it.  Raises ValueError for a length outside ``comp_len_range(page_size)`` or one
    no page shape reaches (none for 4 KiB pages).  Cost: a few microseconds once the
    length's plan is cached (first use of a length: ~12 compressions).
    """
    _check_page_size(page_size)
    if isinstance(comp_len, bool) or not isinstance(comp_len, int):
        raise ValueError(f"comp_len must be an int, got {comp_len!r}")
    lo, hi = comp_len_range(page_size)
    if not lo <= comp_len <= hi:
        raise ValueError(f"comp_len {comp_len} out of range {lo}..{hi} for {page_size}-byte pages")
    plan = _plan(comp_len, page_size)
    if plan is None:
        raise ValueError(f"no crafted {page_size}-byte page compresses to exactly {comp_len} bytes")
    family, param = plan
    build = _BUILDERS[family]
    for _ in range(_RETRIES):
        page = build(param, rng, page_size)
        # Rarely the random bytes hold a 4-byte repeat the compressor finds: draw again.
        if lz4_len(page) == comp_len and not is_same_filled(page)[0]:
            return page
    raise RuntimeError(f"could not craft a page of lz4 length {comp_len} "
                       f"({family} {param}) in {_RETRIES} draws")


def same_filled_page(word: int, page_size: int = 4096) -> bytes:
    """A page that repeats one 8-byte native word: what zram stores as ZRAM_SAME.

    Kernel: the inverse of page_same_filled / memset_l on read.
    """
    _check_page_size(page_size)
    if isinstance(word, bool) or not isinstance(word, int) or not 0 <= word < 1 << 64:
        raise ValueError(f"word must be an int in 0..2**64-1, got {word!r}")
    return _WORD.pack(word) * (page_size // 8)


def is_same_filled(page) -> tuple:
    """(True, word) if every 8-byte native word of ``page`` is equal, else (False, None).

    Kernel: page_same_filled (any repeated unsigned long, not only zero).
    Cost: one page-sized compare.
    """
    n = len(page)
    if n == 0 or n % 8:
        raise ValueError(f"page length must be a positive multiple of 8, got {n}")
    first = bytes(page[:8])
    if first * (n // 8) == page:
        return True, int.from_bytes(first, sys.byteorder)
    return False, None


def incompressible_page(rng, page_size: int = 4096) -> bytes:
    """A random page that lz4 cannot shrink at all (length = comp_len_range()[1]); huge in zram."""
    _check_page_size(page_size)
    hi = comp_len_range(page_size)[1]
    for _ in range(_RETRIES):
        page = _randbytes(rng, page_size)
        if lz4_len(page) == hi:
            return page
    raise RuntimeError(f"no incompressible {page_size}-byte page in {_RETRIES} draws")
