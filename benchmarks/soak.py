"""Soak: random operations against a dict model, with threads and Ctrl-C, until something
breaks or the budget is spent. In the manner of mimalloc's test-stress.c (threads that free
each other's objects) and the kernel's LTP zram tests (fill, verify every byte).

Run from the repository root::

    PYTHONPATH=src python benchmarks/soak.py [--ops N] [--threads T] [--seconds S]
        [--seed K] [--pool plain|concurrent|both] [--profile P ...] [--no-interrupts]
        [--stateful-examples N] [--skip-stateful]

Three parts, each printing its figures; exit status 1 if any found a problem:

1. **Stateful** (hypothesis ``RuleBasedStateMachine``): a Pool and a Zram per profile
   (``linux-6.18``, ``linux-4.8``, ``tuned``) against a dict model. Pool: malloc + write,
   overwrite, read, free, bad arguments, compact, migrate a random used frame; Zram: write
   (same-filled, compressible, huge), overwrite, read, discard, compact, mem_limit. Every
   step runs ``check()``; every read is compared byte for byte. One rule interrupts an
   operation at its n-th line of allocator code (a trace function raises
   KeyboardInterrupt there: deterministic, so hypothesis can shrink it; pure mode only, the
   compiled core has no lines to stop at).
2. **Threads**: T threads (the main thread is one) malloc, write, read and verify, free
   their own objects and each other's (handed over through a shared queue), while a
   maintenance thread compacts and migrates random used frames and the deferred-free worker
   runs. On a plain ``Pool()`` and on ``Pool(concurrent=True)``.
3. **Ctrl-C**, during part 2: a thread sends SIGINT to the main thread at random moments.
   The handler raises KeyboardInterrupt only when the main thread is inside allocator code
   (a frame of the zsmalloc package); interrupts that land between operations are counted,
   not raised. After each KeyboardInterrupt the operation's effect is resolved: an
   interrupted malloc must leave no object, a write the old or the new bytes (nothing
   else), a free either done (the handle is then refused) or not.

At the end: every live object is read back and compared, ``check()`` runs, and the pool
must hold exactly the objects of the model (a leak is a failure). The acceptance run is
``--ops 1000000 --threads 8`` with interrupts; see docs/soak.md.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import random
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "..", "src")))

import zsmalloc  # noqa: E402
from zsmalloc import InvalidHandle, Pool, PoolConfig, PROFILES  # noqa: E402

from zsmalloc import FreeWorker, MigrationError  # noqa: E402

PKG_DIR = os.path.dirname(zsmalloc.__file__)   # as the package's code objects spell it
_key = itertools.count(1)              # next() is atomic under the GIL: unique content keys


def pattern(key: int, size: int) -> bytes:
    """The bytes an object with content ``key`` holds: the key's 8 bytes, repeated, so a
    mix of two objects or a shifted copy shows."""
    w = (key * 0x9E3779B97F4A7C15 & (1 << 64) - 1).to_bytes(8, "little")
    return (w * (size // 8 + 1))[:size]


def wrong_bytes(got: bytes, want: bytes) -> int:
    if got == want:
        return 0
    n = min(len(got), len(want))
    return sum(a != b for a, b in zip(got[:n], want[:n])) + abs(len(got) - len(want))


# ---- interrupts landing inside allocator code ----------------------------------------------

def inside_allocator(frame, stop_code) -> bool:
    """True if a frame of the zsmalloc package is on the stack above ``stop_code``'s."""
    while frame is not None and frame.f_code is not stop_code:
        if frame.f_code.co_filename.startswith(PKG_DIR):
            return True
        frame = frame.f_back
    return False


class InterruptAt:
    """Raise KeyboardInterrupt at the ``n``-th line executed in zsmalloc's own code while
    the block runs (this thread only). ``.fired`` says whether it did (compiled code has no
    lines: then it never fires)."""

    def __init__(self, n: int):
        self.n = n
        self.fired = False

    def _local(self, frame, event, arg):
        if event == "line":
            self.n -= 1
            if self.n <= 0 and not self.fired:
                self.fired = True
                sys.settrace(None)
                raise KeyboardInterrupt(f"injected at {frame.f_code.co_name}:{frame.f_lineno}")
        return self._local

    def _global(self, frame, event, arg):
        if self.fired or not frame.f_code.co_filename.startswith(PKG_DIR):
            return None
        return self._local

    def __enter__(self):
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc):
        sys.settrace(None)
        return False


