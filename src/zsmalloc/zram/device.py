"""The zram device: a compressed RAM disk of whole pages over a zsmalloc Pool.

Kernel: drivers/block/zram/zram_drv.c (6.18). Each page-sized slot of the disk is empty,
same-filled (all 8-byte words equal: the word is kept in the slot, nothing allocated), huge
(compresses to at least ``huge_class_size``: stored raw in a whole-page object) or a
compressed object in the pool.

The write path follows 6.18 exactly (spec §10.3, after "zram: fix slot write race
condition"): compress, allocate the new object, raise ``mem_used_max`` to the pool's pages,
refuse the write if over ``mem_limit`` (freeing the new object; the old data stays), then free
the old slot and install the new one. So an overwrite allocates before it frees, and the
maximum is sampled in between, as in the kernel.

Slot table: two ``array('Q')`` columns, 16 bytes a slot like the kernel's
(``handle`` = pool handle or fill word; ``flags`` = object size in the low PAGE_SHIFT+1 bits,
flag bits above).

Locks (threads): slot lock (kernel ZRAM_ENTRY_LOCK) is taken after compression and around
the free-old / install-new step; see zsmalloc.locking. Single-threaded use takes none.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from ..config import PoolConfig, resolve_config
from ..handles import ROW_MASK
from ..pool import Pool
from ..sizeclass import huge_class_size as _huge_class_size
from .backends import make_backend as make_codec


@dataclass(frozen=True)
class MmStat:
    """/sys/block/zramN/mm_stat, fields in kernel order; ``str()`` is the sysfs line."""

    orig_data_size: int
    compr_data_size: int
    mem_used_total: int
    mem_limit: int
    mem_used_max: int
    same_pages: int
    pages_compacted: int
    huge_pages: int
    huge_pages_since: int

    def __str__(self):
        return "%8d %8d %8d %8d %8d %8d %8d %8d %8d\n" % tuple(self)

    def __iter__(self):
        return iter((self.orig_data_size, self.compr_data_size, self.mem_used_total,
                     self.mem_limit, self.mem_used_max, self.same_pages, self.pages_compacted,
                     self.huge_pages, self.huge_pages_since))

    def as_tuple(self) -> tuple:
        return tuple(self)

    FIELDS = ("orig_data_size", "compr_data_size", "mem_used_total", "mem_limit",
              "mem_used_max", "same_pages", "pages_compacted", "huge_pages", "huge_pages_since")


@dataclass(frozen=True)
class IoStat:
    """/sys/block/zramN/io_stat: failed_reads failed_writes 0 notify_free."""

    failed_reads: int
    failed_writes: int
    notify_free: int

    def __str__(self):
        return "%8d %8d %8d %8d\n" % (self.failed_reads, self.failed_writes, 0, self.notify_free)

    def as_tuple(self) -> tuple:
        return (self.failed_reads, self.failed_writes, 0, self.notify_free)


@dataclass(frozen=True)
class DebugStat:
    """/sys/block/zramN/debug_stat."""

    miss_free: int

    def __str__(self):
        return "version: %d\n%8d %8d\n" % (1, 0, self.miss_free)


class Zram:
    """A zram device of ``disksize`` bytes (rounded up to whole pages).

    ``Zram(disksize, comp_algorithm="lz4", config=None, level=None)``. ``config`` picks the
    pool's profile, chain size and page size; the page size is also the device's.
    """

    def __new__(cls, *args, concurrent: bool = False, **kw):
        if concurrent and cls is Zram:
            return object.__new__(ConcurrentZram)
        return object.__new__(cls)

    def __init__(self, disksize, comp_algorithm: str = "lz4", config: PoolConfig | None = None,
                 *, level: int | None = None, profile=None, chain_size=None, page_size=None,
                 concurrent: bool = False):
        cfg = resolve_config(config, profile=profile, chain_size=chain_size, page_size=page_size)
        if type(disksize) is not int or disksize <= 0:
            raise ValueError(f"disksize {disksize!r} must be a positive int (bytes)")
        self.config = cfg
        self.page_size = P = cfg.page_size
        self.page_shift = cfg.page_shift
        self.disksize = -(-disksize // P) * P          # Kernel: PAGE_ALIGN(memparse(v))
        self.nr_pages = self.disksize // P
        self.codec = make_codec(comp_algorithm, level)
        self.comp_algorithm = comp_algorithm
        # 4.8's zram used max_zpage_size = PAGE_SIZE/4*3 (pages above it stored raw);
        # 4.17+ use zs_huge_class_size() (>= it is huge).
        if cfg.kernel_48:
            self.huge_threshold = P // 4 * 3 + 1
        else:
            self.huge_threshold = _huge_class_size(cfg)
        self._size_bits = self.page_shift + 1
        self._size_mask = (1 << self._size_bits) - 1
        self.F_SAME = 1 << self._size_bits               # Kernel: ZRAM_SAME
        self.F_HUGE = 1 << (self._size_bits + 2)         # Kernel: ZRAM_HUGE
        self._buf = bytearray(2 * P)                     # Kernel: per-CPU zstrm->buffer
        self._bufmv = memoryview(self._buf)
        self._compress = self.codec.compress_into
        self._decompress = self.codec.decompress
        self._words = P // 8
        self._init_state()

    def _init_state(self) -> None:
        n = self.nr_pages
        self.pool = Pool(self.config, name="zram")
        self.slot_handle = array("Q", [0]) * n     # no n*8-byte temporary left in the heap
        self.slot_flags = array("Q", [0]) * n
        self.pages_stored = 0
        self.compr_data_size = 0
        self.same_pages = 0
        self.huge_pages = 0
        self.huge_pages_since = 0
        self.max_used_pages = 0
        self.limit_pages = 0
        self.failed_reads = 0
        self.failed_writes = 0
        self.notify_free = 0
        self.miss_free = 0
        self.num_reads = 0
        self.num_writes = 0

    # -- validation --------------------------------------------------------------------

    def _check_index(self, index) -> None:
        if type(index) is not int or not 0 <= index < self.nr_pages:
            raise ValueError(f"index {index!r} out of range: the disk has pages 0..{self.nr_pages - 1}")

    # -- write -------------------------------------------------------------------------

    def write(self, index, page) -> None:
        """Store one whole page at ``index``. Kernel: zram_write_page.

        ValueError for a bad index or a page of the wrong length; MemoryError when the write
        would go over ``mem_limit`` (old data kept, counted in failed_writes, as the kernel's
        -ENOMEM that userspace sees as EIO).
        """
        if type(index) is not int or not 0 <= index < self.nr_pages:
            self._check_index(index)
        if len(page) != self.page_size:
            raise ValueError(f"page for index {index} is {len(page)} bytes, must be {self.page_size}")
        self.num_writes += 1
        # Kernel: page_same_filled. Its first test (word 0 against the last word) is cheaper
        # here on the first byte of each; the words are compared only when those agree.
        if page[0] == page[-8]:
            word = self._same_word(page)
            if word is not None:
                self._store_same(index, word)
                return
        try:
            comp_len = self._compress(page, self._buf)
        except Exception as e:   # Kernel: a compression error fails the write, old data stays
            self.failed_writes += 1
            raise OSError(f"compression of page {index} failed: {e}") from e
        # huge pages are stored raw: the payload is the page itself
        self._store(index, comp_len,
                    page if comp_len >= self.huge_threshold else self._bufmv[:comp_len])

    def _same_word(self, page) -> int | None:
        """The fill word if every 8-byte word of ``page`` is the same, else None."""
        w0 = bytes(page[:8])
        if w0 == page[-8:] and w0 * self._words == page:
            return int.from_bytes(w0, "little")
        return None

    def _refuse(self, index: int, h: int, total: int):
        """Kernel: zram_can_store_page failed: free the new object, count, -ENOMEM."""
        self.pool.free(h)
        self.failed_writes += 1
        raise MemoryError(f"write of page {index} refused: pool would use {total} pages, "
                          f"over mem_limit of {self.limit_pages} pages")

    def write_same(self, index, word: int) -> None:
        """Store a same-filled page given by its fill word (no data). Kernel: the
        page_same_filled branch of zram_write_page."""
        self._check_index(index)
        if type(word) is not int or not 0 <= word < 1 << 64:
            raise ValueError(f"fill word {word!r} must be an unsigned 64-bit int")
        self.num_writes += 1
        self._store_same(index, word)

    def write_compressed(self, index, comp_len: int, data=None) -> None:
        """Store a page already compressed to ``comp_len`` bytes: the rest of zram_write_page.

        ``data`` is the payload (the compressed bytes, or the raw page when ``comp_len``
        reaches the huge threshold); without it only the accounting is done (trace replay:
        reading such a slot gives no page back). MemoryError over ``mem_limit``.
        """
        self._check_index(index)
        if type(comp_len) is not int or comp_len < 1:
            raise ValueError(f"compressed length {comp_len!r} must be a positive int")
        if data is not None:
            want = self.page_size if comp_len >= self.huge_threshold else comp_len
            if len(data) != want:
                raise ValueError(f"data of {len(data)} bytes for a page compressed to "
                                 f"{comp_len}: expected {want}")
        self.num_writes += 1
        self._store(index, comp_len, data)

    def _store_same(self, index: int, word: int) -> None:
        self._free_slot(index)
        self.slot_handle[index] = word
        self.slot_flags[index] = self.F_SAME
        self.same_pages += 1
        self.pages_stored += 1

    def _store(self, index: int, comp_len: int, payload) -> None:
        """Kernel: zram_write_page after compression (6.18 order): zs_malloc the new
        object, zram_can_store_page (mem_used_max, mem_limit), copy, free the old slot,
        install. Copying before the limit check changes nothing observable and saves a
        handle lookup."""
        pool = self.pool
        huge = comp_len >= self.huge_threshold
        h = pool.malloc(self.page_size if huge else comp_len, payload)
        # Kernel: zram_can_store_page
        total = pool.pages_allocated
        if total > self.max_used_pages:
            self.max_used_pages = total
        if self.limit_pages and total > self.limit_pages:
            self._refuse(index, h, total)
        if self.slot_flags[index] or self.slot_handle[index]:
            self._free_slot(index)
        self.slot_handle[index] = h
        if huge:
            P = self.page_size
            self.slot_flags[index] = self.F_HUGE | P
            self.compr_data_size += P
            self.huge_pages += 1
            self.huge_pages_since += 1
        else:
            self.slot_flags[index] = comp_len
            self.compr_data_size += comp_len
        self.pages_stored += 1

    def _free_slot(self, index: int) -> bool:
        """Empty a slot, updating the counters. Kernel: zram_free_page. True if it held data."""
        flags = self.slot_flags[index]
        if flags & self.F_SAME:
            self.same_pages -= 1
        else:
            h = self.slot_handle[index]
            if not h:
                return False
            if flags & self.F_HUGE:
                self.huge_pages -= 1
            self.pool.free(h)
            self.compr_data_size -= flags & self._size_mask
        self.pages_stored -= 1
        self.slot_handle[index] = 0
        self.slot_flags[index] = 0
        return True

    # -- read --------------------------------------------------------------------------

    def read(self, index) -> bytes:
        """The page at ``index``; zeros if never written or discarded. Kernel: zram_read_page.

        OSError (counted in failed_reads) if the stored object does not decompress to a page.
        """
        if type(index) is not int or not 0 <= index < self.nr_pages:
            self._check_index(index)
        self.num_reads += 1
        flags = self.slot_flags[index]
        size = flags & self._size_mask
        if flags != size or not size:      # same-filled, huge or empty
            h = self.slot_handle[index]
            if flags & self.F_SAME or not h:
                return h.to_bytes(8, "little") * self._words
            return self.pool.read(h, self.page_size)
        pool = self.pool
        try:
            page = self._decompress(pool.obj_read(pool._hw[self.slot_handle[index] & ROW_MASK], size),
                                    self.page_size)
            if len(page) == self.page_size:
                return page
            e = f"{len(page)} bytes, not a page"
        except Exception as exc:
            e = exc
        self.failed_reads += 1
        raise OSError(f"decompression of page {index} failed: {e}")

    # -- other operations ---------------------------------------------------------------

    def discard(self, index, count: int = 1) -> None:
        """Discard whole pages ``index .. index+count-1``. Kernel: zram_bio_discard.

        Counts ``notify_free`` once per page, even for empty slots, as the kernel does.
        """
        self._check_index(index)
        if type(count) is not int or count < 1 or index + count > self.nr_pages:
            raise ValueError(f"discard count {count!r} from index {index} runs past the disk "
                             f"({self.nr_pages} pages)")
        for i in range(index, index + count):
            self._free_slot(i)
            self.notify_free += 1

    def slot_free_notify(self, index) -> None:
        """Swap's slot-free hint. Kernel: zram_slot_free_notify (never misses here)."""
        self._check_index(index)
        self.notify_free += 1
        self._free_slot(index)

    def compact(self) -> int:
        """Compact the pool. Kernel: compact_store -> zs_compact. Returns pages freed."""
        return self.pool.compact()

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
        self.max_used_pages = self.pool.pages_allocated

    def reset(self) -> None:
        """Free every slot and zero every statistic; the device stays usable.

        Kernel: reset_store (+ disksize_store with the same size): limit 0, slots freed,
        pool destroyed and recreated, stats memset to 0.
        """
        self.pool.close()
        self._init_state()

    def close(self) -> None:
        self.pool.close()

    # -- statistics --------------------------------------------------------------------

    def mm_stat(self) -> MmStat:
        """Kernel: mm_stat_show."""
        P = self.page_size
        return MmStat(self.pages_stored * P, self.compr_data_size, self.pool.pages_allocated * P,
                      self.limit_pages * P, self.max_used_pages * P, self.same_pages,
                      self.pool.pages_compacted, self.huge_pages, self.huge_pages_since)

    def io_stat(self) -> IoStat:
        """Kernel: io_stat_show."""
        return IoStat(self.failed_reads, self.failed_writes, self.notify_free)

    def debug_stat(self) -> DebugStat:
        """Kernel: debug_stat_show."""
        return DebugStat(self.miss_free)

    def slot_table_bytes(self) -> int:
        return self.slot_handle.itemsize * len(self.slot_handle) + \
            self.slot_flags.itemsize * len(self.slot_flags)

    def __repr__(self):
        return f"<Zram {self.disksize} bytes, {self.comp_algorithm}, {self.pool!r}>"


