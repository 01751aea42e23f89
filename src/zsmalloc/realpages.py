"""Real page data for benchmarks and reports: memory of a child process we start, ELF files
and text on this machine, a saved-pages file format, and swap-like workloads over page lists.

Sources (each returns a list of ``page_size``-byte ``bytes``):

* :func:`child_anon_pages` starts a child Python process, lets it build a realistic heap
  (records, symbol tables, boxed numbers, text, numpy arrays, freed holes, zero, constant
  and random buffers), and reads its *resident* private anonymous pages through
  ``/proc/<pid>/maps``, ``/proc/<pid>/pagemap`` and ``/proc/<pid>/mem``. This is what zram
  holds when it is used as swap. Pages are only ever read from a child this module started;
  never from another process.
* :func:`elf_pages`: pages of shared libraries and executables, in file order (what a
  file-backed zram / tmpfs holding binaries sees).
* :func:`text_pages`: pages of documentation and Python source files.
* :func:`mixed_pages`: about 60 % anon, 25 % ELF, 15 % text, shuffled with the seed.

File-backed pages are cut as the page cache does: each file starts on a page boundary and
its last page is padded with zeros.

Workloads (:func:`workload_ops`, :func:`apply`) turn a page list into operations for a
``zsmalloc.Zram`` (or anything with ``write/read/discard/compact``): a fill, overwrite
waves, swap-in-like discard waves, and idle periods followed by compaction.

Command line: ``zsmalloc pages SOURCE N OUT`` writes N pages to OUT (see :func:`save_pages`)
and prints their lz4 compressed-size distribution.
"""

from __future__ import annotations

import json
import mmap
import os
import random
import select
import statistics
import struct
import subprocess
import sys
import sysconfig
import time

import cramjam

__all__ = ["child_anon_pages", "elf_pages", "text_pages", "mixed_pages", "save_pages",
           "load_pages", "PageFileError", "summarize", "WORKLOADS", "workload_ops", "apply",
           "register"]

_lz4 = cramjam.lz4.compress_block
SYS_PAGE = mmap.PAGESIZE
MAGIC = b"ZSPAGES1"
_HEADER = struct.Struct("<8sIQ")      # magic, page size (u32), count (u64), little-endian
HUGE_4K = 3625                       # zram stores lz4 lengths >= this raw (4 KiB pages, 6.18)
MIX = (("anon", 0.60), ("elf", 0.25), ("text", 0.15))


class PageFileError(ValueError):
    """A saved-pages file that is malformed or does not match what the caller expects."""


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"page count n must be a non-negative int, got {n!r}")
    return n


def _check_page_size(page_size) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 512 \
            or page_size > 1 << 20 or page_size & (page_size - 1):
        raise ValueError(f"page_size must be a power of two from 512 to 1 MiB, got {page_size!r}")
    return page_size


# ---------------------------------------------------------------------------------------
# anonymous memory of a child process
# ---------------------------------------------------------------------------------------

