"""LZ4 block compression as the kernel does it. Kernel: lib/lz4/lz4_compress.c,
lib/lz4/lz4_decompress.c, lib/lz4/lz4defs.h.

The kernel's lib/lz4 is LZ4 1.7.3 (2017). zram compresses a page with
``LZ4_compress_fast(src, dst, PAGE_SIZE, 2 * PAGE_SIZE, level, wrkmem)``: a fresh 16 KiB
hash table each call, acceleration ``level`` (default 1), and for inputs under 64 KiB + 11
bytes (every page size zram has) the 16-bit table of 8192 entries (``byU16``,
``LZ4_hash4``). ``lz4_compress_fast`` below is that function step for step, so its output
is the kernel's byte for byte. The one place later LZ4 releases differ (see
docs/compressors.md): 1.7.3 stops searching when the *next* probe would start past
``iend - MFLIMIT`` (``forwardIp > mflimit``); 1.8.2 and later allow one byte more
(``forwardIp > mflimitPlusOne``), and so find a few more matches at the end of a page.

Format (one block): sequences of ``token | [literal length bytes] | literals |
offset (2 bytes LE) | [match length bytes]``; the token's high nibble is the literal
count, the low nibble the match length minus 4, 15 meaning "more bytes follow, each added,
until one is not 255". The last sequence has literals only.

``lz4_decompress_safe`` checks every index against its buffers and returns a negative
code on bad input; the Python functions raise :class:`DecompressError`.

Both core functions are C functions without the GIL when compiled (see lz4.pxd); in pure
mode the same code runs over bytes/bytearray objects, indices standing in for pointers.
"""

import cython

from ._pybytes import bytes_view
from .errors import DecompressError

if not cython.compiled:      # compiled: the inline C twins from _bytes.pxd
    from ._pybytes import (copy, copy_match, ctz64, r16, r32, r64,  # noqa: F401
                          decode_exact, decode_into, run_into, zero)

__all__ = ["compress", "compress_into", "decompress", "decompress_into", "compress_bound",
           "DecompressError", "MAX_INPUT_SIZE"]

# Kernel: lz4defs.h / include/linux/lz4.h. Compiled, these are C enum constants (lz4.pxd).
if not cython.compiled:
    MINMATCH = 4
    LASTLITERALS = 5
    MFLIMIT = 12                        # WILDCOPYLENGTH + MINMATCH
    LZ4_MIN_LENGTH = MFLIMIT + 1        # shorter inputs are all literals
    LZ4_64KLIMIT = 65536 + MFLIMIT - 1  # below this the 16-bit table is used
    SKIPTRIGGER = 6
    MAX_DISTANCE = 65535
    ML_MASK = 15
    RUN_MASK = 15
    HASH_SIZE_U16 = 8192                # 1 << (LZ4_HASHLOG + 1), LZ4_MEMORY_USAGE 14
    HASH_SIZE_U32 = 4096                # 1 << LZ4_HASHLOG
    MAX_INPUT_SIZE = 0x7E000000         # LZ4_MAX_INPUT_SIZE
    # decompression error codes (negative returns of lz4_decompress_safe)
    E_INPUT = -1      # the stream ends inside a sequence
    E_OUTPUT = -2     # the output would not fit
    E_OFFSET = -3     # a match reaches before the start of the output

    PRIME32 = 2654435761                # LZ4_hash4's multiplier
    PRIME5BYTES = 889523592379          # LZ4_hash5's (little-endian)
    MASK32 = 0xFFFFFFFF

MASK64 = 0xFFFFFFFFFFFFFFFF            # pure mode: C's unsigned wrap-around


# -- compression -------------------------------------------------------------------------

def _put_len(dst, op, v):
    """The 255-run length bytes of a literal or match length; returns the new op."""
    while v >= 255:
        dst[op] = 255
        op += 1
        v -= 255
    dst[op] = v
    return op + 1


def _hash(p, i, by16):
    """Kernel: LZ4_hashPosition (LZ4_hash4 for byU16, LZ4_hash5 for byU32 on 64-bit)."""
    if by16:
        return ((r32(p, i) * PRIME32) & MASK32) >> 19
    if cython.compiled:
        return ((r64(p, i) << 24) * PRIME5BYTES) >> 52
    return ((((r64(p, i) << 24) & MASK64) * PRIME5BYTES) & MASK64) >> 52


