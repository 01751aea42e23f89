"""zram: a compressed RAM block device over the pool (device), its codecs, and the kernel's
own /dev/zram0 as a conformance oracle (kernel, conform)."""

from .device import Zram, ConcurrentZram, MmStat, IoStat, DebugStat
from .codecs import make_codec, available as available_codecs

__all__ = ["Zram", "ConcurrentZram", "MmStat", "IoStat", "DebugStat", "make_codec", "available_codecs"]
