cimport cython
# C types of zsmalloc/core/handles.py (Cython pure-Python mode).

cdef unsigned long long TAG, ROW_BITS, ROW_MASK, MAX_ROWS, GEN_MASK, GEN_LO_BITS, GEN_LO_MASK
cdef unsigned long long GEN_HI_SHIFT, LOC_MASK, IDX_BITS, IDX_MASK, PFN_SHIFT, PFN_MASK, HANDLE_MAX
from cpython.long cimport PyLong_AsLongLongAndOverflow

@cython.final
cdef class HandleTable:
    cdef object _loc_store, _gen_store, _size_store
    cdef unsigned long long[::1] loc
    cdef unsigned short[::1] gen_lo
    cdef unsigned short[::1] size
    cdef public Py_ssize_t rows
    cdef public Py_ssize_t cap
    cdef public Py_ssize_t free_head
    cdef public Py_ssize_t live
    cdef public unsigned long long gen_floor

    cdef void _grow(self, Py_ssize_t need) except *
    cdef void _resize(self, Py_ssize_t cap) except *
    cdef Py_ssize_t alloc(self, Py_ssize_t req_size) except -1
    cdef void release(self, Py_ssize_t row) noexcept
    cpdef unsigned long long gen(self, Py_ssize_t row) noexcept
    cpdef void set_generation(self, Py_ssize_t row, unsigned long long g) except *
    cpdef unsigned long long handle_of(self, Py_ssize_t row) noexcept
    cdef Py_ssize_t row_of(self, handle) except -1
    cdef unsigned long long checked(self, handle) except 0
    cpdef bint is_live(self, Py_ssize_t row) noexcept
    cdef unsigned long long located(self, Py_ssize_t row, unsigned long long handle) noexcept
    cpdef unsigned long long obj(self, Py_ssize_t row) noexcept
    cdef void record_obj(self, Py_ssize_t row, unsigned long long obj) noexcept
    cpdef Py_ssize_t requested(self, Py_ssize_t row)
    cpdef list live_rows(self)
    cpdef Py_ssize_t trim(self)

cpdef unsigned long long obj_make(unsigned long long pfn, unsigned long long idx) noexcept
cpdef unsigned long long obj_pfn(unsigned long long obj) noexcept
cpdef unsigned long long obj_idx(unsigned long long obj) noexcept
