"""Thin readers of a live process's memory through /proc: smaps, pagemap, mem, kpageflags.

Everything that opens a file under /proc for the estimate lives here; the decisions about
what the bits mean live in :mod:`zsmalloc.estimate.scan`. Kernel: fs/proc/task_mmu.c
(show_smap, pagemap_read, pte_to_pagemap_entry), fs/proc/base.c (mem_rw),
fs/proc/page.c (kpageflags_read).

Errors: a process that is gone raises :class:`ProcessGone`; one we may not read raises
:class:`ProcessAccessError`. Both are ``ValueError`` subclasses with a one-line message
naming the pid, so front-ends print them as they are.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import re
import select
import struct
from array import array
from dataclasses import dataclass, field

SYS_PAGE = mmap.PAGESIZE

# pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst)
PM_PFN_MASK = (1 << 55) - 1
PM_MMAP_EXCLUSIVE = 1 << 56
PM_FILE = 1 << 61          # file page or shared anon (shmem)
PM_SWAP = 1 << 62
PM_PRESENT = 1 << 63
SWP_TYPE_BITS = 5          # a swapped entry: bits 0-4 swap type, 5-54 offset

# /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h)
KPF_COMPOUND_HEAD = 1 << 15
KPF_COMPOUND_TAIL = 1 << 16
KPF_THP = 1 << 22
KPF_ZERO_PAGE = 1 << 24


class ProcessGone(ValueError):
    """The process does not exist (any more)."""


class ProcessAccessError(ValueError):
    """The process exists but we may not read its memory."""


@dataclass
class Vma:
    """One mapping of /proc/PID/smaps. Kernel: show_smap."""

    start: int
    end: int
    perms: str
    path: str
    vmflags: frozenset = field(default_factory=frozenset)
    thp_eligible: bool = False
    anon_huge_kb: int = 0

    @property
    def private(self) -> bool:
        return self.perms[3:4] == "p"

    @property
    def pages(self) -> int:
        return (self.end - self.start) // SYS_PAGE


_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+ ?(.*)$")


def parse_smaps(text: str) -> list[Vma]:
    """The mappings in a /proc/PID/smaps text, in address order."""
    out: list[Vma] = []
    cur = None
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            cur = Vma(int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4).strip())
            out.append(cur)
        elif cur is None:
            continue
        elif line.startswith("VmFlags:"):
            cur.vmflags = frozenset(line.split()[1:])
        elif line.startswith("THPeligible:"):
            cur.thp_eligible = line.split()[1] == "1"
        elif line.startswith("AnonHugePages:"):
            cur.anon_huge_kb = int(line.split()[1])
    return out


def _proc_error(pid: int, what: str, e: OSError) -> ValueError:
    if e.errno in (errno.ENOENT, errno.ESRCH):
        return ProcessGone(f"process {pid} does not exist (or exited)")
    if e.errno in (errno.EACCES, errno.EPERM):
        return ProcessAccessError(f"no permission to read {what} of process {pid} "
                                  f"(run as root or as the process's owner)")
    return ProcessAccessError(f"cannot read {what} of process {pid}: {e.strerror or e}")


def read_text(pid: int, name: str) -> str:
    try:
        with open(f"/proc/{pid}/{name}") as f:
            return f.read()
    except OSError as e:
        raise _proc_error(pid, f"/proc/{pid}/{name}", e) from None


def comm(pid: int) -> str:
    try:
        return read_text(pid, "comm").strip()
    except ValueError:
        return "?"


def status_kb(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/PID/status (``RssAnon``, ``VmRSS`` ...); 0 if absent."""
    for line in read_text(pid, "status").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def state(pid: int) -> str:
    """The one-letter scheduler state of /proc/PID/stat (after the comm in parentheses)."""
    text = read_text(pid, "stat")
    return text[text.rindex(")") + 2]


class ProcessMemory:
    """Open handles on one process: pidfd, pagemap and mem. Use as a context manager.

    The files are opened once, so a pid that is reused after the process exits can never
    be read by mistake: reads of an exited process return nothing, and :meth:`alive`
    (the pidfd) says so.
    """

    def __init__(self, pid: int):
        self.pid = pid
        self.pidfd = -1
        self.pagemap_fd = -1
        self.mem_fd = -1

    def __enter__(self) -> "ProcessMemory":
        pid = self.pid
        try:
            self.pidfd = os.pidfd_open(pid)
        except OSError as e:
            raise _proc_error(pid, "the pid", e) from None
        try:
            self.pagemap_fd = self._open("pagemap")
            self.mem_fd = self._open("mem")
        except BaseException:
            self.close()
            raise
        return self

    def _open(self, name: str) -> int:
        try:
            return os.open(f"/proc/{self.pid}/{name}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise _proc_error(self.pid, f"/proc/{self.pid}/{name}", e) from None

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for name in ("mem_fd", "pagemap_fd", "pidfd"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                os.close(fd)

    def alive(self) -> bool:
        """False once the process has exited (its pidfd turns readable)."""
        r, _, _ = select.select([self.pidfd], [], [], 0)
        return not r

    def gone(self) -> ProcessGone:
        return ProcessGone(f"process {self.pid} exited during the scan")

    def smaps(self) -> list[Vma]:
        return parse_smaps(read_text(self.pid, "smaps"))

    def pagemap(self, start: int, npages: int) -> array:
        """``npages`` pagemap entries from address ``start`` (fewer if the process exited)."""
        out = array("Q")
        try:
            raw = os.pread(self.pagemap_fd, 8 * npages, start // SYS_PAGE * 8)
        except OSError as e:
            if e.errno == errno.ESRCH:
                return out
            raise _proc_error(self.pid, "the pagemap", e) from None
        out.frombytes(raw[:len(raw) // 8 * 8])
        return out

    def read_into(self, buf, addr: int) -> int:
        """Read ``len(buf)`` bytes of the process at ``addr`` into ``buf``; bytes read
        (0 for an unreadable range). Kernel: mem_rw → access_remote_vm."""
        try:
            return os.preadv(self.mem_fd, [buf], addr)
        except OSError:
            return 0


class KpageFlags:
    """Reader of /proc/kpageflags (root only): which frames are parts of large folios."""

    def __init__(self):
        self.fd = -1
        try:
            self.fd = os.open("/proc/kpageflags", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.fd = -1

    @property
    def available(self) -> bool:
        return self.fd >= 0

    def flags(self, pfns) -> list:
        """The flags word of each pfn (0 where unreadable)."""
        out = []
        for pfn in pfns:
            try:
                raw = os.pread(self.fd, 8, pfn * 8)
            except OSError:
                raw = b""
            out.append(struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0)
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def zero_pfn() -> int:
    """The frame number of the kernel's shared zero page (0 when pfns are hidden: not root).

    Found by reading a fresh private anonymous page of our own, which maps the zero page,
    and looking it up in /proc/self/pagemap.
    """
    m = mmap.mmap(-1, SYS_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        m[0]          # a read fault maps the shared zero page
        view = ctypes.c_char.from_buffer(m)
        addr = ctypes.addressof(view)
        del view      # the mmap cannot close while a view exports it
        try:
            with open("/proc/self/pagemap", "rb") as f:
                f.seek(addr // SYS_PAGE * 8)
                e = struct.unpack("<Q", f.read(8))[0]
        except OSError:
            return 0
        return e & PM_PFN_MASK if e & PM_PRESENT else 0
    finally:
        m.close()
