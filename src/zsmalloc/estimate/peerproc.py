"""The peer allocators of an estimate, run in a process of their own.

zbud, z3fold and zblock are fed the same writes as zsmalloc, but they are pure Python and
cost about three times zsmalloc's accounting per page; in a child process they run on the
other core while the parent scans, compresses and feeds the Zram models. The parent sends,
per batch and per peer set, the compressed length of each page written (``-1``: a
same-filled page), as raw ``array('i')`` bytes; the child answers with the page totals
when asked. Started with ``spawn`` (the parent has threads, so no fork).
"""

from __future__ import annotations

import multiprocessing as mp
from array import array

from .model import PeerModels


def _child(conn, specs) -> None:
    """Child main loop: ``specs`` is a list of (pool config, disk pages)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the parent decides when we stop
    models = [PeerModels(cfg, nr_pages) for cfg, nr_pages in specs]
    try:
        while True:
            msg = conn.recv_bytes()
            if msg == b"totals":
                conn.send([(m.total_pages(), m.unsupported) for m in models])
                return
            codes = array("i")
            codes.frombytes(msg[1:])
            write = models[msg[0]].write
            for L in codes:
                write(L)
    except (EOFError, KeyboardInterrupt):
        return


class PeerProcess:
    """Peer sets, one per ``(pool config, disk pages)`` spec, in a child process."""

    def __init__(self, specs: list):
        if len(specs) > 255:
            raise ValueError(f"too many peer sets ({len(specs)})")
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_child, args=(child, list(specs)), daemon=True,
                                name="zsmalloc-estimate-peers")
        self.proc.start()
        child.close()
        self._totals = None

    def feed(self, k: int, words: list, lens: list, written: bytearray) -> None:
        """Send peer set ``k`` the pages of one batch that the swap layer writes."""
        codes = array("i", [(-1 if words[i] is not None else lens[i])
                            for i in range(len(words)) if written[i]])
        if codes:
            self.conn.send_bytes(bytes([k]) + codes.tobytes())

    def totals(self) -> list:
        """[(total pages per peer name, unsupported peers)] per set; ends the child."""
        if self._totals is None:
            self.conn.send_bytes(b"totals")
            self._totals = self.conn.recv()
            self.close()
        return self._totals

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            self.conn.close()
        finally:
            self.proc.join(timeout=5)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()
            self.proc = None
