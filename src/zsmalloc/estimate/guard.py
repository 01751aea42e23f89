"""Undo-safe critical sections: stop a process for a while, and hold Ctrl-C until a safe point.

:class:`Frozen` stops a process (SIGSTOP through its pidfd) and lets it run again on the way
out, unless it was already stopped. :class:`DeferredSignals` turns SIGINT, SIGTERM and
SIGHUP into a flag that :meth:`DeferredSignals.checkpoint` raises as ``KeyboardInterrupt``,
so a signal can never land between "changed something" and "registered how to undo it",
nor in the middle of the undoing.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from .procfs import ProcessAccessError, ProcessGone, state

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DeferredSignals:
    """Record SIGINT/SIGTERM/SIGHUP instead of acting on them; raise at checkpoints and on exit.

    Only the main thread can install handlers; elsewhere this is a no-op shell (signals act
    as usual). Nesting is allowed: an inner section leaves the outer one's handlers alone.
    """

    def __init__(self):
        self.pending = None
        self._old = {}

    def __enter__(self) -> "DeferredSignals":
        if threading.current_thread() is threading.main_thread():
            for s in _SIGNALS:
                self._old[s] = signal.signal(s, self._record)
        return self

    def _record(self, signum, frame) -> None:
        if self.pending is None:
            self.pending = signum

    def checkpoint(self) -> None:
        """Raise ``KeyboardInterrupt`` if a signal arrived."""
        if self.pending is not None:
            raise KeyboardInterrupt(f"{signal.Signals(self.pending).name} received")

    def __exit__(self, exc_type, exc, tb) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()
        if exc_type is None:
            self.checkpoint()


def _thread_states(pid: int) -> list:
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        raise ProcessGone(f"process {pid} does not exist (or exited)") from None
    out = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                text = f.read()
        except OSError:
            continue          # a thread that just exited
        out.append(text[text.rindex(")") + 2])
    return out


class Frozen:
    """``with Frozen(pid, pidfd):`` the process is stopped (every thread) inside the block.

    Kernel: do_signal_stop. Waits until every thread shows state T (stopped) or t (traced);
    a process that does not stop within ``timeout`` seconds (e.g. init, which ignores
    SIGSTOP) is let go and reported with ProcessAccessError. A process that was stopped
    before stays stopped afterwards.
    """

    def __init__(self, pid: int, pidfd: int, timeout: float = 5.0):
        self.pid = pid
        self.pidfd = pidfd
        self.timeout = timeout
        self.was_stopped = False
        self._sent = False

    def __enter__(self) -> "Frozen":
        st = state(self.pid)
        if st == "Z":
            raise ProcessGone(f"process {self.pid} is a zombie (it has exited)")
        if st in "Tt":
            self.was_stopped = True
            return self
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGSTOP)
        except ProcessLookupError:
            raise ProcessGone(f"process {self.pid} exited") from None
        except PermissionError:
            raise ProcessAccessError(f"no permission to stop process {self.pid} "
                                     f"(run as root or as its owner, or use --no-freeze)") from None
        self._sent = True
        deadline = time.monotonic() + self.timeout
        delay = 0.0005
        while True:
            states = _thread_states(self.pid)
            if not states or "Z" in states[:1]:
                self._thaw()
                raise ProcessGone(f"process {self.pid} exited")
            if all(s in "Tt" for s in states):
                return self
            if time.monotonic() > deadline:
                self._thaw()
                raise ProcessAccessError(
                    f"process {self.pid} did not stop within {self.timeout:g} s "
                    f"(states {''.join(sorted(set(states)))}); use --no-freeze to scan it running")
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    def _thaw(self) -> None:
        if self._sent:
            self._sent = False
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def __exit__(self, *exc) -> None:
        self._thaw()