def _count(p, a, b, limit):
    """Bytes equal at p[a:] and p[b:], stopping at limit. Kernel: LZ4_count (8 bytes a
    step, then the tail; the result is the common length either way)."""
    start = a
    while a < limit - 7:
        diff = r64(p, b) ^ r64(p, a)
        if diff == 0:
            a += 8
            b += 8
            continue
        return a + (ctz64(diff) >> 3) - start
    while a < limit and p[a] == p[b]:
        a += 1
        b += 1
    return a - start


def compress_bound(n: int) -> int:
    """Kernel: LZ4_COMPRESSBOUND, the largest output for an input of n bytes."""
    return n + n // 255 + 16


def lz4_compress_fast(src, n, dst, cap, accel):
    """Compress src[:n] into dst[:cap]; returns the length, or 0 if it does not fit (or the
    input is too large). Kernel: LZ4_compress_fast -> LZ4_compress_fast_extState (the
    16-bit table below 64 KiB + 11 bytes, else the 32-bit one) -> LZ4_compress_generic
    (noDict; the limitedOutput checks always on: they fail only where the output would
    not fit, so with cap >= compress_bound(n) the bytes are the kernel's noLimit output)."""
    return _compress_fast(src, n, dst, cap, accel, 0)


def lz4_compress_fast_182(src, n, dst, cap, accel):
    """lz4_compress_fast with the match search of LZ4 1.8.2 and later, which probes one
    position closer to the end of the input. Not the kernel's output: for comparisons
    (docs/compressors.md, benchmarks/kernel_lengths.py)."""
    return _compress_fast(src, n, dst, cap, accel, 1)


def _compress_fast(src, n, dst, cap, accel, late):
    if n < 0 or n > MAX_INPUT_SIZE:
        return 0
    if accel < 1:
        accel = 1
    if not cython.compiled:
        t16 = [0] * HASH_SIZE_U16
        t32 = [0] * HASH_SIZE_U32
    # Kernel: LZ4_resetStream zeroes the table: an empty slot means position 0.
    if n < LZ4_64KLIMIT:
        if n >= LZ4_MIN_LENGTH:
            for i in range(HASH_SIZE_U16):
                t16[i] = 0
        return _compress_generic(src, n, dst, cap, accel, True, t16, t32, late)
    for i in range(HASH_SIZE_U32):
        t32[i] = 0
    return _compress_generic(src, n, dst, cap, accel, False, t16, t32, late)


