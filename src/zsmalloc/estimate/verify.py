"""``zsmalloc estimate --verify``: swap the processes out to a zram device of our own and
compare the kernel's mm_stat with the prediction, field by field.

One round per compressor, with every process stopped for the whole round:

1. scan the processes (the prediction; per-page results are kept for step 6);
2. hot-add a zram device, set the compressor and a disk size that holds every page, mkswap
   it (label ``zsmalloc-estimate``) and read back its page 0, the swap header, which the
   model gets too; swapon with a priority above every other swap area;
3. check the device against the model after the header alone (the baseline);
4. push the pages out with process_madvise(pidfd, ranges, MADV_PAGEOUT) (syscall 440,
   advice 21), once pinned to each CPU in turn: MADV_PAGEOUT only takes pages on the LRU
   lists and drains the per-CPU batches of the CPU it runs on (lru_add_drain), so a page
   still sitting in another CPU's batch is taken on that CPU's pass;
5. read mm_stat and io_stat;
6. read the pagemap again: pages still resident, pages that went to another swap area;
   when some did not go out, the model is replayed with exactly the pages that did
   ("adjusted");
7. put everything back, also on errors and Ctrl-C: swapoff (pages come back in while the
   processes are still stopped), reset, hot-remove, and let the processes run.

Also checked and reported: pages the kernel compacted (its shrinker under memory pressure:
``pages_compacted``), slots freed while we looked (``notify_free``: swap-ins), pages on the
device that are none of ours (another process paging out to it), zswap (which would take
the pages before zram: refused).

Kernel: mm/madvise.c (madvise_pageout, madvise_cold_or_pageout_pte_range),
mm/page_io.c (swap_writeout), mm/swapfile.c (swapon/swapoff),
drivers/block/zram/zram_drv.c (hot_add, mm_stat).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import mmap
import os
import shutil
import subprocess
import sys
import time

from .procfs import PM_PRESENT, PM_SWAP, SWP_TYPE_BITS, SYS_PAGE

SYS_process_madvise = 440          # x86_64 and the generic table
MADV_PAGEOUT = 21
SWAP_FLAG_PREFER = 0x8000
SWAP_FLAG_PRIO_MASK = 0x7FFF
IOV_MAX = 1024
LABEL = "zsmalloc-estimate"
FIELDS = ("orig_data_size", "compr_data_size", "mem_used_total", "mem_limit", "mem_used_max",
          "same_pages", "pages_compacted", "huge_pages", "huge_pages_since")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class VerifyUnavailable(OSError):
    """The kernel side cannot be done here (no root, no zram, no process_madvise ...)."""


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


# ---------------------------------------------------------------------------------------
# system calls
# ---------------------------------------------------------------------------------------

def _retry_eintr(fn, *args) -> int:
    while True:
        r = fn(*args)
        if r >= 0:
            return r
        e = ctypes.get_errno()
        if e != errno.EINTR:
            raise OSError(e, os.strerror(e))


def process_madvise(pidfd: int, ranges: list, advice: int = MADV_PAGEOUT) -> int:
    """Advise ``ranges`` [(start, length)] of the process; returns bytes advised.
    Kernel: SYSCALL_DEFINE5(process_madvise) → vector_madvise."""
    iov = (_Iovec * len(ranges))(*[_Iovec(a, n) for a, n in ranges])
    return _retry_eintr(_libc.syscall, ctypes.c_long(SYS_process_madvise), ctypes.c_int(pidfd),
                        iov, ctypes.c_size_t(len(ranges)), ctypes.c_int(advice),
                        ctypes.c_uint(0))


def swapon(path: str, priority: int) -> None:
    """Kernel: sys_swapon with SWAP_FLAG_PREFER."""
    _retry_eintr(_libc.swapon, path.encode(), ctypes.c_int(SWAP_FLAG_PREFER |
                                                          (priority & SWAP_FLAG_PRIO_MASK)))


def swapoff(path: str) -> None:
    """Kernel: sys_swapoff (try_to_unuse brings every page back in; EINTR: again)."""
    _retry_eintr(_libc.swapoff, path.encode())


def swap_areas() -> list:
    """[(name, priority)] of /proc/swaps."""
    out = []
    try:
        with open("/proc/swaps") as f:
            next(f, None)
            for line in f:
                parts = line.split()
                if len(parts) >= 5:
                    out.append((parts[0], int(parts[4])))
    except OSError:
        pass
    return out


def unavailable_reason() -> str | None:
    """Why ``--verify`` cannot run here, or None."""
    if os.geteuid() != 0:
        return "--verify needs root (swapon, zram sysfs, process_madvise on other processes)"
    from ..zram.kernel import kernel_available
    ok, why = kernel_available()
    if not ok:
        return f"no zram device of our own can be made: {why}"
    if not _mkswap():
        return "mkswap (util-linux) is not installed"
    try:
        with open("/sys/module/zswap/parameters/enabled") as f:
            if f.read().strip() in ("Y", "1"):
                return "zswap is enabled: swapped pages would go to zswap, not to zram"
    except OSError:
        pass
    fd = os.pidfd_open(os.getpid())
    try:
        process_madvise(fd, [], MADV_PAGEOUT)
    except OSError as e:
        if e.errno == errno.ENOSYS:
            return "this kernel has no process_madvise (Linux 5.10+ with CONFIG_ADVISE_SYSCALLS)"
        if e.errno not in (errno.EINVAL,):
            return f"process_madvise fails here: {e.strerror}"
    finally:
        os.close(fd)
    if any(p >= SWAP_FLAG_PRIO_MASK for _, p in swap_areas()):
        return "another swap area already has the highest priority (32767)"
    return None


def _mkswap() -> str | None:
    return shutil.which("mkswap") or next(
        (p for p in ("/usr/sbin/mkswap", "/sbin/mkswap") if os.access(p, os.X_OK)), None)


# ---------------------------------------------------------------------------------------
# the device
# ---------------------------------------------------------------------------------------

class SwapZram:
    """A hot-added zram device used as swap. ``with SwapZram(comp, disksize) as d:``.

    Enter: hot_add, comp_algorithm, disksize, mkswap -L zsmalloc-estimate, read the header
    page, swapon above every other area. Exit (also on errors): swapoff, reset, hot_remove;
    each step runs even if an earlier one failed."""

    def __init__(self, comp_algorithm: str, disksize: int):
        self.comp = comp_algorithm
        self.disksize = -(-disksize // SYS_PAGE) * SYS_PAGE
        self.device = None
        self.header = b""
        self.priority = 0
        self._swapped_on = False

    @property
    def path(self) -> str:
        return f"/dev/{self.device}"

    def _attr(self, name: str, value: str | None = None) -> str:
        p = f"/sys/block/{self.device}/{name}"
        if value is None:
            with open(p) as f:
                return f.read()
        fd = os.open(p, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
        return value

    def __enter__(self) -> "SwapZram":
        from ..zram.kernel import hot_add
        self.device = hot_add()
        try:
            offered = self._attr("comp_algorithm").replace("[", " ").replace("]", " ").split()
            if self.comp not in offered:
                raise ValueError(f"the kernel's zram does not offer {self.comp!r} "
                                 f"(it has {', '.join(offered)})")
            self._attr("comp_algorithm", self.comp)
            self._attr("disksize", str(self.disksize))
            r = subprocess.run([_mkswap(), "-L", LABEL, self.path], capture_output=True,
                               text=True)
            if r.returncode:
                raise OSError(f"mkswap {self.path} failed: {r.stderr.strip() or r.stdout.strip()}")
            self.header = self._read_page0()
            self.priority = min(SWAP_FLAG_PRIO_MASK,
                                max([p for _, p in swap_areas()], default=-1) + 1)
            self.priority = max(self.priority, 1)
            swapon(self.path, self.priority)
            self._swapped_on = True
        except BaseException:
            self.close()
            raise
        return self

    def _read_page0(self) -> bytes:
        """The device's page 0 as zram holds it (direct I/O, no page cache)."""
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
        buf = mmap.mmap(-1, SYS_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        try:
            n = os.preadv(fd, [buf], 0)
            if n != SYS_PAGE:
                raise OSError(f"short read of {self.path} page 0: {n} bytes")
            return bytes(buf)
        finally:
            buf.close()
            os.close(fd)

    def mm_stat(self) -> dict:
        return dict(zip(FIELDS, (int(x) for x in self._attr("mm_stat").split())))

    def io_stat(self) -> tuple:
        return tuple(int(x) for x in self._attr("io_stat").split())

    def swap_type_hint(self) -> str:
        return self.path

    def close(self) -> None:
        """swapoff, reset, hot_remove — every step tried; the first error is raised after."""
        if self.device is None:
            return
        err = None
        if self._swapped_on:
            try:
                swapoff(self.path)
                self._swapped_on = False
            except OSError as e:
                err = OSError(f"swapoff {self.path} failed: {e.strerror or e}; "
                              f"run 'swapoff {self.path}' by hand")
        if not self._swapped_on:
            deadline = time.monotonic() + 5
            while True:
                try:
                    self._attr("reset", "1")
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        err = err or e
                        break
                    time.sleep(0.05)
            try:
                from ..zram.kernel import hot_remove
                hot_remove(self.device)
            except OSError as e:
                err = err or e
            self.device = None
        if err is not None:
            raise err

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------
# page-out
# ---------------------------------------------------------------------------------------

def runs_of(addrs) -> list:
    """[(start, length)] of runs of consecutive page addresses (ascending input)."""
    out = []
    start = prev = None
    for a in addrs:
        if prev is not None and a == prev + SYS_PAGE:
            prev = a
            continue
        if start is not None:
            out.append((start, prev + SYS_PAGE - start))
        start = prev = a
    if start is not None:
        out.append((start, prev + SYS_PAGE - start))
    return out


def page_out(pidfd: int, ranges: list, checkpoint) -> list:
    """MADV_PAGEOUT over ``ranges``, IOV_MAX at a time; returns [(range, errno)] refused."""
    refused = []
    i = 0
    while i < len(ranges):
        checkpoint()
        chunk = ranges[i:i + IOV_MAX]
        try:
            done = process_madvise(pidfd, chunk)
        except OSError as e:
            refused.append((chunk[0], e.errno))
            i += 1                 # skip the range it stopped at
            continue
        # a partial count: it stopped inside the chunk; skip past the range it failed on
        want = sum(n for _, n in chunk)
        if done >= want:
            i += len(chunk)
            continue
        acc = 0
        for k, (_, n) in enumerate(chunk):
            if acc + n > done:
                refused.append((chunk[k], None))
                i += k + 1
                break
            acc += n
    return refused


def where_now(pm, addrs) -> tuple[list, dict]:
    """For each address: 'present', ('swap', type) or 'gone'; plus a Counter of swap types."""
    out = []
    types: dict = {}
    for start, length in runs_of(addrs):
        ents = pm.pagemap(start, length // SYS_PAGE)
        for e in ents:
            if e & PM_PRESENT:
                out.append("present")
            elif e & PM_SWAP:
                t = e & ((1 << SWP_TYPE_BITS) - 1)
                types[t] = types.get(t, 0) + 1
                out.append(t)
            else:
                out.append("gone")
        out.extend(["gone"] * (length // SYS_PAGE - len(ents)))
    return out, types


# ---------------------------------------------------------------------------------------
# a round
# ---------------------------------------------------------------------------------------

def verify_round(pids, cfg, guard, progress_enabled: bool) -> dict:
    """Predict, page out, measure, put back: one compressor. Returns the round's report."""
    from .cli import progress_bar
    from .engine import Estimate, disk_pages_for
    from .guard import Frozen
    from .procfs import ProcessMemory
    rep = {"config": cfg.as_dict()}
    with contextlib.ExitStack() as stack:
        pms = [stack.enter_context(ProcessMemory(pid)) for pid in pids]
        for pm in pms:
            stack.enter_context(Frozen(pm.pid, pm.pidfd))
            guard.checkpoint()
        est = stack.enter_context(Estimate([cfg], disk_pages=disk_pages_for(pids), peers=False,
                                           record=True, checkpoint=guard.checkpoint))
        with progress_bar(progress_enabled, est.models[0].nr_pages * 4 // 5,
                          f"scanning ({cfg.comp_algorithm})") as advance:
            for pm in pms:
                est.scan(pm, advance)
        guard.checkpoint()
        n = len(est.record.addr)
        klens, kdiffer, kdelta, rep["length_device"] = kernel_lengths(pms, est.record, cfg.comp_algorithm,
                                                est.models[0].zram.huge_threshold,
                                                guard.checkpoint)
        guard.checkpoint()
        dev = stack.enter_context(SwapZram(cfg.comp_algorithm, (n + 1 + 1024) * SYS_PAGE))
        rep["device"] = dev.device
        rep["priority"] = dev.priority
        est.add_page(dev.header)
        predicted = est.results()[0].mm_stat
        base_pred = est.replay(cfg, lambda pid, a: False, header=dev.header)
        base_meas = dev.mm_stat()
        io0 = dev.io_stat()
        guard.checkpoint()
        # page out, once pinned to each CPU (see the module docstring)
        t0 = time.perf_counter()
        cpus = sorted(os.sched_getaffinity(0))
        old_aff = set(cpus)
        by_pid = {}
        for i in range(n):
            by_pid.setdefault(est.record.pid[i], []).append(est.record.addr[i])
        refused = []
        passes = 0
        try:
            todo = dict(by_pid)
            for cpu in cpus:
                if not todo:
                    break
                os.sched_setaffinity(0, {cpu})
                passes += 1
                for pm in pms:
                    if pm.pid in todo:
                        refused += page_out(pm.pidfd, runs_of(todo[pm.pid]), guard.checkpoint)
                left = {}
                for pm in pms:
                    addrs = todo.get(pm.pid)
                    if addrs:
                        state, _ = where_now(pm, addrs)
                        rest = [a for a, s in zip(addrs, state) if s == "present"]
                        if rest:
                            left[pm.pid] = rest
                todo = left
        finally:
            os.sched_setaffinity(0, old_aff)
        rep["pageout_seconds"] = round(time.perf_counter() - t0, 3)
        rep["pageout_passes"] = passes
        measured = dev.mm_stat()
        io1 = dev.io_stat()
        # where did every page go?
        where = {}
        types: dict = {}
        for pm in pms:
            addrs = by_pid.get(pm.pid, [])
            state, t = where_now(pm, addrs)
            for a, s in zip(addrs, state):
                where[(pm.pid, a)] = s
            for k, v in t.items():
                types[k] = types.get(k, 0) + v
        ours = max(types, key=types.get) if types else None
        resident = sum(1 for s in where.values() if s == "present")
        elsewhere = sum(v for k, v in types.items() if k != ours)
        written = sum(1 for i in range(n) if est.record.written[i])
        out_written = sum(1 for i in range(n) if est.record.written[i]
                          and where[(est.record.pid[i], est.record.addr[i])] == ours)
        foreign = measured["orig_data_size"] // SYS_PAGE - (out_written + 1)
        rep["checks"] = {
            "eligible_pages": n,
            "pages_written_predicted": written,
            "still_resident": resident,
            "to_other_swap_areas": elsewhere,
            "refused_ranges": len(refused),
            "foreign_pages": foreign,
            "pages_compacted": measured["pages_compacted"] - base_meas["pages_compacted"],
            "notify_free": io1[3] - io0[3],
            "baseline_equal": tuple(base_meas[f] for f in FIELDS) == tuple(base_pred),
        }
        rep["baseline"] = {"predicted": dict(zip(FIELDS, base_pred)), "measured": base_meas}
        rep["predicted"] = dict(predicted)
        rep["measured"] = measured
        went = (lambda pid, a: where.get((pid, a)) == ours)
        if resident or elsewhere:
            adj = est.replay(cfg, went, header=dev.header)
            rep["adjusted"] = dict(zip(FIELDS, adj))
        rep["kernel_lengths"] = dict(zip(FIELDS, est.replay(cfg, went, header=dev.header,
                                                            lens=klens)))
        rep["checks"]["pages_with_other_length"] = kdiffer
        rep["checks"]["length_difference_bytes"] = kdelta
        rep["pages"] = est.counts.eligible
        rep["processes"] = [p.as_dict() for p in est.processes]
        # leaving the stack: swapoff (pages come back), reset, hot_remove, SIGCONT
    return rep


def kernel_lengths(pms, rec, comp: str, huge_threshold: int, checkpoint) -> tuple:
    """The running kernel's compressed length of every recorded page zram would compress.

    Each such page is read again from its (stopped) process and written to a zram device
    of our own with direct I/O; the growth of compr_data_size is its length (a page size
    for a huge page). Lets the report separate the compressor's drift from the model's.
    Returns (lengths aligned with the record, pages whose length differs, sum of the
    differences kernel - ours, the device used)."""
    from array import array
    from ..zram.kernel import KernelZram
    by_pid = {pm.pid: pm for pm in pms}
    n = len(rec.addr)
    out = array("i", rec.lens[comp])
    ours = rec.lens[comp]
    buf = bytearray(SYS_PAGE)
    differ = delta = 0
    with KernelZram((n + 1) * SYS_PAGE, comp) as kz:
        last = kz.mm_stat()[1]
        for i in range(n):
            if not rec.written[i] or i in rec.words:
                continue
            if i % 256 == 0:
                checkpoint()
            if by_pid[rec.pid[i]].read_into(buf, rec.addr[i]) != SYS_PAGE:
                raise OSError(f"cannot read page {rec.addr[i]:#x} of process {rec.pid[i]} again")
            kz.write(i, buf)
            now = kz.mm_stat()[1]
            L = now - last
            last = now
            if L == SYS_PAGE and ours[i] >= huge_threshold:
                L = ours[i]        # huge both ways: the same raw page, whatever the length
            if L != ours[i]:
                differ += 1
                delta += L - ours[i]
            out[i] = L
        device = kz.device
    return out, differ, delta, device


def error_pct(pred: int, meas: int) -> float | None:
    if meas == 0:
        return 0.0 if pred == 0 else None
    return 100.0 * (pred - meas) / meas


def kernel_algorithms() -> list:
    """The compressors the running kernel's zram offers (read from a fresh device)."""
    from ..zram.kernel import hot_add, hot_remove
    dev = hot_add()
    try:
        with open(f"/sys/block/{dev}/comp_algorithm") as f:
            return f.read().replace("[", " ").replace("]", " ").split()
    finally:
        hot_remove(dev)


def verify_configs(configs, notes, args) -> list:
    """The configurations the running kernel can be asked about: system page size, the
    kernel's chain size, profile linux-6.18, a compressor it offers; one per compressor.
    A compressor asked for by name that the kernel lacks is an error."""
    from .cli import kernel_defaults
    _, kchain, _ = kernel_defaults()
    offered = kernel_algorithms()
    out, seen = [], set()
    for c in configs:
        why = None
        if c.comp_algorithm not in offered:
            if args.comp:
                raise ValueError(f"the kernel's zram does not offer {c.comp_algorithm!r} "
                                 f"(it has {', '.join(offered)})")
            why = f"the kernel's zram has no {c.comp_algorithm}"
        elif c.page_size != SYS_PAGE:
            why = f"page size {c.page_size} (the kernel's is {SYS_PAGE})"
        elif kchain and c.chain_size != kchain:
            why = f"chain size {c.chain_size} (the kernel's is {kchain})"
        elif c.profile != "linux-6.18":
            why = f"profile {c.profile} (the kernel is modelled by linux-6.18)"
        if why:
            notes.append(f"{c.label}: not verifiable on this kernel: {why}")
        elif c.comp_algorithm not in seen:
            seen.add(c.comp_algorithm)
            out.append(c)
    return out


def cmd_verify(args, configs, notes, guard) -> int:
    """Run the rounds inside the caller's DeferredSignals ``guard``; print the report."""
    from .cli import check_pids
    if args.no_freeze:
        raise ValueError("--verify needs the processes stopped from scan to page-out: "
                         "drop --no-freeze")
    if args.sample:
        raise ValueError("--verify compares a full scan: drop --sample")
    why = unavailable_reason()
    if why:
        raise VerifyUnavailable(f"cannot verify: {why}")
    pids = check_pids(args.pid)
    todo = verify_configs(configs, notes, args)
    if not todo:
        raise ValueError("no configuration asked for can be checked against this kernel")
    show = not args.no_progress and not args.json and sys.stderr.isatty()
    rounds = []
    for cfg in todo:
        rounds.append(verify_round(pids, cfg, guard, show))
        guard.checkpoint()
    if args.json:
        print(json.dumps({"pages": rounds[0]["pages"],
                          "configs": [{**r["config"], "mm_stat": r["predicted"]} for r in rounds],
                          "verify": rounds, "notes": notes}, indent=1))
    else:
        for r in rounds:
            render_round(r)
        for n in notes:
            print(f"note: {n}")
    return 0


def render_round(r: dict, file=None) -> None:
    from rich.console import Console
    from rich.table import Table
    con = Console(file=file or sys.stdout, width=120)
    c = r["config"]
    procs = ", ".join(f"{p['pid']} ({p['comm']})" for p in r["processes"])
    con.print(f"\n{c['comp_algorithm']}: {procs}: {r['pages']:,} resident anonymous pages, "
              f"swapped out to /dev/{r['device']} (priority {r['priority']}) in "
              f"{r['pageout_seconds']:.2f} s", highlight=False)
    t = Table(title=f"predicted against the kernel's mm_stat ({c['comp_algorithm']}, chain "
                    f"{c['chain_size']}, swap header included)", title_justify="left")
    cols = ["field", "predicted", "measured", "error", "error %", "with kernel's lengths"]
    if "adjusted" in r:
        cols[3:3] = ["adjusted"]
    for i, col in enumerate(cols):
        t.add_column(col, justify="left" if i == 0 else "right")
    for f in FIELDS:
        p, m = r["predicted"][f], r["measured"][f]
        e = error_pct(p, m)
        row = [f, f"{p:,}", f"{m:,}"]
        if "adjusted" in r:
            row.append(f"{r['adjusted'][f]:,}")
        row += [f"{p - m:+,}", "-" if e is None else f"{e:+.4f}"]
        kl = r["kernel_lengths"][f]
        row.append(f"{kl:,}" + ("" if kl == m else f" ({kl - m:+,})"))
        t.add_row(*row)
    con.print(t)
    k = r["checks"]
    lines = [
        f"baseline (swap header only): model {'equals' if k['baseline_equal'] else 'DIFFERS from'} the device",
        f"pages predicted to reach zram: {k['pages_written_predicted']:,} of {k['eligible_pages']:,} "
        f"(the rest are zero-filled: kept in the swap map)",
        f"still resident after page-out: {k['still_resident']:,} "
        f"({r['pageout_passes']} page-out pass{'es' if r['pageout_passes'] > 1 else ''}, one per CPU as needed)",
    ]
    for key, what in (("to_other_swap_areas", "pages went to another swap area"),
                      ("refused_ranges", "ranges refused by process_madvise"),
                      ("foreign_pages", "pages on the device not from these processes"),
                      ("pages_compacted", "pages compacted by the kernel meanwhile"),
                      ("notify_free", "slots freed meanwhile (swap-ins)")):
        if k[key]:
            lines.append(f"{what}: {k[key]:,}")
    if "adjusted" in r:
        lines.append("adjusted: the model fed only the pages that really went to the device")
    lines.append(f"compressor drift: {k['pages_with_other_length']:,} pages compress to another "
                 f"length in the kernel ({k['length_difference_bytes']:+,} bytes in all); "
                 f"'with kernel's lengths' is the model fed the kernel's own lengths")
    for line in lines:
        con.print(line, highlight=False)
