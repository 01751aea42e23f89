"""Background compaction: memory freed by discards goes back to the OS.

Kernel: zsmalloc registers a shrinker; reclaim asks it how much it could free
(zs_shrinker_count = the sum of zs_can_compact over the classes) and then tells it to
compact (zs_shrinker_scan -> zs_compact). Discards free objects, not pages: zspages are
left sparse until something compacts them. A user-space server sees no memory pressure,
so this thread stands in for reclaim: it is woken after discards (and looks every
``interval`` seconds anyway, since overwrites leave zspages sparse too), waits for the
burst to settle, and compacts when the shrinker count says pages can be freed.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("zsmalloc.nbd")


class Shrinker:
    """Compacts ``zram`` from a thread of its own. ``kick()`` after freeing pages."""

    def __init__(self, zram, *, interval: float = 2.0, settle: float = 0.2,
                 max_delay: float = 2.0, min_pages: int = 1):
        if interval <= 0 or settle < 0 or max_delay < 0 or min_pages < 1:
            raise ValueError(f"shrinker interval {interval}, settle {settle}, max_delay "
                             f"{max_delay}, min_pages {min_pages}: need interval > 0, "
                             f"min_pages >= 1, the rest >= 0")
        self.zram = zram
        self.interval = interval
        self.settle = settle
        self.max_delay = max_delay
        self.min_pages = min_pages
        self.runs = 0
        self.pages_freed = 0
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def kick(self, pages: int = 0) -> None:
        """Pages were freed: look soon."""
        self._kick.set()

    def scan(self) -> int:
        """Compact if the shrinker count is worth it; returns pages freed.

        Kernel: zs_shrinker_count, then zs_shrinker_scan.
        """
        if self.zram.pool.can_compact() < self.min_pages:
            return 0
        freed = self.zram.compact()
        self.runs += 1
        self.pages_freed += freed
        return freed

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="zsmalloc-shrinker",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            kicked = self._kick.wait(self.interval)
            self._kick.clear()
            if kicked:
                # a trim arrives as many discards: compact once after the burst
                until = time.monotonic() + self.max_delay
                while (not self._stop.is_set() and time.monotonic() < until
                       and self._kick.wait(self.settle)):
                    self._kick.clear()
            if self._stop.is_set():
                break
            try:
                freed = self.scan()
            except Exception:          # a failed scan must not end the server's compaction
                log.exception("background compaction failed")
                continue
            if freed:
                log.info("compacted: %d pages freed", freed)
