cimport cython
# C types of zsmalloc/core/pool.py (Cython pure-Python mode).
from zsmalloc.core.arena cimport Arena, readable
from zsmalloc.core.handles cimport HandleTable, obj_pfn, obj_idx
from zsmalloc.core.zspage cimport ZspageTable, ClassState
from zsmalloc.core.obj cimport obj_malloc, obj_free, obj_write, obj_read
from zsmalloc.core.locks cimport LockPolicy
from zsmalloc.core.allocator cimport Allocator

cdef long long NIL
cdef unsigned long long ROW_MASK, TAG

cdef class SlowPath:
    cdef Py_ssize_t alloc(self, Pool pool, ClassState cls) except -1

cdef class KernelSlowPath(SlowPath):
    cdef Py_ssize_t alloc(self, Pool pool, ClassState cls) except -1

cdef class TunedSlowPath(SlowPath):
    cdef Py_ssize_t alloc(self, Pool pool, ClassState cls) except -1
    cdef Py_ssize_t _find(self, Pool pool, ClassState cls) noexcept

cdef class Pool(Allocator):
    cdef public object config
    cdef public str name
    cdef public Py_ssize_t page_size, page_shift
    cdef public object table
    cdef public list classes
    cdef object _class_for_store
    cdef unsigned short[::1] size_class
    cdef public Arena arena
    cdef public ZspageTable zspages
    cdef public HandleTable handles
    cdef public SlowPath slow_path
    cdef public object slow_path_hook
    cdef public Py_ssize_t pages_compacted, objs_moved, zspages_created, pages_created
    cdef public bint concurrent, closed, auto_trim, kernel_48
    cdef public object compactor, migrator

    cdef int _live(self) except -1
    cpdef ClassState class_for(self, Py_ssize_t size)
    cdef Py_ssize_t zs_malloc(self, Py_ssize_t size) except -1
    cdef Py_ssize_t _new_zspage(self, ClassState cls) except -1
    cdef int zs_free_row(self, Py_ssize_t row, unsigned long long handle) except -1
    cdef int write_row(self, Py_ssize_t row, unsigned long long handle, object src, Py_ssize_t n) except -1
    cdef bytes read_row(self, Py_ssize_t row, unsigned long long handle, Py_ssize_t n)
    cdef unsigned long long access_begin(self, Py_ssize_t row, unsigned long long handle, Py_ssize_t n, bint writing) except? 0
    cdef unsigned long long _handle(self, handle) except 0
    cdef unsigned long long store(self, Py_ssize_t size, object src, Py_ssize_t n) except 0
    cdef void release(self, unsigned long long handle) except *
    cdef bytes load(self, unsigned long long handle, Py_ssize_t n)
    cdef Py_ssize_t pages(self) except -1
    cdef int destroy(self) except -1
    cdef Py_ssize_t read_begin(self, unsigned long long handle, Py_ssize_t n) except -2
    cdef int read_end(self, unsigned long long handle) except -1
    cdef object memory(self)
