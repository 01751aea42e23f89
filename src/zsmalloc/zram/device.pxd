cimport cython
# C types of zsmalloc/zram/device.py (Cython pure-Python mode).
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from zsmalloc.core.allocator cimport Allocator
from zsmalloc.core.locks cimport LockPolicy
from zsmalloc.core.arena cimport readable
from zsmalloc.zram.backends cimport Backend

cpdef bint page_same_filled(object page, Py_ssize_t n) except -1
cpdef unsigned long long first_word(object page) except? 0
cpdef bytes filled_page(unsigned long long word, Py_ssize_t n)

cdef class Zram:
    cdef public object config, pool, comp_algorithm, allocator_name, level
    cdef public Allocator alloc
    cdef public LockPolicy policy
    cdef public Backend backend
    cdef public Py_ssize_t page_size, page_shift, disksize, nr_pages, huge_threshold
    cdef public unsigned long long F_SAME, F_HUGE, F_RAW, size_mask
    cdef object _slot_mm, _mem
    cdef unsigned long long[::1] slots
    cdef list _streams
    cdef dict _raw
    cdef public bint concurrent, lock_debug, closed
    cdef public Py_ssize_t pages_stored, compr_data_size, same_pages, huge_pages
    cdef public Py_ssize_t huge_pages_since, max_used_pages, limit_pages, raw_pages
    cdef public Py_ssize_t failed_reads, failed_writes, notify_free, miss_free
    cdef public Py_ssize_t num_reads, num_writes

    cdef int _live(self) except -1
    cdef Py_ssize_t _index(self, index) except -1
    cdef object _stream_get(self)
    cdef void _stream_put(self, object buf) except *
    cdef int _write_page(self, Py_ssize_t i, object src) except -1
    cdef void _store_same(self, Py_ssize_t i, unsigned long long word) except *
    cdef int _store(self, Py_ssize_t i, Py_ssize_t comp_len, object payload, Py_ssize_t n) except -1
    cdef bint _free_slot(self, Py_ssize_t i) except -1
    cdef bytes _read_page(self, Py_ssize_t i)
    cdef Py_ssize_t _pages(self) except -1
