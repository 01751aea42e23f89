"""Anonymous memory of child processes we start: what zram holds when it is swap.

:func:`child_anon_pages` starts child Python processes running :mod:`.heap` (a realistic
heap: records, symbol tables, boxed numbers, text, numpy arrays, freed holes, zero,
constant and random buffers) and reads their *resident* private anonymous pages through
``/proc/<pid>/maps``, ``/proc/<pid>/pagemap`` and ``/proc/<pid>/mem``. Pages are only ever
read from a child this module started; never from another process.
"""

from __future__ import annotations

import os
import random
import select
import struct
import subprocess
import sys

from .common import SYS_PAGE, check_n, check_page_size

__all__ = ["ChildHeap", "child_anon_pages", "CHILD_BUDGET"]

# run by path with -I (see heap.py); not imported here, so `python -m` of it stays clean
_HEAP_PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "heap.py")
_CHILD_TIMEOUT = 120.0          # seconds for the child to build its heap
CHILD_BUDGET = 32 << 20         # bytes of data each child builds (one size: a stable mix)


def _anon_regions(pid: int):
    """(start, end) of the private anonymous read-write mappings of ``pid`` ([heap] too).

    Kernel: show_map_vma in fs/proc/task_mmu.c prints one line per VMA."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            path = parts[5].strip() if len(parts) > 5 else ""
            # "[anon:name]" is an anonymous mapping named with PR_SET_VMA_ANON_NAME
            if parts[1] != "rw-p" or not (path in ("", "[heap]") or path.startswith("[anon:")):
                continue
            lo, hi = parts[0].split("-")
            out.append((int(lo, 16), int(hi, 16)))
    return out


class ChildHeap:
    """A child Python process that builds a realistic heap and waits; read its pages.

    ``with ChildHeap(seed, budget) as c: c.resident_pages(page_size); c.read(addrs, page_size)``.
    The child is started in ``__enter__`` (returns once it has built its data) and ended and
    reaped in ``__exit__``. Cost: about 0.3 s plus 1 s per 30 MiB of budget.
    """

    def __init__(self, seed: int = 0, budget: int | None = None):
        self.seed = int(seed)
        self.budget = CHILD_BUDGET if budget is None else int(budget)
        self.proc = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def __enter__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-I", _HEAP_PROGRAM, str(self.seed), str(self.budget)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            r, _, _ = select.select([self.proc.stdout], [], [], _CHILD_TIMEOUT)
            line = self.proc.stdout.readline() if r else b""
            if line != b"READY\n":
                err = b""
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read()
                raise RuntimeError(f"child heap (seed {self.seed}) did not get ready: "
                                   f"{err.decode(errors='replace').strip()[-500:] or 'timeout'}")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """End the child (EOF on stdin, then SIGKILL if it lingers) and reap it."""
        p = self.proc
        if p is None or p.returncode is not None:
            return
        try:
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()

    def resident_pages(self, page_size: int = 4096) -> list:
        """Addresses of ``page_size`` blocks whose system pages are all resident (or swapped).

        Reads /proc/<pid>/pagemap (bit 63 present, bit 62 swapped); untouched pages are
        left out, as reading them would only give the shared zero page.
        """
        if page_size % SYS_PAGE:
            raise ValueError(f"page_size {page_size} is not a multiple of the system page "
                             f"size {SYS_PAGE}")
        k = page_size // SYS_PAGE
        out = []
        fd = os.open(f"/proc/{self.pid}/pagemap", os.O_RDONLY)
        try:
            for lo, hi in _anon_regions(self.pid):
                lo = -(-lo // page_size) * page_size
                hi = hi // page_size * page_size
                if hi <= lo:
                    continue
                n = (hi - lo) // SYS_PAGE
                raw = os.pread(fd, 8 * n, lo // SYS_PAGE * 8)
                ents = struct.unpack(f"<{len(raw) // 8}Q", raw)
                for b in range(0, len(ents) - k + 1, k):
                    if all(e >> 62 for e in ents[b:b + k]):
                        out.append(lo + b * SYS_PAGE)
        finally:
            os.close(fd)
        return out

    def read(self, addrs, page_size: int = 4096, stats: dict | None = None) -> list:
        """The pages at ``addrs`` (ascending), skipping those that fail to read.

        Contiguous addresses are read with one pread of /proc/<pid>/mem; a run that fails is
        retried page by page.
        """
        pages = []
        failed = 0
        fd = os.open(f"/proc/{self.pid}/mem", os.O_RDONLY)
        try:
            i, n = 0, len(addrs)
            while i < n:
                j = i + 1
                while j < n and j - i < 256 and addrs[j] == addrs[j - 1] + page_size:
                    j += 1
                try:
                    buf = os.pread(fd, (j - i) * page_size, addrs[i])
                except OSError:
                    buf = b""
                if len(buf) == (j - i) * page_size:
                    pages.extend(buf[o:o + page_size] for o in range(0, len(buf), page_size))
                else:
                    for a in addrs[i:j]:
                        try:
                            pg = os.pread(fd, page_size, a)
                        except OSError:
                            pg = b""
                        if len(pg) == page_size:
                            pages.append(pg)
                        else:
                            failed += 1
                i = j
        finally:
            os.close(fd)
        if stats is not None:
            stats["read_failed"] = stats.get("read_failed", 0) + failed
        return pages


def child_anon_pages(n, page_size: int = 4096, seed: int = 0, *, stats: dict | None = None,
                     on_child=None) -> list:
    """Up to ``n`` resident anonymous pages of child Python processes we start.

    Each child builds 32 MiB of data (about 11000 resident pages with the interpreter's
    own); when one child has fewer resident pages than still wanted, more are started with
    derived seeds. From a child with more than wanted, a seeded sample is taken (address
    order kept), so small requests get the same mix as large ones. The page contents hold addresses, so they
    differ from run to run; the mix does not. ``stats`` (a dict), if given, receives
    ``children`` (their pids, all reaped on return), ``resident`` and ``read_failed``.
    ``on_child(pages_so_far, n)`` is called after each child (progress for long requests).
    Cost: about 1.5 s per child (32 MiB).
    """
    check_n(n)
    check_page_size(page_size)
    if page_size % SYS_PAGE:
        raise ValueError(f"page_size {page_size} is not a multiple of the system page size {SYS_PAGE}")
    if stats is None:
        stats = {}
    stats.setdefault("children", [])
    stats.setdefault("resident", 0)
    stats.setdefault("read_failed", 0)
    out: list = []
    k = 0
    while len(out) < n:
        want = n - len(out)
        cseed = seed + k * 1_000_003
        with ChildHeap(cseed) as c:
            stats["children"].append(c.pid)
            addrs = c.resident_pages(page_size)
            stats["resident"] += len(addrs)
            if len(addrs) > want:
                rng = random.Random(cseed)
                addrs = [addrs[i] for i in sorted(rng.sample(range(len(addrs)), want))]
            got = c.read(addrs, page_size, stats)
        out.extend(got)
        k += 1
        if on_child is not None:
            on_child(len(out), n)
        if not got and k >= 3:
            raise RuntimeError(f"no anonymous pages could be read from {k} child processes")
    return out
