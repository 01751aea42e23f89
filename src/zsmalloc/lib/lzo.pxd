# C types of zsmalloc/lib/lzo.py (Cython pure-Python mode).
cimport cython
from zsmalloc.lib._bytes cimport (r16, r32, r64, ctz64, copy, zero, copy_match,
                                  run_into, decode_into, decode_exact)

cdef extern from *:
    const unsigned int LZO_HASH_MUL "0x1824429dU"
    const unsigned int MASK32 "0xFFFFFFFFU"

ctypedef unsigned char u8
ctypedef unsigned short u16
ctypedef unsigned int u32
ctypedef unsigned long long u64

cpdef enum:
    M2_MAX_LEN = 8
    M2_MAX_OFFSET = 0x0800
    M3_MAX_LEN = 33
    M3_MAX_OFFSET = 0x4000
    M4_MAX_LEN = 9
    M4_MAX_OFFSET_V0 = 0xbfff
    M4_MAX_OFFSET_V1 = 0xbffe
    M3_MARKER = 32
    M4_MARKER = 16
    MIN_ZERO_RUN_LENGTH = 4
    MAX_ZERO_RUN_LENGTH = 2051
    D_BITS = 13
    D_SIZE = 8192
    D_MASK = 8191
    LZO_VERSION = 1
    LZO_E_OK = 0
    LZO_E_ERROR = -1
    LZO_E_INPUT_OVERRUN = -4
    LZO_E_OUTPUT_OVERRUN = -5
    LZO_E_LOOKBEHIND_OVERRUN = -6
    LZO_E_INPUT_NOT_CONSUMED = -8


@cython.locals(tt=Py_ssize_t)
cdef inline Py_ssize_t _literals(u8* dst, Py_ssize_t op, Py_ssize_t state_offset, const u8* src,
                          Py_ssize_t ii, Py_ssize_t t) noexcept nogil
cdef inline Py_ssize_t _put_len(u8* dst, Py_ssize_t op, Py_ssize_t m_len) noexcept nogil

@cython.locals(in_end=Py_ssize_t, ip_end=Py_ssize_t, state_offset=Py_ssize_t, ii=Py_ssize_t,
               ip=Py_ssize_t, dv=u32, run_length=Py_ssize_t, m_pos=Py_ssize_t,
               ir=Py_ssize_t, limit=Py_ssize_t, v=u64, t=Py_ssize_t, rl=u32,
               m_len=Py_ssize_t, m_off=Py_ssize_t, done=bint)
cdef Py_ssize_t lzo1x_1_do_compress(const u8* src, Py_ssize_t c0, Py_ssize_t ll, u8* dst,
                                    Py_ssize_t op, Py_ssize_t ti, Py_ssize_t* state,
                                    int version, u16* dict_) noexcept nogil

@cython.locals(dict_=u16[8192], state=Py_ssize_t[2], op=Py_ssize_t, m4_max_offset=Py_ssize_t,
               data_start=Py_ssize_t, ip=Py_ssize_t, rem=Py_ssize_t, t=Py_ssize_t,
               ll=Py_ssize_t, i=Py_ssize_t, ii=Py_ssize_t)
cdef Py_ssize_t lzogeneric1x_1_compress(const u8* src, Py_ssize_t n, u8* dst,
                                        int version) noexcept nogil

@cython.locals(z=Py_ssize_t)
cdef inline (Py_ssize_t, Py_ssize_t) _read_zero_run(const u8* src, Py_ssize_t ip,
                                             Py_ssize_t n) noexcept nogil

@cython.locals(ip=Py_ssize_t, op=Py_ssize_t, state=Py_ssize_t, nxt=Py_ssize_t,
               m_pos=Py_ssize_t, version=u32, mode=int, t=Py_ssize_t, z=Py_ssize_t)
cdef int lzo1x_decompress_safe(const u8* src, Py_ssize_t n, u8* dst, Py_ssize_t cap,
                               Py_ssize_t* out_len) noexcept nogil

cdef inline Py_ssize_t _bound(Py_ssize_t n) noexcept nogil
cdef Py_ssize_t _compress(const u8* src, Py_ssize_t n, u8* dst, Py_ssize_t cap,
                          int version) noexcept nogil
@cython.locals(out_len=Py_ssize_t[1], r=int)
cdef Py_ssize_t _decompress(const u8* src, Py_ssize_t n, u8* dst, Py_ssize_t cap,
                            int unused) noexcept nogil

# the Python entry points zram's backends call at C speed
cpdef bytes decompress(object src, object out_len)
cpdef bytes decompress_at(object src, Py_ssize_t start, Py_ssize_t n, Py_ssize_t out_len)
