"""Safe points: where a long operation lets Python signal handlers run (Ctrl-C).

A KeyboardInterrupt, or any exception a signal handler raises, must never land in the middle
of a list move, a compaction step or a migration. Python runs signal handlers only between
bytecodes, in the main thread:

* Compiled, a core step is C code that runs no bytecode, so no handler runs inside it. Long
  operations (compaction, arena packing) call ``point()`` between steps, where
  everything is consistent: there ``PyErr_CheckSignals`` runs pending handlers, and an
  exception they raise propagates from that point.
* Pure Python, a handler could run between any two bytecodes. ``deferred()`` (main thread
  only) replaces every Python-level signal handler with one that only records the signal,
  and ``point()`` runs the recorded ones; leaving the block restores the handlers and runs
  whatever arrived. The short operations (malloc, free, read, write) are not covered in pure
  mode: pure mode is for debugging (docs/design.md).
"""

import signal
import threading

import cython


class _Deferral:
    """The pure-mode handler swap (see the module docstring)."""

    def __init__(self):
        self.saved = {}
        self.pending = []

    def __enter__(self):
        if cython.compiled or threading.current_thread() is not threading.main_thread():
            return self
        for sig in signal.valid_signals():
            try:
                h = signal.getsignal(sig)
            except (OSError, ValueError):
                continue
            if callable(h):
                self.saved[sig] = h
                signal.signal(sig, self._record)
        return self

    def _record(self, signum, frame):
        self.pending.append((signum, frame))

    def point(self) -> None:
        """Run the handlers of signals that arrived so far (they may raise)."""
        if cython.compiled:
            PyErr_CheckSignals()
        elif self.pending:
            todo, self.pending = self.pending, []
            for signum, frame in todo:
                self.saved[signum](signum, frame)

    def __exit__(self, *exc):
        for sig, h in self.saved.items():
            signal.signal(sig, h)
        self.saved = {}
        if self.pending and exc[0] is None:
            self.point_saved()
        return False

    def point_saved(self) -> None:
        todo, self.pending = self.pending, []
        for signum, frame in todo:
            h = signal.getsignal(signum)
            if callable(h):
                h(signum, frame)


def deferred() -> _Deferral:
    """``with deferred() as safe: ... safe.point() ...`` around a long operation."""
    return _Deferral()
