"""Every pool invariant in one place, each with an id. Used by tests after random steps.

Kernel: the VM_BUG_ONs scattered through mm/zsmalloc.c, gathered and made exhaustive.
Cost: O(objects + frames); meant for tests and debugging, not hot paths.

Invariant ids:

ZS-CLASS-COUNTS   per class, ZS_OBJS_ALLOCATED = zspages * objs, ZS_OBJS_INUSE = sum of inuse
ZS-GROUP-COUNTS   per class and group, the counter equals the list's length
ZS-LIST-LINKS     lists are well formed (prev/next agree, heads, mask bits) and hold only
                  zspages of their class
ZS-GROUP          every zspage on a list is on the list of the group its inuse gives, and
                  its recorded group agrees
ZS-ON-LIST        every zspage is on exactly one list unless isolated by migration (4.8)
ZS-INUSE          0 <= inuse <= objs_per_zspage; no empty zspage outside deferred free
ZS-FREELIST       the in-frame free list has objs - inuse distinct, valid, untagged entries
ZS-HANDLE         every live handle points at an allocated object whose header (or huge
                  handle) names that handle; the number of live handles equals INUSE totals
ZS-TOTAL-PAGES    pages_allocated = sum of ppz over zspages = frames the arena has in use
ZS-FRAMES         no frame in two zspages; each frame maps back to its zspage; first-object
                  offsets are right
"""

from __future__ import annotations

from .errors import CheckError
from .handles import GEN_SHIFT, HANDLE_GEN_SHIFT, IDX_MASK, PFN_MASK, PFN_SHIFT
from .zspage import LINK_END, NIL, OFF_LIST, ON_FULL


def _fail(inv: str, msg: str):
    raise CheckError(inv, msg)