# The child: builds data from argv (seed, budget bytes), prints READY, blocks on stdin, and
# exits without interpreter teardown. Each part grows until the child's RSS has grown by the
# part's share of the budget (RSS is what we read back, so this keeps the mix stable).
_CHILD = r'''
import gc, os, random, sys
seed, budget = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(seed)
PS = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PS
WORDS = ("the of and to in is was that for on are with as his they be at one have this from "
         "or had by hot word but what some we can out other were all there when up use your how "
         "said an each she which do their time if will way about many then them write would "
         "like so these her long make thing see him two has look more day could go come did "
         "number sound no most people my over know water than call first who may down side "
         "been now find any new work part take get place made live where after back little "
         "only round man year came show every good me give our under name very through just "
         "form sentence great think say help low line differ turn cause much mean before move "
         "right boy old too same tell does set three want air well also play small end put "
         "home read hand port large spell add even land here must big high such follow act "
         "why ask men change went light kind off need house picture try us again animal point "
         "mother world near build self earth father head stand own page should country found "
         "answer school grow study still learn plant cover food sun four between state keep "
         "eye never last let thought city tree cross farm hard start might story saw far sea "
         "draw left late run while press close night real life few north open seem together "
         "next white children begin got walk example ease paper group always music those both "
         "mark often letter until mile river car feet care second book carry took science eat "
         "room friend began idea fish mountain stop once base hear horse cut sure watch color "
         "face wood main enough plain girl usual young ready above ever red list though feel "
         "talk bird soon body dog family direct pose leave song measure door product black "
         "short numeral class wind question happen complete ship area half rock order fire "
         "south problem piece told knew pass since top whole king space heard best hour better "
         "true during hundred five remember step early hold west ground interest reach fast "
         "verb sing listen six table travel less morning ten simple several vowel toward war "
         "lay against pattern slow center love person money serve appear road map rain rule "
         "govern pull cold notice voice unit power town fine certain fly fall lead cry dark "
         "machine note wait plan figure star box noun field rest correct able pound done "
         "beauty drive stood contain front teach week final gave green oh quick develop ocean "
         "warm free minute strong special mind behind clear tail produce fact street inch "
         "multiply nothing course stay wheel full force blue object decide surface deep moon "
         "island foot system busy test record boat common gold possible plane stead dry wonder "
         "laugh thousand ago ran check game shape equate miss brought heat snow tire bring yes "
         "distant fill east paint language among").split()
def word():
    return WORDS[min(len(WORDS) - 1, int(rng.paretovariate(1.1)) - 1)] if rng.random() < 0.7 \
        else rng.choice(WORDS)
def sentence():
    s = " ".join(word() for _ in range(rng.randint(4, 18)))
    return s[0].upper() + s[1:] + rng.choice(".....?!")
keep = []
def grow(share, make):
    start, goal = rss(), budget * share
    while rss() - start < goal:
        keep.append(make())
def records():
    out = []
    for i in range(500):
        first, last = rng.choice(WORDS).title(), rng.choice(WORDS).title()
        out.append({"id": rng.randrange(1 << 31), "name": f"{first} {last}",
                    "email": f"{first.lower()}.{last.lower()}{rng.randrange(100)}@example.org",
                    "age": rng.randint(18, 90), "score": round(rng.gauss(50, 15), 2),
                    "active": rng.random() < 0.8, "tags": [word() for _ in range(rng.randint(0, 5))],
                    "created": f"20{rng.randint(10, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"})
    return out
def symbols():
    return {f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{rng.randrange(10000)}": rng.randrange(1 << 20)
            for _ in range(2000)}
def numbers():
    k = rng.random()
    if k < 0.4:
        return [rng.gauss(0, 1) for _ in range(4000)]
    if k < 0.7:
        x = rng.randrange(1 << 20)
        return list(range(x, x + 4000))
    return tuple((rng.randrange(1000), rng.random(), word()) for _ in range(1000))
def text():
    return "\n".join(" ".join(sentence() for _ in range(rng.randint(2, 8))) for _ in range(200))
def zeros():
    b = bytearray(1 << 18)
    for i in range(0, len(b), PS):   # touch every page: only resident pages are read back
        b[i] = 0
    return b
def const():
    return bytearray([rng.choice((0xff, 0x01, 0x20, 0xaa))]) * (1 << 17)
def noise():
    return bytearray(rng.randbytes(1 << 16))
try:
    import numpy as np
    g = np.random.default_rng(seed)
    def arrays():
        k, n = g.integers(8), 1 << 15
        if k == 0: return np.arange(n, dtype=np.int32) * int(g.integers(1, 9))
        if k == 1: return g.integers(0, 1000, n, dtype=np.int64)
        if k == 2: return g.standard_normal(n)
        if k == 3: return np.sin(np.linspace(0, float(g.integers(1, 200)), n)).astype(np.float32)
        if k == 4:
            a = np.zeros(n); idx = g.integers(0, n, n // 20); a[idx] = g.standard_normal(len(idx)); return a
        if k == 5: return np.full(n, int(g.integers(1, 1 << 16)), dtype=np.int64)
        if k == 6: return np.cumsum(g.integers(0, 5, n, dtype=np.int64))
        # an image: smooth gradients with a little sensor noise
        y, x = np.mgrid[0:128, 0:n // 128]
        img = 128 + 60 * np.sin(x / float(g.integers(5, 60))) + 40 * np.cos(y / float(g.integers(5, 60)))
        return np.clip(img + g.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
except ImportError:
    import array
    def arrays():
        k, n = rng.randrange(4), 1 << 15
        if k == 0: return array.array("i", range(n))
        if k == 1: return array.array("q", (rng.randrange(1000) for _ in range(n)))
        if k == 2: return array.array("d", (rng.gauss(0, 1) for _ in range(n)))
        return array.array("q", [rng.randrange(1 << 16)]) * n
for share, make in ((0.23, records), (0.10, symbols), (0.12, numbers), (0.10, text),
                    (0.28, arrays), (0.10, zeros), (0.04, const), (0.03, noise)):
    grow(share, make)
# free a third of the Python objects: holes with stale data, as in a long-running program
for i in range(0, len(keep), 3):
    if isinstance(keep[i], (list, dict, tuple, str)):
        keep[i] = None
gc.collect()
sys.stdout.write("READY\n"); sys.stdout.flush()
sys.stdin.read()
os._exit(0)
'''

