"""Bit operations. Kernel: include/linux/bitops.h (__ffs, __fls).

Compiled: the CPU's count-trailing/leading-zeros instructions. Pure: int.bit_length. These
two one-line branches are the only code here written twice.
"""

import cython


def ffs0(w: cython.ulonglong) -> cython.int:
    """Index of the lowest set bit of a non-zero word. Kernel: __ffs."""
    if cython.compiled:
        return __builtin_ctzll(w)
    else:
        return (w & -w).bit_length() - 1


def fls0(w: cython.ulonglong) -> cython.int:
    """Index of the highest set bit of a non-zero word. Kernel: __fls."""
    if cython.compiled:
        return 63 - __builtin_clzll(w)
    else:
        return w.bit_length() - 1
