"""The NBD protocol machine on its own: bytes in, events and bytes out (no sockets).

Messages are built here with struct from the spec, not with the module's own encoders.
"""

from __future__ import annotations

import struct
import tracemalloc

import pytest
from hypothesis import given, settings, strategies as st

from zsmalloc.nbd.protocol import NEED_DATA, Disconnect, Export, Request, ServerConnection

IHAVEOPT = 0x49484156454F5054
REQ = 0x25609513
SIZE = 1 << 20


def opt(o: int, data: bytes = b"", length=None) -> bytes:
    return struct.pack(">QII", IHAVEOPT, o, len(data) if length is None else length) + data


def go_data(name=b"", infos=(3,)) -> bytes:
    return struct.pack(">I", len(name)) + name + struct.pack(f">H{len(infos)}H", len(infos), *infos)


def req(cmd, offset=0, length=0, flags=0, handle=7, data=b"", magic=REQ) -> bytes:
    return struct.pack(">IHHQQI", magic, flags, cmd, handle, offset, length) + data


def out_bytes(c: ServerConnection) -> bytes:
    return b"".join(bytes(x) for x in c.data_to_send())


def events(c: ServerConnection) -> list:
    evs = []
    while True:
        ev = c.next_event()
        if ev is NEED_DATA:
            return evs
        evs.append(ev)
        if isinstance(ev, Disconnect):
            return evs
        if isinstance(ev, Request):
            # the caller answers each request, as the server does
            if ev.command == 0:
                c.reply_read(ev, bytes(ev.length))
            else:
                c.reply(ev)


def parse_opt_replies(b: bytes) -> list:
    out = []
    while b:
        magic, o, rtype, n = struct.unpack(">QIII", b[:20])
        assert magic == 0x3E889045565A9
        out.append((o, rtype, b[20:20 + n]))
        b = b[20 + n:]
    return out


def connected(structured=False, description=None, **kw) -> ServerConnection:
    c = ServerConnection(Export(size=SIZE, description=description, **kw))
    assert out_bytes(c) == b"NBDMAGIC" + struct.pack(">QH", IHAVEOPT, 3)
    c.receive_data(struct.pack(">I", 3))
    if structured:
        c.receive_data(opt(8))
    c.receive_data(opt(7, go_data()))
    assert events(c) == []
    assert c.in_transmission
    out_bytes(c)
    return c


# -- handshake -------------------------------------------------------------------------------

def test_go_replies_export_block_size_and_ack():
    c = ServerConnection(Export(size=SIZE, preferred_block=16384))
    out_bytes(c)
    c.receive_data(struct.pack(">I", 1))
    c.receive_data(opt(7, go_data(b"any", (3, 1))))
    assert events(c) == []
    reps = parse_opt_replies(out_bytes(c))
    assert [r[1] for r in reps] == [3, 3, 3, 1]          # INFO x3, ACK
    infos = {struct.unpack(">H", d[:2])[0]: d[2:] for _, t, d in reps if t == 3}
    size, flags = struct.unpack(">QH", infos[0])
    assert size == SIZE
    # HAS_FLAGS FLUSH FUA TRIM WRITE_ZEROES MULTI_CONN FAST_ZERO; no DF without structured
    assert flags == 1 | 4 | 8 | 32 | 64 | 256 | 2048
    assert struct.unpack(">III", infos[3]) == (1, 16384, 32 << 20)
    assert infos[1] == b""
    assert c.in_transmission and c.export_name == "any"


def test_info_then_go_and_fresh_description():
    n = iter(range(100))
    c = ServerConnection(Export(size=SIZE, name="zram", description=lambda: f"stat {next(n)}"))
    out_bytes(c)
    c.receive_data(struct.pack(">I", 1) + opt(6, go_data(b"", (2,))) + opt(6, go_data(b"", (2,))))
    assert events(c) == [] and not c.in_transmission
    descs = [d[2:] for _, t, d in parse_opt_replies(out_bytes(c))
             if t == 3 and d[:2] == b"\x00\x02"]
    assert descs == [b"stat 0", b"stat 1"]
    c.receive_data(opt(8) + opt(7, go_data()))
    events(c)
    reps = parse_opt_replies(out_bytes(c))
    assert reps[0][1] == 1                                # STRUCTURED_REPLY acked
    flags = struct.unpack(">QH", reps[1][2][2:])[1]
    assert flags & 128                                    # DF once structured
    assert c.in_transmission and c.structured


