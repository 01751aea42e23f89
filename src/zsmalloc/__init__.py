"""zsmalloc for Python: the kernel's compressed-object allocator and zram, over real memory.

See docs/design.md for the theory of operation.
"""

from .config import PoolConfig, PROFILES
from .errors import InvalidHandle, CheckError
from .sizeclass import SizeClass, size_classes, huge_class_size, class_table
from .pool import Pool
from .stats import ClassStats
from .zram import Zram, MmStat, IoStat

__all__ = ["PoolConfig", "PROFILES", "InvalidHandle", "CheckError", "SizeClass",
           "size_classes", "huge_class_size", "class_table", "Pool", "ClassStats", "Zram", "MmStat", "IoStat"]
__version__ = "0.1.0"
