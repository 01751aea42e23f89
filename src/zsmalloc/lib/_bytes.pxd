# Byte-level helpers shared by lz4.py and lzo.py when compiled: inline C, so each
# compressor's loops get them without a call. _pybytes.py has their pure-Python twins
# (same names, same results) for ZSMALLOC_PURE=1. A .pxd alone: no module is built from it.
from libc.string cimport memcpy, memset
from cpython.buffer cimport PyObject_GetBuffer, PyBUF_SIMPLE, PyBUF_WRITABLE
from cpython.exc cimport PyErr_Clear

ctypedef unsigned char u8
ctypedef unsigned short u16
ctypedef unsigned int u32
ctypedef unsigned long long u64

cdef extern from *:
    int __builtin_ctzll(unsigned long long) nogil


cdef inline u32 r16(const u8* p, Py_ssize_t i) noexcept nogil:
    """Little-endian loads: one unaligned load each (x86-64 is little-endian)."""
    cdef u16 v
    memcpy(&v, p + i, 2)
    return v


cdef inline u32 r32(const u8* p, Py_ssize_t i) noexcept nogil:
    cdef u32 v
    memcpy(&v, p + i, 4)
    return v


cdef inline u64 r64(const u8* p, Py_ssize_t i) noexcept nogil:
    cdef u64 v
    memcpy(&v, p + i, 8)
    return v


cdef inline int ctz64(u64 v) noexcept nogil:
    return __builtin_ctzll(v)


cdef inline void copy(u8* dst, Py_ssize_t d, const u8* src, Py_ssize_t s,
                      Py_ssize_t n) noexcept nogil:
    """Copy n bytes from src[s:] to dst[d:] (not overlapping): short copies as two
    fixed-size, overlapping moves instead of a call to memcpy."""
    if n > 16:
        memcpy(dst + d, src + s, n)
    elif n >= 8:
        memcpy(dst + d, src + s, 8)
        memcpy(dst + d + n - 8, src + s + n - 8, 8)
    elif n >= 4:
        memcpy(dst + d, src + s, 4)
        memcpy(dst + d + n - 4, src + s + n - 4, 4)
    else:
        while n > 0:
            n -= 1
            dst[d + n] = src[s + n]


cdef inline void zero(u8* dst, Py_ssize_t d, Py_ssize_t n) noexcept nogil:
    memset(dst + d, 0, n)


cdef inline void copy_match(u8* dst, Py_ssize_t op, Py_ssize_t off, Py_ssize_t n) noexcept nogil:
    """dst[op:op+n] = the bytes from off back, forward: off < n repeats the pattern."""
    cdef Py_ssize_t m = op - off
    cdef Py_ssize_t end = op + n
    if off >= n:
        copy(dst, op, dst, m, n)
        return
    if off == 1:
        memset(dst + op, dst[m], n)
        return
    if off >= 8:                 # 8-byte steps never read bytes not yet written
        while end - op >= 8:
            memcpy(dst + op, dst + m, 8)
            op += 8
            m += 8
    while op < end:
        dst[op] = dst[m]
        op += 1
        m += 1


cdef extern from "Python.h":
    # PyObject_GetBuffer as it is: -1 with an exception set, for us to replace
    int _get_buffer_raw "PyObject_GetBuffer"(object obj, Py_buffer* view, int flags)


cdef inline int get_buffer(object obj, Py_buffer* buf, bint writable, str name) except -1:
    """Take obj's buffer (contiguous bytes; writable if asked) into buf, held until
    PyBuffer_Release: a bytearray cannot be resized while the GIL is released. (No try
    block on the common path: entering one saves the exception state.)"""
    if _get_buffer_raw(obj, buf, PyBUF_WRITABLE if writable else PyBUF_SIMPLE) == 0:
        return 0
    PyErr_Clear()
    kind = ("a writable bytes-like object (bytearray, memoryview, mmap)" if writable
            else "a contiguous bytes-like object")
    raise TypeError(f"{name} must be {kind}, not {type(obj).__name__}")




# -- running a codec on Python buffers ------------------------------------------------------

from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING

ctypedef Py_ssize_t (*codec_fn)(const u8* src, Py_ssize_t n, u8* dst, Py_ssize_t cap,
                                int param) noexcept nogil


cdef inline Py_ssize_t run_into(codec_fn fn, object src, object dst, int param,
                                Py_ssize_t* sizes) except? -9999:
    """fn(src, len(src), dst, len(dst), param) on the buffers of src and dst, without the
    GIL; sizes[0], sizes[1] receive the two lengths."""
    cdef Py_buffer sb, db
    cdef Py_ssize_t r
    get_buffer(src, &sb, False, "src")
    try:
        get_buffer(dst, &db, True, "dst")
        try:
            sizes[0] = sb.len
            sizes[1] = db.len
            with nogil:
                r = fn(<const u8*>sb.buf, sb.len, <u8*>db.buf, db.len, param)
        finally:
            PyBuffer_Release(&db)
    finally:
        PyBuffer_Release(&sb)
    return r


cdef inline bytes run_new(codec_fn fn, object src, Py_ssize_t start, Py_ssize_t n,
                          Py_ssize_t out_len, int param, Py_ssize_t* res):
    """fn on src[start:start+n] (n -1: to the end) straight into a new bytes object of
    out_len, without the GIL; res[0] receives fn's result, res[1] the input length. The
    bytes are uninitialised where fn did not write: the caller hands them out only if
    res[0] == out_len."""
    cdef Py_buffer sb
    cdef bytes out
    cdef u8* op
    get_buffer(src, &sb, False, "src")
    try:
        if n < 0:
            n = sb.len - start
        if start < 0 or n < 0 or start + n > sb.len:
            raise ValueError(f"src[{start}:{start + n}] is outside a {sb.len}-byte buffer")
        res[1] = n
        out = PyBytes_FromStringAndSize(NULL, out_len)
        op = <u8*>PyBytes_AS_STRING(out)
        with nogil:
            res[0] = fn(<const u8*>sb.buf + start, n, op, out_len, param)
    finally:
        PyBuffer_Release(&sb)
    return out


cdef inline Py_ssize_t decode_into(codec_fn fn, object src, object dst, object error) except? -9999:
    """A decompressor fn run into dst; its length, or ``error(code, len(src), len(dst))``
    raised for a negative code."""
    cdef Py_ssize_t sizes[2]
    cdef Py_ssize_t r = run_into(fn, src, dst, 0, sizes)
    if r < 0:
        raise error(r, sizes[0], sizes[1])
    return r


cdef inline bytes decode_exact(codec_fn fn, object src, object out_len, object error,
                               Py_ssize_t start=0, Py_ssize_t n=-1):
    """Exactly out_len bytes from a decompressor fn (zram's read path) run on
    src[start:start+n], straight into a new bytes object; ``error(code, n, out_len)``
    raised for a negative code, and ``error(length, n, out_len)`` for any other length."""
    cdef Py_ssize_t res[2]
    if isinstance(out_len, bool) or not isinstance(out_len, int) or out_len < 0:
        raise ValueError(f"out_len {out_len!r} must be an int >= 0")
    out = run_new(fn, src, start, n, out_len, 0, res)
    if res[0] != out_len:    # the rest of out is uninitialised: it is never handed out
        raise error(res[0], res[1], out_len)
    return out
