"""The soak (benchmarks/soak.py) as tests.

The long runs are marked ``slow`` (``pytest --run-slow``): hypothesis state machines for a
Pool and a Zram of every profile against a dict model, with and without interrupts stopping
an operation mid-way; threads freeing each other's objects while compaction, migration and
the deferred-free worker run, on a plain and a concurrent Pool; threads writing, reading
and discarding zram pages under random Ctrl-C; and the acceptance run,
10**6 operations with 8 threads and random Ctrl-C. The quick tests here check the soak
itself: that it notices a planted corruption, a leak and a lost free, so its passing means
something.
"""

import importlib.util
import os
import sys

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from zsmalloc import PROFILES

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "benchmarks", "soak.py")
_spec = importlib.util.spec_from_file_location("zsmalloc_soak", _PATH)
soak = importlib.util.module_from_spec(_spec)
sys.modules["zsmalloc_soak"] = soak          # dataclasses look their module up there
_spec.loader.exec_module(soak)


def _settings(examples, steps=40, shrink=True):
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    derandomize=True, database=None, report_multiple_bugs=False,
                    suppress_health_check=list(HealthCheck), phases=phases)


class _Faulty:
    """A pool that misbehaves once, after ``after`` calls of ``method``: reads return a
    flipped byte, frees do nothing (a leak), or mallocs hand out a handle twice."""

    def __init__(self, pool, method, after):
        self._pool, self._method, self._left = pool, method, after
        self._last = None

    def __getattr__(self, name):
        return getattr(self._pool, name)

    def _due(self, method):
        if method != self._method:
            return False
        self._left -= 1
        return self._left == 0

    def read(self, h, n=None):
        out = self._pool.read(h, n)
        if self._due("read") and out:
            out = bytes([out[0] ^ 1]) + out[1:]
        return out

    def free(self, h):
        if not self._due("free"):
            self._pool.free(h)


# ---- quick: the soak's checks can fail -------------------------------------------------------

@pytest.mark.parametrize("method", ["read", "free"])
def test_stateful_machine_notices_a_planted_fault(monkeypatch, method):
    real = soak.Pool
    monkeypatch.setattr(soak, "Pool", lambda *a, **k: _Faulty(real(*a, **k), method, 3))
    machine = soak.stateful_machines("linux-6.18", interrupts=False)[0]
    with pytest.raises(AssertionError):
        run_state_machine_as_test(machine, settings=_settings(30, shrink=False))


@pytest.mark.parametrize("method", ["read", "free"])
def test_thread_soak_notices_a_planted_fault(method):
    """A flipped byte on read is counted; a free that does nothing is a leak at the end."""
    pool = _Faulty(soak.make_pool("concurrent", "linux-6.18"), method, 50)
    fig = soak.ThreadSoak(pool, "faulty", 3000, 2, 30, 1, interrupts=False).run()
    assert not fig.ok
    if method == "read":
        assert fig.wrong_bytes >= 1
    else:
        assert any("holds" in f and "objects" in f for f in fig.failures), fig.failures


def test_interrupt_at_stops_allocator_code_at_a_chosen_line():
    """The deterministic Ctrl-C: it fires inside allocator code written in Python (always
    in pure mode); a compiled core has no lines to stop at, and then it does not fire."""
    import zsmalloc
    pool = soak.Pool()
    try:
        try:
            with soak.InterruptAt(3) as ia:
                pool.malloc(100)
        except KeyboardInterrupt as e:
            assert ia.fired and "injected at" in str(e)
        else:
            assert not ia.fired
        if not zsmalloc.COMPILED:
            assert ia.fired
    finally:
        pool.close()


# ---- slow: the soak itself --------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("which", [0, 1], ids=["pool", "zram"])
@pytest.mark.parametrize("profile", PROFILES)
def test_stateful(profile, which):
    run_state_machine_as_test(soak.stateful_machines(profile, interrupts=False)[which],
                              settings=_settings(60))


@pytest.mark.slow
@pytest.mark.parametrize("which", [0, 1], ids=["pool", "zram"])
@pytest.mark.parametrize("profile", PROFILES)
def test_stateful_with_interrupts(profile, which):
    run_state_machine_as_test(soak.stateful_machines(profile, interrupts=True)[which],
                              settings=_settings(60))


def _assert_ok(fig):
    assert fig.ok, "\n".join([f"{fig.label}: {fig.ops} ops, wrong bytes {fig.wrong_bytes}"]
                             + fig.failures[:5])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "concurrent"])
def test_threads_free_each_others_objects(kind):
    _assert_ok(soak.run_threads(kind, 100_000, 4, 120, seed=3, interrupts=False))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "concurrent"])
def test_threads_with_random_ctrl_c(kind):
    _assert_ok(soak.run_threads(kind, 100_000, 4, 120, seed=4, interrupts=True))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "concurrent"])
def test_zram_threads_with_random_ctrl_c(kind):
    """Each thread its own slots; an interrupted write leaves the old or the new page."""
    _assert_ok(soak.run_zram(kind, 100_000, 4, 120, seed=5, interrupts=True))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "concurrent"])
def test_acceptance_a_million_operations_8_threads_random_ctrl_c(kind):
    fig = soak.run_threads(kind, 1_000_000, 8, 1800, seed=1, interrupts=True)
    _assert_ok(fig)
    assert fig.ops == 1_000_000 and fig.interrupts_sent > 0
