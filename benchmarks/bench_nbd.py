"""zsmalloc serve beside nbdkit's memory plugin: copy-in speed and server RSS, with nbdcopy.

Run from the repository root (root is needed only for the fstrim section)::

    PYTHONPATH=src python benchmarks/bench_nbd.py [--mib 192] [--runs 3] [--connections 4]
        [--data PATH] [--no-fstrim] [--quick] [--markdown] [--strict]

Data: the first ``--mib`` MiB of a tar of installed Python, Perl and binaries
(``tar --sort=name`` of /usr/lib/python3*, the Perl trees and /usr/bin, made by the script
in a temporary directory, or ``--data PATH`` to reuse a file).

Servers, each started fresh for every run, runs interleaved so that machine noise spreads
over all of them:

- ``zsmalloc lz4 4K``: ``python -m zsmalloc.nbd serve --comp lz4`` (4 KiB pages)
- ``zsmalloc zstd 64K``: ``--comp zstd --page-size 65536`` (chain 8, the kernel's default)
- ``zsmalloc zstd 64K chain 4``: the same with ``--chain-size 4`` (zspages of at most
  256 KiB: less tail waste per size class when few objects are stored)
- ``nbdkit sparse``, ``nbdkit zstd``: ``nbdkit memory size=... allocator=sparse|zstd``

Each run: RSS of the server (VmRSS) once it is ready; ``nbdcopy --connections=N DATA URI``
timed (copy-in); RSS again (growth = after - before); ``nbdcopy URI OUT`` timed (copy-out),
OUT compared byte for byte with DATA; then the whole export is discarded (``qemu-io -c
'discard 0 SIZE'``) and RSS measured once more after a few seconds (what discards give
back). For zsmalloc the device's mm_stat (SIGUSR1) is kept too.

The fstrim section (root, /dev/fuse, nbdfuse, losetup, mkfs.ext4; skipped otherwise) goes
through the kernel for zsmalloc lz4 4K and both nbdkit allocators: ext4 on a loop device
over nbdfuse, the data tar extracted onto it, the files deleted, fstrim: the server's RSS
before, after the files, after fstrim (target: zsmalloc gives back at least half).

Targets (issue): lz4 4K copy-in >= nbdkit zstd's; lz4 4K RSS growth <= 0.6 x nbdkit
sparse's; zstd 64K RSS growth <= nbdkit zstd's. Exit status 0, or 1 with ``--strict``
when a target is missed or a copy does not read back identical.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Printer, Table, header_lines, summarize  # noqa: E402

import zsmalloc  # noqa: E402

MIB = 1 << 20
SRC = str(Path(zsmalloc.__file__).resolve().parent.parent)
TAR_DIRS = ["/usr/lib/python3.11", "/usr/lib/python3", "/usr/share/perl",
            "/usr/lib/x86_64-linux-gnu/perl", "/usr/lib/x86_64-linux-gnu/perl-base", "/usr/bin"]
CONFIGS = {
    "zsmalloc lz4 4K": ("zsmalloc", ["--comp", "lz4"]),
    "zsmalloc zstd 64K": ("zsmalloc", ["--comp", "zstd", "--page-size", "65536"]),
    "zsmalloc zstd 64K chain 4": ("zsmalloc", ["--comp", "zstd", "--page-size", "65536",
                                               "--chain-size", "4"]),
    "nbdkit sparse": ("nbdkit", ["allocator=sparse"]),
    "nbdkit zstd": ("nbdkit", ["allocator=zstd"]),
}
TOOLS = ("nbdcopy", "nbdkit", "qemu-io", "tar")


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def make_data(path: Path, nbytes: int) -> None:
    """The first ``nbytes`` of a tar of installed Python, Perl and binaries (zero-padded)."""
    dirs = [d for d in TAR_DIRS if os.path.isdir(d)]
    tar = subprocess.Popen(["tar", "--sort=name", "-cf", "-", *dirs], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    with open(path, "wb") as out:
        left = nbytes
        while left:
            b = tar.stdout.read(min(left, 4 * MIB))
            if not b:
                break
            out.write(b)
            left -= len(b)
        out.write(bytes(left))
    tar.stdout.close()
    tar.kill()
    tar.wait()


class Server:
    """One server process on a unix socket; ``stop()`` always ends it."""

    def __init__(self, kind: str, args: list, size: int, sock: Path):
        self.kind, self.sock = kind, sock
        if sock.exists():
            sock.unlink()
        if kind == "zsmalloc":
            cmd = [sys.executable, "-m", "zsmalloc.nbd", "serve", "--size", str(size),
                   "--unix", str(sock), *args]
            env = dict(os.environ, PYTHONPATH=SRC)
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True, env=env)
            line = self.proc.stdout.readline()
            if "ready on" not in line:
                self.stop()
                raise RuntimeError(f"zsmalloc serve did not start: {line!r}")
        else:
            cmd = ["nbdkit", "--exit-with-parent", "-f", "-U", str(sock), "memory",
                   f"size={size}", *args]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while not self._connectable():
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"nbdkit did not start: {' '.join(cmd)}")
                time.sleep(0.05)
        self.uri = f"nbd+unix:///?socket={sock}"
        self.pid = self.proc.pid

    def _connectable(self) -> bool:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(str(self.sock))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def mm_stat(self) -> list[int] | None:
        if self.kind != "zsmalloc":
            return None
        os.kill(self.pid, signal.SIGUSR1)
        line = self.proc.stdout.readline()
        self.proc.stdout.readline()                 # io_stat
        return [int(x) for x in line.split()[1:]]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def timed(*cmd) -> float:
    t = time.perf_counter()
    subprocess.run([str(c) for c in cmd], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    return time.perf_counter() - t


def same_file(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(4 * MIB), fb.read(4 * MIB)
            if x != y:
                return False
            if not x:
                return True


def one_run(name: str, data: Path, size: int, work: Path, connections: int,
            discard_wait: float = 4.0) -> dict:
    kind, args = CONFIGS[name]
    server = Server(kind, args, size, work / "bench.sock")
    try:
        time.sleep(0.5)
        r0 = rss(server.pid)
        t_in = timed("nbdcopy", f"--connections={connections}", data, server.uri)
        time.sleep(1.0)                             # let background work settle
        r1 = rss(server.pid)
        mm = server.mm_stat()
        out = work / "out.img"
        t_out = timed("nbdcopy", f"--connections={connections}", server.uri, out)
        identical = same_file(data, out)
        out.unlink()
        subprocess.run(["qemu-io", "-f", "raw", f"nbd:unix:{server.sock}", "-c",
                        f"discard 0 {size}"], check=True, capture_output=True)
        time.sleep(discard_wait)                    # zsmalloc compacts within ~2 s
        r2 = rss(server.pid)
    finally:
        server.stop()
    return {"in": size / t_in, "out": size / t_out, "growth": r1 - r0, "after_discard": r2 - r0,
            "identical": identical, "mm": mm}


FSTRIM_SERVERS = ("zsmalloc lz4 4K", "nbdkit sparse", "nbdkit zstd")


def fstrim_missing() -> str | None:
    """Why the fstrim section cannot run here, or None."""
    need = ["nbdfuse", "losetup", "mkfs.ext4", "mount", "umount", "fstrim"]
    missing = [t for t in need if shutil.which(t) is None]
    if os.geteuid() != 0 or missing or not os.path.exists("/dev/fuse"):
        return (f"needs root, /dev/fuse and {', '.join(need)} "
                f"(missing: {', '.join(missing) or 'root or /dev/fuse'})")
    return None


def fstrim_run(name: str, data: Path, size: int, work: Path) -> dict:
    """ext4 over loop over nbdfuse on ``name``: extract the tar, delete it, fstrim; RSS."""
    kind, args = CONFIGS[name]
    fuse, mnt = work / "fuse", work / "mnt"
    fuse.mkdir(exist_ok=True)
    mnt.mkdir(exist_ok=True)
    pidfile = work / "nbdfuse.pid"
    if pidfile.exists():
        pidfile.unlink()
    with ExitStack() as undo:
        server = Server(kind, args, 2 * size, work / "fstrim.sock")
        undo.callback(server.stop)
        nbdfuse = subprocess.Popen(["nbdfuse", "-P", str(pidfile), str(fuse / "disk"),
                                    "--unix", str(server.sock)], stderr=subprocess.DEVNULL)

        def stop_nbdfuse():
            if os.path.ismount(fuse):
                subprocess.run(["umount", fuse], check=False)
            try:
                nbdfuse.wait(20)
            except subprocess.TimeoutExpired:
                nbdfuse.kill()
                nbdfuse.wait()
        undo.callback(stop_nbdfuse)
        deadline = time.monotonic() + 30
        while not pidfile.exists():
            if time.monotonic() > deadline or nbdfuse.poll() is not None:
                raise RuntimeError("nbdfuse did not start")
            time.sleep(0.05)
        loop = subprocess.run(["losetup", "-f", "--show", fuse / "disk"], check=True,
                              capture_output=True, text=True).stdout.strip()
        undo.callback(lambda: subprocess.run(["losetup", "-d", loop], check=False))
        subprocess.run(["mkfs.ext4", "-q", "-F", loop], check=True)
        subprocess.run(["mount", loop, mnt], check=True)
        undo.callback(lambda: os.path.ismount(mnt) and subprocess.run(["umount", mnt], check=False))
        time.sleep(3)
        r0 = rss(server.pid)
        # the tar was cut at --mib: extract what is whole, ignore the truncation error
        subprocess.run(["tar", "-xf", data, "-C", mnt], stderr=subprocess.DEVNULL, check=False)
        subprocess.run(["sync"], check=True)
        time.sleep(1)
        r1 = rss(server.pid)
        used = int(subprocess.run(["du", "-sb", mnt], capture_output=True, text=True,
                                  check=True).stdout.split()[0])
        for p in mnt.iterdir():
            if p.name != "lost+found":
                subprocess.run(["rm", "-rf", p], check=True)
        subprocess.run(["sync"], check=True)            # ext4 frees blocks at journal commit
        subprocess.run(["fstrim", mnt], check=True)
        time.sleep(5)
        r2 = rss(server.pid)
    return {"files": used, "before": r0, "full": r1, "trimmed": r2}


def compiled_modules() -> str:
    """Which modules the servers run compiled (they decide as this process does)."""
    import zsmalloc.zram  # noqa: F401  (loads the compilable zram modules)
    try:
        from zsmalloc._mode import loaded_modes
    except ImportError:
        return "modules: unknown"
    modes = loaded_modes()
    done = sorted(m for m, c in modes.items() if c)
    return f"compiled modules: {', '.join(done) or 'none'} ({len(done)} of {len(modes)} loaded)"


def fmt_mib(v: float) -> str:
    return f"{v / MIB:,.1f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=192, help="data size in MiB (default 192)")
    ap.add_argument("--runs", type=int, default=3, help="runs per server (default 3)")
    ap.add_argument("--connections", type=int, default=4,
                    help="nbdcopy connections (default 4, nbdcopy's own default)")
    ap.add_argument("--data", type=Path, help="reuse this file as the data (its first --mib MiB)")
    ap.add_argument("--no-fstrim", action="store_true", help="skip the nbdfuse/ext4/fstrim section")
    ap.add_argument("--quick", action="store_true", help="smoke run: 8 MiB, 1 run, no fstrim")
    ap.add_argument("--markdown", action="store_true", help="print Markdown, not rich tables")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    a = ap.parse_args(argv)
    if a.quick:
        a.mib, a.runs, a.no_fstrim = 8, 1, True
    if a.mib < 1 or a.runs < 1 or a.connections < 1:
        ap.error(f"--mib {a.mib}, --runs {a.runs}, --connections {a.connections}: must be >= 1")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        print(f"bench_nbd: error: needs {', '.join(missing)} (Debian: libnbd-bin, nbdkit, "
              f"qemu-utils)", file=sys.stderr)
        return 2
    size = a.mib * MIB
    out = Printer(markdown=a.markdown)
    cmd = "PYTHONPATH=src python benchmarks/bench_nbd.py " + " ".join(argv or sys.argv[1:])
    out.heading("Machine")
    out.text("\n".join(header_lines(cmd.strip())))
    out.text(f"- zsmalloc: {'compiled' if zsmalloc.COMPILED else 'pure Python'} "
             f"({zsmalloc.MODE_REASON}); {compiled_modules()}")
    out.text(f"- clients and peer: {subprocess.run(['nbdcopy', '--version'], capture_output=True, text=True).stdout.splitlines()[0]}, "
             f"{subprocess.run(['nbdkit', '--version'], capture_output=True, text=True).stdout.strip()}")

    with tempfile.TemporaryDirectory(prefix="bench_nbd.") as tmp:
        work = Path(tmp)
        data = work / "data.tar"
        if a.data:
            with open(a.data, "rb") as src, open(data, "wb") as dst:
                dst.write(src.read(size).ljust(size, b"\0"))
        else:
            make_data(data, size)
        out.heading("Data")
        out.text(f"{a.mib} MiB: the first {a.mib} MiB of `tar --sort=name` of "
                 f"{', '.join(d for d in TAR_DIRS if os.path.isdir(d))}"
                 if not a.data else f"{a.mib} MiB from {a.data}")

        results = {name: [] for name in CONFIGS}
        for run in range(a.runs):
            for name in CONFIGS:
                results[name].append(one_run(name, data, size, work, a.connections,
                                             2.5 if a.quick else 4.0))

        out.heading("Copy in, copy out, memory")
        t = Table(f"{a.mib} MiB with nbdcopy --connections={a.connections}, median of {a.runs} "
                  f"(min..max)",
                  ["server", "copy-in MB/s", "copy-out MB/s", "RSS growth MiB",
                   "RSS after discard MiB", "read back identical"],
                  note="RSS growth: server VmRSS after copy-in minus before; after discard: "
                       "still above the start once the whole export was discarded.")
        med = {}
        for name, rs in results.items():
            s_in = summarize([r["in"] for r in rs])
            s_out = summarize([r["out"] for r in rs])
            s_g = summarize([r["growth"] for r in rs])
            s_d = summarize([r["after_discard"] for r in rs])
            med[name] = (s_in.median, s_g.median)
            t.add(name, s_in.fmt(0, 1e6), s_out.fmt(0, 1e6), s_g.fmt(1, MIB), s_d.fmt(1, MIB),
                  "yes" if all(r["identical"] for r in rs) else "NO")
        out.table(t)
        zt = Table("zsmalloc devices after copy-in (mm_stat, last run)",
                   ["server", "orig_data_size MiB", "compr_data_size MiB",
                    "mem_used_total MiB", "huge_pages", "same_pages"])
        for name, rs in results.items():
            mm = rs[-1]["mm"]
            if mm:
                zt.add(name, fmt_mib(mm[0]), fmt_mib(mm[1]), fmt_mib(mm[2]), mm[7], mm[5])
        out.table(zt)

        checks = [
            ("copy-in: zsmalloc lz4 4K / nbdkit zstd", med["zsmalloc lz4 4K"][0]
             / med["nbdkit zstd"][0], ">= 1.0", lambda x: x >= 1.0),
            ("RSS growth: zsmalloc lz4 4K / nbdkit sparse", med["zsmalloc lz4 4K"][1]
             / med["nbdkit sparse"][1], "<= 0.6", lambda x: x <= 0.6),
            ("RSS growth: zsmalloc zstd 64K / nbdkit zstd", med["zsmalloc zstd 64K"][1]
             / med["nbdkit zstd"][1], "<= 1.0", lambda x: x <= 1.0),
            ("RSS growth: zsmalloc zstd 64K chain 4 / nbdkit zstd",
             med["zsmalloc zstd 64K chain 4"][1] / med["nbdkit zstd"][1], "<= 1.0",
             lambda x: x <= 1.0),
        ]
        out.heading("Targets")
        tt = Table("ratios of medians", ["figure", "ratio", "target", "met"])
        ok = all(r["identical"] for rs in results.values() for r in rs)
        for label, ratio, target, test in checks:
            met = test(ratio)
            ok &= met
            tt.add(label, f"{ratio:.2f}", target, "yes" if met else "NO")
        out.table(tt)

        out.heading("Deleting files gives memory back (ext4 over nbdfuse and loop, fstrim)")
        why = "--no-fstrim" if a.no_fstrim else fstrim_missing()
        if why:
            out.text(f"Skipped: {why}.")
        else:
            ft = Table(f"the data tar extracted onto ext4 (disk {2 * a.mib} MiB), deleted, "
                       f"fstrim; server VmRSS",
                       ["server", "files MiB", "RSS before MiB", "after the files MiB",
                        "after rm + fstrim MiB", "given back"])
            for name in FSTRIM_SERVERS:
                f = fstrim_run(name, data, size, work)
                added, back = f["full"] - f["before"], f["full"] - f["trimmed"]
                ft.add(name, fmt_mib(f["files"]), fmt_mib(f["before"]), fmt_mib(f["full"]),
                       fmt_mib(f["trimmed"]), f"{100 * back / added:.0f} % of +{fmt_mib(added)}")
                if name.startswith("zsmalloc"):
                    ok &= back >= added / 2
            out.table(ft)
    return 0 if ok or not a.strict else 1


if __name__ == "__main__":
    sys.exit(main())
