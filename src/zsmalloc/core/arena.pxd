cimport cython
# C types of zsmalloc/core/arena.py (Cython pure-Python mode).
from libc.string cimport memcpy, memmove
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from zsmalloc.core.bitops cimport ffs0

cdef Py_ssize_t DONTNEED_BATCH
cdef unsigned long long ONE

@cython.final
cdef class Arena:
    cdef object _mm
    cdef unsigned char[::1] mem
    cdef unsigned long long[::1] words
    cdef public Py_ssize_t page_size, page_shift, chunk_frames, chunk_shift, chunk_bytes
    cdef public Py_ssize_t nr_chunks, chunks_high
    cdef public Py_ssize_t frames_in_use, chunks_mapped, chunks_unmapped_total
    cdef object _used_store, _bump_store, _free_store, _link_store, _state_store, _bits_store
    cdef unsigned int[::1] chunk_used
    cdef unsigned int[::1] chunk_bump
    cdef int[::1] chunk_free
    cdef int[::1] frame_link
    cdef unsigned char[::1] frame_state
    cdef unsigned long long[::1] has_free
    cdef Py_ssize_t hint
    cdef list _pending

    cdef void _grow_chunks(self, Py_ssize_t n) except *
    cdef Py_ssize_t _lowest_free_chunk(self) noexcept
    cpdef Py_ssize_t alloc_frame(self) except -1
    cpdef free_frame(self, Py_ssize_t pfn)
    cpdef take_frame(self, Py_ssize_t pfn)
    cdef void _release_chunk(self, Py_ssize_t c) except *
    cpdef flush(self)
    cpdef bint is_used(self, Py_ssize_t pfn)
    cpdef Py_ssize_t chunk_used_frames(self, Py_ssize_t c)
    cpdef Py_ssize_t any_free_frame(self, Py_ssize_t c)
    cpdef list mapped_chunks(self)
    cpdef list free_frames_in(self, Py_ssize_t c)
    cpdef Py_ssize_t trim_tail(self)

    cdef unsigned long long word_get(self, Py_ssize_t addr) noexcept
    cdef void word_set(self, Py_ssize_t addr, unsigned long long value) noexcept
    cdef void store_strided(self, Py_ssize_t addr, Py_ssize_t step, unsigned long long[::1] vals) noexcept
    cdef int copy_in(self, Py_ssize_t addr, object src, Py_ssize_t start, Py_ssize_t n) except -1
    cdef bytes copy_out(self, Py_ssize_t addr, Py_ssize_t n)
    cdef bytes copy_out2(self, Py_ssize_t a1, Py_ssize_t n1, Py_ssize_t a2, Py_ssize_t n2)
    cdef void move(self, Py_ssize_t dst, Py_ssize_t src, Py_ssize_t n) noexcept
    cpdef bytes frame_bytes(self, Py_ssize_t pfn)
    cpdef close(self)
    cpdef object memory(self)

cpdef readable(data)
