"""Allocators a zram device can sit on: zsmalloc's Pool (the kernel's only choice since 3.15)
and, for comparisons, the peers zbud, z3fold and zblock through ``PeerAllocator``.

Kernel: before zpool's removal (6.18), zswap used zbud and z3fold through zpool; zram never
did. A peer-backed device is a what-if study: the slot layer, the write order and the
statistics are zram's own, only the allocator differs. A page the peer cannot hold (above its
largest object, e.g. zbud's 3968 bytes) is kept as one raw page outside it, counted in the
device's memory.
"""

import cython

from ..core.allocator import Allocator
from ..core.locks import make_policy

ALLOCATORS = ("zsmalloc", "zbud", "z3fold", "zblock")


class PeerAllocator(Allocator):
    """A peer (``zsmalloc.peers``) behind the allocator protocol."""

    def __init__(self, peer, concurrent: bool = False, lock_debug: bool = False, policy=None):
        Allocator.__init__(self, peer.max_size,
                           policy or make_policy("linux-6.18", 0, concurrent, lock_debug))
        self.peer = peer

    def store(self, size: cython.Py_ssize_t, src, n: cython.Py_ssize_t) -> cython.ulonglong:
        h = self.peer.malloc(size)
        if n:
            self.peer.write(h, bytes(src[:n]))
        return h

    def release(self, handle: cython.ulonglong) -> None:
        self.peer.free(handle)

    def load(self, handle: cython.ulonglong, n: cython.Py_ssize_t) -> bytes:
        return self.peer.read(handle, n)

    def pages(self) -> cython.Py_ssize_t:
        return self.peer.total_pages

    def destroy(self) -> cython.int:
        self.peer = None
        return 0


def make_allocator(name: str, config, concurrent: bool = False, lock_debug: bool = False,
                   policy=None):
    """(allocator for the slot layer, the object users see as ``Zram.pool``). ``policy``: a
    lock policy to keep (a device being reset keeps its locks)."""
    if name == "zsmalloc":
        from ..core.pool import Pool
        pool = Pool(config, name="zram", concurrent=concurrent, lock_debug=lock_debug,
                    policy=policy)
        return pool, pool
    from ..peers import PEERS
    cls = PEERS.get(name)
    if cls is None:
        raise ValueError(f"unknown allocator {name!r}; known: {', '.join(ALLOCATORS)}")
    peer = cls(page_size=config.page_size)
    return PeerAllocator(peer, concurrent, lock_debug, policy), peer
