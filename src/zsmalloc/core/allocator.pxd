# C types of zsmalloc/core/allocator.py (Cython pure-Python mode).
from zsmalloc.core.locks cimport LockPolicy

cdef class Allocator:
    cdef public Py_ssize_t max_size
    cdef public LockPolicy policy
    cdef unsigned long long store(self, Py_ssize_t size, object src, Py_ssize_t n) except 0
    cdef void release(self, unsigned long long handle) except *
    cdef bytes load(self, unsigned long long handle, Py_ssize_t n)
    cdef Py_ssize_t pages(self) except -1
    cdef int destroy(self) except -1
    cdef Py_ssize_t read_begin(self, unsigned long long handle, Py_ssize_t n) except -2
    cdef int read_end(self, unsigned long long handle) except -1
    cdef object memory(self)
