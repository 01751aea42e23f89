"""LZO1X-1 and lzo-rle as the kernel does them. Kernel: lib/lzo/lzo1x_compress.c,
lib/lzo/lzo1x_decompress_safe.c, lib/lzo/lzodefs.h (x86-64 build).

``lzo1x_1_compress`` (zram's ``lzo``) and ``lzorle1x_1_compress`` (``lzo-rle``, the kernel's
default zram compressor) are one function, ``lzogeneric1x_1_compress``, with a bitstream
version of 0 or 1. Version 1 starts the stream with the bytes 17, 1 and encodes runs of 4
to 2051 zero bytes as a 4-byte M4 instruction of distance 0xbfff::

    le32((run - 4) << 21 | 0xfffc18 | ((run - 4) & 7))

which is why its largest real M4 distance is 0xbffe, and why input is compressed in chunks
of at most 0xbfff bytes (0xc000 for version 0): each chunk gets a fresh 8192-entry hash
dictionary of 16-bit offsets (``D_BITS`` 13, multiplier 0x1824429d).

The compressor follows the kernel's x86-64 build step for step: the match length is
counted 8 bytes at a time (``LZO_USE_CTZ64``) and that loop stops as soon as it passes
``ip_end`` -- a detail that changes lengths, so ours does the same in both modes. Literal
runs after a match go into the low 2 bits of the previous instruction's byte
(``state_offset``: -2 after a match, -3 after a zero run).

Instructions (first byte t; see docs/compressors.md for the whole table):

* 0..15 after a match or run with 0 trailing literals: a literal run (t + 3, or a 255-run
  length); after 1..3 trailing literals: an M1 match of 2 bytes; after a literal run:
  an M1 match of 3 bytes at distance 2049 + ...
* 16..31: M4, distance 16384..49151 (0x11 0 0 ends the stream; 0x18..0x1f with 0xfffc
  following is a zero run in version 1)
* 32..63: M3, distance up to 16384, any length
* 64..255: M2, distance up to 2048, length 3..8

``lzo1x_decompress_safe`` returns the kernel's LZO_E_* codes; every read and write is
checked. The Python functions raise :class:`DecompressError`.
"""

import cython

from ._pybytes import bytes_view
from .errors import DecompressError

if not cython.compiled:      # compiled: the inline C twins from _bytes.pxd
    from ._pybytes import (copy, copy_match, ctz64, r16, r32, r64,  # noqa: F401
                          decode_exact, decode_into, run_into, zero)

__all__ = ["compress", "compress_into", "decompress", "decompress_into", "compress_bound",
           "DecompressError"]

# Kernel: lzodefs.h, include/linux/lzo.h. Compiled, these are C enum constants (lzo.pxd).
if not cython.compiled:
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
    MAX_ZERO_RUN_LENGTH = 2047 + MIN_ZERO_RUN_LENGTH
    D_BITS = 13
    D_SIZE = 1 << D_BITS
    D_MASK = D_SIZE - 1
    LZO_VERSION = 1                    # the lzo-rle bitstream version
    LZO_E_OK = 0
    LZO_E_ERROR = -1
    LZO_E_INPUT_OVERRUN = -4
    LZO_E_OUTPUT_OVERRUN = -5
    LZO_E_LOOKBEHIND_OVERRUN = -6
    LZO_E_INPUT_NOT_CONSUMED = -8
    LZO_HASH_MUL = 0x1824429d
    MASK32 = 0xFFFFFFFF


# -- compression -------------------------------------------------------------------------

def _bound(n):
    return n + n // 8 + 64 + 3 + 2


def compress_bound(n: int) -> int:
    """The largest stream for n input bytes. The kernel's lzo1x_worst_compress
    (n + n/16 + 64 + 3 + 2) does not hold for lzo-rle: 4 zero bytes then 4 other bytes,
    repeated, cost 9 bytes per 8 (a 4-byte zero run, a literal header, 4 literals). Each
    instruction writes at most as many bytes as it covers and a literal run of t >= 4
    costs one more, so n/8 covers both versions (the kernel's own zram buffer is 2 * n)."""
    return _bound(n)


