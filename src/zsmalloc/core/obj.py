"""Objects inside zspages: the steps every path that allocates, frees, reads, writes or moves
an object shares, each written once. Kernel: obj_malloc, obj_free, zs_obj_write,
zs_obj_read_begin / zs_obj_read_end, obj_allocated (find_alloced_obj), zs_object_copy.

An object is named by the kernel's ``obj``: its index in the zspage and the frame holding its
first byte (``handles.obj_make``). A non-huge object's first 8 bytes are its header (the handle
row, tagged) while it is allocated, and a free-list link while it is free; its data follows
the header. A huge object has no header (its row is in the zspage's ``huge_row``). An object
may start in one frame and end in the next; such an object is copied in two parts. Headers and
links are read and written as words of the arena's memory, as the kernel does through kmap.

Locks: the class lock for obj_malloc and obj_free (the zspage's free list and inuse); reads and
writes need the object to stay put (the zspage read lock, or the pool's atomicity).
Costs: O(1) plus the copy; obj_malloc walks the chain to the object's frame (O(ppz)).
"""

import cython

from .handles import obj_idx, obj_make, obj_pfn
from .layout import LINK_END, TAG
from .zspage import ClassState, ZspageTable


def obj_malloc(zt: ZspageTable, cls: ClassState, z: cython.Py_ssize_t,
               row: cython.Py_ssize_t) -> cython.ulonglong:
    """Take the head of z's free list for handle row ``row``; returns the obj.
    Kernel: obj_malloc."""
    idx: cython.Py_ssize_t = zt.freeobj[z]
    off: cython.Py_ssize_t = idx * cls.size
    pfn: cython.Py_ssize_t = zt.frame(z, off >> zt.page_shift)
    w: cython.Py_ssize_t
    link: cython.ulonglong
    if cls.huge:
        zt.freeobj[z] = -1
        zt.huge_row[z] = (row << 1) | TAG
    else:
        w = (pfn << (zt.page_shift - 3)) + ((off & (zt.page_size - 1)) >> 3)
        link = zt.arena.words[w]
        if link == LINK_END:
            zt.freeobj[z] = -1
        else:
            zt.freeobj[z] = link >> 1
        zt.arena.words[w] = (row << 1) | TAG
    zt.inuse[z] += 1
    return obj_make(pfn, idx)


def obj_free(zt: ZspageTable, cls: ClassState, obj: cython.ulonglong) -> cython.int:
    """Push the object onto its zspage's free list. Kernel: obj_free."""
    pfn: cython.Py_ssize_t = obj_pfn(obj)
    idx: cython.Py_ssize_t = obj_idx(obj)
    z: cython.Py_ssize_t = zt.frame_zspage[pfn]
    fo: cython.Py_ssize_t
    if cls.huge:
        zt.huge_row[z] = 0
    else:
        fo = zt.freeobj[z]
        w: cython.Py_ssize_t = (pfn << (zt.page_shift - 3)) + \
            (((idx * cls.size) & (zt.page_size - 1)) >> 3)
        if fo < 0:
            zt.arena.words[w] = LINK_END
        else:
            zt.arena.words[w] = fo << 1
    zt.freeobj[z] = idx
    zt.inuse[z] -= 1
    return 0


def obj_write(zt: ZspageTable, cls: ClassState, obj: cython.ulonglong, src,
              n: cython.Py_ssize_t) -> cython.int:
    """Copy ``src[:n]`` into the object, after its header. Kernel: zs_obj_write (an object
    that spans two frames: two memcpy_to_page calls)."""
    pfn: cython.Py_ssize_t = obj_pfn(obj)
    P: cython.Py_ssize_t = zt.page_size
    ioff: cython.Py_ssize_t = ((obj_idx(obj) * cls.size) & (P - 1)) + cls.hdr
    first: cython.Py_ssize_t
    nxt: cython.Py_ssize_t
    if ioff + n <= P:
        zt.arena.copy_in((pfn << zt.page_shift) + ioff, src, 0, n)
    else:
        first = P - ioff
        nxt = zt.frame_next[pfn]
        zt.arena.copy_in((pfn << zt.page_shift) + ioff, src, 0, first)
        zt.arena.copy_in(nxt << zt.page_shift, src, first, n - first)
    return 0


def obj_read(zt: ZspageTable, cls: ClassState, obj: cython.ulonglong,
             n: cython.Py_ssize_t) -> bytes:
    """The first ``n`` data bytes of the object. Kernel: zs_obj_read_begin /
    zs_obj_read_end (an object that spans two frames is copied into a local buffer there too)."""
    pfn: cython.Py_ssize_t = obj_pfn(obj)
    P: cython.Py_ssize_t = zt.page_size
    ioff: cython.Py_ssize_t = ((obj_idx(obj) * cls.size) & (P - 1)) + cls.hdr
    a: cython.Py_ssize_t = (pfn << zt.page_shift) + ioff
    nxt: cython.Py_ssize_t
    if ioff + n <= P:
        return zt.arena.copy_out(a, n)
    nxt = zt.frame_next[pfn]
    return zt.arena.copy_out2(a, P - ioff, nxt << zt.page_shift, n - (P - ioff))


def obj_allocated(zt: ZspageTable, cls: ClassState, z: cython.Py_ssize_t,
                  idx: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """The handle row of object ``idx`` of zspage z if it is allocated, else -1.
    Kernel: obj_allocated (the tag in the object's header, or a huge page's handle)."""
    w: cython.ulonglong
    off: cython.Py_ssize_t
    pfn: cython.Py_ssize_t
    if cls.huge:
        w = zt.huge_row[z]
    else:
        off = idx * cls.size
        pfn = zt.frame(z, off >> zt.page_shift)
        w = zt.arena.words[(pfn << (zt.page_shift - 3)) + ((off & (zt.page_size - 1)) >> 3)]
    if w & TAG:
        return w >> 1
    return -1


def obj_copy(zt: ZspageTable, cls: ClassState, dst: cython.ulonglong,
             src: cython.ulonglong) -> cython.int:
    """Copy a whole object slot, header included, from ``src`` to ``dst`` (either may span
    two frames). Kernel: zs_object_copy."""
    P: cython.Py_ssize_t = zt.page_size
    ps: cython.Py_ssize_t = zt.page_shift
    s_pfn: cython.Py_ssize_t = obj_pfn(src)
    d_pfn: cython.Py_ssize_t = obj_pfn(dst)
    s_off: cython.Py_ssize_t = (obj_idx(src) * cls.size) & (P - 1)
    d_off: cython.Py_ssize_t = (obj_idx(dst) * cls.size) & (P - 1)
    left: cython.Py_ssize_t = cls.size
    n: cython.Py_ssize_t
    while left > 0:
        n = min(left, P - s_off, P - d_off)
        zt.arena.move((d_pfn << ps) + d_off, (s_pfn << ps) + s_off, n)
        left -= n
        s_off += n
        d_off += n
        if s_off == P and left:
            s_pfn = zt.frame_next[s_pfn]
            s_off = 0
        if d_off == P and left:
            d_pfn = zt.frame_next[d_pfn]
            d_off = 0
    return 0
