"""How much a trace needs: the disk its zram records touch and the bytes its pool records
hold at once, found before a replay allocates anything.

A trace may declare no ``disksize`` (indices up to 2**63-1), or declare a huge one; the
replay must not size a device from either blindly (a 40-byte trace writing index 2**25
would cost a 512 MiB slot table). So a replay first measures the trace with
:func:`measure` (one streaming pass that also validates every line) and checks the
:class:`Extent` against a stated cap with :func:`check_extent`; only then does it build the
device, of ``extent.nr_pages`` slots (mm_stat does not depend on the disk size).
Cost: one read of the trace; memory: the live pool ids, as the reader.
"""

from __future__ import annotations

from dataclasses import dataclass

from .format import Discard, Free, Malloc, ZRAM_RECORDS

__all__ = ["Extent", "measure", "check_extent", "DEFAULT_MAX_SIZE", "parse_size", "format_size"]

#: the largest disk (and pool) a replay builds unless told otherwise: 16 GiB is a 64 MiB
#: slot table at 4 KiB pages, 16 bytes a slot as in the kernel
DEFAULT_MAX_SIZE = 16 << 30

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass
class Extent:
    """What a trace needs. ``nr_pages``: highest zram index + 1 (0: no zram record);
    ``pool_peak``: most bytes its pool records hold at once; ``*_line``: where each is
    reached (0: made in code)."""

    nr_pages: int = 0
    pages_line: int = 0
    pool_peak: int = 0
    peak_line: int = 0
    zram_records: int = 0
    pool_records: int = 0
    records: int = 0


def measure(records) -> Extent:
    """The :class:`Extent` of ``records`` (any iterable of records, e.g. a TraceReader)."""
    ext = Extent()
    live: dict = {}
    held = 0
    zram = ZRAM_RECORDS
    for rec in records:
        ext.records += 1
        t = type(rec)
        if t in zram:
            ext.zram_records += 1
            index = getattr(rec, "index", None)
            if index is not None:
                last = index + (rec.count - 1 if t is Discard else 0)
                if last >= ext.nr_pages:
                    ext.nr_pages, ext.pages_line = last + 1, rec.line
            continue
        ext.pool_records += 1
        if t is Malloc:
            held += rec.size - live.get(rec.id, 0)
            live[rec.id] = rec.size
            if held > ext.pool_peak:
                ext.pool_peak, ext.peak_line = held, rec.line
        elif t is Free:
            held -= live.pop(rec.id, 0)
    return ext


def check_extent(ext: Extent, page_size: int, max_size: int, source: str = "<records>") -> None:
    """ValueError naming the record and the cap when the trace needs more than ``max_size``
    bytes of disk (its pages x ``page_size``) or of live pool objects."""
    disk = ext.nr_pages * page_size
    if disk > max_size:
        slots = ext.nr_pages * 16
        raise ValueError(f"{source}: line {ext.pages_line}: index {ext.nr_pages - 1} needs a "
                         f"disk of {format_size(disk)} (a {format_size(slots)} slot table), "
                         f"over the cap of {format_size(max_size)}; raise it with "
                         f"--max-size if that is meant")
    if ext.pool_peak > max_size:
        raise ValueError(f"{source}: line {ext.peak_line}: the pool records hold "
                         f"{format_size(ext.pool_peak)} at once, over the cap of "
                         f"{format_size(max_size)}; raise it with --max-size if that is meant")


def parse_size(text: str, what: str = "size") -> int:
    """``"16G"``, ``"512M"``, ``"4096"`` (K/M/G/T are powers of 1024) -> bytes; ValueError
    naming ``what`` and the text otherwise."""
    s = str(text).strip().upper().removesuffix("B").removesuffix("I")
    unit = s[-1:] if s[-1:] in _UNITS and s[-1:] else ""
    num = s[:-1] if unit else s
    if not num.isdigit():
        raise ValueError(f"{what} {text!r} is not a number of bytes like 4096, 512M or 16G")
    v = int(num) * _UNITS[unit]
    if v <= 0:
        raise ValueError(f"{what} {text!r} must be positive")
    return v


def format_size(n: int) -> str:
    for unit, div in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            v = n / div
            return f"{v:.0f} {unit}" if v >= 100 or v == int(v) else f"{v:.1f} {unit}"
    return f"{n} B"
