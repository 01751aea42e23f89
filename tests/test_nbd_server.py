"""The NBD server over real sockets: hostile clients, limits, compaction, the CLI's life cycle.

In-process servers (a thread) for protocol abuse; ``python -m zsmalloc.nbd serve`` processes
for signals, the ready line, the socket file and argument errors.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

import pytest

import zsmalloc
from zsmalloc.nbd import NbdServer

from test_nbd_support import (CMD_FLUSH, CMD_READ, CMD_TRIM, CMD_WRITE, CMD_WRITE_ZEROES,
                              EINVAL, ENOSPC, EOVERFLOW, ESHUTDOWN, OPT_EXPORT_NAME, OPT_GO,
                              OPT_INFO, OPT_LIST, REP_ACK, REP_ERR_TOO_BIG, REP_ERR_UNSUP, SRC,
                              RawClient, ServeProcess, serve)

SIZE = 64 << 20


class InProcess:
    """An NbdServer on a unix socket, served by a thread of this process."""

    def __init__(self, tmp_path, mem_limit=0, **kw):
        self.zram = zsmalloc.Zram(SIZE, "lz4", concurrent=True)
        self.zram.mem_limit = mem_limit
        kw.setdefault("handshake_timeout", 5.0)
        kw.setdefault("shutdown_grace", 0.5)
        self.server = NbdServer(self.zram, **kw)
        self.path = str(tmp_path / "s.sock")
        self.server.listen_unix(self.path)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def client(self, structured=False) -> RawClient:
        c = RawClient(self.path)
        c.handshake(structured=structured)
        return c

    def stop(self):
        self.server.shutdown()
        self.thread.join(20)
        assert not self.thread.is_alive(), "serve_forever did not return"
        self.server.close()
        self.zram.close()
        assert not os.path.exists(self.path), "unix socket left behind"


@pytest.fixture
def srv(tmp_path):
    s = InProcess(tmp_path)
    try:
        yield s
    finally:
        s.stop()


def check_serving(srv, seed=0):
    """A fresh client can still write and read back (the server carries on)."""
    rnd = random.Random(seed)
    with srv.client() as c:
        off = rnd.randrange(SIZE // 4096 - 4) * 4096 + rnd.randrange(100)
        data = rnd.randbytes(5000)
        assert c.write(off, data) == 0
        assert c.read(off, len(data)) == data
        c.disconnect()


# -- hostile clients ---------------------------------------------------------------------------

def test_hostile_handshakes_are_closed_or_refused_and_others_carry_on(srv):
    good = srv.client()                                # stays connected through it all
    good_data = b"still here" * 500
    assert good.write(12345, good_data) == 0

    def hostile(send, expect_close=True):
        with RawClient(srv.path) as c:
            send(c)
            if expect_close:
                assert c.closed_by_server(), "server kept a broken connection open"
        assert good.read(12345, len(good_data)) == good_data

    hostile(lambda c: None, expect_close=False)        # connects, says nothing, leaves
    hostile(lambda c: (c.recv_exact(18), c.sock.sendall(b"GET / HTTP/1.1\r\n\r\n")))
    hostile(lambda c: (c.greeting(client_flags=0x80)))                 # unknown client flag
    hostile(lambda c: (c.greeting(), c.sock.sendall(b"\0" * 16)))      # bad option magic
    hostile(lambda c: (c.greeting(), c.send_option(OPT_EXPORT_NAME, length=1 << 30)))
    hostile(lambda c: (c.greeting(), c.send_option(OPT_GO, length=1 << 30),
                       c.sock.sendall(bytes(1 << 20)), c.sock.close()), expect_close=False)

    with RawClient(srv.path) as c:                     # junk options get errors, then GO works
        c.greeting()
        for o in (0, 4, 42, 0xFFFFFFFF):
            assert c.option(o, b"junk")[-1][0] == REP_ERR_UNSUP
        c.send_option(OPT_INFO, length=100 << 10)      # over the option limit: skipped
        c.sock.sendall(bytes(100 << 10))
        assert c.option_reply()[1] == REP_ERR_TOO_BIG
        assert c.option(OPT_LIST)[-1] == (REP_ACK, b"")
        assert c.option(OPT_GO, c.go_data())[-1] == (REP_ACK, b"")
        assert c.read(12345, 10) == b"still here"
    check_serving(srv)
    good.disconnect()
    good.close()


def test_hostile_requests_get_errors_and_others_carry_on(srv):
    good = srv.client()
    with srv.client() as c:
        assert c.call(CMD_READ, 0, 0)[0] == EINVAL                     # zero length
        assert c.call(CMD_READ, SIZE - 10, 20)[0] == EINVAL            # past the end
        assert c.call(CMD_WRITE, SIZE - 10, 20, data=bytes(20))[0] == ENOSPC
        assert c.call(CMD_TRIM, 1 << 62, 4096)[0] == EINVAL
        assert c.call(CMD_READ, 0, 64 << 20)[0] == EOVERFLOW           # over max payload
        assert c.call(CMD_WRITE, 0, 40 << 20, data=bytes(40 << 20))[0] == EOVERFLOW
        assert c.call(99, 0, 512)[0] == EINVAL                         # unknown command
        assert c.call(CMD_READ, 0, 512, flags=0x4000)[0] == EINVAL     # unknown flag
        assert c.call(CMD_FLUSH, 5, 0)[0] == EINVAL
        assert c.call(CMD_WRITE_ZEROES, 1, 4096, flags=16)[0] == 95    # fast zero needs RMW
        assert c.call(CMD_FLUSH)[0] == 0
        assert c.write(100, b"ok") == 0 and c.read(100, 2) == b"ok"   # same connection goes on
    with srv.client() as c:                            # bad magic: hard disconnect
        c.send_request(CMD_READ, 0, 512, magic=0x12345678)
        assert c.closed_by_server()
    with srv.client() as c:                            # a write cut off mid-payload
        c.send_request(CMD_WRITE, 0, 1 << 20, data=bytes(1000))
    stalled = srv.client()                             # a header, then silence
    stalled.send_request(CMD_WRITE, 0, 8192, data=bytes(100))
    assert good.write(0, b"x" * 9000) == 0             # not blocked by the stalled client
    assert good.read(0, 9000) == b"x" * 9000
    stalled.close()
    good.disconnect()
    good.close()
    check_serving(srv, 1)


def test_structured_replies(srv):
    with srv.client(structured=True) as c:
        assert c.write(4000, b"abc" * 1000) == 0
        assert c.read(4000, 3000) == b"abc" * 1000
        assert c.call(CMD_READ, SIZE, 1)[0] == EINVAL                  # error chunk
        assert c.call(CMD_READ, 0, 16, flags=4) == (0, bytes(16))      # DF
        c.disconnect()


def test_mem_limit_gives_enospc_and_keeps_old_data(tmp_path):
    s = InProcess(tmp_path, mem_limit=1 << 20)
    try:
        rnd = random.Random(3)
        with s.client() as c:
            old = b"keep me " * 512
            assert c.write(0, old) == 0
            errors = [c.write(4096 + i * (256 << 10), rnd.randbytes(256 << 10)) for i in range(8)]
            assert ENOSPC in errors and errors[0] == 0
            assert c.read(0, 4096) == old
            assert s.zram.io_stat().failed_writes >= 1
            assert s.zram.mm_stat().mem_used_total <= 1 << 20
            c.disconnect()
    finally:
        s.stop()


def test_connections_share_one_disk(srv):
    clients = [srv.client() for _ in range(4)]
    datas = [random.Random(k).randbytes(300_000) for k in range(4)]

    def writer(k):
        assert clients[k].write(k * 300_000, datas[k]) == 0

    ts = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for k, c in enumerate(clients):                    # each sees what the others wrote
        other = (k + 1) % 4
        assert c.read(other * 300_000, 300_000) == datas[other]
        c.disconnect()
        c.close()


def test_connection_limit_and_handshake_timeout(tmp_path):
    s = InProcess(tmp_path, max_connections=2, handshake_timeout=0.5)
    try:
        a, b = RawClient(s.path), RawClient(s.path)
        time.sleep(0.1)
        with RawClient(s.path) as c:                   # the third is closed at once
            assert c.closed_by_server(2)
        assert a.closed_by_server(3) and b.closed_by_server(3)    # silent: timed out
        a.close()
        b.close()
        time.sleep(0.1)
        check_serving(s)
    finally:
        s.stop()


def test_discards_are_compacted_in_the_background(tmp_path):
    s = InProcess(tmp_path, compact_interval=0.2)
    try:
        with s.client() as c:
            text = b"".join(b"line %d of some text that compresses\n" % i for i in range(200_000))
            data = text[:16 << 20]
            for off in range(0, len(data), 4 << 20):
                assert c.write(off, data[off:off + (4 << 20)]) == 0
            full = s.zram.mm_stat().mem_used_total
            for page in range(0, len(data) // 4096, 4):           # keep one page in four
                assert c.call(CMD_TRIM, page * 4096 + 4096, 3 * 4096)[0] == 0
            deadline = time.monotonic() + 20
            while s.zram.pool.can_compact() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert s.zram.pool.can_compact() == 0
            mm = s.zram.mm_stat()
            assert mm.pages_compacted > 0 and s.server.shrinker.runs >= 1
            assert mm.mem_used_total < full * 0.4, (full, mm)
            assert c.read(0, 4096) == data[:4096]                # what was kept is intact
            assert c.read(4 * 4096, 4096) == data[4 * 4096:5 * 4096]
            c.disconnect()
    finally:
        s.stop()


# -- the command line ---------------------------------------------------------------------------

def test_cli_ready_line_socket_mode_stats_and_sigterm(tmp_path):
    p = ServeProcess(tmp_path, "8M")
    try:
        assert p.uri == f"nbd+unix:///?socket={p.socket}"
        assert "mm_stat 0 0 0 0 0 0 0 0 0" in p.ready_line
        assert stat.S_IMODE(os.stat(p.socket).st_mode) == 0o600
        with RawClient(p.socket) as c:
            info = c.handshake(infos=(2, 3))
            assert c.size == 8 << 20
            assert b"mm_stat" in info[2] and b"io_stat" in info[2]
            assert c.write(0, b"hello" * 1000) == 0
            c.disconnect()
        os.kill(p.pid, signal.SIGUSR1)
        mm, io = p.readline(), p.readline()
        assert mm.startswith("mm_stat ") and len(mm.split()) == 10 and int(mm.split()[1]) == 8192
        assert io.startswith("io_stat ") and len(io.split()) == 5
    finally:
        rc = p.stop(signal.SIGTERM, check=False)
    assert rc == 0, p.stderr()
    assert not p.socket.exists()
    assert "Traceback" not in p.stderr()


def test_cli_sigint_and_tcp_on_loopback(tmp_path):
    p = ServeProcess(tmp_path, "1M", extra=["--name", "disk"], unix=False)
    try:
        assert p.uri.startswith("nbd://127.0.0.1:")
        with RawClient(p.address) as c:
            info = c.handshake(name="disk", infos=(1, 3))
            assert info[1] == b"disk"
            c.disconnect()
    finally:
        rc = p.stop(signal.SIGINT, check=False)
    assert rc == 0, p.stderr()


def test_cli_shutdown_answers_every_request_in_flight(tmp_path):
    p = ServeProcess(tmp_path, "64M")
    try:
        c = RawClient(p.socket, timeout=20)
        c.handshake()
        before = [c.send_request(CMD_WRITE, i << 20, 1 << 20, data=bytes([i]) * (1 << 20))
                  for i in range(16)]                   # pipelined: no reply read yet
        os.kill(p.pid, signal.SIGTERM)
        time.sleep(0.5)
        after = [c.send_request(CMD_READ, 0, 4096) for _ in range(4)]
        errors = {}
        for _ in range(20):
            handle, error, _ = c.reply({h: 4096 for h in after})
            errors[handle] = error
        assert sorted(errors) == sorted(before + after)     # every request got its reply
        assert {errors[h] for h in before} <= {0, ESHUTDOWN}
        assert errors[before[0]] == 0                       # received before: carried out
        assert [errors[h] for h in after] == [ESHUTDOWN] * 4
        c.disconnect()                                      # the client's answer to ESHUTDOWN
        c.close()
        p.proc.wait(20)
    finally:
        rc = p.stop(check=False)
    assert rc == 0, p.stderr()
    assert not p.socket.exists()


def run_cli(*args, timeout=60):
    env = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.run([sys.executable, "-m", "zsmalloc.nbd", "serve", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.parametrize("args,needle", [
    (["--size", "12X", "--unix", "S"], "'12X'"),
    (["--size", "0", "--unix", "S"], "--size 0"),
    (["--size", "1M", "--comp", "nope", "--unix", "S"], "'nope'"),
    (["--size", "1M", "--chain-size", "99", "--unix", "S"], "99"),
    (["--size", "1M", "--page-size", "5000", "--unix", "S"], "5000"),
    (["--size", "1M", "--tcp", "localhost:http"], "localhost:http"),
    (["--size", "1M", "--tcp", "127.0.0.1:99999"], "99999"),
    (["--size", "1M", "--mem-limit", "-1", "--unix", "S"], "'-1'"),
    (["--size", "1M", "--unix", "NOTSOCK"], "not a socket"),
    (["--size", "1M", "--unix", "NODIR/s"], "NODIR"),
    (["--size", "1M"], "--unix"),
])
def test_cli_bad_arguments_one_line_no_traceback(tmp_path, args, needle):
    (tmp_path / "NOTSOCK").write_text("precious")
    args = [str(tmp_path / a) if a in ("S", "NOTSOCK", "NODIR/s") else a for a in args]
    r = run_cli(*args)
    assert r.returncode == 2, r
    assert "Traceback" not in r.stderr
    assert needle in r.stderr.strip().splitlines()[-1], r.stderr
    assert (tmp_path / "NOTSOCK").read_text() == "precious"
    assert not (tmp_path / "S").exists()


def test_cli_replaces_a_stale_socket_but_not_a_live_one(tmp_path):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "nbd.sock"))
    stale.close()                                      # the file stays, nobody listens
    with serve(tmp_path, "1M") as p:
        with RawClient(p.socket) as c:
            c.handshake()
            c.disconnect()
        r = run_cli("--size", "1M", "--unix", str(p.socket))
        assert r.returncode == 2 and "already listening" in r.stderr
        with RawClient(p.socket) as c:                 # the first server was not disturbed
            c.handshake()
            c.disconnect()


def test_zsmalloc_serve_is_a_registered_subcommand():
    from zsmalloc import cli
    if "nbd.cli" not in cli._SUBCOMMAND_MODULES:
        pytest.skip("zsmalloc.cli._SUBCOMMAND_MODULES does not list 'nbd.cli' yet "
                    "(python -m zsmalloc.nbd serve is tested instead)")
    r = subprocess.run([sys.executable, "-m", "zsmalloc", "serve", "--help"], capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=SRC), timeout=60)
    assert r.returncode == 0 and "--unix" in r.stdout and "--mem-limit" in r.stdout


def test_cli_mem_limit_refuses_writes_with_enospc(tmp_path):
    with serve(tmp_path, "16M", extra=["--mem-limit", "1M"]) as p:
        with RawClient(p.socket) as c:
            c.handshake()
            old = b"old data " * 455
            assert c.write(0, old) == 0
            rnd = random.Random(9)
            errors = [c.write(4096 + i * (256 << 10), rnd.randbytes(256 << 10)) for i in range(8)]
            assert errors[0] == 0 and errors[-1] == ENOSPC
            assert c.write(0, rnd.randbytes(4095)) == ENOSPC       # refused: the old page stays
            assert c.read(0, len(old)) == old
            c.disconnect()
        os.kill(p.pid, signal.SIGUSR1)
        mm, io = p.readline().split(), p.readline().split()
        assert int(mm[4]) == 1 << 20                  # mem_limit, as mm_stat shows it
        assert int(mm[3]) <= 1 << 20                  # mem_used_total stays under it
        assert int(io[2]) >= 2                        # failed_writes