@pytest.mark.parametrize("no_zeroes", [False, True])
def test_export_name(no_zeroes):
    c = ServerConnection(Export(size=SIZE))
    out_bytes(c)
    c.receive_data(struct.pack(">I", 3 if no_zeroes else 1) + opt(1, b"disk"))
    assert events(c) == []
    b = out_bytes(c)
    assert len(b) == (10 if no_zeroes else 134)
    assert struct.unpack(">QH", b[:10])[0] == SIZE and b[10:] == bytes(len(b) - 10)
    assert c.in_transmission


def test_list_abort_unknown_and_malformed_options_keep_the_handshake_going():
    c = ServerConnection(Export(size=SIZE, name="zram"))
    out_bytes(c)
    c.receive_data(struct.pack(">I", 1))
    c.receive_data(opt(3))                               # LIST
    c.receive_data(opt(3, b"x"))                         # LIST with data: INVALID
    c.receive_data(opt(99, b"whatever"))                 # unknown: UNSUP
    c.receive_data(opt(5))                               # STARTTLS: POLICY (no TLS here)
    c.receive_data(opt(7, struct.pack(">I", 50) + b"ab\0\0"))   # name longer than the data
    c.receive_data(opt(7, go_data(b"", (3, 1))[:-2]))    # nreq says 2, one sent
    c.receive_data(opt(7, go_data(b"a\0b")))             # NUL in the name
    c.receive_data(opt(8, b"junk"))                      # STRUCTURED_REPLY with data
    c.receive_data(opt(9, b""))                          # LIST_META_CONTEXT: not offered
    assert events(c) == []
    reps = parse_opt_replies(out_bytes(c))
    E = 1 << 31
    assert [(o, t) for o, t, _ in reps] == [
        (3, 2), (3, 1), (3, E + 3), (99, E + 1), (5, E + 2), (7, E + 3), (7, E + 3), (7, E + 3),
        (8, E + 3), (9, E + 1)]
    assert reps[0][2][:8] == struct.pack(">I", 4) + b"zram"
    assert all(msg for o, t, msg in reps if t & E)        # every error says why
    assert not c.structured and not c.in_transmission
    c.receive_data(opt(2))                               # ABORT: ACK, then a clean close
    evs = events(c)
    assert isinstance(evs[-1], Disconnect) and evs[-1].clean
    assert parse_opt_replies(out_bytes(c)) == [(2, 1, b"")]


@pytest.mark.parametrize("first", [
    struct.pack(">I", 4),                                # unknown client flag
    struct.pack(">I", 1) + struct.pack(">QII", 0x1234, 7, 0),   # bad option magic
    struct.pack(">I", 1) + opt(1, length=1 << 30),       # EXPORT_NAME too long to answer
])
def test_handshake_violations_close(first):
    c = ServerConnection(Export(size=SIZE))
    out_bytes(c)
    c.receive_data(first)
    evs = events(c)
    assert len(evs) == 1 and isinstance(evs[0], Disconnect) and not evs[0].clean


def test_oversized_option_is_skipped_unbuffered_then_too_big():
    c = ServerConnection(Export(size=SIZE))
    out_bytes(c)
    c.receive_data(struct.pack(">I", 1) + opt(7, length=64 << 20))
    chunk = bytes(1 << 20)
    tracemalloc.start()
    try:
        for _ in range(63):
            c.receive_data(chunk)
            assert events(c) == []
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"skipping 63 MiB of option data allocated {peak} bytes"
    assert out_bytes(c) == b""
    c.receive_data(chunk + opt(7, go_data()))
    assert events(c) == []
    reps = parse_opt_replies(out_bytes(c))
    assert reps[0][:2] == (7, (1 << 31) + 9)              # TOO_BIG, then the GO goes through
    assert reps[-1][1] == 1 and c.in_transmission


def test_shutdown_during_handshake():
    c = ServerConnection(Export(size=SIZE))
    out_bytes(c)
    c.receive_data(struct.pack(">I", 1))
    c.start_shutdown()
    c.receive_data(opt(7, go_data()))
    assert events(c) == []
    assert parse_opt_replies(out_bytes(c))[0][1] == (1 << 31) + 7
    assert not c.in_transmission


# -- transmission ------------------------------------------------------------------------------

