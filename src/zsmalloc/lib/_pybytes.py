"""Byte-level helpers in plain Python: the pure-mode twins of _bytes.pxd (same names,
same results; "pointers" are bytes/bytearray objects and indices), and ``bytes_view``,
which both modes use to accept any buffer."""


def r16(p, i):
    return p[i] | (p[i + 1] << 8)


def r32(p, i):
    return p[i] | (p[i + 1] << 8) | (p[i + 2] << 16) | (p[i + 3] << 24)


def r64(p, i):
    return int.from_bytes(p[i:i + 8], "little")


def ctz64(v):
    return (v & -v).bit_length() - 1


def copy(dst, d, src, s, n):
    dst[d:d + n] = src[s:s + n]


def zero(dst, d, n):
    dst[d:d + n] = bytes(n)


def copy_match(dst, op, off, n):
    m = op - off
    if off >= n:
        dst[op:op + n] = dst[m:m + n]
    else:
        pat = bytes(dst[m:op])
        dst[op:op + n] = (pat * (n // off + 1))[:n]


def bytes_view(obj, name, writable=False):
    """A 1-byte-item view of a buffer, with a clear error for anything else."""
    try:
        mv = memoryview(obj)
    except TypeError:
        raise TypeError(f"{name} must be a bytes-like object, not {type(obj).__name__}") from None
    if writable and mv.readonly:
        raise TypeError(f"{name} must be a writable bytes-like object "
                        f"(bytearray, memoryview, mmap), not {type(obj).__name__}")
    if not mv.c_contiguous:
        raise TypeError(f"{name} must be a contiguous buffer")
    return mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv


def run_into(fn, src, dst, param, sizes):
    """fn(src, len(src), dst, len(dst), param); sizes[0], sizes[1] = the two lengths."""
    s = bytes_view(src, "src")
    d = bytes_view(dst, "dst", writable=True)
    sizes[0], sizes[1] = len(s), len(d)
    return fn(s, len(s), d, len(d), param)


def run_new(fn, src, start, n, out_len, param, res):
    """fn on src[start:start+n] (n -1: to the end) into a new bytes object of out_len;
    res[0] = fn's result, res[1] = the input length."""
    s = bytes_view(src, "src")
    if n < 0:
        n = len(s) - start
    if start < 0 or n < 0 or start + n > len(s):
        raise ValueError(f"src[{start}:{start + n}] is outside a {len(s)}-byte buffer")
    s = s[start:start + n]
    buf = bytearray(out_len)
    res[1] = n
    res[0] = fn(s, n, buf, out_len, param)
    return bytes(buf)


def decode_into(fn, src, dst, error):
    sizes = [0, 0]
    r = run_into(fn, src, dst, 0, sizes)
    if r < 0:
        raise error(r, sizes[0], sizes[1])
    return r


def decode_exact(fn, src, out_len, error, start=0, n=-1):
    if isinstance(out_len, bool) or not isinstance(out_len, int) or out_len < 0:
        raise ValueError(f"out_len {out_len!r} must be an int >= 0")
    res = [0, 0]
    out = run_new(fn, src, start, n, out_len, 0, res)
    if res[0] != out_len:
        raise error(res[0], res[1], out_len)
    return out
