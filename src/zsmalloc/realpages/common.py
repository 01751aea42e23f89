"""What every page source shares: argument checks, the system page size, RSS."""

from __future__ import annotations

import mmap
import os

__all__ = ["SYS_PAGE", "check_n", "check_page_size", "rss", "mem_available"]

SYS_PAGE = mmap.PAGESIZE


def check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"page count n must be a non-negative int, got {n!r}")
    return n


def check_page_size(page_size) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 512 \
            or page_size > 1 << 20 or page_size & (page_size - 1):
        raise ValueError(f"page_size must be a power of two from 512 to 1 MiB, got {page_size!r}")
    return page_size


def mem_available() -> int | None:
    """MemAvailable from /proc/meminfo in bytes, or None where there is none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss() -> int:
    """This process's resident set size in bytes (/proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
