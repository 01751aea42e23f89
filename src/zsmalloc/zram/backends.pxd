from zsmalloc.lib.lz4 cimport decompress as lz4_decompress, decompress_at as lz4_decompress_at
from zsmalloc.lib.lzo cimport decompress as lzo_decompress, decompress_at as lzo_decompress_at
# C types of zsmalloc/zram/backends.py (Cython pure-Python mode).

cdef class Backend:
    cdef public str name
    cdef public object level
    cdef public bint native
    cpdef Py_ssize_t compress_into(self, src, dst) except -1
    cpdef Py_ssize_t decompress_into(self, src, dst) except -1
    cpdef bytes decompress(self, src, Py_ssize_t out_len)
    cpdef bytes decompress_at(self, src, Py_ssize_t start, Py_ssize_t n, Py_ssize_t out_len)


cdef class Lz4(Backend):
    cdef public int acceleration
    cpdef Py_ssize_t compress_into(self, src, dst) except -1
    cpdef Py_ssize_t decompress_into(self, src, dst) except -1
    cpdef bytes decompress(self, src, Py_ssize_t out_len)
    cpdef bytes decompress_at(self, src, Py_ssize_t start, Py_ssize_t n, Py_ssize_t out_len)


cdef class Lzo(Backend):
    cdef public bint rle
    cpdef Py_ssize_t compress_into(self, src, dst) except -1
    cpdef Py_ssize_t decompress_into(self, src, dst) except -1
    cpdef bytes decompress(self, src, Py_ssize_t out_len)
    cpdef bytes decompress_at(self, src, Py_ssize_t start, Py_ssize_t n, Py_ssize_t out_len)


cdef class LzoRle(Lzo):
    pass
