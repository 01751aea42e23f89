"""Locks: the one lock-order block, and the lock policies a pool is given.

Lock order (Kernel: the "lock ordering" comment of mm/zsmalloc.c; 4.8 from the 2016 patch)::

    6.18    page lock -> pool->lock (rwlock) -> class->lock -> zspage->lock (rw)
    4.8     [isolation] -> zspage migrate lock (rw) -> class->lock -> handle pin (tried only)
            zs_free and zs_map_object take the pin first, blocking; migration and compaction
            only ever *try* it, so they cannot deadlock against them.
    tuned   class "single allocator" lock -> class->lock (then as 6.18)
    zram    slot lock -> the zsmalloc locks above -> [leaf: device statistics]
    leaves  the handle table (the kernel's zs_handle slab) and the frame arena (the page
            allocator): taken last, never held while taking another lock.

Which locks are taken where (the same code paths for every policy; a policy decides what each
hook does)::

    op          6.18                                      4.8
    malloc      class; dropped around alloc_zspage        same
    free        pool(r) -> class, pool dropped            pin -> migrate(r) -> class
    read/write  pool(r) -> zspage(r), pool dropped        pin -> migrate(r)
    compact     pool(w) -> class -> zspage(w) *try*       class; handles *try*-pinned
    migrate     page -> pool(w) -> class -> zspage(w) try isolate -> migrate(w) -> class -> try pins

Policies, chosen once per pool from ``concurrent=`` and the profile:

``Atomic`` (the default)
    Each public operation is one step that no other thread can enter. Compiled on a CPython
    with a GIL, a compiled operation that runs no Python code is already atomic: the policy
    only keeps a busy flag, which turns re-entry (a signal handler or finalizer calling into
    the pool mid-operation) into a clear RuntimeError and makes a thread that got in through
    a switch the core did not expect wait. Pure Python (or a free-threaded build): one mutex
    per pool around each operation. Any thread may call; the kernel's finer locks are not
    modelled.
``Kernel618``, ``Kernel48``, ``Tuned`` (``concurrent=True``)
    The kernel's locks in the kernel's order, for studying them: threads interleave wherever
    the kernel would let them (at a dropped lock, a contended rwlock, a compaction yield).
    ``lock_debug=True`` asserts the order on every acquisition (``LockOrderError``).

Trylocks cannot deadlock and are exempt from the order check, as in lockdep.
Costs: Atomic compiled, three stores an operation; pure, one uncontended mutex. The kernel
policies: one Python lock call per lock taken (about 0.1 us).
"""

import sys
import threading

import cython

_held = threading.local()
_STRIPES = 64                 # per-zspage locks are striped: a lock object per zspage would
                              # cost more than the zspage's row

# levels (the order above); a lock may only be taken when every held lock has a lower level
LVL_SLOT = 3                  # zram's slot lock (ZRAM_ENTRY_LOCK), before any zsmalloc lock
LVL_PIN_BLOCKING = 5          # 4.8: zs_free / zs_map_object pin first
LVL_POOL = 10                 # 6.18 pool->lock; 4.8 migrate lock (same rank)
LVL_MIGRATE = 10
LVL_ALLOC_SINGLE = 15         # tuned: one allocator per class
LVL_CLASS = 20
LVL_ZSPAGE = 30
LVL_PIN = 30
LVL_LEAF = 90
LVL_STATS = 95                # zram's counters (atomics in the kernel)
_SLOT_STRIPES = 256


class LockOrderError(RuntimeError):
    """A lock taken against the documented order (lock_debug mode)."""


def _stack():
    s = getattr(_held, "stack", None)
    if s is None:
        s = _held.stack = []
    return s


def held_locks() -> list:
    """Names of the locks this thread holds (lock_debug mode only), outermost first."""
    return [name for _, name in _stack()]


def _check_order(name: str, level: int) -> None:
    st = _stack()
    if st:
        top = st[len(st) - 1]          # (no negative indices: wraparound is off here)
        if top[0] >= level:
            raise LockOrderError(f"taking {name} (level {level}) while holding {top[1]} "
                                 f"(level {top[0]}); held: {[n for _, n in st]}")


