"""Bit layouts and constants of the core, in one place. Kernel: OBJ_ALLOCATED_TAG,
OBJ_TAG_BITS, OBJ_INDEX_BITS, location_to_obj, obj_to_location, struct link_free.

Plain Python, not compiled: compiled modules declare the constants they use as C globals in
their ``.pxd`` and take the values from here at import, so every width is written once.

**Handle** (what ``Pool.malloc`` returns; 0 is never a handle, the kernel's NULL)::

    gen(33) << 30 | row(30)

so a handle is below 2**63 (a C ``long long``, converted from a Python int without an
exception path). ``row`` names a row of the handle table (up to 2**30 live handles); ``gen`` is bumped each time the row is reused, so a
stale handle is refused for 2**33 - 1 reuses of its row. (The kernel's handle is the address
of an 8-byte slab object and cannot tell a stale handle from a live one.)

**Location word** of a handle-table row (the kernel's ``obj``, with a tag bit, plus the
high bits of the row's generation, which live here to keep a row at 12 bytes)::

    allocated:  gen_hi(17) << 47 | pfn(31) << 16 | obj_idx(15) << 1 | 1
    free:       gen_hi(17) << 47 | next free row(30) << 1           | 0

The low 16 bits of the generation are in the table's ``gen_lo`` column.

**Object header**, the first 8 bytes of an allocated object that is not huge (Kernel: the
handle written with OBJ_ALLOCATED_TAG)::

    row << 1 | 1

**Free-object link**, the first 8 bytes of a free object (Kernel: struct link_free)::

    next_idx << 1          LINK_END (= -1 << 1 as a 64-bit word) ends the list

A huge object (one per frame) has no header: its row is kept in the zspage's ``huge_row``.
"""

TAG = 1                                  # Kernel: OBJ_ALLOCATED_TAG
ROW_BITS = 30
ROW_MASK = (1 << ROW_BITS) - 1
MAX_ROWS = 1 << ROW_BITS
GEN_BITS = 33
GEN_MASK = (1 << GEN_BITS) - 1
GEN_LO_BITS = 16
GEN_LO_MASK = (1 << GEN_LO_BITS) - 1
GEN_HI_SHIFT = 47
LOC_MASK = (1 << GEN_HI_SHIFT) - 1       # a location word without its generation bits
IDX_BITS = 15                            # objs_per_zspage <= 16 * 65536 / 48 < 2**15
IDX_MASK = (1 << IDX_BITS) - 1
PFN_SHIFT = IDX_BITS + 1
PFN_BITS = 31
PFN_MASK = (1 << PFN_BITS) - 1
MAX_FRAMES = 1 << PFN_BITS
LINK_END = 0xFFFF_FFFF_FFFF_FFFE         # (-1 << 1) as a 64-bit word
HANDLE_MAX = (1 << (GEN_BITS + ROW_BITS)) - 1

# zspage rows and lists (Kernel: struct zspage, list_head)
NIL = -1                                 # end of a list / no zspage
OFF_LIST = -2                            # ``prev`` of a zspage on no list (isolated)
ON_FULL = -3                             # ``prev`` of a zspage on its class's full list
NO_ZSPAGE = 0xFFFF_FFFF                  # frame_zspage of a frame in no zspage
NO_CLASS = 0xFFFF                        # cls of a free zspage row

# per-frame flags (Kernel: the page lock and PG_isolated of a zsmalloc page)
FRAME_LOCKED = 1                         # 6.18: page lock held by the migration core
FRAME_ISOLATED = 2                       # 4.8: isolated for migration

# fullness groups
GROUPS_618 = 12                          # ZS_INUSE_RATIO_0, _10 .. _90, _99, _100
FULL_618 = 11
GROUPS_48 = 4
ZS_EMPTY, ZS_ALMOST_EMPTY, ZS_ALMOST_FULL, ZS_FULL = 0, 1, 2, 3
GROUP_NAMES_618 = ["0%"] + [f"{10 * g}%" for g in range(1, 10)] + ["99%", "100%"]
GROUP_NAMES_48 = ["empty", "almost_empty", "almost_full", "full"]
