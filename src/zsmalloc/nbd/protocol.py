"""The NBD protocol, server side, as a state machine that does no I/O (h11's design).

Bytes from the client go in with :meth:`ServerConnection.receive_data`; requests come out of
:meth:`ServerConnection.next_event`; replies go in with :meth:`~ServerConnection.reply` and
:meth:`~ServerConnection.reply_read`; bytes for the client come out of
:meth:`~ServerConnection.data_to_send`. The socket loop around it is ``zsmalloc.nbd.server``.

The handshake (fixed newstyle: EXPORT_NAME, INFO, GO, LIST, ABORT, STRUCTURED_REPLY) is
answered entirely here, from the :class:`Export` description. Transmission requests are
checked here too (command, flags, length, bounds, alignment) and a bad one is answered with
the protocol's error without ever reaching the caller; only well-formed READ, WRITE, FLUSH,
TRIM and WRITE_ZEROES requests come out as :class:`Request` events.

Memory: nothing is allocated from a length the client sent before that length is checked.
Option data over ``MAX_OPTION_DATA`` and the payload of a refused WRITE are skipped as they
arrive, never buffered. A checked WRITE's payload gets a buffer of its own, which the
socket loop may receive into directly (:meth:`ServerConnection.recv_buffer`). The caller
feeds data only when ``next_event()`` says ``NEED_DATA``, so the receive buffer holds at
most one message header plus one read's worth of bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

from . import constants as C

_OPT_HEADER = struct.Struct(">QII")        # IHAVEOPT, option, length
_OPT_REPLY = struct.Struct(">QIII")        # magic, option, reply type, length
_REQUEST = struct.Struct(">IHHQQI")        # magic, flags, type, handle, offset, length
_SIMPLE = struct.Struct(">IIQ")            # magic, error, handle
_CHUNK = struct.Struct(">IHHQI")           # magic, flags, type, handle, length

NEED_DATA = "NEED_DATA"                    # next_event(): feed more bytes first


@dataclass(frozen=True)
class Export:
    """What the server offers: one export, its size and its block-size constraints.

    ``description`` is called for every INFO/GO/LIST that asks for it, so it can carry live
    figures (the server puts the device's mm_stat and io_stat there).
    """

    size: int
    name: str = ""
    min_block: int = 1
    preferred_block: int = 4096
    max_payload: int = C.DEFAULT_MAX_PAYLOAD
    description: Callable[[], str] | None = None

    def __post_init__(self):
        if type(self.size) is not int or not 0 < self.size < 1 << 63:
            raise ValueError(f"export size {self.size!r} must be a positive int below 2^63")
        mb, pb, mp = self.min_block, self.preferred_block, self.max_payload
        if mb < 1 or mb & (mb - 1) or mb > 1 << 16:
            raise ValueError(f"minimum block size {mb} must be a power of two <= 65536")
        if pb & (pb - 1) or pb < max(mb, 512):
            raise ValueError(f"preferred block size {pb} must be a power of two >= "
                             f"max(minimum block, 512)")
        if not pb <= mp <= 0xFFFFFFFF:
            raise ValueError(f"maximum payload {mp} must be between the preferred block size "
                             f"and 2^32-1")
        if len(self.name.encode()) > C.MAX_STRING or "\0" in self.name:
            raise ValueError(f"export name {self.name!r} is too long or contains NUL")

    def transmission_flags(self, structured: bool) -> int:
        """Everything this server supports; DF only once structured replies are agreed."""
        f = (C.FLAG_HAS_FLAGS | C.FLAG_SEND_FLUSH | C.FLAG_SEND_FUA | C.FLAG_SEND_TRIM
             | C.FLAG_SEND_WRITE_ZEROES | C.FLAG_SEND_FAST_ZERO | C.FLAG_CAN_MULTI_CONN)
        return f | C.FLAG_SEND_DF if structured else f


@dataclass(frozen=True, slots=True)
class Request:
    """A checked transmission request: in bounds, known flags, length within limits.

    ``data`` is the payload of a WRITE (exactly ``length`` bytes, a bytearray the caller
    may keep), None otherwise.
    """

    command: int
    flags: int
    handle: int
    offset: int
    length: int
    data: bytes | bytearray | None = None

    @property
    def name(self) -> str:
        return C.CMD_NAMES.get(self.command, str(self.command))


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The connection is over: send what ``data_to_send()`` holds, then close.

    ``clean`` is True for the client's soft disconnects (NBD_CMD_DISC, NBD_OPT_ABORT).
    """

    reason: str
    clean: bool = False


# states
_CLIENT_FLAGS, _OPTION_HEADER, _OPTION_DATA, _REQUEST_HEADER, _WRITE_DATA, _CLOSED = range(6)

# command -> flags it may carry (FUA is valid on every command once SEND_FUA is agreed)
_ALLOWED_FLAGS = {
    C.CMD_READ: C.CMD_FLAG_FUA,                     # + DF when structured
    C.CMD_WRITE: C.CMD_FLAG_FUA,
    C.CMD_FLUSH: C.CMD_FLAG_FUA,
    C.CMD_TRIM: C.CMD_FLAG_FUA,
    C.CMD_WRITE_ZEROES: C.CMD_FLAG_FUA | C.CMD_FLAG_NO_HOLE | C.CMD_FLAG_FAST_ZERO,
}


class ServerConnection:
    """One client connection, server side: handshake, then requests and replies.

    Not thread-safe: one connection belongs to one thread.
    """

    def __init__(self, export: Export):
        self.export = export
        self.structured = False        # NBD_OPT_STRUCTURED_REPLY agreed
        self.no_zeroes = False         # client set NBD_FLAG_C_NO_ZEROES
        self.export_name: str | None = None   # set on entering transmission
        self.shutting_down = False
        self._state = _CLIENT_FLAGS
        self._in = bytearray()
        self._pos = 0
        self._eof = False
        self._skip = 0                 # bytes still to discard unread
        self._after_skip: Callable[[], None] | None = None
        self._opt = 0
        self._opt_len = 0
        self._write: tuple | None = None       # (flags, handle, offset) of the awaited payload
        self._payload: bytearray | None = None # that payload (its length was checked first)
        self._filled = 0
        self._end: Disconnect | None = None
        self._out: list = [struct.pack(">QQH", C.NBDMAGIC, C.IHAVEOPT,
                                       C.FLAG_FIXED_NEWSTYLE | C.FLAG_NO_ZEROES)]

    # -- the caller's side --------------------------------------------------------------

    @property
    def in_transmission(self) -> bool:
        return self._state in (_REQUEST_HEADER, _WRITE_DATA)

    def receive_data(self, data) -> None:
        """Bytes from the client; ``b""`` means the client closed its side."""
        if not data:
            self._eof = True
            return
        if self._payload is not None:           # a write payload goes straight to its buffer
            k = min(len(data), len(self._payload) - self._filled)
            self._payload[self._filled:self._filled + k] = data[:k]
            self._filled += k
            if k == len(data):
                return
            data = data[k:]
        if self._pos and self._pos == len(self._in):
            self._in.clear()
            self._pos = 0
        self._in += data

    def recv_buffer(self):
        """Where to receive the next bytes directly (a writable memoryview), or None.

        While a WRITE payload is awaited this is the rest of its buffer, so the socket loop
        can ``recv_into`` it and the payload is copied once; call :meth:`received` after.
        """
        if self._payload is None or self._filled == len(self._payload):
            return None
        return memoryview(self._payload)[self._filled:]

    def received(self, n: int) -> None:
        """``n`` bytes were written into the last :meth:`recv_buffer` (0 = end of stream)."""
        if n == 0:
            self._eof = True
        else:
            self._filled += n

    def data_to_send(self) -> list:
        """Byte strings to send, in order (empty when there is nothing)."""
        out, self._out = self._out, []
        return out

    def start_shutdown(self) -> None:
        """The server is stopping: options now get ERR_SHUTDOWN, requests ESHUTDOWN."""
        self.shutting_down = True

    def next_event(self):
        """The next :class:`Request` or :class:`Disconnect`, or ``NEED_DATA``."""
        while True:
            if self._end is not None:
                return self._end
            if self._skip:
                n = min(self._skip, len(self._in) - self._pos)
                self._pos += n
                self._skip -= n
                if self._skip:
                    if self._eof:
                        return self._close("client closed the connection mid-message")
                    return NEED_DATA
                after, self._after_skip = self._after_skip, None
                if after is not None:
                    after()
                continue
            ev = self._step()
            if ev is not None:
                return ev

    def reply(self, req: Request, error: int = 0, message: str = "") -> None:
        """Answer a request other than a successful READ: 0, or an NBD error number."""
        if error and self.structured:
            self._error_chunk(req.handle, error, message)
        elif error or req.command != C.CMD_READ:
            self._out.append(_SIMPLE.pack(C.SIMPLE_REPLY_MAGIC, error, req.handle))
        else:
            raise ValueError("a successful READ is answered with reply_read()")

    def reply_read(self, req: Request, data) -> None:
        """Answer a READ with its ``req.length`` bytes of data."""
        if len(data) != req.length:
            raise ValueError(f"read reply of {len(data)} bytes for a request of {req.length}")
        if self.structured:
            self._out.append(_CHUNK.pack(C.STRUCTURED_REPLY_MAGIC, C.REPLY_FLAG_DONE,
                                         C.REPLY_TYPE_OFFSET_DATA, req.handle, 8 + len(data))
                             + req.offset.to_bytes(8, "big"))
        else:
            self._out.append(_SIMPLE.pack(C.SIMPLE_REPLY_MAGIC, 0, req.handle))
        self._out.append(data)

    # -- receive buffer -----------------------------------------------------------------

    def _take(self, n: int):
        """``n`` bytes from the receive buffer, or None if they have not all arrived."""
        pos = self._pos
        if len(self._in) - pos < n:
            return None
        with memoryview(self._in) as mv:
            out = bytes(mv[pos:pos + n])
        pos += n
        if pos >= 1 << 20 and pos * 2 >= len(self._in):
            del self._in[:pos]               # keep the buffer from growing without end
            pos = 0
        self._pos = pos
        return out

    def _need(self, what: str):
        if self._eof:
            return self._close(f"client closed the connection {what}")
        return NEED_DATA

    def _close(self, reason: str, clean: bool = False) -> Disconnect:
        self._state = _CLOSED
        self._end = Disconnect(reason, clean)
        return self._end

    def _skip_then(self, n: int, after: Callable[[], None]) -> None:
        """Discard the next ``n`` bytes as they arrive, then call ``after``."""
        if n == 0:
            after()
            return
        self._skip = n
        self._after_skip = after

    # -- the machine ----------------------------------------------------------------------

    def _step(self):
        s = self._state
        if s == _REQUEST_HEADER:
            return self._request_header()
        if s == _WRITE_DATA:
            data = self._payload
            if self._filled < len(data):
                return self._need("in the middle of a write payload")
            flags, handle, offset = self._write
            self._payload = self._write = None
            self._state = _REQUEST_HEADER
            return Request(C.CMD_WRITE, flags, handle, offset, len(data), data)
        if s == _OPTION_HEADER:
            return self._option_header()
        if s == _OPTION_DATA:
            data = self._take(self._opt_len)
            if data is None:
                return self._need("in the middle of an option")
            self._state = _OPTION_HEADER
            return self._option(self._opt, data)
        if s == _CLIENT_FLAGS:
            b = self._take(4)
            if b is None:
                return self._need("before sending its flags")
            flags = int.from_bytes(b, "big")
            if flags & ~C.CLIENT_FLAGS_KNOWN:
                return self._close(f"unknown client flags {flags:#x}")
            self.no_zeroes = bool(flags & C.FLAG_C_NO_ZEROES)
            self._state = _OPTION_HEADER
            return None
        return self._end or self._close("connection closed")

    # -- handshake ------------------------------------------------------------------------

    def _option_header(self):
        b = self._take(_OPT_HEADER.size)
        if b is None:
            return self._need("during the handshake")
        magic, opt, length = _OPT_HEADER.unpack(b)
        if magic != C.IHAVEOPT:
            return self._close(f"bad option magic {magic:#x}")
        if length > C.MAX_OPTION_DATA:
            if opt == C.OPT_EXPORT_NAME:     # cannot be answered with an error
                return self._close(f"NBD_OPT_EXPORT_NAME with {length} bytes of data")
            self._skip_then(length, lambda: self._opt_reply(
                opt, C.REP_ERR_TOO_BIG, f"option data of {length} bytes is over the "
                                        f"{C.MAX_OPTION_DATA}-byte limit".encode()))
            return None
        self._opt, self._opt_len = opt, length
        self._state = _OPTION_DATA
        return None

    def _opt_reply(self, opt: int, rtype: int, data: bytes = b"") -> None:
        self._out.append(_OPT_REPLY.pack(C.OPT_REPLY_MAGIC, opt, rtype, len(data)) + data)

    def _option(self, opt: int, data: bytes):
        """Answer one option; a Disconnect for ABORT or a refused EXPORT_NAME."""
        if opt == C.OPT_ABORT:
            self._opt_reply(opt, C.REP_ACK)
            return self._close("client aborted the handshake", clean=True)
        if self.shutting_down:
            if opt == C.OPT_EXPORT_NAME:
                return self._close("server shutting down")
            self._opt_reply(opt, C.REP_ERR_SHUTDOWN, b"server is shutting down")
            return None
        if opt == C.OPT_EXPORT_NAME:
            name = _decode_name(data)
            if name is None:
                return self._close("NBD_OPT_EXPORT_NAME with an invalid name")
            reply = struct.pack(">QH", self.export.size,
                                self.export.transmission_flags(self.structured))
            self._out.append(reply if self.no_zeroes else reply + bytes(124))
            return self._enter_transmission(name)
        if opt in (C.OPT_INFO, C.OPT_GO):
            return self._info_or_go(opt, data)
        if opt == C.OPT_LIST:
            if data:
                self._opt_reply(opt, C.REP_ERR_INVALID, b"NBD_OPT_LIST takes no data")
            else:
                name = self.export.name.encode()
                self._opt_reply(opt, C.REP_SERVER, len(name).to_bytes(4, "big") + name
                                + self._description().encode())
                self._opt_reply(opt, C.REP_ACK)
            return None
        if opt == C.OPT_STRUCTURED_REPLY:
            if data:
                self._opt_reply(opt, C.REP_ERR_INVALID, b"NBD_OPT_STRUCTURED_REPLY takes no data")
            else:
                self.structured = True
                self._opt_reply(opt, C.REP_ACK)
            return None
        if opt == C.OPT_STARTTLS:
            self._opt_reply(opt, C.REP_ERR_POLICY, b"this server does not offer TLS")
            return None
        self._opt_reply(opt, C.REP_ERR_UNSUP, f"option {opt} is not supported".encode())
        return None

    def _info_or_go(self, opt: int, data: bytes):
        """NBD_OPT_INFO / NBD_OPT_GO: name, info requests -> REP_INFO replies, then ACK."""
        n = len(data)
        namelen = int.from_bytes(data[:4], "big") if n >= 4 else -1
        if n < 6 or namelen > n - 6:
            self._opt_reply(opt, C.REP_ERR_INVALID, b"malformed NBD_OPT_INFO/GO data")
            return None
        nreq = int.from_bytes(data[4 + namelen:6 + namelen], "big")
        if n != 6 + namelen + 2 * nreq:
            self._opt_reply(opt, C.REP_ERR_INVALID,
                            b"NBD_OPT_INFO/GO length does not match its information requests")
            return None
        name = _decode_name(data[4:4 + namelen])
        if name is None:
            self._opt_reply(opt, C.REP_ERR_INVALID, b"export name is not valid UTF-8 "
                                                    b"without NUL, up to 4096 bytes")
            return None
        wanted = set(struct.unpack(f">{nreq}H", data[6 + namelen:]))
        ex = self.export
        info = struct.pack(">HQH", C.INFO_EXPORT, ex.size, ex.transmission_flags(self.structured))
        self._opt_reply(opt, C.REP_INFO, info)
        # sent even when not asked: a client may ignore it, and it costs one message
        self._opt_reply(opt, C.REP_INFO, struct.pack(">HIII", C.INFO_BLOCK_SIZE, ex.min_block,
                                                     ex.preferred_block, ex.max_payload))
        if C.INFO_NAME in wanted:
            self._opt_reply(opt, C.REP_INFO, struct.pack(">H", C.INFO_NAME) + ex.name.encode())
        if C.INFO_DESCRIPTION in wanted and ex.description is not None:
            self._opt_reply(opt, C.REP_INFO, struct.pack(">H", C.INFO_DESCRIPTION)
                            + self._description().encode())
        self._opt_reply(opt, C.REP_ACK)
        if opt == C.OPT_GO:
            return self._enter_transmission(name)
        return None

    def _description(self) -> str:
        if self.export.description is None:
            return ""
        text = self.export.description()
        return text.encode()[:C.MAX_STRING].decode(errors="ignore")

    def _enter_transmission(self, name: str):
        self.export_name = name
        self._state = _REQUEST_HEADER
        return None

    # -- transmission ---------------------------------------------------------------------

    def _request_header(self):
        b = self._take(_REQUEST.size)
        if b is None:
            if self._eof and self._pos == len(self._in):
                return self._close("client closed the connection without NBD_CMD_DISC")
            return self._need("in the middle of a request header")
        magic, flags, cmd, handle, offset, length = _REQUEST.unpack(b)
        if magic != C.REQUEST_MAGIC:
            # nothing after a bad header can be framed: the spec's hard disconnect
            return self._close(f"bad request magic {magic:#x}")
        if cmd == C.CMD_DISC:
            return self._close("client sent NBD_CMD_DISC", clean=True)
        req = Request(cmd, flags, handle, offset, length)
        error = self._check(req)
        if cmd == C.CMD_WRITE:
            if error is None:
                self._start_payload(flags, handle, offset, length)
                return None
            # the payload follows whatever we think of the header: skip it, then refuse
            self._skip_then(length, lambda: self.reply(req, *error))
            return None
        if error is not None:
            self.reply(req, *error)
            return None
        return req

    def _start_payload(self, flags: int, handle: int, offset: int, length: int) -> None:
        """Await a checked WRITE's payload in a buffer of its own; take what already came."""
        self._write = (flags, handle, offset)
        self._payload = bytearray(length)
        pos = self._pos
        k = min(length, len(self._in) - pos)
        if k:
            with memoryview(self._in) as mv:
                self._payload[:k] = mv[pos:pos + k]
            self._pos = pos + k
        self._filled = k
        self._state = _WRITE_DATA

    def _check(self, req: Request):
        """None for a request to carry out, else (NBD error, message)."""
        if self.shutting_down:
            return C.ESHUTDOWN, "server is shutting down"
        cmd, flags, offset, length = req.command, req.flags, req.offset, req.length
        allowed = _ALLOWED_FLAGS.get(cmd)
        if allowed is None:
            return C.EINVAL, f"unknown or unsupported command {cmd}"
        if cmd == C.CMD_READ and self.structured:
            allowed |= C.CMD_FLAG_DF
        if flags & ~allowed:
            return C.EINVAL, f"flags {flags:#x} not valid for NBD_CMD_{req.name}"
        ex = self.export
        if cmd == C.CMD_FLUSH:
            if offset or length:
                return C.EINVAL, "NBD_CMD_FLUSH must have offset and length 0"
            return None
        if length == 0:
            return C.EINVAL, f"NBD_CMD_{req.name} with length 0"
        if cmd in (C.CMD_READ, C.CMD_WRITE) and length > ex.max_payload:
            return C.EOVERFLOW, f"length {length} is over the maximum payload {ex.max_payload}"
        if offset > ex.size or length > ex.size - offset:
            return (C.ENOSPC if cmd == C.CMD_WRITE else C.EINVAL,
                    f"offset {offset} + length {length} is past the end ({ex.size})")
        mb = ex.min_block
        if mb > 1 and (offset % mb or length % mb):
            return C.EINVAL, f"offset {offset} / length {length} not aligned to {mb} bytes"
        return None

    def _error_chunk(self, handle: int, error: int, message: str) -> None:
        msg = message.encode()[:C.MAX_STRING]
        self._out.append(_CHUNK.pack(C.STRUCTURED_REPLY_MAGIC, C.REPLY_FLAG_DONE,
                                     C.REPLY_TYPE_ERROR, handle, 6 + len(msg))
                         + struct.pack(">IH", error, len(msg)) + msg)


def _decode_name(b: bytes) -> str | None:
    """An export name as the spec allows it (UTF-8, no NUL, <= 4096 bytes), else None."""
    if len(b) > C.MAX_STRING or b"\0" in b:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None