def _pop(name: str) -> None:
    st = _stack()
    for i in range(len(st) - 1, -1, -1):
        if st[i][1].startswith(name):
            del st[i]
            return
    raise LockOrderError(f"releasing {name}, which this thread does not hold")


class Mutex:
    """A named, levelled mutex that checks the order (lock_debug). Kernel: spinlock_t."""

    def __init__(self, name: str, level: int, debug: bool = True):
        self.name, self.level, self.debug = name, level, debug
        self._lock = threading.Lock()

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; ``blocking=False`` is a trylock (exempt from the order check)."""
        if not blocking:
            return self.try_acquire()
        if self.debug:
            _check_order(self.name, self.level)
        self._lock.acquire()
        if self.debug:
            _stack().append((self.level, self.name))
        return True

    def try_acquire(self) -> bool:
        ok = self._lock.acquire(False)
        if ok and self.debug:
            _stack().append((self.level, self.name))
        return ok

    def release(self) -> None:
        if self.debug:
            _pop(self.name)
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def make_mutex(name: str, level: int, debug: bool = False):
    """A Mutex that checks the order when ``debug``; otherwise a bare threading.Lock (same
    interface, no Python-level calls)."""
    return Mutex(name, level, True) if debug else threading.Lock()


class RWLock:
    """A named, levelled reader-writer lock, writers preferred. Kernel: rwlock_t.
    ``contended()`` is the kernel's rwlock_is_contended: someone waits for it."""

    def __init__(self, name: str, level: int, debug: bool = False):
        self.name, self.level, self.debug = name, level, debug
        self._m = threading.Lock()
        self._cv = threading.Condition(self._m)
        self._readers = 0
        self._writer = False
        self._wwait = 0
        self._rwait = 0

    def acquire_read(self) -> None:
        if self.debug:
            _check_order(self.name, self.level)
        with self._m:
            if self._writer or self._wwait:
                self._rwait += 1
                while self._writer or self._wwait:
                    self._cv.wait()
                self._rwait -= 1
            self._readers += 1
        if self.debug:
            _stack().append((self.level, self.name + "(r)"))

    def release_read(self) -> None:
        if self.debug:
            _pop(self.name)
        with self._m:
            self._readers -= 1
            if self._readers == 0 and self._wwait:
                self._cv.notify_all()

    def acquire_write(self) -> None:
        if self.debug:
            _check_order(self.name, self.level)
        with self._m:
            self._wwait += 1
            while self._writer or self._readers:
                self._cv.wait()
            self._wwait -= 1
            self._writer = True
        if self.debug:
            _stack().append((self.level, self.name + "(w)"))

    def release_write(self) -> None:
        if self.debug:
            _pop(self.name)
        with self._m:
            self._writer = False
            self._cv.notify_all()

    def try_acquire_write(self) -> bool:
        with self._m:
            if self._writer or self._readers:
                return False
            self._writer = True
        if self.debug:
            _stack().append((self.level, self.name + "(w)"))
        return True

    def contended(self) -> bool:
        return bool(self._rwait or self._wwait)


class PinTable:
    """Handle pins (4.8: the bit spinlock in the handle word; a user's ``pin_handle`` too).
    ``pin`` blocks while another pin is held; ``trypin`` never blocks."""

    def __init__(self):
        self._m = threading.Lock()
        self._cv = threading.Condition(self._m)
        self.pins = {}            # row -> count

    def pin(self, row) -> None:
        with self._m:
            while row in self.pins:
                self._cv.wait()
            self.pins[row] = 1

    def trypin(self, row) -> bool:
        with self._m:
            if row in self.pins:
                return False
            self.pins[row] = 1
            return True

    def add(self, row) -> None:
        """A user's pin (zs_map_object held open): counted, never blocks."""
        with self._m:
            self.pins[row] = self.pins.get(row, 0) + 1

    def unpin(self, row) -> cython.int:
        with self._m:
            n = self.pins.get(row, 0)
            if n <= 1:
                self.pins.pop(row, None)
            else:
                self.pins[row] = n - 1
            self._cv.notify_all()
        return 0

    def pinned(self, row) -> bool:
        return row in self.pins