def simple_replies(b: bytes) -> list:
    out = []
    while b:
        magic, err, handle = struct.unpack(">IIQ", b[:16])
        assert magic == 0x67446698
        out.append((handle, err))
        b = b[16:]
    return out


@pytest.mark.parametrize("cmd,flags,offset,length,error", [
    (0, 0, 0, 0, 22),                     # zero length
    (1, 0, 0, 0, 22),
    (4, 0, 0, 0, 22),
    (6, 0, 0, 0, 22),
    (0, 0, SIZE - 512, 1024, 22),         # read past the end
    (1, 0, SIZE, 1, 28),                  # write past the end: ENOSPC
    (4, 0, 1 << 63, 1, 22),               # trim far past the end
    (0, 0, 0, (32 << 20) + 1, 75),        # over the maximum payload: EOVERFLOW
    (1, 0, 0, (32 << 20) + 4096, 75),
    (0, 2, 0, 512, 22),                   # NO_HOLE is not a READ flag
    (0, 4, 0, 512, 22),                   # DF without structured replies
    (4, 16, 0, 4096, 22),                 # FAST_ZERO is not a TRIM flag
    (3, 0, 0, 512, 22),                   # FLUSH with a length
    (3, 0, 8, 0, 22),
    (5, 0, 0, 512, 22),                   # CACHE: not offered
    (7, 0, 0, 512, 22),                   # BLOCK_STATUS: no meta context agreed
    (200, 0, 0, 512, 22),                 # unknown command
    (0, 1 << 15, 0, 512, 22),             # unknown flag
])
def test_bad_requests_get_errors_and_the_connection_goes_on(cmd, flags, offset, length, error):
    c = connected()
    payload = bytes(min(length, 3 << 20)) if cmd == 1 else b""
    c.receive_data(req(cmd, offset, length, flags, handle=5, data=payload))
    if cmd == 1 and length > len(payload):
        c.receive_data(bytes(length - len(payload)))      # the refused payload, skipped
    assert events(c) == []
    assert simple_replies(out_bytes(c)) == [(5, error)]
    c.receive_data(req(0, 4096, 512, handle=6))           # and the next request is served
    evs = events(c)
    assert evs == [Request(0, 0, 6, 4096, 512)]


def test_structured_error_chunk_carries_a_message():
    c = connected(structured=True)
    c.receive_data(req(0, SIZE, 512, handle=9))
    assert events(c) == []
    b = out_bytes(c)
    magic, flags, rtype, handle, n = struct.unpack(">IHHQI", b[:20])
    assert (magic, flags, rtype, handle) == (0x668E33EF, 1, (1 << 15) + 1, 9)
    err, mlen = struct.unpack(">IH", b[20:26])
    assert err == 22 and mlen == n - 6 and b"past the end" in b[26:26 + mlen]


def test_refused_write_payload_is_not_buffered():
    c = connected()
    c.receive_data(req(1, SIZE - 4096, 64 << 20, handle=3))   # oversized and past the end
    tracemalloc.start()
    try:
        for _ in range(64):
            c.receive_data(bytes(1 << 20))
            evs = events(c)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert evs == []
    assert peak < 4 << 20, f"skipping a 64 MiB payload allocated {peak} bytes"
    assert simple_replies(out_bytes(c)) == [(3, 75)]


def test_write_payload_in_pieces_and_read_replies():
    c = connected()
    data = bytes(range(256)) * 40
    stream = req(1, 100, len(data), flags=1, handle=11, data=data) + req(0, 100, 8, handle=12)
    for i in range(0, len(stream), 1000):
        c.receive_data(stream[i:i + 1000])
    evs = []
    while (ev := c.next_event()) is not NEED_DATA:
        evs.append(ev)
    assert evs == [Request(1, 1, 11, 100, len(data), data), Request(0, 0, 12, 100, 8)]
    c.reply(evs[0])
    c.reply_read(evs[1], b"12345678")
    b = out_bytes(c)
    assert b == struct.pack(">IIQ", 0x67446698, 0, 11) + struct.pack(">IIQ", 0x67446698, 0, 12) \
        + b"12345678"
    with pytest.raises(ValueError):
        c.reply_read(evs[1], b"short")


