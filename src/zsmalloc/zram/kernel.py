"""Driver for the running kernel's zram: the oracle for conformance tests and benchmarks.

``KernelZram`` uses **a device of its own**: it hot-adds one through
``/sys/class/zram-control/hot_add`` and hot-removes it afterwards (also on errors), so it
never touches a device someone else configured. Only when a caller names a device
(``device="zram0"``) does it use that one: it takes it exclusively (an ``fcntl.flock`` on
``/tmp/<device>.lock``), refuses it when it is in use (mounted, swap, holders, open
elsewhere), and resets it before and after. Pages move
with ``O_DIRECT`` so every write reaches zram as one bio, in program order (buffered writes
would reach it later, in another order).

Measured on this machine (Linux 6.18, chain 8):

* A write refused by ``mem_limit`` comes back from ``pwrite`` as ``EIO`` (zram turns any
  write error into ``BLK_STS_IOERR``), and it **does** count in io_stat ``failed_writes``;
  the old content of the slot is kept.  ``write`` raises ``MemoryError`` for it either way.
* Reads of unwritten slots return zeroes; reads never change mm_stat.

Needs root.  Nothing here runs at import time; ``kernel_available()`` answers "could a test
use the device now?" without taking it.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import re
import stat
import struct
import time

PAGE_SIZE = 4096
BLKDISCARD = 0x1277          # _IO(0x12, 119): struct {u64 offset; u64 length}

ZRAM_CONTROL = "/sys/class/zram-control"

__all__ = ["KernelZram", "KernelZramUnavailable", "kernel_available", "kernel_default_algorithm",
           "hot_add", "hot_remove", "PAGE_SIZE"]


class KernelZramUnavailable(RuntimeError):
    """The kernel zram device cannot be used here; ``.reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


_DEVICE_RE = re.compile(r"zram[0-9]+\Z")


def _check_device_name(device: str) -> str:
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise ValueError(f"device must be a name like 'zram0', got {device!r}")
    return device


def _dev_rdev(devpath: str):
    """The block device number of ``devpath``, or None if it is not a block device."""
    try:
        st = os.stat(devpath)
    except OSError:
        return None
    return st.st_rdev if stat.S_ISBLK(st.st_mode) else None


def _same_device(path: str, devpath: str, rdev) -> bool:
    if path == devpath:
        return True
    try:
        if os.path.realpath(path) == os.path.realpath(devpath):
            return True
    except OSError:
        pass
    return rdev is not None and _dev_rdev(path) == rdev


def _in_use_reason(device: str):
    """Why ``device`` is in use by someone else (mounted, swap, holders), or None."""
    devpath = f"/dev/{device}"
    rdev = _dev_rdev(devpath)
    try:
        with open("/proc/mounts") as f:
            for line in f:
                src, target = line.split()[:2]
                if src.startswith("/dev/") and _same_device(src, devpath, rdev):
                    return f"{devpath} is mounted on {target}"
    except OSError:
        pass
    try:
        with open("/proc/swaps") as f:
            next(f, None)                      # header line
            for line in f:
                name = line.split()[0]
                if _same_device(name, devpath, rdev):
                    return f"{devpath} is in use as swap"
    except OSError:
        pass
    try:
        holders = os.listdir(f"/sys/block/{device}/holders")
    except OSError:
        holders = []
    if holders:
        return f"{devpath} has holders: {', '.join(sorted(holders))}"
    return None


def _unavailable_reason(device: str | None = None):
    """Why tests cannot use ``device`` (None: a hot-added one) now, or None if they can."""
    if os.geteuid() != 0:
        return "not running as root (zram sysfs attributes and the device need root)"
    if device is None:
        if not os.path.exists(f"{ZRAM_CONTROL}/hot_add"):
            return f"{ZRAM_CONTROL}/hot_add does not exist (no zram, or a kernel without hot_add)"
        return None
    sysdir = f"/sys/block/{device}"
    if not os.path.isdir(sysdir):
        return f"{sysdir} does not exist (zram module not loaded or no such device)"
    if _dev_rdev(f"/dev/{device}") is None:
        return f"/dev/{device} is missing or not a block device"
    return _in_use_reason(device)


