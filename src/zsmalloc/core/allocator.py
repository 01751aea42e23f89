"""The allocator protocol zram's slot layer uses: zsmalloc's Pool, and the peers (zbud,
z3fold, zblock) through an adapter (``zsmalloc.zram.allocators``).

Kernel: the zs_malloc / zs_obj_write / zs_obj_read / zs_free / zs_get_total_pages calls of
drivers/block/zram (and, before 6.18, the zpool ops that let zram's cousins use zbud and
z3fold). Compiled, these are C calls: the slot layer pays no Python call per page for
zsmalloc.

``store(size, src, n)``  allocate ``size`` bytes and copy ``src[:n]`` in (``n`` 0: accounting
                         only); returns the handle (never 0); MemoryError when full.
``release(handle)``      free it.
``load(handle, n)``      its first ``n`` bytes.
``pages()``              pages the allocator holds.
``destroy()``            give every page back (the device is being reset or closed).
``read_begin(handle, n)`` where its first ``n`` bytes lie in ``memory()``, with the read
                         locks taken until ``read_end(handle)`` (Kernel: zs_obj_read_begin /
                         zs_obj_read_end); -1 (nothing held) when the object is not in one
                         piece there: then ``load`` copies it.

The caller runs each call inside one operation of ``policy`` (the allocator's lock policy).
"""

import cython


class Allocator:
    """Base of the protocol; ``max_size`` is the largest object it takes."""

    def __init__(self, max_size: int, policy):
        self.max_size = max_size
        self.policy = policy

    def store(self, size: cython.Py_ssize_t, src, n: cython.Py_ssize_t) -> cython.ulonglong:
        raise NotImplementedError

    def release(self, handle: cython.ulonglong) -> None:
        raise NotImplementedError

    def load(self, handle: cython.ulonglong, n: cython.Py_ssize_t) -> bytes:
        raise NotImplementedError

    def pages(self) -> cython.Py_ssize_t:
        raise NotImplementedError

    def destroy(self) -> cython.int:
        raise NotImplementedError

    def read_begin(self, handle: cython.ulonglong, n: cython.Py_ssize_t) -> cython.Py_ssize_t:
        return -1

    def read_end(self, handle: cython.ulonglong) -> cython.int:
        return 0

    def memory(self):
        return None
