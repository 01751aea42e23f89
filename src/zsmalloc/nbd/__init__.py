"""Network Block Device front-end: a Zram served to real programs (``zsmalloc serve``).

- ``protocol``: the NBD protocol as a state machine with no I/O (bytes in, requests out,
  replies in, bytes out);
- ``disk``: a byte-addressed disk over the page-based Zram (partial pages by
  read-modify-write, discards of whole pages only, as zram does);
- ``shrinker``: background compaction after discards, so freed memory goes back to the OS;
- ``server``: the socket loop (unix or TCP, one thread a connection, clean shutdown);
- ``cli``: the ``serve`` subcommand.

See docs/nbd.md.
"""

from .disk import ZramDisk
from .protocol import Disconnect, Export, NEED_DATA, Request, ServerConnection
from .server import NbdServer

__all__ = ["ZramDisk", "Disconnect", "Export", "NEED_DATA", "Request", "ServerConnection",
           "NbdServer"]
