"""Every pool invariant, each with an id; each structure checks itself (``_check``) and this
module adds what spans structures. Used by tests after every step of random sequences.

Kernel: the VM_BUG_ONs scattered through mm/zsmalloc.c, gathered and made exhaustive.
Cost: O(objects + frames); for tests and debugging.

Invariant ids:

HT-FREE-CHAIN     the handle table's free chain holds free rows only, once (core.handles)
HT-LIVE           the live counter equals rows in use + reserved
AR-COUNTS         the arena's per-chunk counts agree with its frames (core.arena)
AR-BITS           the arena's bitmap marks exactly the chunks with a free frame
ZS-CLASS-COUNTS   per class, ZS_OBJS_ALLOCATED = zspages * objs, ZS_OBJS_INUSE = sum of inuse
ZS-GROUP-COUNTS   per class and group, the counter equals the list's length
ZS-LIST-LINKS     lists are well formed (prev/next agree, heads, mask bits), one class each
ZS-GROUP          a zspage is on the list of the group its inuse gives, and records it
ZS-ON-LIST        every zspage is on exactly one list unless isolated (4.8) or surplus (tuned)
ZS-INUSE          0 <= inuse <= objs; no empty zspage outside deferred free
ZS-FREELIST       the in-frame free list has objs - inuse distinct, valid, untagged entries
ZS-TOTAL-PAGES    pages_allocated = sum of ppz over zspages = frames the arena has in use
ZS-FRAMES         no frame in two zspages; each maps back to its zspage; first-object
                  offsets are right
ZS-HANDLE         every live handle points at an allocated object whose header (or huge
                  row) names it; live handles = objects in use
"""

from ..core.handles import obj_idx, obj_pfn
from ..core.layout import NO_ZSPAGE
from ..core.obj import obj_allocated
from ..errors import CheckError


def check_pool(pool) -> None:
    """Raise CheckError naming the first broken invariant. Call while no other thread uses
    a concurrent pool (the Atomic default serialises this with other operations)."""
    if pool.closed:
        raise ValueError(f"pool {pool.name!r} is closed")
    with pool.policy.operation():
        _check(pool)


def _check(pool) -> None:
    zt = pool.zspages
    pool.handles._check()
    pool.arena._check()
    zt._check(surplus=pool.surplus_zspages(),
              deferred_ok=bool(zt.flagged or zt.deferred_pending))
    ht = pool.handles
    total_inuse = sum(c.inuse for c in pool.classes)
    n_live = 0
    P, ps = pool.page_size, pool.page_shift
    for row in ht.live_rows():
        n_live += 1
        h = ht.handle_of(row)
        obj = ht.obj(row)
        pfn, idx = obj_pfn(obj), obj_idx(obj)
        z = zt.zspage_of_frame(pfn)
        if z < 0:
            raise CheckError("ZS-HANDLE", f"handle {h} points at frame {pfn}, in no zspage")
        cls = zt.class_of_zspage(z)
        if idx >= cls.objs:
            raise CheckError("ZS-HANDLE", f"handle {h}: index {idx} >= {cls.objs}")
        k = (idx * cls.size) >> ps
        if zt.frames_of(z)[k] != pfn:
            raise CheckError("ZS-HANDLE", f"handle {h}: object {idx} starts in frame #{k}, "
                             f"not frame {pfn}")
        if ht.requested(row) > (P if cls.huge else cls.size - 8):
            raise CheckError("ZS-HANDLE", f"handle {h}: size {ht.requested(row)} does not fit "
                             f"class {cls.size}")
        got = obj_allocated(zt, cls, z, idx)
        if got != row:
            raise CheckError("ZS-HANDLE", f"handle {h} (row {row}): object header holds row {got}")
    reserved = ht.live - n_live
    if n_live != total_inuse or reserved < 0 or (reserved and not pool.concurrent):
        raise CheckError("ZS-HANDLE", f"{n_live} live handles, {total_inuse} objects in use, "
                         f"counter {ht.live}")
