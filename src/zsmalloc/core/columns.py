"""Growable typed columns: how the core's tables resize without losing a write.

The tables (handles, zspages, per-frame and per-chunk fields, the arena's bookkeeping) are
``array.array`` objects seen through typed memoryviews when compiled. Other threads may
write rows of a table (under their class locks) while it grows (under the leaf lock), so a
resize must not run any Python code that could switch threads between reading the old
contents and the new table becoming visible:

* compiled, an array cannot be resized while a typed view looks at it, so ``resized`` makes
  a bigger copy and the caller swaps the views in; this module is compiled and the copy
  allocates nothing the garbage collector tracks, so no finalizer (Python code) can run
  between the copy and the swap;
* pure Python, the views *are* the arrays: ``resized`` grows the array in place, so every
  thread always sees the one object (each ``frombytes`` / ``del`` is one step under the GIL).
"""

from array import array

import cython


def resized(col, n: cython.Py_ssize_t, fill: cython.longlong = 0):
    """``col`` with length ``n``: its first items, then ``fill`` (0, or all-ones for -1 /
    0xFFFF...). Compiled: a new array; pure: ``col`` itself, resized in place."""
    out = col[:n] if cython.compiled else col
    short: cython.Py_ssize_t = n - len(out)
    if short > 0:
        if fill == 0:
            out.frombytes(bytes(short * out.itemsize))
        else:
            out.frombytes(b"\xff" * (short * out.itemsize))
    elif short < 0:
        del out[n:]
    return out