_CHILD_TIMEOUT = 120.0          # seconds for the child to build its heap
_CHILD_BUDGET = 32 << 20        # bytes of data each child builds (one size: a stable mix)


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
        self.budget = _CHILD_BUDGET if budget is None else int(budget)
        self.proc = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def __enter__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _CHILD, str(self.seed), str(self.budget)],
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


def child_anon_pages(n, page_size: int = 4096, seed: int = 0, *, stats: dict | None = None) -> list:
    """Up to ``n`` resident anonymous pages of child Python processes we start.

    Each child builds 32 MiB of data (about 11000 resident pages with the interpreter's
    own); when one child has fewer resident pages than still wanted, more are started with
    derived seeds. From a child with more than wanted, a seeded sample is taken (address
    order kept), so small requests get the same mix as large ones. The page contents hold addresses, so they
    differ from run to run; the mix does not. ``stats`` (a dict), if given, receives
    ``children`` (their pids, all reaped on return), ``resident`` and ``read_failed``.
    Cost: about 1.5 s per child (32 MiB).
    """
    _check_n(n)
    _check_page_size(page_size)
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
        if not got and k >= 3:
            raise RuntimeError(f"no anonymous pages could be read from {k} child processes")
    return out


# ---------------------------------------------------------------------------------------
# file-backed pages: ELF and text
# ---------------------------------------------------------------------------------------

ELF_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/bin")
_NOT_TEXT = (".gz", ".bz2", ".xz", ".zst", ".zip", ".png", ".gif", ".jpg", ".pdf", ".ico", ".svg")


def _interleave(iters):
    """Round-robin over several iterables, lazily (so a small request sees every source)."""
    iters = [iter(i) for i in iters]
    while iters:
        for it in list(iters):
            try:
                yield next(it)
            except StopIteration:
                iters.remove(it)


def _walk(top, keep, skip_dirs=()):
    """Paths under ``top`` whose name passes ``keep``, depth first in sorted order."""
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except OSError:
        return
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                if e.name not in skip_dirs:
                    yield from _walk(e.path, keep, skip_dirs)
            elif keep(e.name):
                yield e.path
        except OSError:
            continue


def _listdir(top, keep):
    try:
        names = sorted(os.listdir(top))
    except OSError:
        return []
    return [os.path.join(top, n) for n in names if keep(n)]


def _checked(paths, magic_ok):
    """Regular non-empty files among ``paths`` whose first block passes ``magic_ok``, each
    file once (symlinks and hard links to one inode count once)."""
    seen = set()
    for p in paths:
        try:
            st = os.stat(p)
            if not (st.st_mode & 0o170000 == 0o100000) or st.st_size == 0:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            with open(p, "rb") as f:
                head = f.read(4096)
        except OSError:
            continue
        if magic_ok(head):
            yield p


def _is_elf(head) -> bool:
    return head[:4] == b"\x7fELF"


