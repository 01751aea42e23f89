"""The kernel as a client: ext4 on a loop device over an nbdfuse file served by zsmalloc serve.

nbdfuse -> losetup -> mkfs.ext4 -> mount -> copy a tree -> umount -> e2fsck clean -> mount
again -> compare -> delete, fstrim -> the server's RSS falls back by at least half of what
the files added (discards reach zram, the background compactor frees the zspages).

Needs root, /dev/fuse and nbdfuse, losetup, mkfs.ext4, e2fsck, fstrim; skips naming what is
missing. Every mount, loop device and process is undone, also on failure.
"""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from test_nbd_support import ServeProcess, need_tools

TREES = ["/usr/lib/python3.11", "/usr/share/perl", "/usr/lib/python3"]

pytestmark = [
    need_tools("nbdfuse", "losetup", "mkfs.ext4", "e2fsck", "fstrim", "mount", "umount", "diff"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (losetup, mount)"),
    pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse"),
]


def run(*cmd, timeout=300, check=True):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {r.returncode}: "
                             f"{r.stdout[-1500:]} {r.stderr[-1500:]}")
    return r


def umount(path: Path) -> None:
    if os.path.ismount(path):
        if run("umount", path, check=False).returncode != 0:
            run("umount", "-l", path, check=False)     # never leave it mounted


def wait_for(pred, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_ext4_over_nbdfuse_and_loop_then_fstrim_returns_memory(tmp_path):
    src = next((Path(t) for t in TREES if os.path.isdir(t)), None)
    if src is None:
        pytest.skip(f"no tree to copy among {TREES}")
    fuse_dir, mnt = tmp_path / "fuse", tmp_path / "mnt"
    fuse_dir.mkdir()
    mnt.mkdir()
    with ExitStack() as undo:
        server = ServeProcess(tmp_path, "512M", extra=["--compact-interval", "0.5"])
        undo.callback(server.stop)                       # checks the exit code: 0

        nbdfuse = subprocess.Popen(["nbdfuse", "-P", str(tmp_path / "nbdfuse.pid"),
                                    str(fuse_dir / "disk"), "--unix", str(server.socket)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def stop_nbdfuse():
            umount(fuse_dir)                             # nbdfuse exits when unmounted
            try:
                nbdfuse.wait(20)
            except subprocess.TimeoutExpired:
                nbdfuse.kill()
                nbdfuse.wait()
        undo.callback(stop_nbdfuse)
        wait_for(lambda: (tmp_path / "nbdfuse.pid").exists() or nbdfuse.poll() is not None,
                 30, "nbdfuse to start")
        assert nbdfuse.poll() is None, nbdfuse.stderr.read()
        assert (fuse_dir / "disk").stat().st_size == 512 << 20

        loop = run("losetup", "-f", "--show", fuse_dir / "disk").stdout.strip()
        undo.callback(lambda: run("losetup", "-d", loop, check=False))
        run("mkfs.ext4", "-q", "-F", loop)
        run("mount", loop, mnt)
        undo.callback(umount, mnt)
        time.sleep(1.5)                                  # mkfs's discards: let compaction settle
        rss_before = server.rss()

        run("cp", "-a", src, mnt / "tree")
        run("sync")
        rss_full = server.rss()
        added = rss_full - rss_before
        assert added > 5 << 20, f"copying {src} added only {added} bytes of RSS"

        umount(mnt)
        fsck = run("e2fsck", "-f", "-n", loop, check=False)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        run("mount", loop, mnt)
        run("diff", "-r", "--no-dereference", src, mnt / "tree")

        run("rm", "-rf", mnt / "tree")
        run("sync")                                      # ext4 frees blocks at journal commit
        run("fstrim", mnt)
        target = rss_full - added // 2
        try:
            wait_for(lambda: server.rss() <= target, 30, "the server's RSS to fall", 0.25)
        except AssertionError:
            raise AssertionError(f"RSS before {rss_before}, after copy {rss_full}, after "
                                 f"fstrim {server.rss()}: fell by less than half of {added}")
        time.sleep(1)
        print(f"\nserver RSS: {rss_before >> 10} KiB before the copy of {src}, "
              f"{rss_full >> 10} KiB after it (+{added >> 10}), {server.rss() >> 10} KiB "
              f"after rm + fstrim (given back {(rss_full - server.rss()) * 100 // added} %)")
