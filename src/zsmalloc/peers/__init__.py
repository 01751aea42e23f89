"""Peer allocators people compare zsmalloc with: zbud, z3fold and zblock.

Each stores real bytes behind the same small interface as ``zsmalloc.Pool`` (see
``PeerAllocator``) and counts pages as its kernel twin does. ``PEERS`` maps the kernel's
zpool type name to the class.
"""

from .base import ObjectTooLarge, PeerAllocator
from .z3fold import Z3foldPool
from .zblock import BlockDesc, ZblockPool, zblock_table
from .zbud import ZbudPool

PEERS = {"zbud": ZbudPool, "z3fold": Z3foldPool, "zblock": ZblockPool}

__all__ = ["PeerAllocator", "ObjectTooLarge", "ZbudPool", "Z3foldPool", "ZblockPool",
           "BlockDesc", "zblock_table", "PEERS"]
