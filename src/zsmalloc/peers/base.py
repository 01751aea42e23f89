"""The small interface every peer allocator (zbud, z3fold, zblock) offers, like our Pool.

A peer stores the real bytes (one ``bytearray`` per kernel page or block) and counts pages
exactly as its kernel twin's ``*_get_pool_pages`` / ``total_pages`` would, so it can stand
next to zsmalloc in comparisons of density and behaviour.

Handles are opaque positive ints encoded the way the kernel encodes them (a page "address"
``pfn * page_size`` plus bits), so a freed handle may come back from a later ``malloc``,
as in the kernel. A handle that is not live raises ``InvalidHandle``.

Errors: caller mistakes raise ``ValueError`` subclasses naming the value and change nothing.
A request the allocator cannot hold (the kernel's ``-ENOSPC``, e.g. zbud above 3968 bytes)
raises ``ObjectTooLarge``, also a ``ValueError``.
"""

from __future__ import annotations

import abc
import operator

from ..errors import CheckError, InvalidHandle

__all__ = ["PeerAllocator", "ObjectTooLarge", "InvalidHandle", "CheckError",
           "check_page_size"]


class ObjectTooLarge(ValueError):
    """A size the allocator cannot store although it is <= page size. Kernel: -ENOSPC."""


def check_page_size(page_size, allowed=None) -> int:
    """Validate a page size: a power of two >= 4096 (and in ``allowed`` if given)."""
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise ValueError(f"page_size {page_size!r} must be an int")
    if page_size < 4096 or page_size & (page_size - 1):
        raise ValueError(f"page_size {page_size!r} must be a power of two >= 4096")
    if allowed is not None and page_size not in allowed:
        raise ValueError(f"page_size {page_size!r} not supported here; use one of {allowed}")
    return page_size


class PeerAllocator(abc.ABC):
    """A compressed-object allocator behind the same small interface as ``zsmalloc.Pool``.

    Subclasses keep ``self._size`` (live handle -> size asked for) and ``self._stored``
    (sum of those sizes) up to date; the counters below read them. Single-threaded: the
    kernel's locks and deferred work are modelled as running to completion inside each call.
    """

    #: short allocator name, as the kernel's zpool type string
    name: str = "peer"

    def __init__(self, page_size: int = 4096):
        self.page_size = page_size
        self._size: dict[int, int] = {}
        self._stored = 0

    # ---- limits -------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def max_size(self) -> int:
        """Largest request ``malloc`` accepts (<= page_size)."""

    # ---- the interface ------------------------------------------------------------------
    @abc.abstractmethod
    def malloc(self, size: int) -> int:
        """Allocate ``size`` bytes; return a handle. ValueError for a bad size."""

    @abc.abstractmethod
    def free(self, handle: int) -> None:
        """Free a live handle. InvalidHandle (state unchanged) for an unknown/freed one."""

    @abc.abstractmethod
    def _locate(self, handle: int) -> tuple[bytearray, int]:
        """(backing buffer, byte offset) of a live handle's object."""

    def write(self, handle: int, data) -> None:
        """Copy ``data`` to the start of the object. Kernel: the zpool obj_write / map+memcpy.

        Cost: one slice copy of len(data) bytes.
        """
        size = self._live_size(handle)
        try:
            mv = memoryview(data).cast("B")
        except TypeError:
            raise ValueError(f"data must be bytes-like, not {type(data).__name__}") from None
        if mv.nbytes > size:
            raise ValueError(f"data of {mv.nbytes} bytes is longer than the {size} bytes "
                             f"allocated for handle {handle:#x}")
        buf, off = self._locate(handle)
        buf[off:off + mv.nbytes] = mv

    def read(self, handle: int, length: int | None = None) -> bytes:
        """Return the first ``length`` bytes (default: all ``size``) of the object.

        Kernel: the zpool map / obj_read_begin + memcpy. Cost: one slice copy.
        """
        size = self._live_size(handle)
        if length is None:
            length = size
        elif isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= size:
            raise ValueError(f"length {length!r} must be an int in 0..{size} for handle "
                             f"{handle:#x}")
        buf, off = self._locate(handle)
        return bytes(buf[off:off + length])

    def compact(self) -> int:
        """Pages freed by compaction. 0: none of these peers has a compaction entry point
        (zpool offered none for them); z3fold's in-page/single-buddy moves run on free."""
        return 0

    @property
    @abc.abstractmethod
    def total_pages(self) -> int:
        """Pages currently backing the allocator. Kernel: *_get_pool_pages / total_pages."""

    @property
    def stored_bytes(self) -> int:
        """Sum of the sizes asked for by live objects."""
        return self._stored

    @property
    def objects(self) -> int:
        """Live object count."""
        return len(self._size)

    @property
    def utilization(self) -> float:
        """stored_bytes / (total_pages * page_size); 1.0 for an empty allocator."""
        pages = self.total_pages
        return self._stored / (pages * self.page_size) if pages else 1.0

    @abc.abstractmethod
    def check(self) -> None:
        """Raise CheckError (an AssertionError) naming the first broken invariant."""

    # ---- helpers for subclasses ---------------------------------------------------------
    def _check_size(self, size) -> int:
        """Validate a request size; return it as an int."""
        if isinstance(size, bool):
            raise ValueError(f"size {size!r} must be an int")
        try:
            size = operator.index(size)
        except TypeError:
            raise ValueError(f"size {size!r} must be an int") from None
        if size <= 0:
            raise ValueError(f"size {size} must be positive")
        if size > self.page_size:
            raise ValueError(f"size {size} exceeds the page size {self.page_size}")
        if size > self.max_size:
            raise ObjectTooLarge(f"size {size} exceeds {self.name}'s largest object "
                                 f"{self.max_size} (kernel: -ENOSPC)")
        return size

    def _live_size(self, handle) -> int:
        """Size of a live handle, or InvalidHandle."""
        try:
            if isinstance(handle, bool) or not isinstance(handle, int):
                raise TypeError
            return self._size[handle]
        except (KeyError, TypeError):
            raise InvalidHandle(f"handle {handle!r} is not a live {self.name} handle") from None

    def _check_counters(self) -> None:
        """Invariants every peer shares: the byte and object counters."""
        if any(s <= 0 or s > self.max_size for s in self._size.values()):
            raise CheckError("peer-size-range", "a live object's size is out of range")
        total = sum(self._size.values())
        if total != self._stored:
            raise CheckError("peer-stored-bytes",
                             f"stored_bytes {self._stored} != sum of live sizes {total}")

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} page_size={self.page_size} objects={self.objects} "
                f"stored={self.stored_bytes} pages={self.total_pages}>")
