"""The socket loop around the protocol machine: listen, accept, one thread a connection.

Each connection's thread moves bytes between its socket and a
:class:`~zsmalloc.nbd.protocol.ServerConnection` and carries out the requests that come out
of it on the shared :class:`~zsmalloc.nbd.disk.ZramDisk`; all protocol decisions are the
machine's. Requests on one connection run in order; connections run side by side (the
export says CAN_MULTI_CONN: there is no cache, so every write is visible to every
connection once it is answered).

Stopping (:meth:`NbdServer.shutdown`, safe from a signal handler): the listeners close at
once and a unix socket file is removed; each connection finishes the request it is
carrying out and those already received, answers later ones with ESHUTDOWN (options with
ERR_SHUTDOWN), and is closed when its client disconnects or after ``shutdown_grace``
seconds.

Limits: at most ``max_connections`` connections (more are closed at accept), and a client
has ``handshake_timeout`` seconds to finish the handshake.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import stat
import threading
import time

from . import constants as C
from .disk import NotFast, ZramDisk
from .protocol import NEED_DATA, Disconnect, Export, ServerConnection
from .shrinker import Shrinker

log = logging.getLogger("zsmalloc.nbd")

_RECV_SIZE = 256 << 10
_SMALL = 64 << 10          # replies up to this size go out in one send


def describe(zram) -> str:
    """One line for NBD_INFO_DESCRIPTION: the device and its live mm_stat and io_stat."""
    mm = " ".join(str(zram.mm_stat()).split())       # the sysfs lines, spaces squeezed
    io = " ".join(str(zram.io_stat()).split())
    return (f"zsmalloc zram {zram.disksize} bytes {zram.comp_algorithm} page "
            f"{zram.page_size}; mm_stat {mm}; io_stat {io}")


def parse_hostport(text: str) -> tuple[str, int]:
    """'HOST:PORT', '[V6ADDR]:PORT', ':PORT' or 'PORT' -> (host, port); no host means
    127.0.0.1 (loopback unless told otherwise). ValueError naming the text."""
    host, sep, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--tcp {text!r}: expected HOST:PORT with a port 0..65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "127.0.0.1", int(port)


class NbdServer:
    """Serves one Zram as one NBD export on any number of listening sockets."""

    def __init__(self, zram, *, export_name: str = "", compact: bool = True,
                 compact_interval: float = 2.0, max_connections: int = 64,
                 handshake_timeout: float = 30.0, shutdown_grace: float = 2.0):
        self.zram = zram
        self.disk = ZramDisk(zram)
        self.export = Export(size=self.disk.size, name=export_name,
                             preferred_block=zram.page_size,
                             description=lambda: describe(zram))
        self.shrinker = Shrinker(zram, interval=compact_interval) if compact else None
        if self.shrinker is not None:
            self.disk.on_discard = self.shrinker.kick
        self.max_connections = max_connections
        self.handshake_timeout = handshake_timeout
        self.shutdown_grace = shutdown_grace
        self.addresses: list[str] = []
        self._listeners: list[tuple[socket.socket, str | None]] = []
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[threading.Thread, socket.socket] = {}
        self.connections_total = 0
        self.connections_refused = 0

    # -- listening ----------------------------------------------------------------------

    def listen_unix(self, path: str) -> str:
        """Listen on a unix socket created with mode 0600; returns its NBD URI."""
        path = os.path.abspath(path)
        _remove_stale_socket(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)          # the file is born 0600: no window with wider modes
        try:
            s.bind(path)
        except OSError as e:
            s.close()
            raise OSError(e.errno, f"--unix {path}: {e.strerror}") from None
        finally:
            os.umask(old)
        s.listen(64)
        self._listeners.append((s, path))
        uri = f"nbd+unix:///?socket={path}"
        self.addresses.append(uri)
        return uri

    def listen_tcp(self, host: str = "127.0.0.1", port: int = 10809) -> str:
        """Listen on TCP (loopback unless told otherwise); returns its NBD URI."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            s = socket.create_server((host, port), family=family, backlog=64)
        except OSError as e:
            raise OSError(e.errno, f"--tcp {host}:{port}: {e.strerror}") from None
        port = s.getsockname()[1]
        self._listeners.append((s, None))
        uri = f"nbd://[{host}]:{port}" if family == socket.AF_INET6 else f"nbd://{host}:{port}"
        self.addresses.append(uri)
        return uri

    # -- running ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop serving (thread- and signal-safe); serve_forever() then returns."""
        self._stopping.set()
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def serve_forever(self) -> None:
        """Accept and serve until shutdown(); then stop every connection and return."""
        if not self._listeners:
            raise ValueError("serve_forever() before listen_unix() / listen_tcp()")
        if self.shrinker is not None:
            self.shrinker.start()
        poller = select.poll()
        by_fd = {}
        for s, _ in self._listeners:
            s.setblocking(False)
            poller.register(s, select.POLLIN)
            by_fd[s.fileno()] = s
        poller.register(self._wake_r, select.POLLIN)
        try:
            while not self._stopping.is_set():
                for fd, _ in poller.poll():
                    s = by_fd.get(fd)
                    if s is not None and not self._stopping.is_set():
                        self._accept(s)
        finally:
            self._close_listeners()
            self._stop_connections()
            if self.shrinker is not None:
                self.shrinker.stop()

    def close(self) -> None:
        """Release the listeners and the wake pipe (after serve_forever, or instead of it)."""
        self._close_listeners()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def _close_listeners(self) -> None:
        for s, path in self._listeners:
            s.close()
            if path is not None:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        self._listeners.clear()

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, peer = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as e:          # e.g. EMFILE: keep serving the connections we have
            log.warning("accept failed: %s", e)
            time.sleep(0.05)
            return
        with self._lock:
            if len(self._conns) >= self.max_connections:
                self.connections_refused += 1
                log.warning("refused a connection: %d already open", len(self._conns))
                sock.close()
                return
            self.connections_total += 1
            t = threading.Thread(target=self._serve_connection, args=(sock,),
                                 name=f"nbd-conn-{self.connections_total}", daemon=True)
            self._conns[t] = sock
        sock.setblocking(True)
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t.start()

    def _stop_connections(self) -> None:
        with self._lock:
            threads = list(self._conns)
        deadline = time.monotonic() + self.shutdown_grace + 1.0
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            stuck = list(self._conns.items())
        for t, sock in stuck:         # a client that reads no replies: cut it off
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t, _ in stuck:
            t.join(5.0)

    # -- one connection -----------------------------------------------------------------

    def _serve_connection(self, sock: socket.socket) -> None:
        core = ServerConnection(self.export)
        buf = bytearray(_RECV_SIZE)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        handshake_until = time.monotonic() + self.handshake_timeout
        stop_at = None
        try:
            while True:
                ev = core.next_event()
                _send(sock, core.data_to_send())
                if ev is NEED_DATA:
                    if self._stopping.is_set() and stop_at is None:
                        core.start_shutdown()
                        stop_at = time.monotonic() + self.shutdown_grace
                        poller.unregister(self._wake_r)
                        continue       # requests already received now get ESHUTDOWN
                    until = stop_at
                    if not core.in_transmission:
                        until = handshake_until if until is None else min(until, handshake_until)
                    if not _receive(core, sock, poller, buf, until):
                        log.info("closing a connection: %s", "shutdown grace over"
                                 if stop_at is not None else "handshake timed out")
                        break
                    continue
                if isinstance(ev, Disconnect):
                    (log.debug if ev.clean else log.info)("connection closed: %s", ev.reason)
                    break
                self._execute(core, ev)
                _send(sock, core.data_to_send())
        except (ConnectionError, TimeoutError) as e:
            log.info("connection lost: %s", e)
        except OSError as e:
            log.warning("connection failed: %s", e)
        except Exception:             # never let one connection take the server down
            log.exception("connection failed")
        finally:
            sock.close()
            with self._lock:
                self._conns.pop(threading.current_thread(), None)

    def _execute(self, core: ServerConnection, req) -> None:
        """Carry out one checked request on the disk and queue its reply."""
        disk, cmd = self.disk, req.command
        try:
            if cmd == C.CMD_READ:
                core.reply_read(req, disk.pread(req.offset, req.length))
                return
            if cmd == C.CMD_WRITE:
                disk.pwrite(req.offset, req.data)
            elif cmd == C.CMD_TRIM:
                disk.trim(req.offset, req.length)
            elif cmd == C.CMD_WRITE_ZEROES:
                disk.write_zeroes(req.offset, req.length,
                                  no_hole=bool(req.flags & C.CMD_FLAG_NO_HOLE),
                                  fast=bool(req.flags & C.CMD_FLAG_FAST_ZERO))
            else:                      # FLUSH (FUA needs nothing: writes land before replies)
                disk.flush()
            core.reply(req)
        except MemoryError as e:       # the device's mem_limit: the old data stays
            core.reply(req, C.ENOSPC, str(e))
        except NotFast as e:
            core.reply(req, C.ENOTSUP, str(e))
        except ValueError as e:
            core.reply(req, C.EINVAL, str(e))
        except Exception as e:         # e.g. a page that does not decompress
            log.warning("NBD_CMD_%s at %d+%d failed: %s", req.name, req.offset, req.length, e)
            core.reply(req, C.EIO, f"{type(e).__name__}: {e}")


