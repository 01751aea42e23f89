"""Growable typed columns: how the core's tables resize without a moment of inconsistency.

The tables (handles, zspages, per-frame and per-chunk fields, the arena's bookkeeping) are
``array.array`` objects seen through typed memoryviews. An array cannot be resized while a
view looks at it, and a view must never be missing while another thread could read it (a
finalizer run by the garbage collector can switch threads inside Python code). So a table
grows by building a new array first, with Python code that changes nothing, and then swapping
the views in plain assignments that run no Python code.
"""

from array import array


def resized(col: array, n: int, fill: int = 0) -> array:
    """A new array of ``col``'s type and length ``n``: ``col``'s first items, then ``fill``."""
    out = col[:n]                      # a copy
    short = n - len(out)
    if short > 0:
        if fill == 0:
            out.frombytes(bytes(short * out.itemsize))
        else:
            out.extend(array(col.typecode, [fill]) * short)
    return out
