cimport cython
# C types of zsmalloc/core/zspage.py (Cython pure-Python mode).
from zsmalloc.core.arena cimport Arena
from zsmalloc.core.bitops cimport fls0

cdef long long NIL, OFF_LIST, ON_FULL
cdef unsigned long long NO_ZSPAGE, NO_CLASS, LINK_END, FRAME_LOCKED, FRAME_ISOLATED

@cython.final
cdef class ClassState:
    cdef public object sc
    cdef public Py_ssize_t pos, index, size, ppz, objs, hdr
    cdef public bint huge
    cdef public bint insert_second
    cdef object _grp_store, _heads_store, _counts_store
    cdef unsigned char[::1] grp
    cdef int[::1] heads
    cdef long long[::1] counts
    cdef public Py_ssize_t nr_groups, full
    cdef public unsigned int mask, alloc_mask
    cdef public Py_ssize_t allocated, inuse
    cdef public list link_plan
    cdef public Py_ssize_t surplus
    cpdef list group_counts(self)
    cpdef Py_ssize_t head(self, Py_ssize_t g)
    cpdef Py_ssize_t group_of(self, Py_ssize_t inuse)

@cython.final
cdef class ZspageTable:
    cdef public Arena arena
    cdef public list classes
    cdef public Py_ssize_t chain, page_size, page_shift
    cdef public Py_ssize_t rows, cap, nfree, frame_cap, flagged
    cdef public Py_ssize_t pages_allocated
    cdef public bint deferred_pending
    cdef public object worker
    cdef object _inuse_s, _freeobj_s, _group_s, _cls_s, _iso_s, _prev_s, _next_s, _first_s
    cdef object _huge_s, _freeids_s, _fz_s, _ff_s, _fn_s, _fl_s
    cdef unsigned short[::1] inuse
    cdef int[::1] freeobj
    cdef signed char[::1] group
    cdef unsigned short[::1] cls
    cdef unsigned char[::1] isolated
    cdef int[::1] prev
    cdef int[::1] next
    cdef unsigned int[::1] first
    cdef unsigned int[::1] huge_row
    cdef int[::1] free_ids
    cdef unsigned int[::1] frame_zspage
    cdef unsigned short[::1] frame_first
    cdef unsigned int[::1] frame_next
    cdef unsigned char[::1] frame_flags

    cdef void _bind(self) noexcept
    cdef void _resize_rows(self, Py_ssize_t n) except *
    cdef void _resize_frames(self, Py_ssize_t n) except *
    cdef void _grow_rows(self) except *
    cpdef void cover_frame(self, Py_ssize_t pfn) except *
    cdef Py_ssize_t _new_row(self, ClassState cls) except -1
    cpdef Py_ssize_t create(self, ClassState cls) except -1
    cpdef release(self, ClassState cls, Py_ssize_t z)
    cdef Py_ssize_t frame(self, Py_ssize_t z, Py_ssize_t k) noexcept
    cdef void insert(self, ClassState cls, Py_ssize_t z, Py_ssize_t g) noexcept
    cdef void remove(self, ClassState cls, Py_ssize_t z) noexcept
    cdef Py_ssize_t fix_fullness_group(self, ClassState cls, Py_ssize_t z) noexcept
    cdef Py_ssize_t putback(self, ClassState cls, Py_ssize_t z) noexcept
    cdef Py_ssize_t find_get_zspage(self, ClassState cls) noexcept
    cdef Py_ssize_t take_group_head(self, ClassState cls, Py_ssize_t lo, Py_ssize_t hi, bint highest) noexcept
    cdef bint frames_flagged(self, ClassState cls, Py_ssize_t z, unsigned int flags) noexcept
    cpdef bint try_release_empty(self, ClassState cls, Py_ssize_t z) except -1
    cpdef bint free_zspage(self, ClassState cls, Py_ssize_t z) except -1
    cpdef kick_deferred_free(self)
    cpdef ClassState class_of_zspage(self, Py_ssize_t z)
    cpdef ClassState class_of_frame(self, Py_ssize_t pfn)
    cpdef Py_ssize_t zspage_of_frame(self, Py_ssize_t pfn)
    cpdef list frames_of(self, Py_ssize_t z)
    cpdef list live_ids(self)
    cpdef list list_of(self, ClassState cls, Py_ssize_t g)
    cpdef Py_ssize_t first_obj_offset(self, Py_ssize_t pfn)
    cpdef set_frame_flag(self, Py_ssize_t pfn, unsigned int flag, bint on)
    cpdef bint frame_flag(self, Py_ssize_t pfn, unsigned int flag)
    cpdef Py_ssize_t freeobj_of(self, Py_ssize_t z)
    cpdef Py_ssize_t inuse_of(self, Py_ssize_t z)
    cpdef Py_ssize_t group_of(self, Py_ssize_t z)
    cpdef bint on_list(self, Py_ssize_t z)
    cpdef Py_ssize_t isolated_count(self, Py_ssize_t z)
    cpdef Py_ssize_t trim(self)
