"""The frame arena: page frames in one private anonymous reservation. The only module that
maps, advises or copies memory.

Kernel: the page allocator as zsmalloc uses it (alloc_page / __free_page), and the memcpy
calls of zs_obj_write, zs_obj_read_begin and migrate_folio.

Memory: one ``mmap(-1, reserve, MAP_PRIVATE | MAP_NORESERVE)``, sized to the machine's RAM +
swap (a pool's frames are real memory: it can never hold more), with transparent huge pages
off. Nothing is committed until a frame is first written. A frame is named by its *pfn*: it
lives at byte ``pfn << page_shift``. Private, because on a shared anonymous mapping
MADV_DONTNEED frees nothing. Freed frames go back to the OS with MADV_DONTNEED, batched
(runs coalesced).

Chunks: the reservation is cut into chunks of ``chunk_frames`` frames (2 MiB by default).
Allocation takes the lowest chunk with a free frame, so live frames gather low; a chunk whose
last frame goes is given back whole (MADV_DONTNEED over the chunk: "unmapped"), and page
migration (``zsmalloc.core.migration``) packs the rest so whole chunks empty.

Within a chunk, never-used frames are handed out by a bump pointer (no initialisation), freed
ones from a LIFO list threaded through ``frame_link``. ``has_free`` is a bitmap of chunks with a
free frame below ``chunks_high`` (chunks above it were never touched).

Memory copies are the only code here written twice: ``memcpy`` compiled, a slice assignment
in pure mode (``cython.compiled`` branches in ``copy_in``, ``copy_out``, ``copy_out2``, ``move``
and ``store_strided``).

Costs: alloc and free O(1) amortised (a bitmap scan from a hint); per frame 5 bytes
(``frame_link``, ``frame_state``), per chunk 12 bytes, only for chunks ever touched.
"""

import mmap
import os
from array import array

import cython

from .bitops import ffs0
from .columns import resized

ONE = 1                        # a 64-bit one, for bitmap shifts
DONTNEED_BATCH = 256           # frames; 1 MiB of 4 KiB frames kept at most before it goes back
_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)
_FREE, _USED, _PENDING = 0, 1, 2   # frame_state: free (clean), in use, free awaiting DONTNEED


def machine_memory() -> int:
    """RAM + swap in bytes: the most anonymous memory this machine can hold."""
    total = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(("MemTotal:", "SwapTotal:")):
                    total += int(line.split()[1]) * 1024
    except OSError:
        pass
    if not total:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return total


def readable(data):
    """``data`` as an object a ``const unsigned char[::1]`` view accepts: bytes and bytearray
    as they are, other buffers as a flat byte memoryview. TypeError (naming the type) for
    anything that is not a C-contiguous buffer; nothing is copied."""
    t = type(data)
    if t is bytes or t is bytearray:
        return data
    try:
        mv = memoryview(data)
    except TypeError:
        raise TypeError(f"data must be a bytes-like object, not {t.__name__}") from None
    if not mv.c_contiguous:
        raise TypeError("data must be a C-contiguous buffer (a non-contiguous memoryview "
                        "cannot be stored)")
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