def _literals(dst, op, state_offset, src, ii, t):
    """Emit t > 0 literals src[ii:ii+t] after the instruction that state_offset points
    into. Kernel: the literal-run encoding of lzo1x_1_do_compress / lzogeneric1x_1_compress
    (1..3 literals ride in the previous instruction's low 2 bits)."""
    if t <= 3:
        dst[op + state_offset] |= t
    elif t <= 18:
        dst[op] = t - 3
        op += 1
    else:
        tt = t - 18
        dst[op] = 0
        op += 1
        while tt > 255:
            tt -= 255
            dst[op] = 0
            op += 1
        dst[op] = tt
        op += 1
    copy(dst, op, src, ii, t)
    return op + t


def _put_len(dst, op, m_len):
    """The zero bytes and final byte of a long M3/M4 length."""
    while m_len > 255:
        m_len -= 255
        dst[op] = 0
        op += 1
    dst[op] = m_len
    return op + 1


@cython.cdivision(True)
def lzo1x_1_do_compress(src, c0, ll, dst, op, ti, state, version, dict_):
    """Compress the chunk src[c0:c0+ll]; ti literals before c0 are still pending.
    Returns the new op; state[0] is the pending literal count for the next chunk,
    state[1] the state_offset. Kernel: lzo1x_1_do_compress."""
    in_end = c0 + ll
    ip_end = c0 + ll - 20
    state_offset = state[1]
    ii = c0
    ip = c0 + (4 - ti if ti < 4 else 0)
    ip += 1 + ((ip - ii) >> 5)              # enter at the "literal" label
    while True:
        # next:
        if ip >= ip_end:
            break
        dv = r32(src, ip)
        run_length = 0
        m_pos = 0
        if dv == 0 and version:
            # a run of zero bytes: how far it reaches, up to ip_end and 2051 bytes
            ir = ip + 4
            limit = ip + MAX_ZERO_RUN_LENGTH + 1
            if ip_end < limit:
                limit = ip_end
            while ir + 8 <= limit:
                v = r64(src, ir)
                if v != 0:
                    ir += ctz64(v) >> 3
                    break
                ir += 8
            while ir < limit and src[ir] == 0:
                ir += 1
            run_length = ir - ip
            if run_length > MAX_ZERO_RUN_LENGTH:
                run_length = MAX_ZERO_RUN_LENGTH
        else:
            t = (((dv * LZO_HASH_MUL) & MASK32) >> (32 - D_BITS)) & D_MASK
            m_pos = c0 + dict_[t]
            dict_[t] = ip - c0
            if dv != r32(src, m_pos):
                ip += 1 + ((ip - ii) >> 5)  # literal: skip ahead faster the longer it runs
                continue
        ii -= ti
        ti = 0
        t = ip - ii
        if t != 0:
            op = _literals(dst, op, state_offset, src, ii, t)
        if run_length:
            ip += run_length
            run_length -= MIN_ZERO_RUN_LENGTH
            rl = (run_length << 21) | 0xfffc18 | (run_length & 7)
            dst[op] = rl & 0xFF
            dst[op + 1] = (rl >> 8) & 0xFF
            dst[op + 2] = (rl >> 16) & 0xFF
            dst[op + 3] = (rl >> 24) & 0xFF
            op += 4
            state_offset = -3
            ii = ip
            continue
        # the match length: 8 bytes a time; the loop ends as soon as it passes ip_end
        # (without adding the partial word), as the kernel's LZO_USE_CTZ64 build does
        m_len = 4
        v = r64(src, ip + m_len) ^ r64(src, m_pos + m_len)
        done = False
        if v == 0:
            while True:
                m_len += 8
                v = r64(src, ip + m_len) ^ r64(src, m_pos + m_len)
                if ip + m_len >= ip_end:
                    done = True
                    break
                if v != 0:
                    break
        if not done:
            m_len += ctz64(v) >> 3
        m_off = ip - m_pos
        ip += m_len
        if m_len <= M2_MAX_LEN and m_off <= M2_MAX_OFFSET:
            m_off -= 1
            dst[op] = ((m_len - 1) << 5) | ((m_off & 7) << 2)
            dst[op + 1] = m_off >> 3
            op += 2
        elif m_off <= M3_MAX_OFFSET:
            m_off -= 1
            if m_len <= M3_MAX_LEN:
                dst[op] = M3_MARKER | (m_len - 2)
                op += 1
            else:
                dst[op] = M3_MARKER
                op = _put_len(dst, op + 1, m_len - M3_MAX_LEN)
            dst[op] = (m_off << 2) & 0xFF
            dst[op + 1] = (m_off >> 6) & 0xFF
            op += 2
        else:
            m_off -= 0x4000
            if m_len <= M4_MAX_LEN:
                dst[op] = M4_MARKER | ((m_off >> 11) & 8) | (m_len - 2)
                op += 1
            else:
                dst[op] = M4_MARKER | ((m_off >> 11) & 8)
                op = _put_len(dst, op + 1, m_len - M4_MAX_LEN)
            dst[op] = (m_off << 2) & 0xFF
            dst[op + 1] = (m_off >> 6) & 0xFF
            op += 2
        state_offset = -2
        ii = ip
    state[0] = in_end - (ii - ti)
    state[1] = state_offset
    return op


