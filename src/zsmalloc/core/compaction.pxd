# C types of zsmalloc/core/compaction.py (Cython pure-Python mode).
from zsmalloc.core.pool cimport Pool
from zsmalloc.core.zspage cimport ZspageTable, ClassState
from zsmalloc.core.handles cimport HandleTable
from zsmalloc.core.obj cimport obj_malloc, obj_free, obj_copy, obj_allocated
from zsmalloc.core.locks cimport LockPolicy

cdef long long NIL

cpdef Py_ssize_t zs_can_compact(ClassState cls) noexcept
cpdef Py_ssize_t zs_compact(Pool pool) except -1
cdef void move_object(Pool pool, ClassState cls, Py_ssize_t src, Py_ssize_t idx, Py_ssize_t row, Py_ssize_t dst) noexcept
cdef Py_ssize_t free_emptied(Pool pool, ClassState cls, Py_ssize_t z) except -1

cdef class Compactor:
    cdef Py_ssize_t compact_class(self, Pool pool, ClassState cls) except -1

cdef class Compact618(Compactor):
    cdef Py_ssize_t compact_class(self, Pool pool, ClassState cls) except -1
    cdef void migrate_zspage(self, Pool pool, ClassState cls, Py_ssize_t src, Py_ssize_t dst) noexcept

cdef class Compact48(Compactor):
    cdef Py_ssize_t compact_class(self, Pool pool, ClassState cls) except -1
    cdef Py_ssize_t isolate(self, ZspageTable zt, ClassState cls, bint source) noexcept
    cdef Py_ssize_t migrate_zspage(self, Pool pool, ClassState cls, Py_ssize_t src, Py_ssize_t dst, Py_ssize_t cursor) except -2

cpdef Compactor make_compactor(str profile)
