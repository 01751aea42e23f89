"""Helpers for the NBD tests (no tests here): a raw NBD client written from the spec
independently of zsmalloc.nbd.protocol, a server subprocess that is always stopped, and
small probes (RSS, tools).

The raw client speaks bytes directly so tests can also send what no real client would.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import zsmalloc

NBDMAGIC = b"NBDMAGIC"
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
STRUCTURED_MAGIC = 0x668E33EF
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO, OPT_STRUCTURED = 1, 2, 3, 5, 6, 7, 8
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
REP_ERR_UNSUP, REP_ERR_POLICY, REP_ERR_INVALID = (1 << 31) + 1, (1 << 31) + 2, (1 << 31) + 3
REP_ERR_SHUTDOWN, REP_ERR_TOO_BIG = (1 << 31) + 7, (1 << 31) + 9
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_CACHE, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = range(8)
FLAG_FUA, FLAG_NO_HOLE, FLAG_DF, FLAG_FAST_ZERO = 1, 2, 4, 16
EIO, EINVAL, ENOSPC, EOVERFLOW, ENOTSUP, ESHUTDOWN = 5, 22, 28, 75, 95, 108

SRC = str(Path(zsmalloc.__file__).resolve().parent.parent)   # the tree under test


class RawClient:
    """A minimal NBD client over a connected socket (unix path or (host, port))."""

    def __init__(self, address, timeout: float = 10.0):
        if isinstance(address, (str, Path)):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(str(address))
        else:
            self.sock = socket.create_connection(address, timeout=timeout)
        self.structured = False
        self.size = None
        self.flags = None
        self.handshake_flags = None
        self._handle = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- bytes ------------------------------------------------------------------------------
    def recv_exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            b = self.sock.recv(n - len(out))
            if not b:
                raise ConnectionError(f"server closed after {len(out)} of {n} bytes")
            out += b
        return bytes(out)

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection (EOF or reset) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    # -- handshake ----------------------------------------------------------------------------
    def greeting(self, client_flags: int = 3) -> int:
        g = self.recv_exact(18)
        assert g[:16] == NBDMAGIC + struct.pack(">Q", IHAVEOPT), g
        self.handshake_flags = struct.unpack(">H", g[16:])[0]
        self.sock.sendall(struct.pack(">I", client_flags))
        return self.handshake_flags

    def send_option(self, opt: int, data: bytes = b"", length: int | None = None) -> None:
        self.sock.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data) if length is None else length)
                          + data)

    def option_reply(self):
        magic, opt, rtype, n = struct.unpack(">QIII", self.recv_exact(20))
        assert magic == OPT_REPLY_MAGIC, hex(magic)
        return opt, rtype, self.recv_exact(n)

    def option(self, opt: int, data: bytes = b""):
        """Send an option; return its replies up to the final one, as (type, data) pairs."""
        self.send_option(opt, data)
        out = []
        while True:
            o, rtype, d = self.option_reply()
            assert o == opt
            out.append((rtype, d))
            if rtype != REP_SERVER and rtype != REP_INFO:
                return out

    @staticmethod
    def go_data(name: str = "", infos=(3,)) -> bytes:
        n = name.encode()
        return struct.pack(">I", len(n)) + n + struct.pack(f">H{len(infos)}H", len(infos), *infos)

    def handshake(self, structured: bool = False, name: str = "", infos=(3,)) -> dict:
        """Greeting, optional STRUCTURED_REPLY, then GO; returns the INFO replies by type."""
        self.greeting()
        if structured:
            assert self.option(OPT_STRUCTURED) == [(REP_ACK, b"")]
            self.structured = True
        replies = self.option(OPT_GO, self.go_data(name, infos))
        assert replies[-1] == (REP_ACK, b""), replies
        info = {}
        for rtype, d in replies[:-1]:
            assert rtype == REP_INFO
            info[struct.unpack(">H", d[:2])[0]] = d[2:]
        self.size, self.flags = struct.unpack(">QH", info[0])
        return info

    # -- transmission -------------------------------------------------------------------------
    def send_request(self, cmd: int, offset: int = 0, length: int = 0, flags: int = 0,
                     data: bytes = b"", handle: int | None = None, magic: int = REQUEST_MAGIC) -> int:
        if handle is None:
            self._handle += 1
            handle = self._handle
        self.sock.sendall(struct.pack(">IHHQQI", magic, flags, cmd, handle, offset, length) + data)
        return handle

    def reply(self, read_length=0):
        """One reply: (handle, error, data). Structured: chunks until DONE, data reassembled.

        ``read_length``: the data length a simple reply carries on success (READ), or a dict
        from handle to that length when requests of several kinds are in flight.
        """
        magic = struct.unpack(">I", self.recv_exact(4))[0]
        if magic == SIMPLE_MAGIC:
            error, handle = struct.unpack(">IQ", self.recv_exact(12))
            if isinstance(read_length, dict):
                read_length = read_length.get(handle, 0)
            data = self.recv_exact(read_length) if read_length and not error else b""
            return handle, error, data
        assert magic == STRUCTURED_MAGIC, hex(magic)
        data, error = bytearray(), 0
        while True:
            flags, rtype, handle, n = struct.unpack(">HHQI", self.recv_exact(16))
            payload = self.recv_exact(n)
            if rtype == 1:                       # OFFSET_DATA
                data += payload[8:]
            elif rtype & 0x8000:                 # error chunk
                error = struct.unpack(">I", payload[:4])[0]
            if flags & 1:
                return handle, error, bytes(data)
            assert struct.unpack(">I", self.recv_exact(4))[0] == STRUCTURED_MAGIC

    def call(self, cmd: int, offset: int = 0, length: int = 0, flags: int = 0, data: bytes = b""):
        """Send one request and wait for its reply: (error, data)."""
        h = self.send_request(cmd, offset, length, flags, data)
        handle, error, out = self.reply(length if cmd == CMD_READ else 0)
        assert handle == h
        return error, out

    def read(self, offset: int, length: int) -> bytes:
        error, data = self.call(CMD_READ, offset, length)
        assert error == 0, error
        return data

    def write(self, offset: int, data: bytes) -> int:
        return self.call(CMD_WRITE, offset, len(data), data=data)[0]

    def disconnect(self):
        self.send_request(CMD_DISC)


# -- the server as a process ------------------------------------------------------------------

class ServeProcess:
    """``python -m zsmalloc.nbd serve ...`` running; ``stop()`` sends a signal and waits."""

    def __init__(self, tmp_path: Path, size: str = "64M", extra=(), unix: bool = True):
        self.tmp = Path(tmp_path)
        self.socket = self.tmp / "nbd.sock"
        self.stderr_path = self.tmp / "serve.stderr"
        where = ["--unix", str(self.socket)] if unix else ["--tcp", "127.0.0.1:0"]
        self.args = [sys.executable, "-m", "zsmalloc.nbd", "serve", "--size", size, *where, *extra]
        env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self._err, env=env,
                                     text=True)
        self.ready_line = self._readline(60)
        if "ready on " not in self.ready_line:
            self.stop(check=False)
            raise AssertionError(f"no ready line: {self.ready_line!r}; stderr: {self.stderr()}")
        self.uri = self.ready_line.split("ready on ", 1)[1].split(" ", 1)[0]
        self.pid = self.proc.pid

    def _readline(self, timeout: float) -> str:
        out = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return out[0] if out else ""

    def readline(self, timeout: float = 10.0) -> str:
        return self._readline(timeout)

    @property
    def address(self):
        if self.uri.startswith("nbd+unix"):
            return self.socket
        host, port = self.uri[len("nbd://"):].rsplit(":", 1)
        return host, int(port)

    def stderr(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.stderr_path.read_text(errors="replace")

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def stop(self, sig=signal.SIGTERM, timeout: float = 30.0, check: bool = True) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    raise AssertionError(f"server ignored signal {sig} for {timeout} s")
        self.proc.stdout.close()
        self._err.close()
        rc = self.proc.returncode
        if check:
            assert rc == 0, f"server exited {rc}; stderr:\n{self.stderr()}"
        return rc


@contextmanager
def serve(tmp_path, size: str = "64M", extra=(), unix: bool = True):
    """A running server for the ``with`` block; stopped (SIGTERM, exit 0 checked) after."""
    p = ServeProcess(tmp_path, size, extra, unix)
    ok = False
    try:
        yield p
        ok = True
    finally:
        p.stop(check=ok)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def need_tools(*names):
    """pytest skip marker listing the tools that are missing from PATH."""
    import pytest
    missing = [n for n in names if shutil.which(n) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (Debian: "
                              f"libnbd-bin, qemu-utils, fio, nbdkit, e2fsprogs)")


def test_data(n: int, seed: int = 1) -> bytes:
    """``n`` bytes mixing real binaries (compressible code), zeros, a same-filled run and
    random bytes (incompressible: huge pages), so every kind of zram slot is exercised."""
    import random
    rnd = random.Random(seed)
    real = bytearray()
    for d in ("/usr/bin", "/usr/lib/x86_64-linux-gnu"):
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                p = os.path.join(d, name)
                if os.path.isfile(p) and not os.path.islink(p):
                    with open(p, "rb") as f:
                        real += f.read(256 << 10)
                if len(real) >= n:
                    break
        if len(real) >= n:
            break
    out = bytearray()
    parts = [lambda k: real[len(out) % max(1, len(real) - k):][:k], lambda k: bytes(k),
             lambda k: b"\xab" * k, lambda k: rnd.randbytes(k)]
    while len(out) < n:
        k = rnd.choice((4096, 8192, 65536, 300000))
        out += parts[rnd.choice((0, 0, 0, 1, 2, 3))](k)[:k].ljust(k, b"\0")
    return bytes(out[:n])


test_data.__test__ = False     # a helper, not a test
