"""The kernel oracle never touches a device a user configured.

A user's /dev/zram0 is configured as a user would (disksize, a few pages written with
O_DIRECT, the device closed again so a stray reset would succeed and show). Then the
project's kernel tests (in a child pytest), a KernelZram session and ``zsmalloc conform``
run; afterwards zram0's disksize, algorithm, mm_stat and every written byte must be as they
were, and no zram device may be left over. When zram0 is absent or already configured by
someone, a hot-added stand-in plays the user's device instead (and a warning says so): the
check is the same, only the name differs. The device is put back as it was after (reset if
we configured zram0, hot-removed if it is the stand-in).
"""

import mmap
import os
import random
import subprocess
import sys
import time
import warnings

import pytest

from zsmalloc.zram.kernel import KernelZram, hot_add, hot_remove, kernel_available

pytestmark = pytest.mark.kernel

PAGE = 4096
USER_PAGES = 24
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _attr(dev, name):
    with open(f"/sys/block/{dev}/{name}") as f:
        return f.read().strip()


def _put_attr(dev, name, value):
    with open(f"/sys/block/{dev}/{name}", "w") as f:
        f.write(value)


def _zram_devices():
    return {d for d in os.listdir("/sys/block") if d.startswith("zram")}


def _user_pages():
    """Pages a user might store: text-like, random, zero-filled and same-filled."""
    rng = random.Random(2024)
    out = []
    for i in range(USER_PAGES):
        kind = i % 4
        if kind == 0:
            out.append((b"user data %d " % i * 400)[:PAGE])
        elif kind == 1:
            out.append(rng.randbytes(PAGE))
        elif kind == 2:
            out.append(bytes(PAGE))
        else:
            out.append(bytes([i]) * PAGE)
    return out


def _direct_io(dev, pages=None):
    """Write ``pages`` to /dev/``dev`` (O_DIRECT, in order) or, without them, read back
    USER_PAGES pages. The device is closed again on return."""
    buf = mmap.mmap(-1, PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # aligned
    fd = os.open(f"/dev/{dev}", os.O_RDWR | os.O_DIRECT)
    try:
        if pages is not None:
            for i, pg in enumerate(pages):
                buf[:] = pg
                assert os.pwrite(fd, buf, i * PAGE) == PAGE
            return None
        got = []
        for i in range(USER_PAGES):
            assert os.preadv(fd, [buf], i * PAGE) == PAGE
            got.append(bytes(buf))
        return got
    finally:
        os.close(fd)
        buf.close()


@pytest.fixture
def user_device():
    """zram0 configured as a user would, or a hot-added stand-in; put back after."""
    ok, why = kernel_available()
    if not ok:
        pytest.skip(why)
    zram0_free = os.path.isdir("/sys/block/zram0") and kernel_available("zram0")[0] \
        and _attr("zram0", "disksize") == "0"
    if zram0_free:
        dev, stand_in = "zram0", False
    else:
        why = ("absent" if not os.path.isdir("/sys/block/zram0") else
               "configured or in use by someone else")
        dev, stand_in = hot_add(), True
        warnings.warn(f"/dev/zram0 is {why}: a hot-added stand-in /dev/{dev} plays the "
                      f"user's device")
    try:
        algos = _attr(dev, "comp_algorithm").replace("[", " ").replace("]", " ").split()
        _put_attr(dev, "comp_algorithm", "lzo" if "lzo" in algos else algos[0])
        _put_attr(dev, "disksize", str(32 << 20))
        pages = _user_pages()
        _direct_io(dev, pages)
        yield dev, pages
    finally:
        if stand_in:
            hot_remove(dev)
        else:
            _put_attr(dev, "reset", "1")      # as it was: unconfigured


def _state(dev):
    return {"disksize": _attr(dev, "disksize"), "comp_algorithm": _attr(dev, "comp_algorithm"),
            "mm_stat": _attr(dev, "mm_stat"), "io_stat": _attr(dev, "io_stat")}


def test_kernel_oracle_leaves_a_users_device_untouched(user_device, capsys):
    dev, pages = user_device
    before = _state(dev)
    devices_before = _zram_devices()
    assert _direct_io(dev) == pages
    assert int(before["disksize"]) == 32 << 20 and int(before["mm_stat"].split()[0]) > 0

    # 1. the project's kernel tests, as CI runs them (a child pytest, this file left out)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    cp = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                         "-m", "kernel", "tests/test_kernel_oracle.py"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr[-2000:]
    assert " passed" in cp.stdout and "skipped" not in cp.stdout.splitlines()[-1], cp.stdout[-500:]
    assert _state(dev) == before, "changed by the kernel tests"

    # 2. a KernelZram session of its own: writes, reads, discard, compact, mem_limit
    rng = random.Random(7)
    with KernelZram(8 << 20, "lz4") as kz:
        assert kz.device != dev
        for i in range(64):
            kz.write(i, rng.randbytes(700) + bytes(PAGE - 700))
        kz.read(3)
        kz.discard(0, 16)
        kz.compact()
        kz.set_mem_limit(1 << 20)
        kz.reset_mem_used_max()
    assert _state(dev) == before, "changed by a KernelZram session"

    # 3. `zsmalloc conform` for a few hundred operations
    from zsmalloc.cli import main
    assert main(["conform", "--ops", "300"]) == 0
    assert "zero divergences" in capsys.readouterr().out
    assert _state(dev) == before, "changed by zsmalloc conform"
    assert _direct_io(dev) == pages
    # other engineers' tests may hot-add devices of their own meanwhile: a leak of ours
    # stays, theirs go within seconds
    deadline = time.monotonic() + 15
    while _zram_devices() - devices_before and time.monotonic() < deadline:
        time.sleep(0.2)
    extra = _zram_devices() - devices_before
    assert not extra, f"zram device(s) left behind: {sorted(extra)}"
