"""The swap layer's own rules: which pages of a process reach the zram device at all.

Kernel: mm/page_io.c swap_writeout. Since Linux 6.12 a folio whose every byte is zero is
not written: the swap layer sets its bits in the swap device's ``zeromap`` and reads zeros
back from there (is_folio_zero_filled, swap_zeromap_folio_set). The test is per *folio*: a
large folio (THP) with one non-zero byte is written whole, zero pages included, and zram
stores those as same-filled pages. Pages same-filled with any other value are written, and
zram stores them as same-filled pages. Before 6.12 (the ``linux-4.8`` profile here) every
page is written.

The swap header (page 0 of the device, written by mkswap) is part of the device but not of
any process; :mod:`zsmalloc.estimate.verify` feeds it to the model explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass


_NOT = bytes([1, 0]) + bytes(254)      # 0 -> 1, 1 -> 0


@dataclass(frozen=True)
class SwapRules:
    """What the swap layer of a kernel profile writes to its device."""

    zeromap: bool          # 6.12+: zero-filled folios stay in the swap map

    @classmethod
    def for_profile(cls, profile: str) -> "SwapRules":
        return cls(zeromap=profile != "linux-4.8")

    def written(self, zero: bytearray, folio_start: bytearray) -> bytearray:
        """1 for each page that the swap layer writes to the device, 0 for one it keeps
        in its zeromap. ``zero[i]``: page i is all zero bytes; ``folio_start[i]``: page i
        begins a folio (the rest of the folio follows it). Kernel: swap_writeout."""
        n = len(zero)
        if not self.zeromap:
            return bytearray(b"\x01") * n
        if 0 not in folio_start:           # small folios only: page by page
            return bytearray(zero.translate(_NOT))
        out = bytearray(n)
        i = 0
        while i < n:
            j = i + 1
            while j < n and not folio_start[j]:
                j += 1
            if not all(zero[i:j]):
                out[i:j] = b"\x01" * (j - i)
            i = j
        return out
