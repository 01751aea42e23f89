"""zstrace: a text trace of zram and zsmalloc operations, version 1.

A trace is ASCII text, one record per line, read and written as a stream (constant memory
except for the set of live pool ids, see ``A``/``F``). Full description with examples:
docs/trace-format.md. In short::

    zstrace 1 page_size=4096 disksize=67108864 comp=lz4 profile=linux-6.18 chain_size=8
    # a comment: '#' as the first non-blank character; blank lines are ignored too
    W 17 1042          zram write of page 17, compressed to 1042 bytes (huge or not is
                       decided by the replaying device, from its own huge_class_size)
    S 18 0             zram write of a same-filled page; the fill word in hex (1..16 digits,
                       the value of the page's first 8 bytes read little-endian)
    D 19 <base64>      zram write with the page itself (base64 of exactly page_size bytes;
                       the replay compresses and classifies it with the trace's codec)
    G 19               zram read of page 19 (changes no counter but num_reads)
    X 16 4             discard pages 16..19 (also a swap slot-free notification, count 1)
    C                  zram compact
    L 1048576          set mem_limit to 1048576 bytes (0 = no limit)
    M                  reset mem_used_max (to the current use)
    R                  reset the device (free everything, zero the statistics and the limit)
    A 5 300            pool malloc of 300 bytes, naming the object with trace-local id 5
    F 5                pool free of the object with id 5
    PC                 pool compact

Header: the first line, ``zstrace <version>`` then ``key=value`` fields. ``page_size``
(4096, 16384 or 65536) is required; ``disksize`` (bytes; when given, zram indices are
checked against it), ``comp`` (the compressor the recorder's device used; the replay
compresses ``D`` records with it), ``profile`` and ``chain_size`` (the recorder's pool
configuration; the replay's default) are optional. Unknown keys are an error in version 1;
a reader refuses versions it does not know.

Fields are separated by blanks. Integers are decimal, no sign or underscores. Ranges:
indices 0..nr_pages-1 (or 0..2**63-1 without ``disksize``), compressed lengths
1..2*page_size (zram's compression buffer), counts >= 1 and not past the disk, pool sizes
1..page_size, ids and byte counts 0..2**63-1. A pool id is live from its ``A`` to its
``F``: ``A`` of a live id and ``F`` of an id that is not live are errors, so the reader
holds the set of live ids (memory in proportion to live objects, not to the trace).

Zram records say what the device decided, not the data: a ``W`` record is a write whose
page was not same-filled, ``S`` one that was, whatever the outcome. A write refused by
``mem_limit`` is recorded too (replaying it refuses it again); writes that failed before
reaching the pool (bad index or length) are not recorded.

Errors: every malformed line raises :class:`TraceError` (a ValueError) naming the source,
the line number and the problem. The writer checks the same rules, so what it writes reads
back.

Reading, a file that starts with the gzip magic is decompressed, whatever its name; a
truncated or corrupt one is a TraceError naming the line where it broke. Writing, a name
ending in ``.gz`` compresses.

Code: :mod:`.header` (the first line, constants, TraceError), :mod:`.records` (a class per
record code), :mod:`.reader` (TraceReader, read_trace), :mod:`.writer` (TraceWriter); this
module gathers them.
"""

from .header import MAGIC, MAX_INT, VERSION, TraceError, TraceHeader
from .reader import GZIP_MAGIC, TraceReader, read_trace
from .records import (POOL_RECORDS, RECORD_TYPES, ZRAM_RECORDS, Compact, Discard, Free,
                      Malloc, MemLimit, PoolCompact, Record, Reset, ResetMax, ZramData,
                      ZramRead, ZramSame, ZramWrite)
from .writer import TraceWriter

__all__ = ["VERSION", "MAGIC", "MAX_INT", "TraceError", "TraceHeader", "TraceReader",
           "TraceWriter", "read_trace", "Record", "ZramWrite", "ZramSame", "ZramData",
           "ZramRead", "Discard", "Compact", "MemLimit", "ResetMax", "Reset", "Malloc", "Free",
           "PoolCompact", "ZRAM_RECORDS", "POOL_RECORDS", "RECORD_TYPES", "GZIP_MAGIC"]