def _thread_id() -> cython.ulong:
    """This thread's identifier (the C call when compiled: no Python call on the way)."""
    if cython.compiled:
        return PyThread_get_thread_ident()
    else:
        return threading.get_ident()


def _gil_enabled() -> bool:
    f = getattr(sys, "_is_gil_enabled", None)
    return True if f is None else bool(f())


# ---------------------------------------------------------------------------------------
# policies
# ---------------------------------------------------------------------------------------

class LockPolicy:
    """The hooks the core calls at fixed points of each operation; every one a no-op here."""

    def __init__(self):
        self.name = "none"
        self.pins = None
        self.fine = False

    # every public operation
    def op_enter(self) -> cython.int: return 0
    def op_exit(self) -> cython.int: return 0

    def operation(self):
        """``with policy.operation():`` -- one public operation, for Python-level callers
        (maintenance, front-ends); compiled core code calls op_enter/op_exit."""
        return _Operation(self)

    def _enter(self) -> None:
        self.op_enter()

    def _exit(self) -> None:
        self.op_exit()
    # the leaf lock (handle table, frame arena)
    def leaf_lock(self) -> cython.int: return 0
    def leaf_unlock(self) -> cython.int: return 0
    # zs_malloc's class lock
    def class_lock(self, pos: cython.Py_ssize_t) -> cython.int: return 0
    def class_unlock(self, pos: cython.Py_ssize_t) -> cython.int: return 0
    # zs_free: enter(row), lookup, locked(z, pos), obj_free..., exit
    def free_enter(self, row: cython.Py_ssize_t) -> cython.int: return 0
    def free_locked(self, z: cython.Py_ssize_t, pos: cython.Py_ssize_t) -> cython.int: return 0
    def free_exit(self, z: cython.Py_ssize_t, pos: cython.Py_ssize_t, row: cython.Py_ssize_t) -> cython.int: return 0
    def free_abort(self, row: cython.Py_ssize_t) -> cython.int: return 0
    # object access: enter(row), lookup, locked(z), copy, exit
    def access_enter(self, row: cython.Py_ssize_t) -> cython.int: return 0
    def access_locked(self, z: cython.Py_ssize_t) -> cython.int: return 0
    def access_exit(self, z: cython.Py_ssize_t, row: cython.Py_ssize_t) -> cython.int: return 0
    def access_abort(self, row: cython.Py_ssize_t) -> cython.int: return 0
    # compaction
    def compaction_begin(self) -> cython.bint: return True
    def compaction_end(self) -> cython.int: return 0
    def compact_class_lock(self, pos: cython.Py_ssize_t) -> cython.int: return 0
    def compact_class_unlock(self, pos: cython.Py_ssize_t) -> cython.int: return 0
    def compaction_contended(self) -> cython.bint: return False
    def compaction_yield(self, pos: cython.Py_ssize_t) -> cython.int: return 0
    def zspage_write_trylock(self, z: cython.Py_ssize_t) -> cython.bint: return True
    def zspage_write_unlock(self, z: cython.Py_ssize_t) -> cython.int: return 0
    def trypin(self, row: cython.Py_ssize_t) -> cython.bint: return True
    def unpin(self, row: cython.Py_ssize_t) -> cython.int: return 0
    # page migration (after the page lock, which is a frame flag set under the leaf lock)
    def migrate_lock(self, z: cython.Py_ssize_t, pos: cython.Py_ssize_t) -> cython.int: return 0
    def migrate_unlock(self, z: cython.Py_ssize_t, pos: cython.Py_ssize_t) -> cython.int: return 0
    # tuned: one allocator per class at a time
    def alloc_single_lock(self, pos: cython.Py_ssize_t) -> cython.int: return 0
    def alloc_single_unlock(self, pos: cython.Py_ssize_t) -> cython.int: return 0
    # zram: the slot lock and the device counters
    def slot_lock(self, index: cython.Py_ssize_t) -> cython.int: return 0
    def slot_unlock(self, index: cython.Py_ssize_t) -> cython.int: return 0
    def stats_lock(self) -> cython.int: return 0
    def stats_unlock(self) -> cython.int: return 0