def check_pool(pool) -> None:
    zt = pool.zspages
    P = pool.page_size
    chain = pool.config.chain_size
    live = zt.live_ids()
    by_class: dict[int, list[int]] = {}
    for z in live:
        by_class.setdefault(zt.cls[z].index, []).append(z)

    # ZS-LIST-LINKS / ZS-GROUP-COUNTS / ZS-GROUP / ZS-ON-LIST
    on_list: dict[int, int] = {}
    full_members: dict[int, list[int]] = {}
    for z in live:
        if zt.prev[z] == ON_FULL:
            full_members.setdefault(zt.cls[z].index, []).append(z)
    for cls in pool.classes:
        mask = 0
        for g in range(len(cls.heads)):
            if g == cls.full:
                # the full list is kept as a count (zspage.ON_FULL): check members and count
                members = full_members.get(cls.index, [])
                for z in members:
                    if zt.group[z] != g or cls.grp[zt.inuse[z]] != g:
                        _fail("ZS-GROUP", f"zspage {z} (class {cls.size}, inuse {zt.inuse[z]}) "
                              f"marked full, group {zt.group[z]}")
                    on_list[z] = g
                if len(members) != cls.counts[g]:
                    _fail("ZS-GROUP-COUNTS", f"class {cls.size} full group: counter "
                          f"{cls.counts[g]}, zspages {len(members)}")
                if cls.heads[g] != NIL:
                    _fail("ZS-LIST-LINKS", f"class {cls.size}: full list has a head")
                continue
            z, prev, n = cls.heads[g], NIL, 0
            while z != NIL:
                if z in on_list:
                    _fail("ZS-LIST-LINKS", f"zspage {z} seen twice (group {g} of class {cls.size})")
                if zt.cls[z] is not cls:
                    _fail("ZS-LIST-LINKS", f"zspage {z} on a list of class {cls.size} belongs elsewhere")
                if zt.prev[z] != prev:
                    _fail("ZS-LIST-LINKS", f"zspage {z}: prev {zt.prev[z]} != {prev}")
                if zt.group[z] != g:
                    _fail("ZS-GROUP", f"zspage {z} on list {g} records group {zt.group[z]}")
                want = cls.grp[zt.inuse[z]]
                if want != g:
                    _fail("ZS-GROUP", f"zspage {z} (class {cls.size}, inuse {zt.inuse[z]}) "
                          f"on group {g}, should be {want}")
                on_list[z] = g
                prev, z = z, zt.next[z]
                n += 1
                if n > len(zt.inuse):
                    _fail("ZS-LIST-LINKS", f"cycle in group {g} of class {cls.size}")
            if n != cls.counts[g]:
                _fail("ZS-GROUP-COUNTS", f"class {cls.size} group {g}: counter {cls.counts[g]}, "
                      f"list has {n}")
            if n and g != cls.full:
                mask |= 1 << g
        if mask != cls.mask:
            _fail("ZS-LIST-LINKS", f"class {cls.size}: mask {cls.mask:#x}, lists say {mask:#x}")

    surplus = pool.surplus_zspages()
    for z in live:
        if z not in on_list and z not in surplus:
            if zt.prev[z] != OFF_LIST or not zt.isolated[z]:
                _fail("ZS-ON-LIST", f"zspage {z} (class {zt.cls[z].size}) is on no list")

    # ZS-CLASS-COUNTS / ZS-INUSE / ZS-FREELIST / ZS-FRAMES
    seen_frames: dict[int, int] = {}
    total_pages = 0
    total_inuse = 0
    deferred_ok = pool.locked_frames or pool.deferred_pending
    for cls in pool.classes:
        zs = by_class.get(cls.index, [])
        if cls.allocated != len(zs) * cls.objs:
            _fail("ZS-CLASS-COUNTS", f"class {cls.size}: obj_allocated {cls.allocated} != "
                  f"{len(zs)} zspages * {cls.objs}")
        s = sum(zt.inuse[z] for z in zs)
        if s != cls.inuse:
            _fail("ZS-CLASS-COUNTS", f"class {cls.size}: obj_used {cls.inuse} != sum of inuse {s}")
        total_inuse += s
        for z in zs:
            inuse = zt.inuse[z]
            if not 0 <= inuse <= cls.objs:
                _fail("ZS-INUSE", f"zspage {z}: inuse {inuse} outside 0..{cls.objs}")
            if inuse == 0 and not (deferred_ok or zt.isolated[z] or z in surplus):
                _fail("ZS-INUSE", f"zspage {z} (class {cls.size}) is empty but was not freed")
            base = z * chain
            for k in range(cls.ppz):
                pfn = zt.frames[base + k]
                if pfn in seen_frames:
                    _fail("ZS-FRAMES", f"frame {pfn} in zspages {seen_frames[pfn]} and {z}")
                seen_frames[pfn] = z
                if pool.frame_zspage[pfn] != z:
                    _fail("ZS-FRAMES", f"frame {pfn} of zspage {z} maps to {pool.frame_zspage[pfn]}")
                if not pool.arena.is_used(pfn):
                    _fail("ZS-FRAMES", f"frame {pfn} of zspage {z} is free in the arena")
                if pool.frame_first_obj[pfn] != (-k * P) % cls.size:
                    _fail("ZS-FRAMES", f"frame {pfn} (#{k} of zspage {z}): first_obj_offset "
                          f"{pool.frame_first_obj[pfn]} != {(-k * P) % cls.size}")
            total_pages += cls.ppz
            _check_freelist(pool, cls, z)

    # ZS-TOTAL-PAGES
    if total_pages != pool.pages_allocated:
        _fail("ZS-TOTAL-PAGES", f"pages_allocated {pool.pages_allocated} != sum over zspages {total_pages}")
    if pool.arena.frames_in_use != total_pages:
        _fail("ZS-TOTAL-PAGES", f"arena has {pool.arena.frames_in_use} frames in use, zspages {total_pages}")

    # ZS-HANDLE
    hw = pool.handles.words
    n_live = 0
    for row in range(1, len(hw)):
        w = hw[row]
        if not w & 1:
            continue
        n_live += 1
        h = ((w >> GEN_SHIFT) << HANDLE_GEN_SHIFT) | row
        pfn, idx = (w >> PFN_SHIFT) & PFN_MASK, (w >> 1) & IDX_MASK
        if pfn >= len(pool.frame_zspage) or pool.frame_zspage[pfn] == 0xFFFF_FFFF:
            _fail("ZS-HANDLE", f"handle {h} points at frame {pfn}, which is in no zspage")
        z = pool.frame_zspage[pfn]
        cls = zt.cls[z]
        if idx >= cls.objs:
            _fail("ZS-HANDLE", f"handle {h}: index {idx} >= {cls.objs}")
        k = (idx * cls.size) >> pool.page_shift
        if zt.frames[z * chain + k] != pfn:
            _fail("ZS-HANDLE", f"handle {h}: object {idx} starts in frame #{k}, not frame {pfn}")
        if pool.handles.sizes[row] + 1 > (P if cls.huge else cls.size - 8):
            _fail("ZS-HANDLE", f"handle {h}: size {pool.handles.sizes[row] + 1} does not fit class {cls.size}")
        got = pool._obj_handle(z, cls, idx)
        if got != h:
            _fail("ZS-HANDLE", f"handle {h}: object header holds {got}")
    if n_live != total_inuse or n_live != pool.handles.live:
        _fail("ZS-HANDLE", f"{n_live} live handles, {total_inuse} objects in use, "
              f"counter {pool.handles.live}")


def _check_freelist(pool, cls, z: int) -> None:
    zt = pool.zspages
    want = cls.objs - zt.inuse[z]
    if cls.huge:
        allocated = bool(zt.huge_handle[z] & 1)
        if allocated != (zt.inuse[z] == 1):
            _fail("ZS-FREELIST", f"huge zspage {z}: inuse {zt.inuse[z]}, handle word {zt.huge_handle[z]}")
        return
    seen = set()
    idx = zt.freeobj[z]
    while idx != -1:
        if not 0 <= idx < cls.objs:
            _fail("ZS-FREELIST", f"zspage {z} (class {cls.size}): free index {idx} out of range")
        if idx in seen:
            _fail("ZS-FREELIST", f"zspage {z}: free list loops at {idx}")
        seen.add(idx)
        pfn, ioff = pool._obj_frame(z, cls, idx)
        link = pool._word_at(pfn, ioff)
        if link & 1:
            _fail("ZS-FREELIST", f"zspage {z}: free object {idx} carries an allocated tag")
        idx = -1 if link == LINK_END else link >> 1
        if len(seen) > want:
            break
    if len(seen) != want:
        _fail("ZS-FREELIST", f"zspage {z} (class {cls.size}): free list has {len(seen)} "
              f"entries, objs - inuse = {want}")