def _receive(core: ServerConnection, sock: socket.socket, poller, buf: bytearray,
             until: float | None) -> bool:
    """Wait for bytes (or the wake pipe) and feed them to ``core``; False once ``until``
    passes with nothing read. A write payload is received straight into its own buffer."""
    timeout = None if until is None else max(0.0, until - time.monotonic())
    ready = poller.poll(None if timeout is None else int(timeout * 1000) + 1)
    if not any(fd == sock.fileno() for fd, _ in ready):
        return until is None or time.monotonic() < until
    direct = core.recv_buffer()
    if direct is not None:
        with direct:
            n = sock.recv_into(direct)
        core.received(n)
    else:
        n = sock.recv_into(buf)
        core.receive_data(memoryview(buf)[:n])
    return True


def _send(sock: socket.socket, chunks: list) -> None:
    if not chunks:
        return
    if len(chunks) > 1 and sum(len(c) for c in chunks) <= _SMALL:
        sock.sendall(b"".join(chunks))
        return
    for c in chunks:
        sock.sendall(c)


def _remove_stale_socket(path: str) -> None:
    """Remove a unix socket left by a server that is gone; refuse any other existing file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise FileExistsError(errno.EEXIST, f"--unix {path}: exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)               # nobody listens: a stale socket
        return
    except OSError as e:
        raise FileExistsError(errno.EEXIST, f"--unix {path}: exists and cannot be probed "
                                            f"({e.strerror})") from None
    finally:
        probe.close()
    raise FileExistsError(errno.EEXIST, f"--unix {path}: a server is already listening there")
