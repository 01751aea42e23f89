"""zsmalloc for Python: the kernel's compressed-object allocator and zram, over real memory.

See docs/design.md for the theory of operation.

``COMPILED`` is True when the core runs compiled (Cython, built by ``pip install``) and False
when it runs its ``.py`` files (``ZSMALLOC_PURE=1``, or no build); ``MODE_REASON`` says why.
"""

from ._mode import COMPILED, REASON as MODE_REASON  # first: decides how the core is imported
from .config import PoolConfig, PROFILES
from .errors import InvalidHandle, CheckError
from .core.sizeclass import SizeClass, size_classes, huge_class_size, class_table
from .core.pool import Pool
from .core.migration import FreeWorker, MigrationError
from .maint.stats import ClassStats
from .zram import Zram, MmStat, IoStat

__all__ = ["COMPILED", "MODE_REASON", "PoolConfig", "PROFILES", "InvalidHandle", "CheckError",
           "SizeClass", "size_classes", "huge_class_size", "class_table", "Pool", "FreeWorker",
           "MigrationError", "ClassStats", "Zram", "MmStat", "IoStat"]
__version__ = "0.1.0"