class ConcurrentZram(Zram):
    """A Zram safe to use from many threads. Kernel locks (6.18 write path):

    per-thread compression buffer (the kernel's per-CPU stream) -> zs_malloc (class lock) ->
    zs_obj_write (pool read -> zspage read) -> slot lock -> zram_free_page -> zs_free (pool
    read -> class) -> install -> slot unlock. Counters are atomics in the kernel: here one
    leaf lock. Slot locks are striped (256 stripes by index).
    """

    _STRIPES = 256

    def __init__(self, *args, lock_debug: bool = False, concurrent: bool = True, **kw):
        self.lock_debug = lock_debug
        super().__init__(*args, **kw)

    def _init_state(self) -> None:
        import threading
        from ..locking import make_mutex
        n = self.nr_pages
        self.pool = Pool(self.config, name="zram", concurrent=True, lock_debug=self.lock_debug)
        self.slot_handle = array("Q", [0]) * n     # no n*8-byte temporary left in the heap
        self.slot_flags = array("Q", [0]) * n
        self._slot_locks = [make_mutex(f"zram-slot[{i}]", 5, self.lock_debug)
                            for i in range(self._STRIPES)]
        self._stats = make_mutex("zram-stats", 95, self.lock_debug)
        self._tls = threading.local()
        for name in ("pages_stored", "compr_data_size", "same_pages", "huge_pages",
                     "huge_pages_since", "max_used_pages", "limit_pages", "failed_reads",
                     "failed_writes", "notify_free", "miss_free", "num_reads", "num_writes"):
            setattr(self, name, 0)

    def _stat_add(self, **kw) -> None:
        with self._stats:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def write(self, index, page) -> None:
        if type(index) is not int or not 0 <= index < self.nr_pages:
            self._check_index(index)
        P = self.page_size
        if len(page) != P:
            raise ValueError(f"page for index {index} is {len(page)} bytes, must be {P}")
        slot_lock = self._slot_locks[index % self._STRIPES]
        word = self._same_word(page) if page[0] == page[-8] else None
        if word is not None:
            with slot_lock:
                self._free_slot(index)
                self.slot_handle[index] = word
                self.slot_flags[index] = self.F_SAME
            self._stat_add(same_pages=1, pages_stored=1, num_writes=1)
            return
        buf = getattr(self._tls, "buf", None)
        if buf is None:
            buf = self._tls.buf = bytearray(2 * P)
        comp_len = self.codec.compress_into(page, buf)
        huge = comp_len >= self.huge_threshold
        pool = self.pool
        h = pool.malloc(P if huge else comp_len)
        with self._stats:                               # Kernel: zram_can_store_page
            total = pool.pages_allocated
            if total > self.max_used_pages:
                self.max_used_pages = total
            over = self.limit_pages and total > self.limit_pages
            if over:
                self.failed_writes += 1
        if over:
            pool.free(h)
            raise MemoryError(f"write of page {index} refused: pool would use {total} pages, "
                              f"over mem_limit of {self.limit_pages} pages")
        pool.write(h, page if huge else memoryview(buf)[:comp_len])
        with slot_lock:
            self._free_slot(index)
            self.slot_handle[index] = h
            self.slot_flags[index] = (self.F_HUGE | P) if huge else comp_len
        if huge:
            self._stat_add(compr_data_size=P, huge_pages=1, huge_pages_since=1, pages_stored=1,
                           num_writes=1)
        else:
            self._stat_add(compr_data_size=comp_len, pages_stored=1, num_writes=1)

    def _free_slot(self, index: int) -> bool:
        """Kernel: zram_free_page; the caller holds the slot lock."""
        flags = self.slot_flags[index]
        h = self.slot_handle[index]
        if flags & self.F_SAME:
            self._stat_add(same_pages=-1, pages_stored=-1)
        elif not h:
            return False
        else:
            self.pool.free(h)
            if flags & self.F_HUGE:
                self._stat_add(huge_pages=-1, compr_data_size=-(flags & self._size_mask),
                               pages_stored=-1)
            else:
                self._stat_add(compr_data_size=-(flags & self._size_mask), pages_stored=-1)
        self.slot_handle[index] = 0
        self.slot_flags[index] = 0
        return True

    def read(self, index) -> bytes:
        if type(index) is not int or not 0 <= index < self.nr_pages:
            self._check_index(index)
        with self._slot_locks[index % self._STRIPES]:
            flags = self.slot_flags[index]
            h = self.slot_handle[index]
            if flags & self.F_SAME or not h:
                return h.to_bytes(8, "little") * self._words
            if flags & self.F_HUGE:
                return self.pool.read(h, self.page_size)
            data = self.pool.read(h, flags & self._size_mask)
        return self.codec.decompress(data, self.page_size)

    def discard(self, index, count: int = 1) -> None:
        self._check_index(index)
        if type(count) is not int or count < 1 or index + count > self.nr_pages:
            raise ValueError(f"discard count {count!r} from index {index} runs past the disk "
                             f"({self.nr_pages} pages)")
        for i in range(index, index + count):
            with self._slot_locks[i % self._STRIPES]:
                self._free_slot(i)
            self._stat_add(notify_free=1)

    def reset_mem_used_max(self) -> None:
        with self._stats:
            self.max_used_pages = self.pool.pages_allocated
