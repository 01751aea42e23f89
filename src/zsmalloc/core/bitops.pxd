# C types of zsmalloc/core/bitops.py.
cdef extern from *:
    int __builtin_ctzll(unsigned long long) nogil
    int __builtin_clzll(unsigned long long) nogil

cpdef int ffs0(unsigned long long w) noexcept nogil
cpdef int fls0(unsigned long long w) noexcept nogil