@cython.cdivision(True)
def _compress_generic(src, n, dst, cap, accel, by16, t16, t32, late):
    """The body of LZ4_compress_generic for one table type (inlined for each, so ``by16``
    and ``late`` are constants in each copy). Kernel: LZ4_compress_generic."""
    op = 0
    anchor = 0
    if n >= LZ4_MIN_LENGTH:
        mflimit = n - MFLIMIT
        search_limit = mflimit + late       # 1.7.3: mflimit; 1.8.2+: mflimitPlusOne
        matchlimit = n - LASTLITERALS
        # First byte
        if by16:
            t16[_hash(src, 0, True)] = 0
        else:
            t32[_hash(src, 0, False)] = 0
        ip = 1
        forward_h = _hash(src, 1, by16)
        at_end = False
        while not at_end:
            # Find a match: probe positions ip, ip + step, ...; the step grows by one
            # every 64 misses (LZ4_SKIPTRIGGER).
            forward_ip = ip
            step = 1
            search_nb = accel << SKIPTRIGGER
            while True:
                h = forward_h
                ip = forward_ip
                forward_ip += step
                step = search_nb >> SKIPTRIGGER
                search_nb += 1
                if forward_ip > search_limit:
                    at_end = True
                    break
                if by16:
                    match = t16[h]
                else:
                    match = t32[h]
                forward_h = _hash(src, forward_ip, by16)
                if by16:
                    t16[h] = ip
                else:
                    t32[h] = ip
                if not by16 and match + MAX_DISTANCE < ip:
                    continue
                if r32(src, match) == r32(src, ip):
                    break
            if at_end:
                break
            # Catch up: extend the match backwards over equal bytes.
            while ip > anchor and match > 0 and src[ip - 1] == src[match - 1]:
                ip -= 1
                match -= 1
            # Encode literals
            lit = ip - anchor
            token = op
            op += 1
            if op + lit + (2 + 1 + LASTLITERALS) + lit // 255 > cap:
                return 0
            if lit >= RUN_MASK:
                dst[token] = RUN_MASK << 4
                op = _put_len(dst, op, lit - RUN_MASK)
            else:
                dst[token] = lit << 4
            copy(dst, op, src, anchor, lit)
            op += lit
            while True:                       # Kernel: _next_match
                off = ip - match
                dst[op] = off & 0xFF
                dst[op + 1] = off >> 8
                op += 2
                mcode = _count(src, ip + MINMATCH, match + MINMATCH, matchlimit)
                ip += MINMATCH + mcode
                if op + (1 + LASTLITERALS) + (mcode >> 8) > cap or op + 2 + mcode // 255 > cap:
                    return 0                  # (the second test keeps huge inputs safe)
                if mcode >= ML_MASK:
                    dst[token] += ML_MASK
                    op = _put_len(dst, op, mcode - ML_MASK)
                else:
                    dst[token] += mcode
                anchor = ip
                if ip > mflimit:              # Test end of chunk
                    at_end = True
                    break
                # Fill table, then test the next position for an immediate match.
                if by16:
                    t16[_hash(src, ip - 2, True)] = ip - 2
                    h = _hash(src, ip, True)
                    match = t16[h]
                    t16[h] = ip
                else:
                    t32[_hash(src, ip - 2, False)] = ip - 2
                    h = _hash(src, ip, False)
                    match = t32[h]
                    t32[h] = ip
                if match + MAX_DISTANCE >= ip and r32(src, match) == r32(src, ip):
                    if op + 3 > cap:
                        return 0
                    token = op
                    dst[op] = 0
                    op += 1
                    continue
                ip += 1
                forward_h = _hash(src, ip, by16)
                break
    # Encode last literals
    last = n - anchor
    if op + last + 1 + (last + 255 - RUN_MASK) // 255 > cap:
        return 0
    if last >= RUN_MASK:
        dst[op] = RUN_MASK << 4
        op = _put_len(dst, op + 1, last - RUN_MASK)
    else:
        dst[op] = last << 4
        op += 1
    copy(dst, op, src, anchor, last)
    return op + last


# -- decompression -----------------------------------------------------------------------

def _read_len(src, ip, n, length):
    """Add the 255-run length bytes at src[ip:] to length. Returns (new ip, length); ip is
    -1 if the stream ends inside them."""
    while True:
        if ip >= n:
            return -1, length
        b = src[ip]
        ip += 1
        length += b
        if b != 255:
            return ip, length


def lz4_decompress_safe(src, n, dst, cap):
    """Decompress the block src[:n] into dst[:cap]; returns the decompressed length or a
    negative E_* code. Every read and write is checked against n and cap.
    Kernel: LZ4_decompress_safe (endOnInputSize, full block).

    Compiled, a sequence far from both ends (16 input bytes and 32 output bytes left)
    takes LZ4's shortcut: 16 bytes copied for literals of up to 14, 18 for a match of up
    to 18 at a distance of 8 or more, each then cut to its length. So bytes of dst past
    the returned length may change (never past cap)."""
    ip = 0
    op = 0
    if n <= 0:
        return E_INPUT
    while True:
        if ip >= n:
            return E_INPUT
        token = src[ip]
        ip += 1
        lit = token >> 4
        if cython.compiled and lit < RUN_MASK and n - ip >= 16 and cap - op >= 32:
            memcpy(dst + op, src + ip, 16)    # the shortcut: never the last sequence
            ip += lit
            op += lit
        else:
            if lit == RUN_MASK:
                ip, lit = _read_len(src, ip, n, lit)
                if ip < 0:
                    return E_INPUT
            if lit > n - ip:
                return E_INPUT
            if lit > cap - op:
                return E_OUTPUT
            copy(dst, op, src, ip, lit)
            ip += lit
            op += lit
            if ip == n:                       # the last sequence: literals only
                return op
            if n - ip < 2:
                return E_INPUT
        off = r16(src, ip)
        ip += 2
        if off == 0 or off > op:
            return E_OFFSET
        mlen = token & ML_MASK
        if cython.compiled and mlen < ML_MASK and off >= 8 and cap - op >= 18:
            memcpy(dst + op, dst + op - off, 8)
            memcpy(dst + op + 8, dst + op - off + 8, 8)
            memcpy(dst + op + 16, dst + op - off + 16, 2)
            op += mlen + MINMATCH
            continue
        if mlen == ML_MASK:
            ip, mlen = _read_len(src, ip, n, mlen)
            if ip < 0:
                return E_INPUT
        mlen += MINMATCH
        if mlen > cap - op:
            return E_OUTPUT
        copy_match(dst, op, off, mlen)
        op += mlen


