"""The zram device: a compressed RAM disk of whole pages over an allocator.

Kernel: drivers/block/zram/zram_drv.c (6.18). Each page-sized slot of the disk is empty,
same-filled (all 8-byte words equal: the word is kept in the slot, nothing allocated), huge
(compresses to at least ``huge_class_size``: stored raw in a whole-page object) or a
compressed object in the allocator (zsmalloc's Pool; a peer for comparisons,
``zram.allocators``).

The write path follows 6.18 (after "zram: fix slot write race condition"): compress, allocate
the new object, raise ``mem_used_max`` to the allocator's pages, refuse the write if over
``mem_limit`` (the new object is freed, the old data stays, failed_writes counts it: userspace
sees EIO), then free the old slot and install the new one. So an overwrite allocates before
it frees, and the maximum is sampled in between, as in the kernel.

The slot table is 16 bytes a slot, like the kernel's ``struct zram_table_entry``: word 2i is
the handle (or the fill word), word 2i+1 the object size in the low PAGE_SHIFT+1 bits with the
flags above. It lives in an anonymous mapping, so untouched slots cost no memory.

Threads: compression and decompression run outside every lock and, for the backends written
here, without the GIL (each writer takes a compression buffer of its own: the kernel's
per-CPU streams); the slot and allocator steps run as one operation of the allocator's lock
policy (``core.locks``): with the default, any thread may call; with ``concurrent=True``,
the kernel's slot lock and zsmalloc's locks in their order.

Bad arguments raise TypeError or ValueError before anything changes and are never counted
as device failures; failed_reads/failed_writes count what the kernel counts.
"""

import mmap

import cython

from ..config import resolve_config
from ..core.arena import readable
from ..core.sizeclass import huge_class_size
from .allocators import ALLOCATORS, make_allocator
from .backends import DecompressError, make_backend
from .stat import DebugStat, IoStat, MmStat

_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)
_STREAMS_KEPT = 8


def first_word(page) -> cython.ulonglong:
    """The first 8-byte word (little endian) of a C-contiguous byte buffer."""
    w: cython.ulonglong = 0
    if cython.compiled:
        view: Py_buffer
        PyObject_GetBuffer(page, cython.address(view), PyBUF_SIMPLE)
        memcpy(cython.address(w), view.buf, 8)
        PyBuffer_Release(cython.address(view))
        return w
    else:
        return int.from_bytes(page[:8], "little")


