"""zbud: at most two objects ("buddies") per page. Kernel: mm/zbud.c (removed in 6.15).

Layout of a zbud page (4 KiB): 64 chunks of 64 bytes; chunk 0 holds the header, the *first*
buddy is left-justified right after it and the *last* buddy right-justified at the page end,
so freeing either merges its space with the slack into one free region.

    | hdr | first ......            free            ...... last |
    0     64                                                    4096

``NCHUNKS = 63`` free chunks at most; a page with one buddy sits on ``unbuddied[free
chunks]`` and a page with two on ``buddied`` (the kernel unions ``buddied`` with the never
used ``unbuddied[0]``). Allocation is first fit over ``unbuddied[chunks..62]`` taking the
list head, else a new page. Requests above ``PAGE_SIZE - 2*CHUNK_SIZE`` (3968 bytes) get
``-ENOSPC`` (here ``ObjectTooLarge``). The handle is the object's address:
``page + 64`` for the first buddy, ``page + PAGE_SIZE - last_chunks*64`` for the last.
"""

from __future__ import annotations

from .base import CheckError, PeerAllocator, check_page_size

#: chunks per page = 2**NCHUNKS_ORDER; the header (41 bytes on 64-bit) takes chunk 0
NCHUNKS_ORDER = 6


class ZbudPage:
    """One zbud page: its frame number, bytes and the two buddies' sizes in chunks."""

    __slots__ = ("pfn", "data", "first_chunks", "last_chunks")

    def __init__(self, pfn: int, page_size: int):
        self.pfn = pfn
        self.data = bytearray(page_size)
        self.first_chunks = 0
        self.last_chunks = 0