def lzogeneric1x_1_compress(src, n, dst, version):
    """Compress src[:n] into dst, which must hold compress_bound(n) bytes; returns the
    length. Kernel: lzogeneric1x_1_compress (lzo1x_1_compress: version 0;
    lzorle1x_1_compress: version LZO_VERSION)."""
    if not cython.compiled:
        dict_ = [0] * D_SIZE
        state = [0, 0]
    op = 0
    if version > 0:
        dst[0] = 17
        dst[1] = version
        op = 2
        m4_max_offset = M4_MAX_OFFSET_V1
    else:
        m4_max_offset = M4_MAX_OFFSET_V0
    data_start = op
    ip = 0
    rem = n
    t = 0
    state[1] = -2                           # state_offset
    while rem > 20:
        ll = rem if rem <= m4_max_offset + 1 else m4_max_offset + 1
        for i in range(D_SIZE):
            dict_[i] = 0
        op = lzo1x_1_do_compress(src, ip, ll, dst, op, t, state, version, dict_)
        t = state[0]
        ip += ll
        rem -= ll
    t += rem
    if t > 0:
        ii = n - t
        if op == data_start and t <= 238:
            dst[op] = 17 + t
            op += 1
            copy(dst, op, src, ii, t)
            op += t
        else:
            op = _literals(dst, op, state[1], src, ii, t)
    dst[op] = M4_MARKER | 1                 # end of stream: M4 of distance 0x4000 + 0
    dst[op + 1] = 0
    dst[op + 2] = 0
    return op + 3


# -- decompression -----------------------------------------------------------------------

def _read_zero_run(src, ip, n):
    """Count the zero bytes at src[ip:] (a 255-run length). Returns (ip after them, count),
    ip -1 if the input ends first."""
    z = 0
    while True:
        if ip >= n:
            return -1, z
        if src[ip] != 0:
            return ip, z
        ip += 1
        z += 1


