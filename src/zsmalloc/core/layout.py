"""Bit layouts: the handle users hold, the handle table's location word, object headers and
free-object links. Kernel: OBJ_ALLOCATED_TAG, OBJ_TAG_BITS, location_to_obj,
obj_to_location, link_free.

One place for every encoding, so a change of widths is a change here only.

Handle (what ``Pool.malloc`` returns; 0 is never a handle, the kernel's NULL)::

    gen(33) << 31 | row(31)

The generation is bumped each time a handle-table row is reused, so a stale handle is
refused for 2**33 - 1 reuses of its row (the kernel cannot tell a stale handle from a live
one; we can, for 2 bytes a handle).

Location word of a handle-table row (the kernel's ``obj``, plus a tag and the generation's
high bits, which live here to keep a row at 10 bytes + 2)::

    allocated:  gen_hi(17) << 47 | pfn(31) << 16 | obj_idx(15) << 1 | 1
    free:       gen_hi(17) << 47 | next free row(31) << 1          | 0

Object header, the first 8 bytes of an allocated non-huge object (Kernel: the handle word
with OBJ_ALLOCATED_TAG)::

    row << 1 | 1

Free object link, the first 8 bytes of a free object (Kernel: struct link_free)::

    next_idx << 1   (LINK_END = -1 << 1 as an unsigned word at the end of the list)
"""

import cython

TAG = 1                                  # Kernel: OBJ_ALLOCATED_TAG
ROW_BITS = 31
ROW_MASK = (1 << ROW_BITS) - 1
GEN_BITS = 33
GEN_MASK = (1 << GEN_BITS) - 1
GEN_LO_BITS = 16                         # in the handle table's gen_lo column
GEN_LO_MASK = (1 << GEN_LO_BITS) - 1
GEN_HI_SHIFT = 47                        # in the location word
LOC_MASK = (1 << GEN_HI_SHIFT) - 1       # the location word without the generation
IDX_BITS = 15
IDX_MASK = (1 << IDX_BITS) - 1
PFN_SHIFT = IDX_BITS + 1
PFN_BITS = 31
PFN_MASK = (1 << PFN_BITS) - 1
MAX_ROWS = 1 << ROW_BITS
MAX_FRAMES = 1 << PFN_BITS
LINK_END = 0xFFFF_FFFF_FFFF_FFFE         # (-1 << 1) as a 64-bit word


def handle_make(gen: cython.ulonglong, row: cython.ulonglong) -> cython.ulonglong:
    return (gen << ROW_BITS) | row


def handle_row(handle: cython.ulonglong) -> cython.ulonglong:
    return handle & ROW_MASK


def handle_gen(handle: cython.ulonglong) -> cython.ulonglong:
    return handle >> ROW_BITS
