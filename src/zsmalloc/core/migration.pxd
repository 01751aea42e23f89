# C types of zsmalloc/core/migration.py (Cython pure-Python mode).
from zsmalloc.core.pool cimport Pool
from zsmalloc.core.zspage cimport ZspageTable, ClassState
from zsmalloc.core.handles cimport HandleTable, obj_make
from zsmalloc.core.obj cimport obj_allocated
from zsmalloc.core.locks cimport LockPolicy

cdef long long NIL
cdef unsigned long long NO_ZSPAGE, FRAME_LOCKED, FRAME_ISOLATED

cdef tuple _owner(Pool pool, object pfn)
cdef list _objects_starting_in(Pool pool, ClassState cls, Py_ssize_t z, Py_ssize_t k, Py_ssize_t pfn)
cdef Py_ssize_t _target_frame(Pool pool, object target, Py_ssize_t avoid_chunk) except -1
cdef void _move_frame(Pool pool, ClassState cls, Py_ssize_t z, Py_ssize_t k, Py_ssize_t old, Py_ssize_t new) except *

cdef class Migrator:
    cdef Py_ssize_t migrate(self, Pool pool, Py_ssize_t pfn, object target, Py_ssize_t avoid_chunk) except -1

cdef class Migrate618(Migrator):
    cdef Py_ssize_t migrate(self, Pool pool, Py_ssize_t pfn, object target, Py_ssize_t avoid_chunk) except -1

cdef class Migrate48(Migrator):
    cdef Py_ssize_t migrate(self, Pool pool, Py_ssize_t pfn, object target, Py_ssize_t avoid_chunk) except -1