class _ZramLocks:
    """zram's own locks for the kernel policies: striped slot locks and the counters'."""

    def __init__(self, debug: bool):
        self.slots = [make_mutex(f"zram-slot[{i}]", LVL_SLOT, debug) for i in range(_SLOT_STRIPES)]
        self.stats = make_mutex("zram-stats", LVL_STATS, debug)


class _Operation:
    __slots__ = ("policy",)

    def __init__(self, policy):
        self.policy = policy

    def __enter__(self):
        self.policy._enter()
        return self

    def __exit__(self, *exc):
        self.policy._exit()
        return False


class Atomic(LockPolicy):
    """Each public operation runs alone (see the module docstring)."""

    def __init__(self, nclasses: int = 0, pinning: bool = False):
        LockPolicy.__init__(self)
        self.name = "atomic"
        self.busy = False
        self.owner = 0
        self.use_mutex = not cython.compiled or not _gil_enabled()
        self._mutex = threading.Lock()
        self.pins = PinTable() if pinning else None

    def op_enter(self) -> cython.int:
        if self.use_mutex:
            if not self._mutex.acquire(False):
                self._contended()
        else:
            if self.busy:
                self._contended()
            self.busy = True
        self.owner = _thread_id()
        return 0

    def op_exit(self) -> cython.int:
        if self.use_mutex:
            self.owner = 0
            self._mutex.release()
        else:
            self.busy = False
        return 0

    def _contended(self) -> cython.int:
        me = _thread_id()
        if self.use_mutex:
            if self.owner == me:
                raise RuntimeError("pool re-entered from the thread using it (a signal handler "
                                   "or finalizer called into it mid-operation)")
            self._mutex.acquire()
            return 0
        if self.owner == me:
            raise RuntimeError("pool re-entered from the thread using it (a signal handler "
                               "or finalizer called into it mid-operation)")
        while self.busy:                     # another thread got in: let it finish
            _yield_cpu()
        return 0

    def trypin(self, row: cython.Py_ssize_t) -> cython.bint:
        return self.pins is None or not self.pins.pinned(row)


def _yield_cpu() -> None:
    """Let other threads run (releases the GIL when compiled). Kernel: cond_resched."""
    with cython.nogil:
        pass


class KernelLocks(LockPolicy):
    """What every kernel policy takes the same way: class spinlocks, the leaf (slab + page
    allocator), zram's slot and statistics locks, one compaction at a time."""

    def __init__(self, name: str, nclasses: int, debug: bool):
        LockPolicy.__init__(self)
        self.name = name
        self.fine = True
        self.debug = debug
        self.classes = [make_mutex(f"class[{i}]->lock", LVL_CLASS, debug) for i in range(nclasses)]
        self.leaf = make_mutex("alloc-leaf (slab + page allocator)", LVL_LEAF, debug)
        self.compacting = threading.Lock()
        self.zram = _ZramLocks(debug)

    def slot_lock(self, index: cython.Py_ssize_t) -> cython.int:
        self.zram.slots[index % _SLOT_STRIPES].acquire()
        return 0

    def slot_unlock(self, index: cython.Py_ssize_t) -> cython.int:
        self.zram.slots[index % _SLOT_STRIPES].release()
        return 0

    def stats_lock(self) -> cython.int:
        self.zram.stats.acquire()
        return 0

    def stats_unlock(self) -> cython.int:
        self.zram.stats.release()
        return 0

    def leaf_lock(self) -> cython.int:
        self.leaf.acquire()
        return 0

    def leaf_unlock(self) -> cython.int:
        self.leaf.release()
        return 0

    def class_lock(self, pos: cython.Py_ssize_t) -> cython.int:
        self.classes[pos].acquire()
        return 0

    def class_unlock(self, pos: cython.Py_ssize_t) -> cython.int:
        self.classes[pos].release()
        return 0

    def compaction_begin(self) -> cython.bint:
        return self.compacting.acquire(False)

    def compaction_end(self) -> cython.int:
        self.compacting.release()
        return 0