class Arena:
    """Page frames. Not locked: callers serialise (the pool's leaf lock)."""

    def __init__(self, page_size: int = 4096, chunk_frames: int = 512, reserve_bytes=None):
        if chunk_frames < 1 or chunk_frames & (chunk_frames - 1):
            raise ValueError(f"chunk_frames {chunk_frames} must be a power of two")
        self.page_size = page_size
        self.page_shift = page_size.bit_length() - 1
        self.chunk_frames = chunk_frames
        self.chunk_shift = chunk_frames.bit_length() - 1
        self.chunk_bytes = chunk_frames * page_size
        want = machine_memory() if reserve_bytes is None else int(reserve_bytes)
        nr = max(1, -(-want // self.chunk_bytes))
        nr = min(nr, (1 << 31) >> self.chunk_shift)          # pfns fit in 31 bits
        while True:
            try:
                self._mm = mmap.mmap(-1, nr * self.chunk_bytes,
                                     flags=mmap.MAP_PRIVATE | _MAP_NORESERVE)
                break
            except OSError:
                if reserve_bytes is not None or nr <= 64:
                    raise MemoryError(f"cannot reserve {nr * self.chunk_bytes} bytes of "
                                      f"address space for the frame arena") from None
                nr //= 2          # strict overcommit accounting: ask for less
        try:
            self._mm.madvise(mmap.MADV_NOHUGEPAGE)   # a huge page would pin 2 MiB per frame
        except (AttributeError, OSError):
            pass
        self.nr_chunks = nr
        self.mem = memoryview(self._mm)
        self.words = memoryview(self._mm).cast("Q")
        self.chunks_high = 0
        self.frames_in_use = 0
        self.chunks_mapped = 0
        self.chunks_unmapped_total = 0
        self.hint = 0
        self._pending = []
        self._used_store = array("I")
        self._bump_store = array("I")
        self._free_store = array("i")
        self._link_store = array("i")
        self._state_store = array("B")
        self._bits_store = array("Q")
        self._grow_chunks(0)

    # -- bookkeeping arrays ---------------------------------------------------------------

    def _grow_chunks(self, n: cython.Py_ssize_t) -> None:
        """Cover chunks 0..n-1 (n > chunks_high: new chunks; n < chunks_high: cut). New
        columns first, then the swap (core.columns)."""
        cf: cython.Py_ssize_t = self.chunk_frames
        nwords: cython.Py_ssize_t = (n + 63) >> 6
        used = resized(self._used_store, n)
        bump = resized(self._bump_store, n)
        free = resized(self._free_store, n, -1)
        link = resized(self._link_store, n * cf)
        state = resized(self._state_store, n * cf)
        bits = resized(self._bits_store, nwords)
        if n & 63 and nwords:                 # chunks cut off leave no bits behind
            bits[nwords - 1] &= (ONE << (n & 63)) - ONE
        self._used_store = used
        self._bump_store = bump
        self._free_store = free
        self._link_store = link
        self._state_store = state
        self._bits_store = bits
        self.chunk_used = used
        self.chunk_bump = bump
        self.chunk_free = free
        self.frame_link = link
        self.frame_state = state
        self.has_free = bits
        if n < self.chunks_high:
            self.chunks_high = n
        if self.hint > nwords:
            self.hint = nwords

    def _lowest_free_chunk(self) -> cython.Py_ssize_t:
        """Lowest chunk below chunks_high with a free frame, or -1."""
        i: cython.Py_ssize_t = self.hint
        n: cython.Py_ssize_t = (self.chunks_high + 63) >> 6
        w: cython.ulonglong
        c: cython.Py_ssize_t
        while i < n:
            w = self.has_free[i]
            if w:
                self.hint = i
                c = (i << 6) + ffs0(w)
                return c if c < self.chunks_high else -1
            i += 1
        self.hint = n
        return -1

    # -- frames ---------------------------------------------------------------------------

    def alloc_frame(self) -> cython.Py_ssize_t:
        """Take a free frame, lowest chunk first. Kernel: alloc_page.
        MemoryError when the reservation is full."""
        c: cython.Py_ssize_t = self._lowest_free_chunk()
        cf: cython.Py_ssize_t = self.chunk_frames
        if c < 0:
            c = self.chunks_high
            if c >= self.nr_chunks:
                raise MemoryError(f"frame arena full: all {self.nr_chunks * cf} frames "
                                  f"({self.nr_chunks * self.chunk_bytes} bytes) in use")
            if c >= len(self._used_store):
                self._grow_chunks(max(c + 1, 2 * len(self._used_store), 8))
            self.chunks_high = c + 1
            self.has_free[c >> 6] |= ONE << (c & 63)
            if (c >> 6) < self.hint:
                self.hint = c >> 6
        slot: cython.Py_ssize_t = self.chunk_free[c]
        base: cython.Py_ssize_t = c << self.chunk_shift
        if slot >= 0:
            self.chunk_free[c] = self.frame_link[base + slot]
        else:
            slot = self.chunk_bump[c]
            self.chunk_bump[c] = slot + 1
        if self.chunk_free[c] < 0 and self.chunk_bump[c] == cf:
            self.has_free[c >> 6] &= ~(ONE << (c & 63))
        self.chunk_used[c] += 1
        if self.chunk_used[c] == 1:
            self.chunks_mapped += 1
        self.frames_in_use += 1
        self.frame_state[base + slot] = _USED   # a pending DONTNEED for it is now skipped
        return base + slot

    def free_frame(self, pfn: cython.Py_ssize_t) -> None:
        """Give a frame back; its memory returns to the OS (batched), and the whole chunk's
        when it was the chunk's last frame. Kernel: __free_page."""
        c: cython.Py_ssize_t = pfn >> self.chunk_shift
        if self.frame_state[pfn] != _USED:
            raise RuntimeError(f"frame {pfn} freed while not in use (a double free)")
        self.frame_link[pfn] = self.chunk_free[c]
        self.chunk_free[c] = pfn & (self.chunk_frames - 1)
        self.has_free[c >> 6] |= ONE << (c & 63)
        if (c >> 6) < self.hint:
            self.hint = c >> 6
        self.frames_in_use -= 1
        self.chunk_used[c] -= 1
        if self.chunk_used[c] == 0:
            self._release_chunk(c)
            return
        self.frame_state[pfn] = _PENDING
        self._pending.append(pfn)
        if len(self._pending) >= DONTNEED_BATCH:
            self.flush()

    def take_frame(self, pfn: cython.Py_ssize_t) -> None:
        """Allocate one particular free frame (page migration picks its target).
        ValueError if it is not a free frame of the reservation."""
        if not 0 <= pfn < (self.nr_chunks << self.chunk_shift) or self.is_used(pfn):
            raise ValueError(f"frame {pfn} is not a free frame of this arena")
        c: cython.Py_ssize_t = pfn >> self.chunk_shift
        cf: cython.Py_ssize_t = self.chunk_frames
        if c >= self.chunks_high:
            if c >= len(self._used_store):
                self._grow_chunks(max(c + 1, 2 * len(self._used_store), 8))
            k: cython.Py_ssize_t
            for k in range(self.chunks_high, c + 1):
                self.has_free[k >> 6] |= ONE << (k & 63)
            if (self.chunks_high >> 6) < self.hint:
                self.hint = self.chunks_high >> 6
            self.chunks_high = c + 1
        slot: cython.Py_ssize_t = pfn & (cf - 1)
        base: cython.Py_ssize_t = c << self.chunk_shift
        s: cython.Py_ssize_t
        if slot >= self.chunk_bump[c]:
            # frames between the bump pointer and this one become ordinary free frames
            for s in range(self.chunk_bump[c], slot):
                self.frame_link[base + s] = self.chunk_free[c]
                self.chunk_free[c] = s
            self.chunk_bump[c] = slot + 1
        else:
            prev: cython.Py_ssize_t = -1
            s = self.chunk_free[c]
            while s != slot:
                prev = s
                s = self.frame_link[base + s]
            if prev < 0:
                self.chunk_free[c] = self.frame_link[base + s]
            else:
                self.frame_link[base + prev] = self.frame_link[base + s]
        if self.chunk_free[c] < 0 and self.chunk_bump[c] == cf:
            self.has_free[c >> 6] &= ~(ONE << (c & 63))
        self.chunk_used[c] += 1
        if self.chunk_used[c] == 1:
            self.chunks_mapped += 1
        self.frames_in_use += 1
        self.frame_state[pfn] = _USED

    def _release_chunk(self, c: cython.Py_ssize_t) -> None:
        """A chunk's last frame went: give all of it back ("unmap") and make it fresh."""
        cf: cython.Py_ssize_t = self.chunk_frames
        base: cython.Py_ssize_t = c << self.chunk_shift
        self._mm.madvise(mmap.MADV_DONTNEED, c * self.chunk_bytes, self.chunk_bytes)
        s: cython.Py_ssize_t
        for s in range(cf):
            self.frame_state[base + s] = _FREE     # its pending DONTNEEDs are now skipped
        self.chunk_bump[c] = 0
        self.chunk_free[c] = -1
        self.chunks_mapped -= 1
        self.chunks_unmapped_total += 1

    def flush(self) -> None:
        """Return every freed frame's memory to the OS now (MADV_DONTNEED, runs coalesced)."""
        pend = sorted(self._pending)
        self._pending = []
        ps: cython.Py_ssize_t = self.page_shift
        cs: cython.Py_ssize_t = self.chunk_shift
        i: cython.Py_ssize_t = 0
        n: cython.Py_ssize_t = len(pend)
        j: cython.Py_ssize_t
        start: cython.Py_ssize_t
        while i < n:
            start = pend[i]
            if self.frame_state[start] != _PENDING:
                i += 1
                continue
            j = i + 1
            while j < n and pend[j] == pend[j - 1] + 1 and (pend[j] >> cs) == (start >> cs) \
                    and self.frame_state[pend[j]] == _PENDING:
                j += 1
            self._mm.madvise(mmap.MADV_DONTNEED, start << ps, (j - i) << ps)
            while i < j:
                self.frame_state[pend[i]] = _FREE
                i += 1

    # -- queries --------------------------------------------------------------------------

    def is_used(self, pfn: cython.Py_ssize_t) -> cython.bint:
        if pfn < 0 or pfn >= (self.chunks_high << self.chunk_shift):
            return False
        return self.frame_state[pfn] == _USED

    def chunk_used_frames(self, c: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """Frames in use in chunk ``c`` (0 for a chunk never touched)."""
        if c < 0 or c >= self.chunks_high:
            return 0
        return self.chunk_used[c]

    def any_free_frame(self, c: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """A free frame of chunk ``c`` (the one alloc_frame would take), or -1."""
        if c < 0 or c >= self.nr_chunks:
            return -1
        if c >= self.chunks_high:
            return c << self.chunk_shift
        base: cython.Py_ssize_t = c << self.chunk_shift
        if self.chunk_free[c] >= 0:
            return base + self.chunk_free[c]
        if self.chunk_bump[c] < self.chunk_frames:
            return base + self.chunk_bump[c]
        return -1

    def mapped_chunks(self) -> list:
        """Chunks holding at least one frame in use, ascending."""
        return [c for c in range(self.chunks_high) if self.chunk_used[c]]

    def free_frames_in(self, c: cython.Py_ssize_t) -> list:
        """Free pfns of chunk ``c``, lowest first."""
        base = c << self.chunk_shift
        return [base + s for s in range(self.chunk_frames) if not self.is_used(base + s)]

    def pending_frames(self) -> int:
        """Freed frames whose MADV_DONTNEED is still batched (flush() sends them)."""
        return len(self._pending)

    def memory(self):
        """The reservation as a buffer object (frame ``pfn`` at byte ``pfn << page_shift``)."""
        return self._mm

    def address(self) -> int:
        """Virtual address of the reservation (frame 0)."""
        import ctypes
        return ctypes.addressof(ctypes.c_char.from_buffer(self._mm))

    def resident_bytes(self) -> int:
        """Bytes of the reservation resident in RAM now (its Rss in /proc/self/smaps): what
        the frames really cost, pending DONTNEEDs included."""
        addr = self.address()
        with open("/proc/self/smaps") as f:
            inside = False
            for line in f:
                head = line.split(None, 1)[0]
                if "-" in head and not head.endswith(":"):
                    lo, hi = (int(x, 16) for x in head.split("-"))
                    inside = lo <= addr < hi
                elif inside and head == "Rss:":
                    return int(line.split()[1]) * 1024
        return 0

    def mapped_bytes(self) -> int:
        """Bytes of the chunks holding frames in use (the old per-chunk mmap total)."""
        return self.chunks_mapped * self.chunk_bytes

    def trim_tail(self) -> cython.Py_ssize_t:
        """Forget empty chunks at the top (their bookkeeping goes); returns how many."""
        n: cython.Py_ssize_t = self.chunks_high
        while n > 0 and self.chunk_used[n - 1] == 0:
            n -= 1
        cut: cython.Py_ssize_t = self.chunks_high - n
        if cut:
            self._pending = [p for p in self._pending if (p >> self.chunk_shift) < n]
            self._grow_chunks(n)
        return cut

    def nbytes(self) -> int:
        """Bytes of the arena's own bookkeeping (not the frames)."""
        return sum(len(s) * s.itemsize for s in (self._used_store, self._bump_store,
                                                 self._free_store, self._link_store,
                                                 self._state_store, self._bits_store))

    # -- memory (the kernel's memcpy calls) -----------------------------------------------

    def word_get(self, addr: cython.Py_ssize_t) -> cython.ulonglong:
        """The 64-bit word at byte ``addr`` (8-aligned)."""
        return self.words[addr >> 3]

    def word_set(self, addr: cython.Py_ssize_t, value: cython.ulonglong) -> None:
        self.words[addr >> 3] = value

    def store_strided(self, addr: cython.Py_ssize_t, step: cython.Py_ssize_t, vals) -> None:
        """Write ``vals[i]`` at word ``addr/8 + i*step`` (init_zspage's free links, a frame
        at a time)."""
        w: cython.Py_ssize_t = addr >> 3
        n: cython.Py_ssize_t = len(vals)
        i: cython.Py_ssize_t
        if cython.compiled:
            for i in range(n):
                self.words[w + i * step] = vals[i]
        else:
            self.words[w:w + step * (n - 1) + 1:step] = vals

    def copy_in(self, addr: cython.Py_ssize_t, src, start: cython.Py_ssize_t,
                n: cython.Py_ssize_t) -> cython.int:
        """Copy ``src[start:start+n]`` to byte ``addr``; ``src`` is a C-contiguous byte
        buffer (see ``readable``). Kernel: memcpy_to_page."""
        if cython.compiled:
            view: Py_buffer
            if n > 0:
                PyObject_GetBuffer(src, cython.address(view), PyBUF_SIMPLE)
                memcpy(cython.address(self.mem[addr]),
                       cython.cast(cython.p_char, view.buf) + start, n)
                PyBuffer_Release(cython.address(view))
        else:
            self.mem[addr:addr + n] = src[start:start + n]
        return 0

    def copy_out(self, addr: cython.Py_ssize_t, n: cython.Py_ssize_t) -> bytes:
        """``n`` bytes from ``addr``, as bytes. Kernel: memcpy_from_page."""
        if cython.compiled:
            return PyBytes_FromStringAndSize(cython.cast(cython.p_char,
                                                         cython.address(self.mem[addr])), n)
        else:
            return self.mem[addr:addr + n].tobytes()

    def copy_out2(self, a1: cython.Py_ssize_t, n1: cython.Py_ssize_t, a2: cython.Py_ssize_t,
                  n2: cython.Py_ssize_t) -> bytes:
        """Two pieces joined (an object that spans two frames). Kernel: the local copy in
        zs_obj_read_begin."""
        if cython.compiled:
            out = PyBytes_FromStringAndSize(cython.NULL, n1 + n2)
            p: cython.p_char = PyBytes_AS_STRING(out)
            memcpy(p, cython.address(self.mem[a1]), n1)
            memcpy(p + n1, cython.address(self.mem[a2]), n2)
            return out
        else:
            return self.mem[a1:a1 + n1].tobytes() + self.mem[a2:a2 + n2].tobytes()

    def move(self, dst: cython.Py_ssize_t, src: cython.Py_ssize_t, n: cython.Py_ssize_t) -> None:
        """Copy ``n`` bytes within the arena (object slots, whole frames). Kernel: the
        memcpy of zs_object_copy and migrate_folio."""
        if cython.compiled:
            memmove(cython.address(self.mem[dst]), cython.address(self.mem[src]), n)
        else:
            self.mem[dst:dst + n] = self.mem[src:src + n]

    def frame_bytes(self, pfn: cython.Py_ssize_t) -> bytes:
        """A copy of one frame's contents."""
        return self.copy_out(pfn << self.page_shift, self.page_size)

    def close(self) -> None:
        """Give everything back (the pool is being destroyed)."""
        self.mem = None
        self.words = None
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        self.frames_in_use = 0
        self.chunks_mapped = 0

    def _check(self) -> None:
        """AR-COUNTS: per-chunk counts agree with frame states; AR-BITS: the bitmap marks
        exactly the chunks with a free frame."""
        from ..errors import CheckError
        total = 0
        mapped = 0
        cf = self.chunk_frames
        for c in range(self.chunks_high):
            base = c << self.chunk_shift
            used = sum(1 for s in range(cf) if self.frame_state[base + s] == _USED)
            if used != self.chunk_used[c]:
                raise CheckError("AR-COUNTS", f"chunk {c}: {self.chunk_used[c]} counted, "
                                 f"{used} frames in use")
            total += used
            mapped += used > 0
            has = self.chunk_free[c] >= 0 or self.chunk_bump[c] < cf
            bit = bool(self.has_free[c >> 6] >> (c & 63) & 1)
            if has != bit:
                raise CheckError("AR-BITS", f"chunk {c}: free frames {has}, bitmap {bit}")
        if total != self.frames_in_use or mapped != self.chunks_mapped:
            raise CheckError("AR-COUNTS", f"frames_in_use {self.frames_in_use} / chunks_mapped "
                             f"{self.chunks_mapped}, counted {total} / {mapped}")