def _is_text(head) -> bool:
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start > len(head) - 4     # a multi-byte character cut at the block end
    return True


def _file_pages(files, n: int, page_size: int) -> list:
    """Up to ``n`` pages from ``files`` in order, page-cache style (last page zero-padded).

    So that a request sees many files, each file gives at most ``ceil(n / 32)`` pages
    (at least 8), spread evenly over the file and kept in file order.
    """
    cap = max(8, -(-n // 32))
    out: list = []
    for path in files:
        if len(out) >= n:
            break
        try:
            size = os.path.getsize(path)
            npages = -(-size // page_size)
            take = min(npages, cap, n - len(out))
            idx = sorted({i * npages // take for i in range(take)}) if take else []
            with open(path, "rb") as f:
                for i in idx:
                    f.seek(i * page_size)
                    pg = f.read(page_size)
                    if not pg:
                        continue
                    out.append(pg + bytes(page_size - len(pg)) if len(pg) < page_size else pg)
        except OSError:
            continue
    return out


def elf_files():
    """ELF shared libraries and executables on this machine, interleaved by directory
    (a lazy iterator; each file checked for the ELF magic as it is reached)."""
    lib = lambda n: ".so" in n
    groups = [_listdir(d, lib if "lib" in d else (lambda n: True)) for d in ELF_DIRS]
    return _checked(_interleave(groups), _is_elf)


def text_files():
    """Text files: /usr/share/doc (not compressed ones), the Python standard library's
    *.py (not site-packages) and /usr/share/common-licenses, interleaved; lazy."""
    text = lambda n: not n.endswith(_NOT_TEXT)
    stdlib = sysconfig.get_paths().get("stdlib", "")
    groups = [_walk("/usr/share/doc", text),
              _walk(stdlib, lambda n: n.endswith(".py"), ("site-packages", "__pycache__"))
              if stdlib else [],
              _walk("/usr/share/common-licenses", text)]
    return _checked(_interleave(groups), _is_text)


def elf_pages(n, page_size: int = 4096) -> list:
    """Up to ``n`` pages of ELF files here (libraries in /usr/lib/<arch>, /usr/bin), file order.

    Cost: one seek+read per page, plus listing the directories (~50 ms).
    """
    _check_n(n)
    _check_page_size(page_size)
    return _file_pages(elf_files(), n, page_size) if n else []


def text_pages(n, page_size: int = 4096) -> list:
    """Up to ``n`` pages of text (/usr/share/doc, stdlib *.py, licences), last page zero-padded."""
    _check_n(n)
    _check_page_size(page_size)
    return _file_pages(text_files(), n, page_size) if n else []


def mixed_pages(n, page_size: int = 4096, seed: int = 0, *, stats: dict | None = None) -> list:
    """``n`` pages: about 60 % anon, 25 % ELF, 15 % text, shuffled with ``seed``.

    When the machine has too few ELF or text pages, anonymous pages make up the rest.
    ``stats`` (a dict), if given, receives the count per source, ``sources`` (each page's
    source, in the returned order) and the child statistics. The order of sources depends
    only on ``n`` and ``seed``.
    """
    _check_n(n)
    _check_page_size(page_size)
    n_elf = round(n * MIX[1][1])
    n_text = round(n * MIX[2][1])
    elf = elf_pages(n_elf, page_size)
    text = text_pages(n_text, page_size)
    child = {}
    anon = child_anon_pages(n - len(elf) - len(text), page_size, seed, stats=child)
    tagged = [("anon", p) for p in anon] + [("elf", p) for p in elf] + [("text", p) for p in text]
    random.Random(seed).shuffle(tagged)
    if stats is not None:
        stats.update(child)
        stats.update(anon=len(anon), elf=len(elf), text=len(text),
                     sources=[t for t, _ in tagged])
    return [p for _, p in tagged]


# ---------------------------------------------------------------------------------------
# saved pages
# ---------------------------------------------------------------------------------------

def save_pages(pages, path) -> int:
    """Write ``pages`` (all the same length) to ``path``; returns the count.

    Format: ``b"ZSPAGES1"``, page size (u32 LE), count (u64 LE), then the raw pages.
    Validates every page before creating the file (a bad list leaves nothing behind), and
    writes through a temporary file renamed into place.
    """
    pages = list(pages)
    if not pages:
        raise ValueError("no pages to save")
    P = len(pages[0])
    if not 0 < P < 1 << 32:
        raise ValueError(f"page 0 has length {P}; pages must be 1 .. 2**32-1 bytes")
    for i, pg in enumerate(pages):
        if len(pg) != P:
            raise ValueError(f"page {i} is {len(pg)} bytes, page 0 is {P}: all pages must "
                             f"have the same size")
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(_HEADER.pack(MAGIC, P, len(pages)))
            for pg in pages:
                f.write(pg)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return len(pages)


def load_pages(path, page_size: int | None = 4096) -> list:
    """The pages saved in ``path`` by :func:`save_pages`.

    ``page_size=None`` accepts the file's own page size. PageFileError (a ValueError) names
    the problem: a bad magic, a truncated header or body, trailing bytes, or a page size
    other than ``page_size``.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise PageFileError(f"{path}: bad magic {data[:len(MAGIC)]!r}, expected {MAGIC!r}")
    if len(data) < _HEADER.size:
        raise PageFileError(f"{path}: truncated header ({len(data)} bytes, need {_HEADER.size})")
    _, P, count = _HEADER.unpack_from(data)
    if P == 0:
        raise PageFileError(f"{path}: page size 0 in the header")
    if page_size is not None and P != page_size:
        raise PageFileError(f"{path}: wrong page size {P}, expected {page_size}")
    body = len(data) - _HEADER.size
    if body < count * P:
        raise PageFileError(f"{path}: truncated: header says {count} pages of {P} bytes "
                            f"({count * P} bytes), file has {body} bytes of pages")
    if body > count * P:
        raise PageFileError(f"{path}: {body - count * P} trailing bytes after {count} pages")
    mv = memoryview(data)
    return [bytes(mv[o:o + P]) for o in range(_HEADER.size, len(data), P)]


# ---------------------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------------------

def _same_filled(pg) -> bool:
    w = pg[:8]
    return w == pg[-8:] and w * (len(pg) // 8) == pg


def summarize(pages, huge_threshold: int | None = None) -> dict:
    """Count, same-filled pages and the lz4 size distribution of the other pages.

    Sizes are cramjam's lz4 block lengths (zram's LZ4_compress_fast gives the same); like
    zram, same-filled pages are not compressed and not in the distribution. ``huge`` counts
    lengths >= ``huge_threshold`` (default: 3625 scaled to the page size, zram's raw cut).
    """
    pages = list(pages)
    P = len(pages[0]) if pages else 4096
    if huge_threshold is None:
        if P == 4096:
            huge_threshold = HUGE_4K
        else:
            from .core.sizeclass import huge_class_size
            from .config import PoolConfig
            try:
                huge_threshold = huge_class_size(PoolConfig(page_size=P))
            except ValueError:
                huge_threshold = P * HUGE_4K // 4096
    same = 0
    zero = 0
    sizes = []
    for pg in pages:
        if _same_filled(pg):
            same += 1
            zero += not any(pg[:8])
        else:
            sizes.append(len(_lz4(pg, store_size=False)))
    sizes.sort()
    out = {"pages": len(pages), "page_size": P, "same_filled": same, "zero_filled": zero,
           "compressed": len(sizes), "huge": sum(1 for s in sizes if s >= huge_threshold),
           "huge_threshold": huge_threshold}
    if sizes:
        q = lambda f: sizes[min(len(sizes) - 1, int(f * len(sizes)))]
        out.update(min=sizes[0], p10=q(0.10), median=int(statistics.median(sizes)),
                   mean=round(statistics.fmean(sizes), 1), p90=q(0.90), max=sizes[-1],
                   ratio=round(len(sizes) * P / sum(sizes), 2))
    return out


def format_summary(s: dict) -> str:
    lines = [f"{s['pages']} pages of {s['page_size']} B: {s['same_filled']} same-filled "
             f"({s['zero_filled']} zero), {s['compressed']} compressed, {s['huge']} huge "
             f"(lz4 >= {s['huge_threshold']})"]
    if s["compressed"]:
        lines.append(f"lz4 size of the compressed pages: min {s['min']}  p10 {s['p10']}  "
                     f"median {s['median']}  mean {s['mean']}  p90 {s['p90']}  max {s['max']}  "
                     f"(ratio {s['ratio']})")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# workloads
# ---------------------------------------------------------------------------------------

WORKLOADS = ("fill", "overwrite-waves", "discard-waves", "idle-compact")


def workload_ops(pages, kind: str, seed: int = 0, nr_slots: int | None = None, *, waves: int = 4):
    """Operations over ``pages`` for a Zram of at least ``nr_slots`` pages (a generator).

    Yields ``("write", index, page_idx)`` (write ``pages[page_idx]`` at ``index``),
    ``("read", index)``, ``("discard", index, count)``, ``("compact",)`` and ``("idle",)``.
    Every kind starts by filling slots ``0 .. nr_slots-1`` (pages cycled if fewer); then

    * ``fill``: nothing more;
    * ``overwrite-waves``: ``waves`` times, 20-50 % of the slots rewritten with other pages;
    * ``discard-waves`` (swap-in like): ``waves`` times, runs of 1-32 slots are read and
      then discarded (20-40 % of the slots), then some of the free slots are written again;
    * ``idle-compact``: ``waves`` times, scattered discards and overwrites, an idle period
      (no writes), then a compaction.

    ``nr_slots`` defaults to ``len(pages)``. Deterministic for a given seed and page count.
    """
    npages = len(pages)
    if npages == 0:
        raise ValueError("workload needs at least one page")
    if kind not in WORKLOADS:
        raise ValueError(f"unknown workload kind {kind!r}; kinds: {', '.join(WORKLOADS)}")
    if nr_slots is None:
        nr_slots = npages
    if isinstance(nr_slots, bool) or not isinstance(nr_slots, int) or nr_slots < 1:
        raise ValueError(f"nr_slots must be a positive int, got {nr_slots!r}")
    if isinstance(waves, bool) or not isinstance(waves, int) or waves < 0:
        raise ValueError(f"waves must be a non-negative int, got {waves!r}")
    return _ops(npages, kind, seed, nr_slots, waves)


def swap_in_wave(rng, nr_slots: int, used: set):
    """A swap-in wave: runs of 1-32 slots are read, then discarded, until 20-40 % of the
    slots are freed. Yields ("read", i) and ("discard", start, count); updates ``used``."""
    goal = int(nr_slots * rng.uniform(0.2, 0.4))
    freed = 0
    for _ in range(4 * nr_slots):
        if freed >= goal:
            break
        start = rng.randrange(nr_slots)
        count = min(rng.randint(1, 32), nr_slots - start)
        run = [i for i in range(start, start + count) if i in used]
        if not run:
            continue
        for i in run:               # swap-in reads the pages, then frees the slots
            yield ("read", i)
        yield ("discard", start, count)
        used.difference_update(run)
        freed += len(run)


def _ops(npages, kind, seed, nr_slots, waves):
    rng = random.Random(seed)
    for i in range(nr_slots):
        yield ("write", i, i % npages)
    if kind == "fill":
        return
    used = set(range(nr_slots))
    for _ in range(waves):
        if kind == "overwrite-waves":
            for i in rng.sample(range(nr_slots), int(nr_slots * rng.uniform(0.2, 0.5))):
                yield ("write", i, rng.randrange(npages))
        elif kind == "discard-waves":
            yield from swap_in_wave(rng, nr_slots, used)
            free = sorted(set(range(nr_slots)) - used)
            for i in rng.sample(free, int(len(free) * rng.uniform(0.3, 0.8))):
                yield ("write", i, rng.randrange(npages))
                used.add(i)
        else:   # idle-compact
            for i in rng.sample(range(nr_slots), int(nr_slots * rng.uniform(0.2, 0.4))):
                if rng.random() < 0.7:
                    yield ("discard", i, 1)
                else:
                    yield ("write", i, rng.randrange(npages))
            for _ in range(rng.randint(1, 3)):
                yield ("idle",)
            yield ("compact",)


def apply(zram, pages, ops, *, on_idle=None) -> dict:
    """Run ``ops`` (from :func:`workload_ops`) on ``zram``; returns counts per operation.

    ``("idle",)`` calls ``on_idle()`` if given (e.g. a sleep, or a mm_stat sample) and
    otherwise does nothing. ``read`` operations are checked against what was last written
    there (zeros after a discard); the result has ``read_mismatches`` and
    ``pages_compacted`` (pages freed by the compactions).
    """
    counts = {"write": 0, "read": 0, "discard": 0, "compact": 0, "idle": 0,
              "read_mismatches": 0, "pages_compacted": 0}
    where: dict = {}          # index -> page_idx last written there
    zero = None
    for op in ops:
        name = op[0]
        if name == "write":
            _, i, p = op
            zram.write(i, pages[p])
            where[i] = p
        elif name == "read":
            i = op[1]
            got = zram.read(i)
            p = where.get(i)
            if p is None:
                if zero is None:
                    zero = bytes(len(got))
                ok = got == zero
            else:
                ok = got == pages[p]
            counts["read_mismatches"] += not ok
        elif name == "discard":
            _, i, c = op
            zram.discard(i, c)
            for j in range(i, i + c):
                where.pop(j, None)
        elif name == "compact":
            counts["pages_compacted"] += zram.compact() or 0
        elif name == "idle":
            if on_idle is not None:
                on_idle()
        else:
            raise ValueError(f"unknown operation {op!r}")
        counts[name] += 1
    return counts


# ---------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------

SOURCES = ("anon", "elf", "text", "mixed")


def cmd_pages(args) -> int:
    """Read N pages from SOURCE, save them to OUT, print the compressed-size distribution."""
    P = args._config.page_size
    n = args.n
    if n < 1:
        raise ValueError(f"N {n} must be at least 1")
    t0 = time.perf_counter()
    extra: dict = {}
    if args.source == "anon":
        pages = child_anon_pages(n, P, args.seed, stats=extra)
    elif args.source == "mixed":
        pages = mixed_pages(n, P, args.seed, stats=extra)
    elif args.source == "elf":
        pages = elf_pages(n, P)
    else:
        pages = text_pages(n, P)
    t_read = time.perf_counter() - t0
    if not pages:
        raise ValueError(f"no {args.source} pages could be read on this machine")
    save_pages(pages, args.out)
    s = summarize(pages)
    if args.json:
        print(json.dumps({"source": args.source, "out": args.out, "seconds": round(t_read, 2),
                          **{k: v for k, v in extra.items() if k not in ("children", "sources")}, **s}, indent=1))
        return 0
    short = f" (only {len(pages)} of {n} available)" if len(pages) < n else ""
    print(f"# {args.source}: wrote {len(pages)} pages to {args.out}{short}, read in {t_read:.1f}s")
    if "resident" in extra:
        print(f"# child processes: {len(extra['children'])}, resident anon pages "
              f"{extra['resident']}, failed reads {extra['read_failed']}")
    if args.source == "mixed":
        print(f"# mix: anon {extra['anon']}, elf {extra['elf']}, text {extra['text']}")
    print(format_summary(s))
    return 0


def register(sub, add_config_args, config_fn) -> None:
    p = sub.add_parser("pages", help="save real pages (child anon memory, ELF, text) to a file")
    p.add_argument("source", choices=SOURCES, help="anon, elf, text or mixed (60/25/15)")
    p.add_argument("n", type=int, help="number of pages")
    p.add_argument("out", help="output file (ZSPAGES1 format)")
    add_config_args(p)
    p.add_argument("--seed", type=int, default=0, help="child heap and shuffle seed (default 0)")
    p.add_argument("--json", action="store_true", help="machine-readable summary")

    def run(args):
        args._config = config_fn(args)
        return cmd_pages(args)
    p.set_defaults(func=run)