# -- Python API --------------------------------------------------------------------------

def _accel(acceleration) -> cython.int:
    if isinstance(acceleration, bool) or not isinstance(acceleration, int) or acceleration < 1:
        raise ValueError(f"lz4 acceleration {acceleration!r} must be an int >= 1")
    return min(acceleration, 65537)          # Kernel: LZ4_ACCELERATION_MAX


def _decompress(src, n, dst, cap, unused):
    return lz4_decompress_safe(src, n, dst, cap)


def compress_into(src, dst, acceleration=1, *, lz4_182=False) -> cython.Py_ssize_t:
    """Compress ``src`` into the writable ``dst``; returns the length. ValueError if it does
    not fit (``compress_bound(len(src))`` always fits). Runs without the GIL when compiled.
    Kernel: LZ4_compress_fast. ``lz4_182=True``: search as LZ4 1.8.2 and later do (not the
    kernel's bytes; for comparisons)."""
    accel: cython.int = _accel(acceleration)
    sizes: cython.Py_ssize_t[2]
    if not cython.compiled:
        sizes = [0, 0]
    if lz4_182:
        r = run_into(lz4_compress_fast_182, src, dst, accel, sizes)
    else:
        r = run_into(lz4_compress_fast, src, dst, accel, sizes)
    if r <= 0:
        n, cap = sizes[0], sizes[1]
        if n > MAX_INPUT_SIZE:
            raise ValueError(f"lz4: input of {n} bytes is over LZ4_MAX_INPUT_SIZE")
        raise ValueError(f"lz4: {n} bytes do not compress into a {cap}-byte buffer "
                         f"(compress_bound is {compress_bound(n)})")
    return r


def compress(data, acceleration=1, *, lz4_182=False) -> bytes:
    """The compressed block of ``data`` (the kernel's bytes). Kernel: LZ4_compress_fast.
    ``lz4_182=True``: as LZ4 1.8.2 and later would (see compress_into)."""
    n = len(data) if isinstance(data, (bytes, bytearray)) else len(bytes_view(data, "data"))
    out = bytearray(compress_bound(n))
    r = compress_into(data, out, acceleration, lz4_182=lz4_182)
    del out[r:]
    return bytes(out)


def _error(code, n, cap) -> DecompressError:
    """The error for a decompressor result: a negative E_* code, or a length other than
    the one asked for."""
    if code >= 0:
        return DecompressError(f"lz4: {n}-byte object decompresses to {code} bytes, not {cap}")
    what = {E_INPUT: "truncated or corrupt stream (it ends inside a sequence)",
            E_OUTPUT: f"output larger than {cap} bytes",
            E_OFFSET: "a match offset points before the start of the output"}
    return DecompressError(f"lz4: {n}-byte object does not decompress: {what.get(code, code)}")


def decompress_into(src, dst) -> cython.Py_ssize_t:
    """Decompress the block ``src`` into the writable ``dst``; returns the length written.
    DecompressError on a corrupt or truncated block or one larger than ``dst``. Bytes of
    ``dst`` after the returned length may change (LZ4's wide copies). Kernel:
    LZ4_decompress_safe."""
    return decode_into(_decompress, src, dst, _error)


def decompress(src, out_len) -> bytes:
    """Exactly ``out_len`` bytes decompressed from ``src`` (zram's read path), or
    DecompressError. Compiled, it decompresses straight into the new bytes object."""
    return decode_exact(_decompress, src, out_len, _error)


def decompress_at(src, start, n, out_len) -> bytes:
    """Like ``decompress``, of the ``n`` bytes at ``start`` in the buffer ``src`` (zram
    reads an object where it lies in the pool's memory, without a copy)."""
    return decode_exact(_decompress, src, out_len, _error, start, n)