def page_same_filled(page, n: cython.Py_ssize_t) -> cython.bint:
    """Are all 8-byte words of the ``n``-byte page (a C-contiguous byte buffer) equal?
    Kernel: page_same_filled (word 0 against the last word first, then every word)."""
    i: cython.Py_ssize_t
    if cython.compiled:
        view: Py_buffer
        w0: cython.ulonglong
        w: cython.ulonglong
        same: cython.bint = True
        PyObject_GetBuffer(page, cython.address(view), PyBUF_SIMPLE)
        p: cython.p_char = cython.cast(cython.p_char, view.buf)
        memcpy(cython.address(w0), p, 8)
        memcpy(cython.address(w), p + n - 8, 8)
        if w != w0:
            same = False
        else:
            for i in range(8, n - 8, 8):
                memcpy(cython.address(w), p + i, 8)
                if w != w0:
                    same = False
                    break
        PyBuffer_Release(cython.address(view))
        return same
    else:
        w0b = bytes(page[:8])
        return w0b == bytes(page[n - 8:]) and w0b * (n // 8) == bytes(page)


def filled_page(word: cython.ulonglong, n: cython.Py_ssize_t) -> bytes:
    """A page of ``n`` bytes whose every 8-byte word is ``word``. Kernel: zram_fill_page."""
    if cython.compiled:
        out = PyBytes_FromStringAndSize(cython.NULL, n)
        p: cython.p_char = PyBytes_AS_STRING(out)
        i: cython.Py_ssize_t
        for i in range(0, n, 8):
            memcpy(p + i, cython.address(word), 8)
        return out
    else:
        return word.to_bytes(8, "little") * (n // 8)


class Zram:
    """A zram device of ``disksize`` bytes (rounded up to whole pages).

    ``Zram(disksize, comp_algorithm="lz4", config=None, level=None)``. ``config`` (or
    ``profile=``, ``chain_size=``, ``page_size=``) picks the pool's profile, chain size and
    page size; the page size is also the device's. ``allocator`` is "zsmalloc" (the kernel's)
    or a peer ("zbud", "z3fold", "zblock"). ``concurrent=True`` takes the kernel's locks.
    """

    def __init__(self, disksize, comp_algorithm: str = "lz4", config=None, *, level=None,
                 profile=None, chain_size=None, page_size=None, concurrent: bool = False,
                 lock_debug: bool = False, allocator: str = "zsmalloc"):
        cfg = resolve_config(config, profile=profile, chain_size=chain_size, page_size=page_size)
        if type(disksize) is not int or disksize <= 0:
            raise ValueError(f"disksize {disksize!r} must be a positive int (bytes)")
        if allocator not in ALLOCATORS:
            raise ValueError(f"unknown allocator {allocator!r}; known: {', '.join(ALLOCATORS)}")
        self.config = cfg
        self.page_size = cfg.page_size
        self.page_shift = cfg.page_shift
        P = cfg.page_size
        self.disksize = -(-disksize // P) * P          # Kernel: PAGE_ALIGN(memparse(v))
        self.nr_pages = self.disksize // P
        self.backend = make_backend(comp_algorithm, level)
        self.comp_algorithm = comp_algorithm
        self.level = level
        self.allocator_name = allocator
        self.concurrent = concurrent
        self.lock_debug = lock_debug
        # 4.8's zram used max_zpage_size = PAGE_SIZE/4*3 (pages above it stored raw);
        # 4.17+ use zs_huge_class_size() (>= it is huge).
        self.huge_threshold = P // 4 * 3 + 1 if cfg.kernel_48 else huge_class_size(cfg)
        bits = self.page_shift + 1
        self.size_mask = (1 << bits) - 1
        self.F_SAME = 1 << bits                 # Kernel: ZRAM_SAME
        self.F_HUGE = 1 << (bits + 2)           # Kernel: ZRAM_HUGE
        self.F_RAW = 1 << (bits + 3)            # a page a peer allocator cannot hold
        self._streams = []
        self.closed = False
        self.policy = None
        self._init_state()

    def _init_state(self) -> None:
        self.alloc, self.pool = make_allocator(self.allocator_name, self.config,
                                               self.concurrent, self.lock_debug, self.policy)
        self.policy = self.alloc.policy
        self._mem = self.alloc.memory()
        self._slot_mm = mmap.mmap(-1, 16 * self.nr_pages, flags=mmap.MAP_PRIVATE | _MAP_NORESERVE)
        self.slots = memoryview(self._slot_mm).cast("Q")
        self._raw = {}
        self.pages_stored = 0
        self.compr_data_size = 0
        self.same_pages = 0
        self.huge_pages = 0
        self.huge_pages_since = 0
        self.max_used_pages = 0
        self.limit_pages = 0
        self.raw_pages = 0
        self.failed_reads = 0
        self.failed_writes = 0
        self.notify_free = 0
        self.miss_free = 0
        self.num_reads = 0
        self.num_writes = 0

    # -- helpers --------------------------------------------------------------------------

    def _live(self) -> cython.int:
        if self.closed:
            raise ValueError("the zram device is closed")
        return 0

    def _index(self, index) -> cython.Py_ssize_t:
        i: cython.longlong
        if type(index) is not int:
            raise TypeError(f"index must be an int, not {type(index).__name__}")
        if cython.compiled:
            overflow: cython.int = 0
            i = PyLong_AsLongLongAndOverflow(index, cython.address(overflow))
            if overflow:
                i = -1
        else:
            i = index if 0 <= index < self.nr_pages else -1
        if not 0 <= i < self.nr_pages:
            raise ValueError(f"index {index!r} out of range: the disk has pages "
                             f"0..{self.nr_pages - 1}")
        return i

    def _check_range(self, index, count) -> None:
        self._index(index)
        if type(count) is not int:
            raise TypeError(f"count must be an int, not {type(count).__name__}")
        if count < 1 or index + count > self.nr_pages:
            raise ValueError(f"count {count!r} from index {index} runs past the disk "
                             f"({self.nr_pages} pages)")

    def _stream_get(self):
        """A compression buffer of two pages. Kernel: zcomp_stream_get (per CPU)."""
        streams = self._streams
        if streams:
            return streams.pop()
        return bytearray(2 * self.page_size)

    def _stream_put(self, buf) -> None:
        if len(self._streams) < _STREAMS_KEPT:
            self._streams.append(buf)

    def _pages(self) -> cython.Py_ssize_t:
        return self.alloc.pages() + self.raw_pages

    # -- write ----------------------------------------------------------------------------

    def write(self, index, page) -> None:
        """Store one whole page at ``index``. Kernel: zram_write_page.

        TypeError for an index that is not an int or a page that is not bytes-like;
        ValueError for an index out of range or a page of the wrong length; MemoryError when
        the write would go over ``mem_limit`` or no memory is left (old data kept, counted
        in failed_writes, as the kernel's -ENOMEM that userspace sees as EIO).
        """
        i: cython.Py_ssize_t = self._index(index)
        src = readable(page)
        if len(src) != self.page_size:
            raise ValueError(f"page for index {index} is {len(src)} bytes, must be "
                             f"{self.page_size}")
        self._live()
        self._write_page(i, src)

    def write_pages(self, index, data) -> None:
        """Store ``len(data) // page_size`` consecutive pages from ``index`` (one bio of many
        pages). Pages are written in order; if one fails (MemoryError, OSError) the ones
        before it stay written, as a partially completed bio leaves them."""
        src = memoryview(readable(data))
        n: cython.Py_ssize_t = len(src)
        P: cython.Py_ssize_t = self.page_size
        if n == 0 or n % P:
            raise ValueError(f"data of {n} bytes is not a whole number of {P}-byte pages")
        self._check_range(index, n // P)
        self._live()
        i: cython.Py_ssize_t = index
        k: cython.Py_ssize_t
        for k in range(n // P):
            self._write_page(i + k, src[k * P:(k + 1) * P])

    def _write_page(self, i: cython.Py_ssize_t, src) -> cython.int:
        """Kernel: zram_write_page: the same-filled test, compression (outside every lock),
        then the store."""
        P: cython.Py_ssize_t = self.page_size
        if page_same_filled(src, P):
            self.policy.op_enter()
            try:
                self.policy.stats_lock()
                self.num_writes += 1
                self.policy.stats_unlock()
                self._store_same(i, first_word(src))
            finally:
                self.policy.op_exit()
            return 0
        buf = self._stream_get()
        comp_len: cython.Py_ssize_t
        try:
            try:
                comp_len = self.backend.compress_into(src, buf)
            except Exception as e:   # a backend failure: the kernel fails the write
                self.policy.op_enter()
                self.policy.stats_lock()
                self.num_writes += 1
                self.failed_writes += 1
                self.policy.stats_unlock()
                self.policy.op_exit()
                raise OSError(f"compression of page {i} failed: {e}") from e
            self.policy.op_enter()
            try:
                self.policy.stats_lock()
                self.num_writes += 1
                self.policy.stats_unlock()
                if comp_len >= self.huge_threshold:
                    self._store(i, comp_len, src, P)
                else:
                    self._store(i, comp_len, buf, comp_len)
            finally:
                self.policy.op_exit()
        finally:
            self._stream_put(buf)
        return 0

    def write_same(self, index, word) -> None:
        """Store a same-filled page given by its fill word (no data). Kernel: the
        page_same_filled branch of zram_write_page."""
        i: cython.Py_ssize_t = self._index(index)
        if type(word) is not int:
            raise TypeError(f"fill word must be an int, not {type(word).__name__}")
        if not 0 <= word < 1 << 64:
            raise ValueError(f"fill word {word!r} must be an unsigned 64-bit int")
        self._live()
        self.policy.op_enter()
        try:
            self.policy.stats_lock()
            self.num_writes += 1
            self.policy.stats_unlock()
            self._store_same(i, word)
        finally:
            self.policy.op_exit()

    def write_compressed(self, index, comp_len, data=None) -> None:
        """Store a page already compressed to ``comp_len`` bytes: the rest of zram_write_page.

        ``data`` is the payload (the compressed bytes, or the raw page when ``comp_len``
        reaches the huge threshold); without it only the accounting is done (trace replay,
        estimates: reading such a slot gives no page back). MemoryError over ``mem_limit``.
        """
        i: cython.Py_ssize_t = self._index(index)
        if type(comp_len) is not int:
            raise TypeError(f"compressed length must be an int, not {type(comp_len).__name__}")
        if not 0 < comp_len <= 2 * self.page_size:
            raise ValueError(f"compressed length {comp_len!r} must be in 1..{2 * self.page_size}")
        src = b"\0"
        n: cython.Py_ssize_t = 0
        if data is not None:
            src = readable(data)
            want = self.page_size if comp_len >= self.huge_threshold else comp_len
            if len(src) != want:
                raise ValueError(f"data of {len(src)} bytes for a page compressed to "
                                 f"{comp_len}: expected {want}")
            n = want
        self._live()
        self.policy.op_enter()
        try:
            self.policy.stats_lock()
            self.num_writes += 1
            self.policy.stats_unlock()
            self._store(i, comp_len, src, n)
        finally:
            self.policy.op_exit()

    def _store_same(self, i: cython.Py_ssize_t, word: cython.ulonglong) -> None:
        """Kernel: zram_write_same_filled_page (inside an operation)."""
        policy: LockPolicy = self.policy
        policy.slot_lock(i)
        try:
            self._free_slot(i)
            self.slots[2 * i] = word
            self.slots[2 * i + 1] = self.F_SAME
        finally:
            policy.slot_unlock(i)
        policy.stats_lock()
        self.same_pages += 1
        self.pages_stored += 1
        policy.stats_unlock()

    def _store(self, i: cython.Py_ssize_t, comp_len: cython.Py_ssize_t, payload,
               n: cython.Py_ssize_t) -> cython.int:
        """Kernel: zram_write_page after compression (6.18 order): zs_malloc the new object
        (and copy it in), zram_can_store_page (mem_used_max, mem_limit), free the old slot,
        install. Inside an operation."""
        policy: LockPolicy = self.policy
        P: cython.Py_ssize_t = self.page_size
        huge: cython.bint = comp_len >= self.huge_threshold
        size: cython.Py_ssize_t = P if huge else comp_len
        raw: cython.bint = size > self.alloc.max_size
        h: cython.ulonglong = 0
        if raw:
            self.raw_pages += 1
        else:
            try:
                h = self.alloc.store(size, payload, n)
            except MemoryError:
                policy.stats_lock()
                self.failed_writes += 1
                policy.stats_unlock()
                raise
        # Kernel: zram_can_store_page
        policy.stats_lock()
        total: cython.Py_ssize_t = self._pages()
        if total > self.max_used_pages:
            self.max_used_pages = total
        over: cython.bint = self.limit_pages != 0 and total > self.limit_pages
        if over:
            self.failed_writes += 1
        policy.stats_unlock()
        if over:
            if raw:
                self.raw_pages -= 1
            else:
                self.alloc.release(h)
            raise MemoryError(f"write of page {i} refused: the device would use {total} "
                              f"pages, over mem_limit of {self.limit_pages} pages")
        policy.slot_lock(i)
        try:
            self._free_slot(i)
            if raw:
                self._raw[i] = bytes(payload[:n]) if n else None
                self.slots[2 * i + 1] = self.F_RAW | (self.F_HUGE if huge else 0) | size
            else:
                self.slots[2 * i] = h
                self.slots[2 * i + 1] = (self.F_HUGE if huge else 0) | size
        finally:
            policy.slot_unlock(i)
        policy.stats_lock()
        self.compr_data_size += size
        if huge:
            self.huge_pages += 1
            self.huge_pages_since += 1
        self.pages_stored += 1
        policy.stats_unlock()
        return 0

    def _free_slot(self, i: cython.Py_ssize_t) -> cython.bint:
        """Empty a slot, updating the counters; the caller holds the slot lock.
        Kernel: zram_free_page. True if it held data."""
        policy: LockPolicy = self.policy
        flags: cython.ulonglong = self.slots[2 * i + 1]
        if flags == 0:
            return False
        if flags & self.F_SAME:
            policy.stats_lock()
            self.same_pages -= 1
            self.pages_stored -= 1
            policy.stats_unlock()
        else:
            if flags & self.F_RAW:
                self._raw.pop(i, None)
                self.raw_pages -= 1
            else:
                self.alloc.release(self.slots[2 * i])
            policy.stats_lock()
            if flags & self.F_HUGE:
                self.huge_pages -= 1
            self.compr_data_size -= flags & self.size_mask
            self.pages_stored -= 1
            policy.stats_unlock()
        self.slots[2 * i] = 0
        self.slots[2 * i + 1] = 0
        return True

    # -- read -----------------------------------------------------------------------------

    def read(self, index) -> bytes:
        """The page at ``index``; zeros if never written or discarded. Kernel: zram_read_page.
        OSError (counted in failed_reads) if the stored object does not decompress to a page."""
        i: cython.Py_ssize_t = self._index(index)
        self._live()
        return self._read_page(i)

    def read_pages(self, index, count) -> bytearray:
        """``count`` consecutive pages from ``index`` (one bio of many pages)."""
        self._check_range(index, count)
        out = bytearray(count * self.page_size)
        self.read_into(index, out)
        return out

    def read_into(self, index, out) -> None:
        """Read ``len(out) // page_size`` pages from ``index`` into the writable buffer
        ``out`` (a whole number of pages)."""
        try:
            mv = memoryview(out)
        except TypeError:
            raise TypeError(f"out must be a writable buffer, not {type(out).__name__}") from None
        if mv.readonly or not mv.c_contiguous:
            raise TypeError("out must be a writable C-contiguous buffer")
        mv = mv.cast("B")
        P = self.page_size
        if len(mv) == 0 or len(mv) % P:
            raise ValueError(f"out of {len(mv)} bytes is not a whole number of {P}-byte pages")
        self._check_range(index, len(mv) // P)
        self._live()
        for k in range(len(mv) // P):
            mv[k * P:(k + 1) * P] = self._read_page(index + k)

    def _read_page(self, i: cython.Py_ssize_t) -> bytes:
        """Kernel: zram_read_page: under the slot lock, the fill word, the raw page, or the
        object decompressed where it lies (zs_obj_read_begin .. zs_obj_read_end; an object
        that spans two frames is copied out first, as the kernel does)."""
        policy: LockPolicy = self.policy
        fine: cython.bint = policy.fine
        P: cython.Py_ssize_t = self.page_size
        failed = None
        out = None
        policy.op_enter()
        try:
            if fine:
                policy.stats_lock()
                self.num_reads += 1
                policy.stats_unlock()
                policy.slot_lock(i)
            else:
                self.num_reads += 1
            try:
                flags: cython.ulonglong = self.slots[2 * i + 1]
                h: cython.ulonglong = self.slots[2 * i]
                size: cython.Py_ssize_t = flags & self.size_mask
                if flags == 0 or flags & self.F_SAME:
                    out = filled_page(h, P)
                elif flags & self.F_RAW:
                    out = self._raw.get(i) or filled_page(0, P)
                elif flags & self.F_HUGE:
                    out = self.alloc.load(h, P)
                else:
                    a: cython.Py_ssize_t = self.alloc.read_begin(h, size)
                    try:
                        if a >= 0:
                            out = self.backend.decompress_at(self._mem, a, size, P)
                        else:
                            out = self.backend.decompress(self.alloc.load(h, size), P)
                    except DecompressError as e:
                        failed = e
                        policy.stats_lock()
                        self.failed_reads += 1
                        policy.stats_unlock()
                    finally:
                        if a >= 0:
                            self.alloc.read_end(h)
            finally:
                if fine:
                    policy.slot_unlock(i)
        finally:
            policy.op_exit()
        if failed is not None:
            raise OSError(f"decompression of page {i} failed: {failed}")
        return out

    # -- other operations -----------------------------------------------------------------

    def discard(self, index, count=1) -> None:
        """Discard whole pages ``index .. index+count-1``. Kernel: zram_bio_discard.
        Counts ``notify_free`` once per page, even for empty slots, as the kernel does."""
        self._check_range(index, count)
        self._live()
        policy: LockPolicy = self.policy
        i: cython.Py_ssize_t
        for i in range(index, index + count):
            policy.op_enter()
            try:
                policy.slot_lock(i)
                try:
                    self._free_slot(i)
                finally:
                    policy.slot_unlock(i)
                policy.stats_lock()
                self.notify_free += 1
                policy.stats_unlock()
            finally:
                policy.op_exit()

    def slot_free_notify(self, index) -> None:
        """Swap's slot-free hint. Kernel: zram_slot_free_notify (never misses here)."""
        self.discard(index, 1)

    def compact(self) -> int:
        """Compact the allocator. Kernel: compact_store -> zs_compact. Returns pages freed."""
        self._live()
        return self.pool.compact() or 0

    @property
    def mem_limit(self) -> int:
        return self.limit_pages * self.page_size

    @mem_limit.setter
    def mem_limit(self, nbytes) -> None:
        """Kernel: mem_limit_store (PAGE_ALIGN; 0 = no limit; lowering it frees nothing)."""
        if type(nbytes) is not int or nbytes < 0:
            raise ValueError(f"mem_limit {nbytes!r} must be a non-negative int (bytes)")
        self.limit_pages = -(-nbytes // self.page_size)

    def reset_mem_used_max(self) -> None:
        """Kernel: mem_used_max_store("0"): reset to the current total."""
        self._live()
        self.policy.op_enter()
        try:
            self.max_used_pages = self._pages()
        finally:
            self.policy.op_exit()

    def reset(self) -> None:
        """Free every slot and zero every statistic; the device stays usable (same size and
        algorithm). Kernel: reset_store + disksize_store."""
        self._live()
        self.policy.op_enter()
        try:
            self.alloc.destroy()
            old = self._slot_mm
            self.slots = None
            old.close()
            self._init_state()
        finally:
            self.policy.op_exit()

    def close(self) -> None:
        """Give all memory back; the device is unusable afterwards."""
        if self.closed:
            return
        self.policy.op_enter()
        try:
            self.closed = True
            self.alloc.destroy()
            self.slots = None
            self._slot_mm.close()
        finally:
            self.policy.op_exit()

    # -- statistics -----------------------------------------------------------------------

    def mm_stat(self) -> MmStat:
        """Kernel: mm_stat_show."""
        P = self.page_size
        pages_compacted = getattr(self.pool, "pages_compacted", 0)
        return MmStat(self.pages_stored * P, self.compr_data_size, self._pages() * P,
                      self.limit_pages * P, self.max_used_pages * P, self.same_pages,
                      pages_compacted, self.huge_pages, self.huge_pages_since)

    def io_stat(self) -> IoStat:
        """Kernel: io_stat_show."""
        return IoStat(self.failed_reads, self.failed_writes, self.notify_free)

    def debug_stat(self) -> DebugStat:
        """Kernel: debug_stat_show."""
        return DebugStat(self.miss_free)

    def slot_table_bytes(self) -> int:
        """Bytes of the slot table (16 a slot), as the kernel's vzalloc'd table."""
        return 16 * self.nr_pages

    def slot(self, index) -> tuple:
        """(handle or fill word, size, flags) of a slot, for tests and studies."""
        i = self._index(index)
        f = self.slots[2 * i + 1]
        return self.slots[2 * i], f & self.size_mask, f & ~self.size_mask

    def __repr__(self):
        return f"<Zram {self.disksize} bytes, {self.comp_algorithm}, {self.pool!r}>"