def kernel_available(device: str | None = None):
    """``(True, "ok")`` if a KernelZram could be used now, else ``(False, reason)``.

    Without ``device``: root and zram's hot_add (a device of our own). With one: root, that
    the device exists and that it is not mounted, swap or held. Touches nothing. Cost: a few
    small /proc and /sys reads.
    """
    if device is not None:
        _check_device_name(device)
    reason = _unavailable_reason(device)
    return (reason is None, reason or "ok")


def hot_add() -> str:
    """Create a new zram device; returns its name (``zramN``). Kernel: hot_add_show."""
    with open(f"{ZRAM_CONTROL}/hot_add") as f:
        return f"zram{int(f.read())}"


def hot_remove(device: str) -> None:
    """Remove a device made by hot_add (reset first if it was initialised). Retries while
    it is briefly busy (a closing opener). Kernel: hot_remove_store."""
    _check_device_name(device)
    num = device[4:]
    deadline = time.monotonic() + 5.0
    while True:
        try:
            fd = os.open(f"{ZRAM_CONTROL}/hot_remove", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, num.encode())
            finally:
                os.close(fd)
            return
        except OSError as e:
            if e.errno == errno.ENODEV:
                return                               # already gone
            if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def kernel_default_algorithm() -> str:
    """The running kernel's default zram compressor: what a fresh device shows in brackets
    in ``comp_algorithm`` (``lzo-rle`` on this machine). Hot-adds a device to read it."""
    dev = hot_add()
    try:
        with open(f"/sys/block/{dev}/comp_algorithm") as f:
            text = f.read()
    finally:
        hot_remove(dev)
    start, end = text.find("["), text.find("]")
    if start < 0 or end < start:
        raise OSError(f"cannot read the default from {dev}/comp_algorithm: {text.strip()!r}")
    return text[start + 1:end]


