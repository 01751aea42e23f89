"""zram: a compressed RAM block device over the pool (device), its codecs, and the kernel's
own /dev/zram0 as a conformance oracle (kernel, conform)."""

from .device import Zram, ConcurrentZram, MmStat, IoStat, DebugStat
from .backends import make_backend, available as available_backends, DecompressError

__all__ = ["Zram", "ConcurrentZram", "MmStat", "IoStat", "DebugStat", "make_backend", "available_backends", "DecompressError"]
