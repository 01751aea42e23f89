# C types of zsmalloc/core/locks.py (Cython pure-Python mode).
from cpython.pythread cimport PyThread_get_thread_ident

cpdef unsigned long _thread_id() noexcept
cpdef _yield_cpu()

cdef class LockPolicy:
    cdef public str name
    cdef public object pins
    cdef public bint fine
    cdef int op_enter(self) except -1
    cdef int op_exit(self) except -1
    cdef int leaf_lock(self) except -1
    cdef int leaf_unlock(self) except -1
    cdef int class_lock(self, Py_ssize_t pos) except -1
    cdef int class_unlock(self, Py_ssize_t pos) except -1
    cdef int free_enter(self, Py_ssize_t row) except -1
    cdef int free_locked(self, Py_ssize_t z, Py_ssize_t pos) except -1
    cdef int free_exit(self, Py_ssize_t z, Py_ssize_t pos, Py_ssize_t row) except -1
    cdef int free_abort(self, Py_ssize_t row) except -1
    cdef int access_enter(self, Py_ssize_t row) except -1
    cdef int access_locked(self, Py_ssize_t z) except -1
    cdef int access_exit(self, Py_ssize_t z, Py_ssize_t row) except -1
    cdef int access_abort(self, Py_ssize_t row) except -1
    cdef int compact_class_lock(self, Py_ssize_t pos) except -1
    cdef int compact_class_unlock(self, Py_ssize_t pos) except -1
    cdef bint compaction_contended(self) except -1
    cdef int compaction_yield(self, Py_ssize_t pos) except -1
    cdef bint zspage_write_trylock(self, Py_ssize_t z) except -1
    cdef int zspage_write_unlock(self, Py_ssize_t z) except -1
    cdef bint trypin(self, Py_ssize_t row) except -1
    cdef int unpin(self, Py_ssize_t row) except -1
    cdef int migrate_lock(self, Py_ssize_t z, Py_ssize_t pos) except -1
    cdef int migrate_unlock(self, Py_ssize_t z, Py_ssize_t pos) except -1
    cdef int alloc_single_lock(self, Py_ssize_t pos) except -1
    cdef int alloc_single_unlock(self, Py_ssize_t pos) except -1
    cdef int slot_lock(self, Py_ssize_t index) except -1
    cdef int slot_unlock(self, Py_ssize_t index) except -1
    cdef int stats_lock(self) except -1
    cdef int stats_unlock(self) except -1

cdef class Atomic(LockPolicy):
    cdef public bint busy
    cdef public unsigned long owner
    cdef public bint use_mutex
    cdef object _mutex
    cdef int op_enter(self) except -1
    cdef int op_exit(self) except -1
    cdef int _contended(self) except -1
    cdef bint trypin(self, Py_ssize_t row) except -1

cdef class KernelLocks(LockPolicy):
    cdef public bint debug
    cdef public list classes
    cdef public object leaf, compacting, zram
    cdef int slot_lock(self, Py_ssize_t index) except -1
    cdef int slot_unlock(self, Py_ssize_t index) except -1
    cdef int stats_lock(self) except -1
    cdef int stats_unlock(self) except -1
    cdef int leaf_lock(self) except -1
    cdef int leaf_unlock(self) except -1
    cdef int class_lock(self, Py_ssize_t pos) except -1
    cdef int class_unlock(self, Py_ssize_t pos) except -1
    cdef bint compaction_begin(self) except -1
    cdef int compaction_end(self) except -1

cdef class Kernel618(KernelLocks):
    cdef public object pool
    cdef public list stripes
    cdef public dict readers
    cdef int free_enter(self, Py_ssize_t row) except -1
    cdef int free_locked(self, Py_ssize_t z, Py_ssize_t pos) except -1
    cdef int free_exit(self, Py_ssize_t z, Py_ssize_t pos, Py_ssize_t row) except -1
    cdef int free_abort(self, Py_ssize_t row) except -1
    cdef int access_enter(self, Py_ssize_t row) except -1
    cdef int access_locked(self, Py_ssize_t z) except -1
    cdef int access_exit(self, Py_ssize_t z, Py_ssize_t row) except -1
    cdef int access_abort(self, Py_ssize_t row) except -1
    cdef int compact_class_lock(self, Py_ssize_t pos) except -1
    cdef int compact_class_unlock(self, Py_ssize_t pos) except -1
    cdef bint compaction_contended(self) except -1
    cdef int compaction_yield(self, Py_ssize_t pos) except -1
    cdef bint zspage_write_trylock(self, Py_ssize_t z) except -1
    cdef int zspage_write_unlock(self, Py_ssize_t z) except -1
    cdef int migrate_lock(self, Py_ssize_t z, Py_ssize_t pos) except -1
    cdef int migrate_unlock(self, Py_ssize_t z, Py_ssize_t pos) except -1
    cdef bint trypin(self, Py_ssize_t row) except -1

cdef class Tuned(Kernel618):
    cdef public list single
    cdef int alloc_single_lock(self, Py_ssize_t pos) except -1
    cdef int alloc_single_unlock(self, Py_ssize_t pos) except -1

cdef class Kernel48(KernelLocks):
    cdef public list migrate
    cdef int free_enter(self, Py_ssize_t row) except -1
    cdef int free_locked(self, Py_ssize_t z, Py_ssize_t pos) except -1
    cdef int free_exit(self, Py_ssize_t z, Py_ssize_t pos, Py_ssize_t row) except -1
    cdef int free_abort(self, Py_ssize_t row) except -1
    cdef int access_enter(self, Py_ssize_t row) except -1
    cdef int access_locked(self, Py_ssize_t z) except -1
    cdef int access_exit(self, Py_ssize_t z, Py_ssize_t row) except -1
    cdef int access_abort(self, Py_ssize_t row) except -1
    cdef int compact_class_lock(self, Py_ssize_t pos) except -1
    cdef int compact_class_unlock(self, Py_ssize_t pos) except -1
    cdef int compaction_yield(self, Py_ssize_t pos) except -1
    cdef bint trypin(self, Py_ssize_t row) except -1
    cdef int unpin(self, Py_ssize_t row) except -1
    cdef int migrate_lock(self, Py_ssize_t z, Py_ssize_t pos) except -1
    cdef int migrate_unlock(self, Py_ssize_t z, Py_ssize_t pos) except -1