# ---- part 2 and 3: threads and Ctrl-C ------------------------------------------------------

class SoakAbort(BaseException):
    """Raised in the main thread by the watchdog when no thread makes progress."""


def _short_stack(frame, depth: int = 4) -> str:
    out = []
    while frame is not None and len(out) < depth:
        out.append(f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno} "
                   f"{frame.f_code.co_name}")
        frame = frame.f_back
    return " < ".join(out)


@dataclass
class Figures:
    """What a threads soak did and found."""

    label: str
    ops: int = 0
    seconds: float = 0.0
    mallocs: int = 0
    frees: int = 0
    frees_of_others: int = 0
    discards: int = 0
    writes: int = 0
    reads: int = 0
    compactions: int = 0
    pages_compacted: int = 0
    migrations: int = 0
    migrations_refused: int = 0
    interrupts_sent: int = 0
    interrupts_raised: int = 0
    interrupts_between_ops: int = 0
    stuck: bool = False                                # the watchdog stopped the run
    wrong_bytes: int = 0
    live_objects: int = 0
    failures: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.wrong_bytes


class ThreadSoak:
    """One threads soak over one pool. ``run()`` -> Figures."""

    OPS = ("malloc", "read", "overwrite", "free", "free_other", "hand_over", "compact")
    WEIGHTS = (34, 22, 10, 12, 10, 10, 2)

    def __init__(self, pool, label: str, ops: int, threads: int, seconds: float, seed: int,
                 interrupts: bool, rate: float = 300.0, stall: float = 20.0):
        self.pool = pool
        self.page_size = pool.config.page_size if hasattr(pool, "config") else 4096
        self.fig = Figures(label)
        self.budget = ops
        self.threads = threads
        self.deadline = time.monotonic() + seconds
        self.seed = seed
        self.interrupts = interrupts and threading.current_thread() is threading.main_thread()
        self.rate = rate
        self.stall = stall
        self.abort = False
        self.stop = threading.Event()
        self.handoff: collections.deque = collections.deque()
        self.owned = [dict() for _ in range(threads)]      # per thread: handle -> (size, key)
        self.done = [0] * threads
        self.armed = False
        self.lock = threading.Lock()                       # for the shared figures

    # -- the main thread's guarded call -----------------------------------------------------

    def call(self, fn, *args):
        """Run one pool operation; on the main thread with interrupts armed."""
        if threading.get_ident() != self.main_ident:
            return fn(*args)
        self.armed = True
        try:
            return fn(*args)
        finally:
            self.armed = False

    def _on_sigint(self, sig, frame):
        if self.abort:
            raise SoakAbort
        if self.armed and inside_allocator(frame, self.call.__func__.__code__):
            self.armed = False
            self.fig.interrupts_raised += 1
            raise KeyboardInterrupt
        self.fig.interrupts_between_ops += 1

    def _watchdog(self) -> None:
        """Stop the run when no operation completes for ``stall`` seconds (a lock left held
        by an interrupted operation): name where each soak thread is stuck."""
        last, since = -1, time.monotonic()
        while not self.stop.wait(0.5):
            now = sum(self.done) + self.fig.compactions + self.fig.migrations \
                + self.fig.migrations_refused
            if now != last:
                last, since = now, time.monotonic()
                continue
            if time.monotonic() - since < self.stall:
                continue
            names = {th.ident: th.name for th in threading.enumerate()}
            stacks = [f"{names.get(i, '?')}: {_short_stack(f)}"
                      for i, f in sys._current_frames().items()
                      if names.get(i, "").startswith("soak-") or i == self.main_ident]
            self.fig.stuck = True
            self._fail(f"no operation completed for {self.stall:g} s (a lock left held?); "
                       f"threads at: " + "; ".join(stacks))
            self.abort = True
            signal.pthread_kill(self.main_ident, signal.SIGINT)
            return

    def _interrupter(self, rng):
        while not self.stop.wait(rng.expovariate(self.rate)):
            signal.pthread_kill(self.main_ident, signal.SIGINT)
            self.fig.interrupts_sent += 1

    # -- operations --------------------------------------------------------------------------

    def _fail(self, what: str) -> None:
        with self.lock:
            self.fig.failures.append(what)
        self.stop.set()

    def _read(self, h, size) -> bytes:
        while True:                    # a read changes nothing: an interrupted one is redone
            try:
                return self.call(self.pool.read, h, size)
            except KeyboardInterrupt:
                continue

    def _verify(self, h, size, key, where) -> None:
        got = self._read(h, size)
        bad = wrong_bytes(got, pattern(key, size))
        if bad:
            with self.lock:
                self.fig.wrong_bytes += bad
            self._fail(f"{where}: handle {h:#x} ({size} B) read back {bad} wrong byte(s)")

    def _write_new(self, h, size) -> int:
        """Fill a new object; retried until a write is not interrupted (old bytes of a new
        object are undefined)."""
        while True:
            key = next(_key)
            try:
                self.call(self.pool.write, h, pattern(key, size))
                return key
            except KeyboardInterrupt:
                continue

    def _malloc(self, t, rng, mine) -> None:
        size = rng.choice((rng.randint(1, 64), rng.randint(65, 1024), rng.randint(1025, 3200),
                           rng.randint(3201, self.page_size)))
        try:
            h = self.call(self.pool.malloc, size)
        except KeyboardInterrupt:
            return          # must have left nothing: the leak check at the end counts it
        mine[h] = (size, self._write_new(h, size))

    def _overwrite(self, t, rng, mine) -> None:
        h = rng.choice(list(mine))
        size, old = mine[h]
        key = next(_key)
        try:
            self.call(self.pool.write, h, pattern(key, size))
            mine[h] = (size, key)
        except KeyboardInterrupt:
            got = self.pool.read(h, size)
            if got == pattern(key, size):
                mine[h] = (size, key)
            elif got != pattern(old, size):
                with self.lock:
                    self.fig.wrong_bytes += wrong_bytes(got, pattern(old, size))
                self._fail(f"interrupted write left handle {h:#x} neither old nor new bytes")

    def _free(self, h, size, key, mine, other: bool) -> None:
        self._verify(h, size, key, "before free")
        try:
            self.call(self.pool.free, h)
        except KeyboardInterrupt:
            try:                                  # done, or not: the handle tells
                self.pool.read(h, 1)
            except InvalidHandle:
                pass
            else:
                mine[h] = (size, key)             # still live: keep it
                return
        with self.lock:
            self.fig.frees += 1
            self.fig.frees_of_others += other

    def _step(self, t, rng, op) -> None:
        mine = self.owned[t]
        if op == "malloc" or not mine:
            self._malloc(t, rng, mine)
            with self.lock:
                self.fig.mallocs += 1
                self.fig.writes += 1
        elif op == "read":
            h = rng.choice(list(mine))
            self._verify(h, *mine[h], "read")
            with self.lock:
                self.fig.reads += 1
        elif op == "overwrite":
            self._overwrite(t, rng, mine)
            with self.lock:
                self.fig.writes += 1
        elif op == "free":
            h = rng.choice(list(mine))
            self._free(h, *mine.pop(h), mine, False)
        elif op == "free_other":
            try:
                h, size, key = self.handoff.popleft()
            except IndexError:
                return
            self._free(h, size, key, mine, True)
        elif op == "hand_over":
            h = rng.choice(list(mine))
            self.handoff.append((h, *mine.pop(h)))
        else:
            self._compact()

    def _compact(self) -> None:
        try:
            freed = self.call(self.pool.compact)
        except KeyboardInterrupt:
            freed = 0
        with self.lock:
            self.fig.compactions += 1
            self.fig.pages_compacted += freed or 0

    def _worker(self, t: int) -> None:
        rng = random.Random(self.seed * 1000 + t)
        share = self.budget // self.threads + (t < self.budget % self.threads)
        try:
            for i in range(share):
                if self.stop.is_set() or (i & 255 == 0 and time.monotonic() > self.deadline):
                    break
                op = rng.choices(self.OPS, self.WEIGHTS)[0]
                self._step(t, rng, op)
                self.done[t] += 1
        except SoakAbort:
            pass
        except Exception:
            self._fail(f"thread {t}: {traceback.format_exc(limit=6)}")

    def _maintenance(self, rng) -> None:
        """Compaction and page migration while the workers run."""
        try:
            while not self.stop.wait(rng.uniform(0.0005, 0.005)):
                if rng.random() < 0.3:
                    self._compact()
                    continue
                pfns = self.pool.used_pfns()
                if not pfns:
                    continue
                try:
                    self.pool.migrate_page(rng.choice(pfns))
                    with self.lock:
                        self.fig.migrations += 1
                except (MigrationError, ValueError):
                    with self.lock:                # busy, or the frame was freed meanwhile
                        self.fig.migrations_refused += 1
        except Exception:
            self._fail(f"maintenance: {traceback.format_exc(limit=6)}")

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> Figures:
        self.main_ident = threading.get_ident()
        rng = random.Random(self.seed)
        worker = FreeWorker(self.pool).start() if hasattr(self.pool, "free_worker") else None
        helpers = [threading.Thread(target=self._maintenance, args=(random.Random(rng.random()),),
                                    name="soak-maintenance", daemon=True),
                   threading.Thread(target=self._watchdog, name="soak-watchdog", daemon=True)]
        if self.interrupts:
            helpers.append(threading.Thread(target=self._interrupter,
                                            args=(random.Random(rng.random()),),
                                            name="soak-interrupter", daemon=True))
        old = signal.signal(signal.SIGINT, self._on_sigint)
        workers = [threading.Thread(target=self._worker, args=(t,), name=f"soak-{t}",
                                    daemon=True) for t in range(1, self.threads)]
        t0 = time.perf_counter()
        try:
            for th in helpers + workers:
                th.start()
            self._worker(0)
            for th in workers:
                while th.is_alive() and not self.fig.stuck:
                    th.join(0.5)
        finally:
            self.stop.set()
            for th in helpers + workers:
                th.join(2 if self.fig.stuck else None)
            signal.signal(signal.SIGINT, old)
            if worker is not None and not self.fig.stuck:
                worker.stop()
        self.fig.seconds = time.perf_counter() - t0
        self.fig.ops = sum(self.done)
        if self.fig.stuck:     # the stuck threads hold locks the final reads would need
            self.fig.failures.append("end: final check skipped (threads stuck)")
        else:
            self._final_check()
        return self.fig

    def _final_check(self) -> None:
        pool = self.pool
        live = [(h, s, k) for mine in self.owned for h, (s, k) in mine.items()]
        live += list(self.handoff)
        self.fig.live_objects = len(live)
        try:
            pool.free_work()
            for h, s, k in live:
                bad = wrong_bytes(pool.read(h, s), pattern(k, s))
                if bad:
                    self.fig.wrong_bytes += bad
                    self.fig.failures.append(f"end: handle {h:#x} has {bad} wrong byte(s)")
            pool.check()
        except Exception as e:
            self.fig.failures.append(f"end: {type(e).__name__}: {e}")
        if pool.objects != len(live):
            self.fig.failures.append(f"end: the pool holds {pool.objects} objects, the model "
                                     f"{len(live)} (an interrupted or racing operation leaked "
                                     f"or lost objects)")


