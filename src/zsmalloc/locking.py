"""Locks with the kernel's order, and a debug mode that asserts the order.

Kernel lock order (mm/zsmalloc.c header, 6.18)::

    page_lock -> pool->lock (rwlock) -> class->lock (spinlock) -> zspage->lock (rw, preemptible)

and for 4.8 (the seed's era)::

    page_lock -> zspage migrate lock (rwlock) -> class->lock -> handle pin (bit spinlock)

Leaf locks of our own: the handle table (the kernel's slab cache) and the frame arena (the
kernel's page allocator) are taken last and never held while taking another lock.

Each lock has a *level*; with ``debug=True`` every acquisition checks that the thread holds
no lock of the same or a higher level (trylocks are exempt, as in lockdep: they cannot
deadlock), and raises :class:`LockOrderError` naming both locks otherwise.

Costs: an uncontended ``Mutex`` is one C lock (about 0.1 us); an ``RWLock`` read is a mutex
plus a counter; debug mode adds a thread-local list append/pop.
"""

from __future__ import annotations

import threading

_held = threading.local()


class LockOrderError(RuntimeError):
    """A lock taken against the documented order (debug mode)."""


def _stack():
    s = getattr(_held, "stack", None)
    if s is None:
        s = _held.stack = []
    return s


def held_locks() -> list[str]:
    """Names of the locks this thread holds (debug mode only), outermost first."""
    return [name for _, name in _stack()]


class Mutex:
    """A named, levelled mutex. Kernel: spinlock_t (class->lock) and friends."""

    __slots__ = ("name", "level", "debug", "_lock")

    def __init__(self, name: str, level: int, debug: bool = False):
        self.name, self.level, self.debug = name, level, debug
        self._lock = threading.Lock()

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; ``blocking=False`` is a trylock (exempt from the order check)."""
        if not blocking:
            return self.try_acquire()
        if self.debug:
            _check(self)
        self._lock.acquire()
        if self.debug:
            _stack().append((self.level, self.name))
        return True

    def try_acquire(self) -> bool:
        ok = self._lock.acquire(False)
        if ok and self.debug:
            _stack().append((self.level, self.name))
        return ok

    def release(self):
        if self.debug:
            _pop(self)
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def make_mutex(name: str, level: int, debug: bool = False):
    """A Mutex that checks the order when ``debug``; otherwise a bare ``threading.Lock``
    (same ``acquire(blocking)`` / ``release`` / ``with`` interface, no Python-level calls)."""
    return Mutex(name, level, True) if debug else threading.Lock()


class RWLock:
    """A named, levelled reader-writer lock, writers preferred. Kernel: rwlock_t (pool->lock).

    ``contended()`` is the kernel's ``rwlock_is_contended``: someone waits for it.
    """

    def __init__(self, name: str, level: int, debug: bool = False):
        self.name, self.level, self.debug = name, level, debug
        self._m = threading.Lock()
        self._cv = threading.Condition(self._m)
        self._readers = 0
        self._writer = False
        self._wwait = 0
        self._rwait = 0

    def acquire_read(self):
        if self.debug:
            _check(self)
        with self._m:
            if self._writer or self._wwait:
                self._rwait += 1
                while self._writer or self._wwait:
                    self._cv.wait()
                self._rwait -= 1
            self._readers += 1
        if self.debug:
            _stack().append((self.level, self.name + "(r)"))

    def release_read(self):
        if self.debug:
            _pop(self)
        with self._m:
            self._readers -= 1
            if self._readers == 0 and self._wwait:
                self._cv.notify_all()

    def acquire_write(self):
        if self.debug:
            _check(self)
        with self._m:
            self._wwait += 1
            while self._writer or self._readers:
                self._cv.wait()
            self._wwait -= 1
            self._writer = True
        if self.debug:
            _stack().append((self.level, self.name + "(w)"))

    def release_write(self):
        if self.debug:
            _pop(self)
        with self._m:
            self._writer = False
            self._cv.notify_all()

    def contended(self) -> bool:
        return bool(self._rwait or self._wwait)

    def read(self):
        return _Guard(self.acquire_read, self.release_read)

    def write(self):
        return _Guard(self.acquire_write, self.release_write)


class _Guard:
    __slots__ = ("_a", "_r")

    def __init__(self, a, r):
        self._a, self._r = a, r

    def __enter__(self):
        self._a()
        return self

    def __exit__(self, *exc):
        self._r()


def _check(lock) -> None:
    st = _stack()
    if st and st[-1][0] >= lock.level:
        raise LockOrderError(f"taking {lock.name} (level {lock.level}) while holding "
                             f"{st[-1][1]} (level {st[-1][0]}); held: {[n for _, n in st]}")


def _pop(lock) -> None:
    st = _stack()
    for i in range(len(st) - 1, -1, -1):
        if st[i][1].startswith(lock.name):
            del st[i]
            return
    raise LockOrderError(f"releasing {lock.name}, which this thread does not hold")


# levels
LVL_POOL, LVL_CLASS, LVL_ZSPAGE, LVL_LEAF = 10, 20, 30, 90          # 6.18
LVL_MIGRATE, LVL_PIN = 10, 30                                        # 4.8 (class is 20)
