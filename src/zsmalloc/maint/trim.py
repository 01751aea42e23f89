"""Give metadata back after churn: renumber zspage rows, cut free tails of the tables.

The kernel frees a struct zspage with its zspage and a handle with its object (slab pages
may stay). Our rows live in flat columns sized by their high-water mark, so after a large
free and a compaction they would keep costing as much as at the peak. ``trim`` moves the
highest live zspage rows into the lowest free ones (zspage ids are internal: only the
per-frame column and the list links name them), cuts the columns, cuts the handle table
after its last live row (handles are never renumbered: users hold them) and the per-frame
and per-chunk columns above the highest chunk in use; then asks the C allocator to return
free heap to the OS (glibc's malloc_trim).

Called by ``Pool.compact`` and ``Pool.shrink_arena`` when at least a quarter of the zspage
rows are free; pools with the kernel's fine-grained locks (``concurrent=True``) are not
trimmed automatically (renumbering would need every lock at once). Cost: O(rows).
"""

from __future__ import annotations

_libc = None


def release_heap() -> bool:
    """glibc malloc_trim(0): give free heap pages back to the OS. False where unavailable."""
    global _libc
    if _libc is None:
        try:
            import ctypes
            import ctypes.util
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc = lib if hasattr(lib, "malloc_trim") else False
        except OSError:
            _libc = False
    if not _libc:
        return False
    _libc.malloc_trim(0)
    return True


def worth_it(pool, frames: bool = False) -> bool:
    zt = pool.zspages
    rows = zt.nfree * 4 >= zt.rows and zt.rows > 64
    tail = frames and pool.arena.chunks_high > len(pool.arena.mapped_chunks()) + 1
    return rows or tail


def trim(pool) -> dict:
    """Renumber and cut; returns how many zspage rows, handle rows and chunks went."""
    if pool.closed:
        raise ValueError(f"pool {pool.name!r} is closed")
    with pool.policy.operation():
        out = {"chunks": pool.arena.trim_tail(), "zspage_rows": pool.zspages.trim(),
               "handle_rows": pool.handles.trim()}
    release_heap()
    return out


def maybe_trim(pool, frames: bool = False) -> None:
    if pool.auto_trim and not pool.concurrent and worth_it(pool, frames):
        trim(pool)
