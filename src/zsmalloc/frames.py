"""Frame arena: page frames in private anonymous mmap chunks.

The kernel gets order-0 pages from the buddy allocator; we get them from chunks of
``chunk_frames`` frames, each chunk one ``mmap(-1, n, MAP_PRIVATE)``. A frame is named by
its *pfn* = chunk * chunk_frames + slot.

Why private: on a shared anonymous mapping MADV_DONTNEED frees nothing. Freed frames go back
to the OS with MADV_DONTNEED, batched (runs are coalesced); a chunk whose last frame is freed
is unmapped at once. Allocation takes the lowest-numbered chunk that has a free frame, so
live frames gather in low chunks and high chunks drain (page migration, see
``zsmalloc.migration``, moves the rest).

Costs: alloc and free are O(log chunks) (a heap of partly used chunks); a chunk map or unmap
is one syscall. Metadata is one free-slot list per partly used chunk, O(free frames).
"""

from __future__ import annotations

import heapq
import mmap
from array import array

_DONTNEED_BATCH = 256  # frames; at 4 KiB that is 1 MiB kept at most before it goes back


class FrameArena:
    """Page frames in anonymous memory. Not thread-safe: the pool serialises calls.

    Attributes read by the pool's hot paths (lists indexed by chunk number, mutated in
    place, never rebound): ``chunks`` (mmap or None), ``qviews`` (the chunk as 64-bit words).
    """

    def __init__(self, page_size: int = 4096, chunk_frames: int = 512):
        if chunk_frames & (chunk_frames - 1):
            raise ValueError(f"chunk_frames {chunk_frames} must be a power of two")
        self.page_size = page_size
        self.page_shift = page_size.bit_length() - 1
        self.chunk_frames = chunk_frames
        self.chunk_shift = chunk_frames.bit_length() - 1
        self.chunk_bytes = chunk_frames * page_size
        self.chunks: list[mmap.mmap | None] = []
        self.qviews: list[memoryview | None] = []
        self._free: list[array | None] = []       # free slots per chunk (stack)
        self._used: list[int] = []                 # frames in use per chunk
        self._partial: list[int] = []              # heap of chunk ids that may have free frames
        self._pending: set[int] = set()            # freed pfns awaiting MADV_DONTNEED
        self.frames_in_use = 0
        self.chunks_mapped = 0
        self.chunks_unmapped_total = 0
        #: called as hook(first_pfn, n) when a chunk is mapped (the pool grows its arrays)
        self.on_map = None

    # -- allocation -------------------------------------------------------------------

    def alloc(self) -> int:
        """Take a free frame (lowest chunk first); maps a new chunk when none is free."""
        heap, free = self._partial, self._free
        while heap:
            c = heap[0]
            fl = free[c]
            if fl:
                break
            heapq.heappop(heap)  # stale: chunk filled up or was unmapped
        else:
            c = self._map_chunk()
            fl = free[c]
        slot = fl.pop()
        if not fl:
            heapq.heappop(heap)
            free[c] = array("H")     # a full chunk: drop the stack's buffer (1 KiB a chunk)
        self._used[c] += 1
        self.frames_in_use += 1
        pfn = (c << self.chunk_shift) | slot
        if self._pending:
            self._pending.discard(pfn)  # reused before it went back: must not be zapped later
        return pfn

    def free(self, pfn: int) -> None:
        """Give a frame back; its memory returns to the OS (batched), its chunk may unmap."""
        c = pfn >> self.chunk_shift
        fl = self._free[c]
        if not fl:
            heapq.heappush(self._partial, c)
        fl.append(pfn & (self.chunk_frames - 1))
        self.frames_in_use -= 1
        u = self._used[c] = self._used[c] - 1
        if u == 0:
            self._unmap_chunk(c)
            return
        self._pending.add(pfn)
        if len(self._pending) >= _DONTNEED_BATCH:
            self.flush()

    def flush(self) -> None:
        """Return every freed frame's memory to the OS now (MADV_DONTNEED, runs coalesced)."""
        pend = sorted(self._pending)
        self._pending.clear()
        cs, ps = self.chunk_shift, self.page_shift
        i, n = 0, len(pend)
        while i < n:
            start = pend[i]
            j = i + 1
            while j < n and pend[j] == pend[j - 1] + 1 and (pend[j] >> cs) == (start >> cs):
                j += 1
            c = start >> cs
            mm = self.chunks[c]
            if mm is not None:
                off = (start & (self.chunk_frames - 1)) << ps
                mm.madvise(mmap.MADV_DONTNEED, off, (j - i) << ps)
            i = j

    def _map_chunk(self) -> int:
        mm = mmap.mmap(-1, self.chunk_bytes, flags=mmap.MAP_PRIVATE)
        try:
            c = self.chunks.index(None)
        except ValueError:
            c = len(self.chunks)
            self.chunks.append(None)
            self.qviews.append(None)
            self._free.append(None)
            self._used.append(0)
        self.chunks[c] = mm
        self.qviews[c] = memoryview(mm).cast("Q")
        # free slots as a 2-byte stack (slot 0 pops first): no int object per free frame
        self._free[c] = array("H", range(self.chunk_frames - 1, -1, -1))
        self._used[c] = 0
        heapq.heappush(self._partial, c)
        self.chunks_mapped += 1
        if self.on_map is not None:
            self.on_map(c << self.chunk_shift, self.chunk_frames)
        return c

    def _unmap_chunk(self, c: int) -> None:
        self.qviews[c].release()
        self.qviews[c] = None
        self.chunks[c].close()
        self.chunks[c] = None
        self._free[c] = None
        self.chunks_mapped -= 1
        self.chunks_unmapped_total += 1
        if self._pending:
            lo = c << self.chunk_shift
            hi = lo + self.chunk_frames
            self._pending = {p for p in self._pending if not lo <= p < hi}

    # -- queries ----------------------------------------------------------------------

    def is_used(self, pfn: int) -> bool:
        c = pfn >> self.chunk_shift
        if c >= len(self.chunks) or self.chunks[c] is None:
            return False
        return (pfn & (self.chunk_frames - 1)) not in self._free[c]

    def chunk_of(self, pfn: int) -> int:
        return pfn >> self.chunk_shift

    def chunk_used(self, c: int) -> int:
        """Frames in use in chunk ``c`` (0 for an unmapped chunk)."""
        if c >= len(self.chunks) or self.chunks[c] is None:
            return 0
        return self._used[c]

    def mapped_chunks(self) -> list[int]:
        return [c for c, mm in enumerate(self.chunks) if mm is not None]

    def free_frames_in(self, c: int) -> list[int]:
        """Free pfns of a mapped chunk, lowest first."""
        fl = self._free[c] or []
        base = c << self.chunk_shift
        return sorted(base + s for s in fl)

    def take(self, pfn: int) -> None:
        """Allocate a specific free frame (page migration picks its target)."""
        c = pfn >> self.chunk_shift
        fl = self._free[c]
        slot = pfn & (self.chunk_frames - 1)
        if fl is None or slot not in fl:
            raise ValueError(f"frame {pfn} is not free")
        fl.remove(slot)
        if not fl:
            pass  # stale heap entry is skipped lazily by alloc()
        self._used[c] += 1
        self.frames_in_use += 1
        self._pending.discard(pfn)

    def mapped_bytes(self) -> int:
        return self.chunks_mapped * self.chunk_bytes

    def frame_bytes(self, pfn: int) -> bytes:
        """A copy of one frame's contents."""
        c = pfn >> self.chunk_shift
        off = (pfn & (self.chunk_frames - 1)) << self.page_shift
        return self.chunks[c][off:off + self.page_size]

    def copy_frame(self, src: int, dst: int) -> None:
        """Copy a whole frame. Kernel: migrate_folio's copy (in zs_page_migrate)."""
        cs, ps, m = self.chunk_shift, self.page_shift, self.chunk_frames - 1
        so, do = (src & m) << ps, (dst & m) << ps
        self.chunks[dst >> cs][do:do + self.page_size] = self.chunks[src >> cs][so:so + self.page_size]

    def close(self) -> None:
        """Unmap everything (the pool is being destroyed)."""
        for c, mm in enumerate(self.chunks):
            if mm is not None:
                self.qviews[c].release()
                mm.close()
        self.chunks.clear()
        self.qviews.clear()
        self._free.clear()
        self._used.clear()
        self._partial.clear()
        self._pending.clear()
        self.frames_in_use = 0
        self.chunks_mapped = 0