class ZramSoak(ThreadSoak):
    """The threads soak on a Zram: each thread writes, reads and discards pages in its own
    index range while compaction, migration and Ctrl-C go on. Every page starts with a
    unique word, so an interrupted write is resolved exactly: the slot must hold the old
    page or the new one."""

    OPS = ("write", "read", "discard", "compact")
    WEIGHTS = (50, 34, 14, 2)
    PER_THREAD = 256          # slots each thread owns

    def __init__(self, z, label, ops, threads, seconds, seed, interrupts):
        super().__init__(z.pool, label, ops, threads, seconds, seed, interrupts)
        self.z = z
        self.zero = bytes(4096)
        self.pages = [dict() for _ in range(threads)]     # per thread: index -> page

    @staticmethod
    def _page(rng) -> bytes:
        key = next(_key).to_bytes(8, "little")
        kind = rng.random()
        if kind < 0.15:
            return key * 512                              # same-filled
        if kind < 0.25:
            return key + rng.randbytes(4088)              # incompressible: stored raw
        n = rng.randint(9, 3000)
        return key + rng.randbytes(n - 8) + bytes(4096 - n)

    def _resolve(self, mine, i, new=None) -> None:
        """After an interrupted write (``new``) or discard: old, new or (discard) zeros."""
        now = self.z.read(i)
        if new is not None and now == new:
            mine[i] = new
        elif new is None and now == self.zero:
            mine.pop(i, None)
        elif now != mine.get(i, self.zero):
            with self.lock:
                self.fig.wrong_bytes += wrong_bytes(now, mine.get(i, self.zero))
            self._fail(f"interrupted {'write' if new else 'discard'} left slot {i} with "
                       f"another page than the old or the new one")

    def _step(self, t, rng, op) -> None:
        mine = self.pages[t]
        lo = t * self.PER_THREAD
        i = lo + rng.randrange(self.PER_THREAD)
        if op == "write":
            page = self._page(rng)
            try:
                self.call(self.z.write, i, page)
                mine[i] = page
            except KeyboardInterrupt:
                self._resolve(mine, i, page)
            with self.lock:
                self.fig.writes += 1
        elif op == "read":
            while True:
                try:
                    got = self.call(self.z.read, i)
                    break
                except KeyboardInterrupt:
                    continue
            bad = wrong_bytes(got, mine.get(i, self.zero))
            if bad:
                with self.lock:
                    self.fig.wrong_bytes += bad
                self._fail(f"read: slot {i} read back {bad} wrong byte(s)")
            with self.lock:
                self.fig.reads += 1
        elif op == "discard":
            n = min(rng.randint(1, 4), lo + self.PER_THREAD - i)
            try:
                self.call(self.z.discard, i, n)
                for j in range(i, i + n):
                    mine.pop(j, None)
            except KeyboardInterrupt:
                for j in range(i, i + n):
                    self._resolve(mine, j)
            with self.lock:
                self.fig.discards += 1
        else:
            self._compact()

    def _final_check(self) -> None:
        z = self.z
        stored = sum(len(m) for m in self.pages)
        self.fig.live_objects = stored
        try:
            z.pool.free_work()
            for t, mine in enumerate(self.pages):
                for i in range(t * self.PER_THREAD, (t + 1) * self.PER_THREAD):
                    bad = wrong_bytes(z.read(i), mine.get(i, self.zero))
                    if bad:
                        self.fig.wrong_bytes += bad
                        self.fig.failures.append(f"end: slot {i} has {bad} wrong byte(s)")
            z.pool.check()
        except Exception as e:
            self.fig.failures.append(f"end: {type(e).__name__}: {e}")
        m = z.mm_stat()
        if m.orig_data_size != stored * 4096:
            self.fig.failures.append(f"end: mm_stat orig_data_size {m.orig_data_size}, the "
                                     f"model has {stored} pages")