class KernelZram:
    """The kernel's zram device, driven page by page with direct I/O.

    Use as a context manager::

        with KernelZram(64 << 20) as kz:      # a hot-added device of its own
            kz.write(0, page)
            kz.mm_stat()

    Enter: hot-add a device (or, for a named one: lock, checks, ``reset``), then
    ``comp_algorithm``, ``disksize``, open with ``O_RDWR | O_DIRECT``. Exit: close, ``reset``,
    hot-remove (or unlock a named one), also on error.
    Kernel: drivers/block/zram/zram_drv.c (sysfs attributes and bio paths).
    Cost per write/read: one syscall plus a 4 KiB copy into an aligned buffer.
    """

    def __init__(self, disksize: int, comp_algorithm: str = "lz4", device: str | None = None,
                 lock_timeout: float = 60.0):
        if isinstance(disksize, bool) or not isinstance(disksize, int) or disksize <= 0:
            raise ValueError(f"disksize must be a positive int of bytes, got {disksize!r}")
        if not isinstance(comp_algorithm, str) or not comp_algorithm or \
                any(c.isspace() for c in comp_algorithm):
            raise ValueError(f"comp_algorithm must be an algorithm name, got {comp_algorithm!r}")
        self.named = device is not None          # the caller chose the device
        self.device = _check_device_name(device) if self.named else None
        # The kernel page-aligns disksize (PAGE_ALIGN(memparse(v))).
        self.disksize = -(-disksize // PAGE_SIZE) * PAGE_SIZE
        self.comp_algorithm = comp_algorithm
        self.lock_timeout = float(lock_timeout)
        self._hot_added = False
        self._lock_fd = -1
        self._fd = -1
        self._configured = False     # we reset it once: reset it again on the way out
        self._buf = None

    # ---------------------------------------------------------------- lifecycle
    @property
    def sysdir(self) -> str:
        return f"/sys/block/{self.device}"

    @property
    def devpath(self) -> str:
        return f"/dev/{self.device}"

    @property
    def lock_path(self) -> str:
        return f"/tmp/{self.device}.lock"

    def __enter__(self) -> "KernelZram":
        if not self.named:
            reason = _unavailable_reason(None)
            if reason is not None:
                raise KernelZramUnavailable(reason)
            try:
                self.device = hot_add()
            except OSError as e:
                raise KernelZramUnavailable(f"cannot hot-add a zram device: {e}") from e
            self._hot_added = True
        else:
            self._take_lock()
        try:
            reason = _unavailable_reason(self.device)
            if reason is not None:
                raise KernelZramUnavailable(reason)
            self._reset()
            self._configured = True
            algos = self._read_attr("comp_algorithm").replace("[", " ").replace("]", " ").split()
            if self.comp_algorithm not in algos:
                raise ValueError(f"comp_algorithm {self.comp_algorithm!r} not offered by "
                                 f"{self.device} (has: {', '.join(algos)})")
            self._write_attr("comp_algorithm", self.comp_algorithm)
            self._write_attr("disksize", str(self.disksize))
            self._fd = os.open(self.devpath, os.O_RDWR | os.O_DIRECT | os.O_CLOEXEC)
            # O_DIRECT wants a page-aligned buffer: an anonymous private mmap is one.
            self._buf = mmap.mmap(-1, PAGE_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._teardown()

    def _take_lock(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise KernelZramUnavailable(
                        f"{self.lock_path} still held by another user of {self.device} "
                        f"after {self.lock_timeout:g} s") from None
                time.sleep(0.05)
        self._lock_fd = fd

    def _teardown(self) -> None:
        """Close, reset, unlock; each step runs even if an earlier one failed."""
        err = None
        try:
            if self._buf is not None:
                self._buf.close()
                self._buf = None
            if self._fd >= 0:
                fd, self._fd = self._fd, -1
                os.close(fd)
            if self._configured:
                self._configured = False
                if _unavailable_reason(self.device) is None:
                    self._reset()
        except BaseException as e:          # keep going: the lock must be released
            err = e
        finally:
            if self._hot_added:
                self._hot_added = False
                try:
                    hot_remove(self.device)
                except BaseException as e:
                    err = err or e
            if self._lock_fd >= 0:
                fd, self._lock_fd = self._lock_fd, -1
                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)
        if err is not None:
            raise err

    def _reset(self) -> None:
        """Kernel: reset_store.  Refused (EBUSY) while anyone has the disk open: retry briefly."""
        deadline = time.monotonic() + 5.0
        while True:
            try:
                self._write_attr("reset", "1")
                return
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                if time.monotonic() >= deadline:
                    raise KernelZramUnavailable(
                        f"{self.devpath} is open by another process (reset: EBUSY)") from None
                time.sleep(0.02)

    # ---------------------------------------------------------------- sysfs
    def _read_attr(self, name: str) -> str:
        with open(f"{self.sysdir}/{name}") as f:
            return f.read()

    def _write_attr(self, name: str, value: str) -> None:
        # One unbuffered write() per attribute, so errno comes back from the kernel's store.
        fd = os.open(f"{self.sysdir}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)

    def _need_open(self) -> None:
        if self._fd < 0:
            raise RuntimeError(f"KernelZram({self.device}) is not entered (use 'with')")

    # ---------------------------------------------------------------- data
    @property
    def pages_per_disk(self) -> int:
        """Number of 4 KiB slots (the zram table size)."""
        return self.disksize // PAGE_SIZE

    def _check_index(self, index: int, count: int = 1) -> None:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"index must be a non-negative int, got {index!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive int, got {count!r}")
        if index + count > self.pages_per_disk:
            raise ValueError(f"pages {index}..{index + count - 1} out of range "
                             f"(device has {self.pages_per_disk} pages)")

    def write(self, index: int, page) -> None:
        """Store one whole page at slot ``index``.

        Kernel: zram_bio_write → zram_write_page.  Raises MemoryError when the kernel
        refuses the write (mem_limit; it reports EIO), leaving the old data in place.
        Cost: one 4 KiB copy and one pwrite.
        """
        self._need_open()
        self._check_index(index)
        if len(page) != PAGE_SIZE:
            raise ValueError(f"page must be {PAGE_SIZE} bytes, got {len(page)}")
        buf = self._buf
        buf[:] = page
        try:
            n = os.pwrite(self._fd, buf, index * PAGE_SIZE)
        except OSError as e:
            if e.errno in (errno.EIO, errno.ENOMEM):
                raise MemoryError(f"{self.device} refused write to page {index} "
                                  f"({errno.errorcode.get(e.errno, e.errno)}; "
                                  f"mem_limit reached?)") from e
            raise
        if n != PAGE_SIZE:
            raise OSError(errno.EIO, f"short write to {self.device} page {index}: {n} bytes")

    def read(self, index: int) -> bytes:
        """Read one page back.  Kernel: zram_bio_read → zram_read_page.  Cost: one preadv."""
        self._need_open()
        self._check_index(index)
        n = os.preadv(self._fd, [self._buf], index * PAGE_SIZE)
        if n != PAGE_SIZE:
            raise OSError(errno.EIO, f"short read from {self.device} page {index}: {n} bytes")
        return bytes(self._buf)

    def discard(self, index: int, count: int = 1) -> None:
        """Discard ``count`` pages from ``index``.

        Kernel: zram_bio_discard (zram_free_page per page, notify_free++ per page, even
        for empty slots).  Cost: one BLKDISCARD ioctl.
        """
        self._need_open()
        self._check_index(index, count)
        fcntl.ioctl(self._fd, BLKDISCARD,
                    struct.pack("QQ", index * PAGE_SIZE, count * PAGE_SIZE))

    # ---------------------------------------------------------------- controls
    def compact(self) -> None:
        """Kernel: compact_store → zs_compact.  The pages freed show up in mm_stat[6]."""
        self._need_open()
        self._write_attr("compact", "1")

    def set_mem_limit(self, nbytes: int) -> None:
        """Kernel: mem_limit_store (PAGE_ALIGN(memparse) >> PAGE_SHIFT; 0 = no limit)."""
        self._need_open()
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
            raise ValueError(f"mem_limit must be a non-negative int of bytes, got {nbytes!r}")
        self._write_attr("mem_limit", str(nbytes))

    def reset_mem_used_max(self) -> None:
        """Kernel: mem_used_max_store("0"): max_used_pages = current total pages."""
        self._need_open()
        self._write_attr("mem_used_max", "0")

    # ---------------------------------------------------------------- statistics
    def mm_stat_line(self) -> str:
        """The raw sysfs mm_stat text (with its newline)."""
        return self._read_attr("mm_stat")

    def mm_stat(self) -> tuple:
        """The 9 mm_stat fields as ints, kernel order (orig_data_size … huge_pages_since)."""
        return tuple(int(x) for x in self._read_attr("mm_stat").split())

    def io_stat(self) -> tuple:
        """io_stat: (failed_reads, failed_writes, 0, notify_free)."""
        return tuple(int(x) for x in self._read_attr("io_stat").split())

    def debug_stat(self) -> str:
        """The raw debug_stat text ("version: 1\\n0 <miss_free>\\n")."""
        return self._read_attr("debug_stat")

    def __repr__(self) -> str:
        state = "open" if self._fd >= 0 else "closed"
        return (f"KernelZram({self.disksize}, comp_algorithm={self.comp_algorithm!r}, "
                f"device={self.device!r}) [{state}]")
