# C types of zsmalloc/core/obj.py (Cython pure-Python mode).
from zsmalloc.core.zspage cimport ZspageTable, ClassState
from zsmalloc.core.handles cimport obj_make, obj_pfn, obj_idx

cdef unsigned long long LINK_END, TAG

cpdef unsigned long long obj_malloc(ZspageTable zt, ClassState cls, Py_ssize_t z, Py_ssize_t row) noexcept
cpdef int obj_free(ZspageTable zt, ClassState cls, unsigned long long obj) noexcept
cpdef int obj_write(ZspageTable zt, ClassState cls, unsigned long long obj, object src, Py_ssize_t n) except -1
cpdef bytes obj_read(ZspageTable zt, ClassState cls, unsigned long long obj, Py_ssize_t n)
cpdef Py_ssize_t obj_allocated(ZspageTable zt, ClassState cls, Py_ssize_t z, Py_ssize_t idx) noexcept
cpdef int obj_copy(ZspageTable zt, ClassState cls, unsigned long long dst, unsigned long long src) noexcept