def run_zram(kind: str, ops: int, threads: int, seconds: float, seed: int,
             interrupts: bool, profile: str = "linux-6.18") -> Figures:
    z = zsmalloc.Zram(threads * ZramSoak.PER_THREAD * 4096, "lz4", PoolConfig(profile=profile),
                      concurrent=kind == "concurrent")
    fig = ZramSoak(z, f"{kind} Zram, {profile}", ops, threads, seconds, seed, interrupts).run()
    if not fig.stuck:
        z.close()
    return fig


def make_pool(kind: str, profile: str):
    cfg = PoolConfig(profile=profile)
    return Pool(cfg, concurrent=True) if kind == "concurrent" else Pool(cfg)


def run_threads(kind: str, ops: int, threads: int, seconds: float, seed: int,
                interrupts: bool, profile: str = "linux-6.18") -> Figures:
    pool = make_pool(kind, profile)
    fig = ThreadSoak(pool, f"{kind} Pool, {profile}", ops, threads, seconds, seed,
                     interrupts).run()
    if not fig.stuck:          # a stuck thread may still hold the pool: leave it be
        pool.close()
    return fig


# ---- part 1: stateful tests against a dict model ----------------------------------------------

def stateful_machines(profile: str, interrupts: bool = True):
    """(PoolMachine, ZramMachine) for ``profile``: hypothesis RuleBasedStateMachines; with
    ``interrupts`` False the interrupting rules are off."""
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

    sizes = st.one_of(st.integers(1, 64), st.integers(65, 3300), st.integers(3301, 4096))

    class PoolMachine(RuleBasedStateMachine):
        """A Pool against ``{handle: (size, key)}``."""

        def __init__(self):
            super().__init__()
            self.pool = Pool(PoolConfig(profile=profile))
            self.model: dict = {}

        def teardown(self):
            try:
                for h, (size, key) in self.model.items():
                    assert self.pool.read(h, size) == pattern(key, size), f"handle {h:#x}"
            finally:
                self.pool.close()

        def _put(self, h, size):
            key = next(_key)
            self.pool.write(h, pattern(key, size))
            self.model[h] = (size, key)

        @rule(size=sizes)
        def malloc(self, size):
            self._put(self.pool.malloc(size), size)

        @precondition(lambda self: self.model)
        @rule(data=st.data())
        def overwrite(self, data):
            h = data.draw(st.sampled_from(sorted(self.model)))
            self._put(h, self.model[h][0])

        @precondition(lambda self: self.model)
        @rule(data=st.data())
        def read(self, data):
            h = data.draw(st.sampled_from(sorted(self.model)))
            size, key = self.model[h]
            assert self.pool.read(h, size) == pattern(key, size)

        @precondition(lambda self: self.model)
        @rule(data=st.data(), again=st.booleans())
        def free(self, data, again):
            h = data.draw(st.sampled_from(sorted(self.model)))
            self.pool.free(h)
            del self.model[h]
            if again:                                      # a double free is refused
                try:
                    self.pool.free(h)
                except InvalidHandle:
                    pass
                else:
                    raise AssertionError(f"double free of {h:#x} accepted")

        @rule(size=st.sampled_from([0, -1, 4097, 1 << 40]))
        def bad_malloc(self, size):
            before = self.pool.objects
            try:
                self.pool.malloc(size)
            except ValueError:
                pass
            else:
                raise AssertionError(f"malloc({size}) accepted")
            assert self.pool.objects == before

        @rule()
        def compact(self):
            self.pool.compact()

        @rule(data=st.data())
        def migrate(self, data):
            pfns = self.pool.used_pfns()
            if pfns:
                try:
                    self.pool.migrate_page(data.draw(st.sampled_from(pfns)))
                except (MigrationError, ValueError):
                    pass

        @precondition(lambda self: interrupts)
        @rule(op=st.sampled_from(["malloc", "free", "write", "compact", "migrate"]),
              n=st.integers(1, 400), size=sizes, data=st.data())
        def interrupted(self, op, n, size, data):
            """An operation stopped by KeyboardInterrupt at its n-th line of allocator code."""
            h = data.draw(st.sampled_from(sorted(self.model))) if self.model else None
            key = next(_key)
            before = self.pool.objects
            got = None
            try:
                with InterruptAt(n):
                    if op == "malloc" or h is None:
                        op = "malloc"
                        got = self.pool.malloc(size)
                    elif op == "free":
                        self.pool.free(h)
                    elif op == "write":
                        self.pool.write(h, pattern(key, self.model[h][0]))
                    elif op == "compact":
                        self.pool.compact()
                    else:
                        pfns = self.pool.used_pfns()
                        try:
                            self.pool.migrate_page(pfns[n % len(pfns)])
                        except (MigrationError, ValueError):
                            pass
            except KeyboardInterrupt:
                pass
            if op == "malloc":
                if got is not None:
                    self._put(got, size)
                else:
                    assert self.pool.objects == before, "an interrupted malloc left an object"
            elif op == "free":
                try:
                    self.pool.read(h, 1)
                except InvalidHandle:
                    del self.model[h]
            elif op == "write":
                s, old = self.model[h]
                now = self.pool.read(h, s)
                assert now in (pattern(old, s), pattern(key, s)), \
                    "an interrupted write left neither the old nor the new bytes"
                self.model[h] = (s, key if now == pattern(key, s) else old)

        @invariant()
        def consistent(self):
            self.pool.check()
            assert self.pool.objects == len(self.model)

    class ZramMachine(RuleBasedStateMachine):
        """A Zram of 48 pages against ``{index: page}``."""

        NPAGES = 48

        def __init__(self):
            super().__init__()
            self.z = zsmalloc.Zram(self.NPAGES * 4096, "lz4", PoolConfig(profile=profile))
            self.model: dict = {}

        def teardown(self):
            try:
                for i in range(self.NPAGES):
                    assert self.z.read(i) == self.model.get(i, bytes(4096)), f"page {i}"
            finally:
                self.z.close()

        @staticmethod
        def _page(kind, k, rnd):
            if kind == "same":
                return (k % 256).to_bytes(1, "little") * 4096
            if kind == "huge":
                return rnd.randbytes(4096)
            return rnd.randbytes(k % 3000 + 1) + bytes(4096 - (k % 3000 + 1))

        @rule(i=st.integers(0, NPAGES - 1), kind=st.sampled_from(["same", "huge", "small"]),
              k=st.integers(0, 1 << 16), rnd=st.randoms(use_true_random=False))
        def write(self, i, kind, k, rnd):
            page = self._page(kind, k, rnd)
            before = self.z.mm_stat()
            try:
                self.z.write(i, page)
            except MemoryError:                          # over mem_limit: old data kept
                assert self.z.mm_stat().orig_data_size == before.orig_data_size
                return
            self.model[i] = page

        @rule(i=st.integers(0, NPAGES - 1))
        def read(self, i):
            assert self.z.read(i) == self.model.get(i, bytes(4096))

        @rule(i=st.integers(0, NPAGES - 1), count=st.integers(1, 8))
        def discard(self, i, count):
            count = min(count, self.NPAGES - i)
            self.z.discard(i, count)
            for j in range(i, i + count):
                self.model.pop(j, None)

        @rule()
        def compact(self):
            self.z.compact()

        @rule(pages=st.integers(0, 40))
        def mem_limit(self, pages):
            self.z.mem_limit = pages * 4096

        @precondition(lambda self: interrupts)
        @rule(i=st.integers(0, NPAGES - 1), n=st.integers(1, 300),
              rnd=st.randoms(use_true_random=False))
        def interrupted_write(self, i, n, rnd):
            """A write stopped at its n-th line of allocator code: old or new page."""
            # a unique first word: the new page cannot equal the old one (or zeros)
            page = next(_key).to_bytes(8, "little") + self._page("small", n * 7, rnd)[8:]
            try:
                with InterruptAt(n):
                    self.z.write(i, page)
            except (KeyboardInterrupt, MemoryError):
                pass
            now = self.z.read(i)
            assert now in (page, self.model.get(i, bytes(4096))), \
                "an interrupted write left neither the old nor the new page"
            if now == page:
                self.model[i] = page

        @invariant()
        def consistent(self):
            self.z.pool.check()
            m = self.z.mm_stat()
            assert m.orig_data_size == len(self.model) * 4096, (m, len(self.model))
            same = sum(1 for p in self.model.values() if p == p[:8] * 512)
            assert m.same_pages == same

    PoolMachine.__name__ = f"PoolMachine[{profile}]"
    ZramMachine.__name__ = f"ZramMachine[{profile}]"
    return PoolMachine, ZramMachine