class Kernel618(KernelLocks):
    """The 6.18 locks: pool rwlock, class spinlocks, zspage rw locks (striped), leaf."""

    def __init__(self, nclasses: int, debug: bool = False, pinning: bool = False):
        KernelLocks.__init__(self, "6.18", nclasses, debug)
        self.pool = RWLock("pool->lock", LVL_POOL, debug)
        self.stripes = [make_mutex(f"zspage-lock[{i}]", LVL_ZSPAGE, debug) for i in range(_STRIPES)]
        self.readers = {}                    # zspage -> readers (-1: a writer)
        self.pins = PinTable() if pinning else None

    def free_enter(self, row: cython.Py_ssize_t) -> cython.int:
        self.pool.acquire_read()
        return 0

    def free_locked(self, z: cython.Py_ssize_t, pos: cython.Py_ssize_t) -> cython.int:
        self.classes[pos].acquire()
        self.pool.release_read()
        return 0

    def free_exit(self, z: cython.Py_ssize_t, pos: cython.Py_ssize_t, row: cython.Py_ssize_t) -> cython.int:
        self.classes[pos].release()
        return 0

    def free_abort(self, row: cython.Py_ssize_t) -> cython.int:
        self.pool.release_read()
        return 0

    def _zspage_read_lock(self, z) -> None:
        with self.stripes[z % _STRIPES]:
            self.readers[z] = self.readers.get(z, 0) + 1

    def _zspage_read_unlock(self, z) -> None:
        with self.stripes[z % _STRIPES]:
            n = self.readers[z] - 1
            if n:
                self.readers[z] = n
            else:
                del self.readers[z]

    def access_enter(self, row: cython.Py_ssize_t) -> cython.int:
        self.pool.acquire_read()
        return 0

    def access_locked(self, z: cython.Py_ssize_t) -> cython.int:
        self._zspage_read_lock(z)
        self.pool.release_read()
        return 0

    def access_exit(self, z: cython.Py_ssize_t, row: cython.Py_ssize_t) -> cython.int:
        self._zspage_read_unlock(z)
        return 0

    def access_abort(self, row: cython.Py_ssize_t) -> cython.int:
        self.pool.release_read()
        return 0

    def compact_class_lock(self, pos: cython.Py_ssize_t) -> cython.int:
        self.pool.acquire_write()
        self.classes[pos].acquire()
        return 0

    def compact_class_unlock(self, pos: cython.Py_ssize_t) -> cython.int:
        self.classes[pos].release()
        self.pool.release_write()
        return 0

    def compaction_contended(self) -> cython.bint:
        return self.pool.contended()

    def compaction_yield(self, pos: cython.Py_ssize_t) -> cython.int:
        self.compact_class_unlock(pos)
        _yield_cpu()
        self.compact_class_lock(pos)
        return 0

    def zspage_write_trylock(self, z: cython.Py_ssize_t) -> cython.bint:
        st = self.stripes[z % _STRIPES]
        if not st.acquire(False):
            return False
        try:
            if self.readers.get(z, 0):
                return False
            self.readers[z] = -1
            return True
        finally:
            st.release()

    def zspage_write_unlock(self, z: cython.Py_ssize_t) -> cython.int:
        with self.stripes[z % _STRIPES]:
            self.readers.pop(z, None)
        return 0

    def migrate_lock(self, z: cython.Py_ssize_t, pos: cython.Py_ssize_t) -> cython.int:
        self.pool.acquire_write()
        self.classes[pos].acquire()
        return 0

    def migrate_unlock(self, z: cython.Py_ssize_t, pos: cython.Py_ssize_t) -> cython.int:
        self.classes[pos].release()
        self.pool.release_write()
        return 0

    def trypin(self, row: cython.Py_ssize_t) -> cython.bint:
        return self.pins is None or not self.pins.pinned(row)


