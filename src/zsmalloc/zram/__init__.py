"""zram: a compressed RAM block device over an allocator (device), its compression
backends, the allocators it can sit on, and the kernel's own zram as a conformance oracle
(kernel, conform)."""

from .device import Zram
from .stat import MmStat, IoStat, DebugStat
from .backends import make_backend, available as available_backends, DecompressError
from .allocators import ALLOCATORS

__all__ = ["Zram", "MmStat", "IoStat", "DebugStat", "make_backend", "available_backends",
           "DecompressError", "ALLOCATORS"]