def lzo1x_decompress_safe(src, n, dst, cap, out_len):
    """Decompress src[:n] into dst[:cap]; returns an LZO_E_* code and the length written in
    out_len[0]. Every index is checked. Kernel: lzo1x_decompress_safe (with the lzo-rle
    zero runs when the stream starts 17, version)."""
    ip = 0
    op = 0
    state = 0
    nxt = 0
    m_pos = 0
    out_len[0] = 0
    if n < 3:
        return LZO_E_INPUT_OVERRUN
    version = 0
    if n >= 5 and src[0] == 17:
        version = src[1]
        ip = 2
    # mode: 0 read an instruction, 1 copy t literals, 2 copy nxt trailing literals
    mode = 0
    t = src[ip]
    if t > 17:
        ip += 1
        t -= 17
        if t < 4:
            nxt = t
            mode = 2
        else:
            mode = 1
    while True:
        if mode == 1:                       # copy_literal_run
            if t > n - ip:
                out_len[0] = op
                return LZO_E_INPUT_OVERRUN
            if t > cap - op:
                out_len[0] = op
                return LZO_E_OUTPUT_OVERRUN
            copy(dst, op, src, ip, t)
            op += t
            ip += t
            state = 4
            mode = 0
            continue
        if mode == 2:                       # match_next: 0..3 literals
            state = nxt
            t = nxt
            if t > n - ip:
                out_len[0] = op
                return LZO_E_INPUT_OVERRUN
            if t > cap - op:
                out_len[0] = op
                return LZO_E_OUTPUT_OVERRUN
            copy(dst, op, src, ip, t)
            op += t
            ip += t
            mode = 0
            continue
        if ip >= n:
            out_len[0] = op
            return LZO_E_INPUT_OVERRUN
        t = src[ip]
        ip += 1
        if t < 16:
            if state == 0:                  # a literal run
                if t == 0:
                    ip, z = _read_zero_run(src, ip, n)
                    if ip < 0:
                        out_len[0] = op
                        return LZO_E_INPUT_OVERRUN
                    t = 255 * z + 15 + src[ip]
                    ip += 1
                t += 3
                mode = 1
                continue
            if ip >= n:
                out_len[0] = op
                return LZO_E_INPUT_OVERRUN
            nxt = t & 3
            if state != 4:                  # M1: 2 bytes, distance 1..1024
                m_pos = op - 1 - (t >> 2) - (src[ip] << 2)
                ip += 1
                t = 2
            else:                           # M1 after a literal run: 3 bytes
                m_pos = op - (1 + M2_MAX_OFFSET) - (t >> 2) - (src[ip] << 2)
                ip += 1
                t = 3
        elif t >= 64:                       # M2
            if ip >= n:
                out_len[0] = op
                return LZO_E_INPUT_OVERRUN
            nxt = t & 3
            m_pos = op - 1 - ((t >> 2) & 7) - (src[ip] << 3)
            ip += 1
            t = (t >> 5) - 1 + (3 - 1)
        elif t >= 32:                       # M3
            t = (t & 31) + (3 - 1)
            if t == 2:
                ip, z = _read_zero_run(src, ip, n)
                if ip < 0:
                    out_len[0] = op
                    return LZO_E_INPUT_OVERRUN
                t += 255 * z + 31 + src[ip]
                ip += 1
            if n - ip < 2:
                out_len[0] = op
                return LZO_E_INPUT_OVERRUN
            nxt = r16(src, ip)
            ip += 2
            m_pos = op - 1 - (nxt >> 2)
            nxt &= 3
        else:                               # M4, end of stream, or an lzo-rle zero run
            if n - ip < 2:
                out_len[0] = op
                return LZO_E_INPUT_OVERRUN
            nxt = r16(src, ip)
            if (nxt & 0xfffc) == 0xfffc and (t & 0xf8) == 0x18 and version:
                if n - ip < 3:
                    out_len[0] = op
                    return LZO_E_INPUT_OVERRUN
                t = ((t & 7) | (src[ip + 2] << 3)) + MIN_ZERO_RUN_LENGTH
                if t > cap - op:
                    out_len[0] = op
                    return LZO_E_OUTPUT_OVERRUN
                zero(dst, op, t)
                op += t
                nxt &= 3
                ip += 3
                mode = 2
                continue
            m_pos = op - ((t & 8) << 11)
            t = (t & 7) + (3 - 1)
            if t == 2:
                ip, z = _read_zero_run(src, ip, n)
                if ip < 0:
                    out_len[0] = op
                    return LZO_E_INPUT_OVERRUN
                t += 255 * z + 7 + src[ip]
                ip += 1
                if n - ip < 2:
                    out_len[0] = op
                    return LZO_E_INPUT_OVERRUN
                nxt = r16(src, ip)
            ip += 2
            m_pos -= nxt >> 2
            nxt &= 3
            if m_pos == op:                 # eof_found
                out_len[0] = op
                if t != 3:
                    return LZO_E_ERROR
                if ip == n:
                    return LZO_E_OK
                return LZO_E_INPUT_NOT_CONSUMED
            m_pos -= 0x4000
        # copy the match: t bytes from m_pos, forward (overlap repeats the pattern)
        if m_pos < 0:
            out_len[0] = op
            return LZO_E_LOOKBEHIND_OVERRUN
        if t > cap - op:
            out_len[0] = op
            return LZO_E_OUTPUT_OVERRUN
        copy_match(dst, op, op - m_pos, t)
        op += t
        mode = 2


