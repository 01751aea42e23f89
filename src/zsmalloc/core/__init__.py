"""The allocator core: zsmalloc's data structures and steps, with no I/O.

Compiled by Cython from these very files (C types in the ``.pxd`` beside each ``.py``); runs
as plain Python with ``ZSMALLOC_PURE=1``. See docs/design.md for the layout.
"""