class ZbudPool(PeerAllocator):
    """zbud allocator over real pages. Kernel: struct zbud_pool (zbud_create_pool)."""

    name = "zbud"

    def __init__(self, page_size: int = 4096):
        super().__init__(check_page_size(page_size))
        self.chunk_shift = page_size.bit_length() - 1 - NCHUNKS_ORDER
        self.chunk_size = 1 << self.chunk_shift
        self.header_size = self.chunk_size                     # ZHDR_SIZE_ALIGNED
        self.nchunks = (page_size - self.header_size) >> self.chunk_shift   # 63
        # unbuddied[i]: pages with one buddy and i free chunks; dicts as ordered sets whose
        # last-inserted key is the list head (list_add + list_first_entry)
        self._unbuddied: list[dict[int, None]] = [{} for _ in range(self.nchunks)]
        self._buddied: dict[int, None] = {}
        self._pages: dict[int, ZbudPage] = {}
        self._free_pfns: list[int] = []
        self._next_pfn = 1                                     # handle 0 is never valid

    @property
    def max_size(self) -> int:
        return self.page_size - self.header_size - self.chunk_size       # 3968

    @property
    def total_pages(self) -> int:
        """Kernel: zbud_get_pool_pages (pool->pages_nr)."""
        return len(self._pages)

    def _size_to_chunks(self, size: int) -> int:
        return (size + self.chunk_size - 1) >> self.chunk_shift

    def _num_free_chunks(self, zp: ZbudPage) -> int:
        return self.nchunks - zp.first_chunks - zp.last_chunks

    def _encode(self, zp: ZbudPage, first: bool) -> int:
        base = zp.pfn * self.page_size
        if first:
            return base + self.header_size
        return base + self.page_size - (zp.last_chunks << self.chunk_shift)

    def malloc(self, size: int) -> int:
        """Allocate a buddy. Kernel: zbud_alloc. Cost: O(63) list scan, one page at most."""
        size = self._check_size(size)
        chunks = self._size_to_chunks(size)
        zp = None
        for i in range(chunks, self.nchunks):
            lst = self._unbuddied[i]
            if lst:
                pfn = next(reversed(lst))                      # list_first_entry
                del lst[pfn]
                zp = self._pages[pfn]
                break
        if zp is None:
            if self._free_pfns:
                pfn = self._free_pfns.pop()
            else:
                pfn = self._next_pfn
                self._next_pfn += 1
            zp = self._pages[pfn] = ZbudPage(pfn, self.page_size)
        first = zp.first_chunks == 0
        if first:
            zp.first_chunks = chunks
        else:
            zp.last_chunks = chunks
        if zp.first_chunks == 0 or zp.last_chunks == 0:
            self._unbuddied[self._num_free_chunks(zp)][zp.pfn] = None
        else:
            self._buddied[zp.pfn] = None
        handle = self._encode(zp, first)
        self._size[handle] = size
        self._stored += size
        return handle

    def free(self, handle: int) -> None:
        """Free a buddy; free the page when both are gone. Kernel: zbud_free. Cost: O(1)."""
        size = self._live_size(handle)
        zp = self._pages[handle // self.page_size]
        # list_del(&zhdr->buddy): a page with two buddies is on buddied, else unbuddied[free]
        if zp.first_chunks and zp.last_chunks:
            del self._buddied[zp.pfn]
        else:
            del self._unbuddied[self._num_free_chunks(zp)][zp.pfn]
        # the first buddy's handle is page + header; anything else is the last buddy
        if handle % self.page_size != self.header_size:
            zp.last_chunks = 0
        else:
            zp.first_chunks = 0
        del self._size[handle]
        self._stored -= size
        if zp.first_chunks == 0 and zp.last_chunks == 0:
            del self._pages[zp.pfn]
            self._free_pfns.append(zp.pfn)
        else:
            self._unbuddied[self._num_free_chunks(zp)][zp.pfn] = None

    def _locate(self, handle: int) -> tuple[bytearray, int]:
        return self._pages[handle // self.page_size].data, handle % self.page_size

    def check(self) -> None:
        """Invariants: page count, buddy layout, list placement, handles, counters."""
        self._check_counters()
        per_page: dict[int, int] = {}
        for h, size in self._size.items():
            pfn, off = divmod(h, self.page_size)
            zp = self._pages.get(pfn)
            if zp is None:
                raise CheckError("zbud-handle-page", f"handle {h:#x} points at no live page")
            chunks = zp.first_chunks if off == self.header_size else zp.last_chunks
            if off != self.header_size and off != self.page_size - (chunks << self.chunk_shift):
                raise CheckError("zbud-handle-offset", f"handle {h:#x} matches no buddy")
            if chunks != self._size_to_chunks(size):
                raise CheckError("zbud-chunks", f"handle {h:#x}: {chunks} chunks for {size} B")
            per_page[pfn] = per_page.get(pfn, 0) + 1
        on_lists: dict[int, int] = {}
        for i, lst in enumerate(self._unbuddied):
            for pfn in lst:
                if pfn in on_lists:
                    raise CheckError("zbud-list-once", f"page {pfn} on two lists")
                on_lists[pfn] = i
        for pfn in self._buddied:
            if pfn in on_lists:
                raise CheckError("zbud-list-once", f"page {pfn} on two lists")
            on_lists[pfn] = -1
        if set(on_lists) != set(self._pages):
            raise CheckError("zbud-list-pages", "listed pages differ from live pages")
        for pfn, zp in self._pages.items():
            f, l = zp.first_chunks, zp.last_chunks
            if f == 0 and l == 0:
                raise CheckError("zbud-empty-page", f"page {pfn} is empty but not freed")
            if f + l > self.nchunks:
                raise CheckError("zbud-overlap", f"page {pfn}: buddies {f}+{l} > {self.nchunks}")
            want = -1 if (f and l) else self._num_free_chunks(zp)
            if on_lists[pfn] != want:
                raise CheckError("zbud-list-index",
                                 f"page {pfn} on list {on_lists[pfn]}, want {want}")
            if per_page.get(pfn, 0) != (f > 0) + (l > 0):
                raise CheckError("zbud-handle-count", f"page {pfn}: handles != buddies")
        if any(pfn in self._pages for pfn in self._free_pfns):
            raise CheckError("zbud-pfn-free", "a live page's frame is on the free list")
