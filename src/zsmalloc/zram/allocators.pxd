# C types of zsmalloc/zram/allocators.py (Cython pure-Python mode).
from zsmalloc.core.allocator cimport Allocator

cdef class PeerAllocator(Allocator):
    cdef public object peer
    cdef unsigned long long store(self, Py_ssize_t size, object src, Py_ssize_t n) except 0
    cdef void release(self, unsigned long long handle) except *
    cdef bytes load(self, unsigned long long handle, Py_ssize_t n)
    cdef Py_ssize_t pages(self) except -1
    cdef int destroy(self) except -1