# -- Python API --------------------------------------------------------------------------

def _compress(src, n, dst, cap, version):
    """lzogeneric1x_1_compress after checking dst: it writes without checks."""
    if cap < _bound(n):
        return -1
    return lzogeneric1x_1_compress(src, n, dst, version)


def _decompress(src, n, dst, cap, unused):
    """lzo1x_decompress_safe's length, or its (negative) LZO_E_* code."""
    out_len: cython.Py_ssize_t[1]
    if not cython.compiled:
        out_len = [0]
    r = lzo1x_decompress_safe(src, n, dst, cap, out_len)
    return out_len[0] if r == LZO_E_OK else r


def compress_into(src, dst, rle=False) -> cython.Py_ssize_t:
    """Compress ``src`` into the writable ``dst`` (lzo-rle if ``rle``); returns the length.
    ``dst`` must hold ``compress_bound(len(src))`` bytes (ValueError otherwise: the kernel's
    compressor writes without checking, so we check first). Runs without the GIL when
    compiled. Kernel: lzo1x_1_compress / lzorle1x_1_compress."""
    sizes: cython.Py_ssize_t[2]
    if not cython.compiled:
        sizes = [0, 0]
    r = run_into(_compress, src, dst, LZO_VERSION if rle else 0, sizes)
    if r < 0:
        n, cap = sizes[0], sizes[1]
        raise ValueError(f"lzo: dst of {cap} bytes is smaller than compress_bound({n}) = "
                         f"{compress_bound(n)}")
    return r


def compress(data, rle=False) -> bytes:
    """The LZO1X-1 (or lzo-rle) stream of ``data``: the kernel's bytes."""
    n = len(data) if isinstance(data, (bytes, bytearray)) else len(bytes_view(data, "data"))
    out = bytearray(compress_bound(n))
    r = compress_into(data, out, rle)
    del out[r:]
    return bytes(out)


_MESSAGES = {
    -1: "corrupt stream (LZO_E_ERROR)",
    -4: "truncated or corrupt stream (LZO_E_INPUT_OVERRUN)",
    -5: "output larger than the buffer (LZO_E_OUTPUT_OVERRUN)",
    -6: "a match reaches before the start of the output (LZO_E_LOOKBEHIND_OVERRUN)",
    -8: "bytes after the end of the stream (LZO_E_INPUT_NOT_CONSUMED)",
}


def _error(code, n, cap) -> DecompressError:
    """The error for a decompressor result: a negative LZO_E_* code, or a length other
    than the one asked for."""
    if code >= 0:
        return DecompressError(f"lzo: {n}-byte object decompresses to {code} bytes, not {cap}")
    return DecompressError(f"lzo: {n}-byte object does not decompress into {cap} bytes: "
                           f"{_MESSAGES.get(code, code)}")


def decompress_into(src, dst) -> cython.Py_ssize_t:
    """Decompress an lzo or lzo-rle stream into the writable ``dst``; returns the length
    written. DecompressError on a corrupt or truncated stream or one larger than ``dst``.
    Kernel: lzo1x_decompress_safe."""
    return decode_into(_decompress, src, dst, _error)


def decompress(src, out_len) -> bytes:
    """Exactly ``out_len`` bytes decompressed from ``src`` (zram's read path), or
    DecompressError. Compiled, it decompresses straight into the new bytes object."""
    return decode_exact(_decompress, src, out_len, _error)


def decompress_at(src, start, n, out_len) -> bytes:
    """Like ``decompress``, of the ``n`` bytes at ``start`` in the buffer ``src`` (zram
    reads an object where it lies in the pool's memory, without a copy)."""
    return decode_exact(_decompress, src, out_len, _error, start, n)