class Tuned(Kernel618):
    """6.18's locks plus one allocator per class at a time (the fix for the seed's race)."""

    def __init__(self, nclasses: int, debug: bool = False, pinning: bool = False):
        Kernel618.__init__(self, nclasses, debug, pinning)
        self.name = "tuned"
        self.single = [make_mutex(f"class[{i}]->alloc", LVL_ALLOC_SINGLE, debug)
                       for i in range(nclasses)]

    def alloc_single_lock(self, pos: cython.Py_ssize_t) -> cython.int:
        self.single[pos].acquire()
        return 0

    def alloc_single_unlock(self, pos: cython.Py_ssize_t) -> cython.int:
        self.single[pos].release()
        return 0


class Kernel48(KernelLocks):
    """The 4.8 locks: handle pins, per-zspage migrate rwlocks (striped), class spinlocks."""

    def __init__(self, nclasses: int, debug: bool = False, pinning: bool = True):
        KernelLocks.__init__(self, "4.8", nclasses, debug)
        self.migrate = [RWLock(f"zspage-migrate[{i}]", LVL_MIGRATE, debug) for i in range(_STRIPES)]
        self.pins = PinTable()

    def free_enter(self, row: cython.Py_ssize_t) -> cython.int:
        self.pins.pin(row)
        return 0

    def free_locked(self, z: cython.Py_ssize_t, pos: cython.Py_ssize_t) -> cython.int:
        self.migrate[z % _STRIPES].acquire_read()
        self.classes[pos].acquire()
        return 0

    def free_exit(self, z: cython.Py_ssize_t, pos: cython.Py_ssize_t, row: cython.Py_ssize_t) -> cython.int:
        self.classes[pos].release()
        self.migrate[z % _STRIPES].release_read()
        self.pins.unpin(row)
        return 0

    def free_abort(self, row: cython.Py_ssize_t) -> cython.int:
        self.pins.unpin(row)
        return 0

    def access_enter(self, row: cython.Py_ssize_t) -> cython.int:
        self.pins.pin(row)
        return 0

    def access_locked(self, z: cython.Py_ssize_t) -> cython.int:
        self.migrate[z % _STRIPES].acquire_read()
        return 0

    def access_exit(self, z: cython.Py_ssize_t, row: cython.Py_ssize_t) -> cython.int:
        self.migrate[z % _STRIPES].release_read()
        self.pins.unpin(row)
        return 0

    def access_abort(self, row: cython.Py_ssize_t) -> cython.int:
        self.pins.unpin(row)
        return 0

    def compact_class_lock(self, pos: cython.Py_ssize_t) -> cython.int:
        self.classes[pos].acquire()
        return 0

    def compact_class_unlock(self, pos: cython.Py_ssize_t) -> cython.int:
        self.classes[pos].release()
        return 0

    def compaction_yield(self, pos: cython.Py_ssize_t) -> cython.int:
        self.classes[pos].release()
        _yield_cpu()
        self.classes[pos].acquire()
        return 0

    def trypin(self, row: cython.Py_ssize_t) -> cython.bint:
        return self.pins.trypin(row)

    def unpin(self, row: cython.Py_ssize_t) -> cython.int:
        self.pins.unpin(row)
        return 0

    def migrate_lock(self, z: cython.Py_ssize_t, pos: cython.Py_ssize_t) -> cython.int:
        self.migrate[z % _STRIPES].acquire_write()
        self.classes[pos].acquire()
        return 0

    def migrate_unlock(self, z: cython.Py_ssize_t, pos: cython.Py_ssize_t) -> cython.int:
        self.classes[pos].release()
        self.migrate[z % _STRIPES].release_write()
        return 0


def make_policy(profile: str, nclasses: int, concurrent: bool, debug: bool = False) -> LockPolicy:
    """The policy for a pool: Atomic unless ``concurrent``; then the profile's kernel locks."""
    pinning = profile == "linux-4.8"
    if not concurrent:
        if debug:
            raise ValueError("lock_debug=True needs concurrent=True (the kernel's locks)")
        return Atomic(nclasses, pinning)
    if profile == "linux-4.8":
        return Kernel48(nclasses, debug)
    if profile == "tuned":
        return Tuned(nclasses, debug)
    return Kernel618(nclasses, debug)