def run_stateful(profiles, examples: int, seed: int) -> list:
    """Run each machine with ``examples`` examples; [(name, None or failure text)]."""
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test
    out = []
    for prof in profiles:
        for machine in stateful_machines(prof):
            s = settings(max_examples=examples, stateful_step_count=40, deadline=None,
                         derandomize=True, database=None, report_multiple_bugs=False,
                         suppress_health_check=list(HealthCheck))
            try:
                run_state_machine_as_test(machine, settings=s)
                out.append((machine.__name__, None))
            except Exception as e:      # hypothesis adds the shrunk steps to the message
                notes = "\n".join(getattr(e, "__notes__", []))
                out.append((machine.__name__, f"{type(e).__name__}: {e}\n{notes}"[:3000]))
    return out


# ---- command line ---------------------------------------------------------------------------

def _print_figures(f: Figures) -> None:
    rate = f.ops / f.seconds if f.seconds else 0
    print(f"\n## Threads: {f.label}\n")
    print(f"- operations: {f.ops:,} in {f.seconds:.1f} s ({rate:,.0f}/s)")
    if "Zram" in f.label:
        print(f"- writes {f.writes:,}, reads {f.reads:,}, discards {f.discards:,}")
    else:
        print(f"- mallocs {f.mallocs:,}, writes {f.writes:,}, reads {f.reads:,}, frees "
              f"{f.frees:,} ({f.frees_of_others:,} of another thread's objects)")
    print(f"- compactions {f.compactions:,} ({f.pages_compacted:,} pages freed), migrations "
          f"{f.migrations:,} ({f.migrations_refused:,} refused as busy)")
    print(f"- interrupts: {f.interrupts_sent:,} sent, {f.interrupts_raised:,} raised inside "
          f"allocator code, {f.interrupts_between_ops:,} landed between operations")
    print(f"- live {'pages' if 'Zram' in f.label else 'objects'} at the end "
          f"{f.live_objects:,}; wrong bytes {f.wrong_bytes:,}; "
          f"check(): {'passed' if not any('end:' in x for x in f.failures) else 'FAILED'}")
    print(f"- result: {'OK' if f.ok else 'FAILED'}")
    for x in f.failures[:10]:
        print("  * " + x.strip().replace("\n", "\n    "))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=200_000, help="thread operations per pool kind")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=600.0, help="time cap per pool kind")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pool", choices=("plain", "concurrent", "both"), default="both",
                    help="plain Pool()/Zram() or the concurrent=True ones (default both)")
    ap.add_argument("--target", choices=("pool", "zram", "both"), default="both",
                    help="what the threads drive (default both)")
    ap.add_argument("--profile", action="append", choices=PROFILES,
                    help="profile(s) for the stateful part (default: all)")
    ap.add_argument("--no-interrupts", action="store_true")
    ap.add_argument("--stateful-examples", type=int, default=30)
    ap.add_argument("--skip-stateful", action="store_true")
    a = ap.parse_args(argv)
    for name in ("ops", "threads", "stateful_examples"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} {getattr(a, name)} must be at least 1")
    if a.seconds <= 0:
        ap.error(f"--seconds {a.seconds} must be positive")
    print(f"# zsmalloc soak: {sys.argv[0]} {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"- core: {'compiled' if zsmalloc.COMPILED else 'pure Python'} "
          f"({zsmalloc.MODE_REASON}); {os.cpu_count()} cores; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    ok = True
    if not a.skip_stateful:
        print(f"\n## Stateful ({a.stateful_examples} examples of up to 40 steps each)\n")
        for name, err in run_stateful(a.profile or PROFILES, a.stateful_examples, a.seed):
            ok &= err is None
            print(f"- {name}: {'OK' if err is None else 'FAILED: ' + err}".rstrip()
                  .replace("\n", "\n    "))
    kinds = ("plain", "concurrent") if a.pool == "both" else (a.pool,)
    runners = {"pool": (run_threads,), "zram": (run_zram,),
               "both": (run_threads, run_zram)}[a.target]
    for run in runners:
        for kind in kinds:
            f = run(kind, a.ops, a.threads, a.seconds, a.seed, not a.no_interrupts)
            _print_figures(f)
            ok &= f.ok
    print(f"\nsoak: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
