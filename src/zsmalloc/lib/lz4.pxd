# C types of zsmalloc/lib/lz4.py (Cython pure-Python mode).
cimport cython
from libc.string cimport memcpy
from zsmalloc.lib._bytes cimport (r16, r32, r64, ctz64, copy, zero, copy_match,
                                  run_into, decode_into, decode_exact)

cdef extern from *:
    # 64-bit C constants (a Cython int literal this large would be a Python object)
    const unsigned long long PRIME32 "2654435761ULL"
    const unsigned long long PRIME5BYTES "889523592379ULL"
    const unsigned long long MASK32 "0xFFFFFFFFULL"

ctypedef unsigned char u8
ctypedef unsigned short u16
ctypedef unsigned int u32
ctypedef unsigned long long u64

cpdef enum:
    MINMATCH = 4
    LASTLITERALS = 5
    MFLIMIT = 12
    LZ4_MIN_LENGTH = 13
    LZ4_64KLIMIT = 65547
    SKIPTRIGGER = 6
    MAX_DISTANCE = 65535
    ML_MASK = 15
    RUN_MASK = 15
    HASH_SIZE_U16 = 8192
    HASH_SIZE_U32 = 4096
    MAX_INPUT_SIZE = 0x7E000000
    E_INPUT = -1
    E_OUTPUT = -2
    E_OFFSET = -3

@cython.locals(v=Py_ssize_t)
cdef inline Py_ssize_t _put_len(u8* dst, Py_ssize_t op, Py_ssize_t v) noexcept nogil
cdef inline u32 _hash(const u8* p, Py_ssize_t i, bint by16) noexcept nogil
@cython.locals(start=Py_ssize_t, diff=u64)
cdef inline Py_ssize_t _count(const u8* p, Py_ssize_t a, Py_ssize_t b, Py_ssize_t limit) noexcept nogil

cdef Py_ssize_t lz4_compress_fast(const u8* src, Py_ssize_t n, u8* dst, Py_ssize_t cap,
                                  int accel) noexcept nogil
cdef Py_ssize_t lz4_compress_fast_182(const u8* src, Py_ssize_t n, u8* dst, Py_ssize_t cap,
                                      int accel) noexcept nogil
@cython.locals(t16=u16[8192], t32=u32[4096], i=Py_ssize_t)
cdef inline Py_ssize_t _compress_fast(const u8* src, Py_ssize_t n, u8* dst, Py_ssize_t cap,
                                      int accel, const int late) noexcept nogil
@cython.locals(op=Py_ssize_t, search_limit=Py_ssize_t,
               anchor=Py_ssize_t, mflimit=Py_ssize_t, matchlimit=Py_ssize_t, ip=Py_ssize_t,
               forward_ip=Py_ssize_t, forward_h=u32, h=u32, step=u32, search_nb=u32,
               at_end=bint, match=Py_ssize_t, lit=Py_ssize_t, token=Py_ssize_t,
               off=Py_ssize_t, mcode=Py_ssize_t, last=Py_ssize_t)
cdef inline Py_ssize_t _compress_generic(const u8* src, Py_ssize_t n, u8* dst, Py_ssize_t cap,
                                         int accel, const bint by16, u16* t16,
                                         u32* t32, const int late) noexcept nogil

@cython.locals(b=u32)
cdef inline (Py_ssize_t, Py_ssize_t) _read_len(const u8* src, Py_ssize_t ip, Py_ssize_t n,
                                        Py_ssize_t length) noexcept nogil
@cython.locals(ip=Py_ssize_t, op=Py_ssize_t, token=u32, lit=Py_ssize_t, off=Py_ssize_t,
               mlen=Py_ssize_t)
cdef Py_ssize_t lz4_decompress_safe(const u8* src, Py_ssize_t n, u8* dst,
                                    Py_ssize_t cap) noexcept nogil

cdef Py_ssize_t _decompress(const u8* src, Py_ssize_t n, u8* dst, Py_ssize_t cap,
                            int unused) noexcept nogil

# the Python entry points zram's backends call at C speed
cpdef bytes decompress(object src, object out_len)
cpdef bytes decompress_at(object src, Py_ssize_t start, Py_ssize_t n, Py_ssize_t out_len)