def test_write_payload_buffer_for_recv_into():
    c = connected()
    assert c.recv_buffer() is None                        # no payload awaited
    c.receive_data(req(1, 0, 10, handle=4, data=b"0123"))
    assert events(c) == []
    buf = c.recv_buffer()
    assert len(buf) == 6                                  # the 4 bytes already here are taken
    buf[:6] = b"456789"
    buf.release()
    c.received(6)
    assert c.recv_buffer() is None
    (ev,) = [e for e in iter(c.next_event, NEED_DATA)]
    assert ev == Request(1, 0, 4, 0, 10, b"0123456789")
    c.receive_data(req(1, 0, 10, handle=5, data=b"01"))
    c.received(0)                                         # end of stream mid-payload
    assert isinstance(c.next_event(), Disconnect)


def test_structured_read_reply_is_one_offset_data_chunk():
    c = connected(structured=True)
    c.receive_data(req(0, 4096, 4, flags=4, handle=2))    # DF is fine once structured
    (ev,) = [e for e in iter(c.next_event, NEED_DATA)]
    c.reply_read(ev, b"abcd")
    b = out_bytes(c)
    assert b == struct.pack(">IHHQI", 0x668E33EF, 1, 1, 2, 12) + struct.pack(">Q", 4096) + b"abcd"


@pytest.mark.parametrize("stream,clean", [
    (req(2), True),                                       # NBD_CMD_DISC
    (req(0, 0, 512, magic=0xDEADBEEF), False),            # bad magic: cannot resync
])
def test_disconnects(stream, clean):
    c = connected()
    c.receive_data(stream)
    evs = events(c)
    assert len(evs) == 1 and isinstance(evs[0], Disconnect) and evs[0].clean is clean


def test_eof_mid_write_is_an_unclean_disconnect():
    c = connected()
    c.receive_data(req(1, 0, 4096, data=bytes(100)))
    assert events(c) == []
    c.receive_data(b"")
    evs = events(c)
    assert isinstance(evs[0], Disconnect) and not evs[0].clean


def test_shutdown_answers_eshutdown():
    c = connected()
    c.start_shutdown()
    c.receive_data(req(0, 0, 512, handle=1) + req(1, 0, 3, handle=2, data=b"abc") + req(2))
    evs = events(c)
    assert len(evs) == 1 and evs[0].clean
    assert simple_replies(out_bytes(c)) == [(1, 108), (2, 108)]


def test_export_rejects_bad_constraints():
    for kw in ({"size": 0}, {"size": SIZE, "min_block": 3}, {"size": SIZE, "preferred_block": 256},
               {"size": SIZE, "max_payload": 1024}, {"size": SIZE, "name": "a\0b"}):
        with pytest.raises(ValueError):
            Export(**kw)


# -- any split of the stream gives the same result ------------------------------------------------

_STREAM = (struct.pack(">I", 1) + opt(99) + opt(8) + opt(7, go_data(b"x", (1, 2, 3)))
           + req(1, 4000, 300, handle=1, data=bytes(range(256)) + bytes(44))
           + req(1, SIZE, 10, handle=2, data=b"0123456789")     # refused, payload skipped
           + req(0, 4000, 300, handle=3) + req(4, 0, 8192, handle=4) + req(3, handle=5)
           + req(6, 0, 100, flags=2 | 16, handle=6) + req(2))


def _run(chunks, direct=False) -> tuple:
    """Feed ``chunks``; with ``direct``, bytes a write payload awaits go through
    recv_buffer()/received() (as the socket loop's recv_into does), the rest receive_data()."""
    c = ServerConnection(Export(size=SIZE, name="x"))
    evs, out = [], [out_bytes(c)]
    for ch in chunks:
        while ch:
            buf = c.recv_buffer() if direct else None
            if buf is None:
                c.receive_data(ch)
                ch = b""
            else:
                k = min(len(buf), len(ch))
                buf[:k] = ch[:k]
                buf.release()
                c.received(k)
                ch = ch[k:]
            evs += events(c)
        out.append(out_bytes(c))
    return evs, b"".join(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, len(_STREAM)), max_size=30), st.booleans())
def test_any_chunking_gives_the_same_events_and_bytes(cuts, direct):
    cuts = sorted(set(cuts) | {len(_STREAM)})
    chunks, prev = [], 0
    for x in cuts:
        chunks.append(_STREAM[prev:x])
        prev = x
    assert _run(chunks, direct) == _run([_STREAM])
    evs = _run([_STREAM])[0]
    assert [e.command for e in evs[:-1]] == [1, 0, 4, 3, 6] and evs[-1].clean
