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
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import os
import re
import zlib
from dataclasses import dataclass, field

from ..config import PAGE_SIZES, PROFILES, MAX_CHAIN, MIN_CHAIN

__all__ = ["VERSION", "MAGIC", "TraceError", "TraceHeader", "TraceReader", "TraceWriter",
           "read_trace", "Record", "ZramWrite", "ZramSame", "ZramData", "ZramRead", "Discard",
           "Compact", "MemLimit", "ResetMax", "Reset", "Malloc", "Free", "PoolCompact",
           "ZRAM_RECORDS", "POOL_RECORDS", "RECORD_TYPES"]

MAGIC = "zstrace"
VERSION = 1
MAX_INT = (1 << 63) - 1
_WORD_MAX = (1 << 64) - 1

_INT_RE = re.compile(r"-?[0-9]+")
_HEX_RE = re.compile(r"[0-9a-fA-F]{1,16}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9._-]+")


class TraceError(ValueError):
    """A malformed trace or record. ``str()`` is ``"<source>: line <n>: <problem>"``."""

    def __init__(self, source: str, line: int, problem: str):
        super().__init__(f"{source}: line {line}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


class _Bad(Exception):
    """A problem in one line; the reader or writer adds the source and line number."""


# ---- header -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TraceHeader:
    """The first line: format version, page size and what the recorder ran with."""

    page_size: int = 4096
    disksize: int | None = None
    comp: str | None = None
    profile: str | None = None
    chain_size: int | None = None
    version: int = VERSION

    def __post_init__(self):
        try:
            self._check()
        except _Bad as e:
            raise ValueError(f"trace header: {e}") from None

    def _check(self) -> None:
        if self.version != VERSION:
            raise _Bad(f"unsupported trace version {self.version!r}; this reader knows {VERSION}")
        if type(self.page_size) is not int or self.page_size not in PAGE_SIZES:
            raise _Bad(f"page_size {self.page_size!r} not supported; use one of "
                       f"{', '.join(map(str, PAGE_SIZES))}")
        if self.disksize is not None and (type(self.disksize) is not int
                                          or not 0 < self.disksize <= MAX_INT):
            raise _Bad(f"disksize {self.disksize!r} must be a positive int (bytes)")
        if self.comp is not None and (type(self.comp) is not str or not _TOKEN_RE.fullmatch(self.comp)):
            raise _Bad(f"comp {self.comp!r} must be an algorithm name like lz4")
        if self.profile is not None and self.profile not in PROFILES:
            raise _Bad(f"profile {self.profile!r} unknown; known: {', '.join(PROFILES)}")
        if self.chain_size is not None and (type(self.chain_size) is not int
                                            or not MIN_CHAIN <= self.chain_size <= MAX_CHAIN):
            raise _Bad(f"chain_size {self.chain_size!r} out of range {MIN_CHAIN}..{MAX_CHAIN}")

    @property
    def nr_pages(self) -> int | None:
        """Pages of the recorded disk (disksize rounded up), or None if not given."""
        if self.disksize is None:
            return None
        return -(-self.disksize // self.page_size)

    def to_line(self) -> str:
        parts = [MAGIC, str(self.version), f"page_size={self.page_size}"]
        for key in ("disksize", "comp", "profile", "chain_size"):
            v = getattr(self, key)
            if v is not None:
                parts.append(f"{key}={v}")
        return " ".join(parts)

    @classmethod
    def parse(cls, line: str) -> "TraceHeader":
        """Parse a header line; raises _Bad naming the problem."""
        toks = line.split()
        if not toks or toks[0] != MAGIC:
            shown = line.strip()[:40]
            raise _Bad(f"not a zstrace trace: the first line must start with '{MAGIC} {VERSION}', "
                       f"got {shown!r}")
        if len(toks) < 2:
            raise _Bad("header has no version after 'zstrace'")
        if not _INT_RE.fullmatch(toks[1]):
            raise _Bad(f"header version {toks[1]!r} is not an integer")
        version = int(toks[1])
        if version != VERSION:
            raise _Bad(f"unsupported trace version {version}; this reader knows {VERSION}")
        kw: dict = {}
        for tok in toks[2:]:
            key, eq, val = tok.partition("=")
            if not eq or not key or not val:
                raise _Bad(f"header field {tok!r} is not key=value")
            if key in kw:
                raise _Bad(f"header key {key!r} given twice")
            if key in ("page_size", "disksize", "chain_size"):
                kw[key] = _int(val, key)
            elif key in ("comp", "profile"):
                kw[key] = val
            else:
                raise _Bad(f"unknown header key {key!r}; version {VERSION} knows page_size, "
                           f"disksize, comp, profile, chain_size")
        if "page_size" not in kw:
            raise _Bad("header lacks page_size=")
        h = object.__new__(cls)
        fields = dict(page_size=4096, disksize=None, comp=None, profile=None,
                      chain_size=None, version=version)
        fields.update(kw)
        for k, v in fields.items():   # not via __init__: its errors lack the line number
            object.__setattr__(h, k, v)
        h._check()
        return h


# ---- records ----------------------------------------------------------------------------

def _int(tok: str, what: str) -> int:
    if not _INT_RE.fullmatch(tok):
        raise _Bad(f"{what} {tok!r} is not an integer")
    if len(tok) > 20:
        raise _Bad(f"{what} {tok[:24]}... out of range")
    return int(tok)


def _need_int(v, what: str, lo: int, hi: int) -> None:
    if type(v) is not int:
        raise _Bad(f"{what} {v!r} is not an integer")
    if not lo <= v <= hi:
        raise _Bad(f"{what} {v} out of range {lo}..{hi}")


class _State:
    """What the rules need besides the line itself: page size, disk size, live pool ids."""

    __slots__ = ("page_size", "max_comp", "nr_pages", "max_index", "live")

    def __init__(self, header: TraceHeader):
        self.page_size = header.page_size
        self.max_comp = 2 * header.page_size        # Kernel: zcomp dst_len = 2 * PAGE_SIZE
        self.nr_pages = header.nr_pages
        self.max_index = MAX_INT if self.nr_pages is None else self.nr_pages - 1
        self.live: set = set()

    def index(self, code: str, index) -> None:
        if type(index) is not int:
            raise _Bad(f"{code}: index {index!r} is not an integer")
        if not 0 <= index <= self.max_index:
            raise _Bad(f"{code}: index {index} out of range 0..{self.max_index}")


@dataclass(frozen=True, slots=True)
class Record:
    """Base of all records. ``line`` is where the reader found it (0 if made in code)."""

    CODE = "?"
    FIELDS = ()


def _record(code: str, fields: tuple, doc: str):
    """Decorator filling in CODE / FIELDS for a record class."""
    def deco(cls):
        cls.CODE = code
        cls.FIELDS = fields
        cls.__doc__ = f"``{' '.join((code,) + tuple(f'<{f}>' for f in fields))}``: {doc}"
        return cls
    return deco


@_record("W", ("index", "comp_len"), "zram write of a page compressing to comp_len bytes.")
@dataclass(frozen=True, slots=True)
class ZramWrite(Record):
    index: int
    comp_len: int
    line: int = field(default=0, compare=False, repr=False)

    def to_line(self) -> str:
        return f"W {self.index} {self.comp_len}"

    @staticmethod
    def parse(t, n):
        return ZramWrite(_int(t[1], "W: index"), _int(t[2], "W: comp_len"), n)

    def check(self, st: _State) -> None:
        st.index("W", self.index)
        _need_int(self.comp_len, "W: comp_len", 1, st.max_comp)


@_record("S", ("index", "word"), "zram write of a same-filled page (fill word in hex).")
@dataclass(frozen=True, slots=True)
class ZramSame(Record):
    index: int
    word: int
    line: int = field(default=0, compare=False, repr=False)

    def to_line(self) -> str:
        return f"S {self.index} {self.word:x}"

    @staticmethod
    def parse(t, n):
        idx = _int(t[1], "S: index")
        if not _HEX_RE.fullmatch(t[2]):
            raise _Bad(f"S: word {t[2][:24]!r} is not 1..16 hex digits")
        return ZramSame(idx, int(t[2], 16), n)

    def check(self, st: _State) -> None:
        st.index("S", self.index)
        _need_int(self.word, "S: word", 0, _WORD_MAX)


@_record("D", ("index", "base64 page"), "zram write with the page's bytes.")
@dataclass(frozen=True, slots=True)
class ZramData(Record):
    index: int
    page: bytes
    line: int = field(default=0, compare=False, repr=False)

    def to_line(self) -> str:
        return f"D {self.index} {base64.b64encode(self.page).decode('ascii')}"

    @staticmethod
    def parse(t, n):
        idx = _int(t[1], "D: index")
        try:
            page = base64.b64decode(t[2], validate=True)
        except (binascii.Error, ValueError):
            raise _Bad(f"D: page data {t[2][:24]!r}... is not valid base64") from None
        return ZramData(idx, page, n)

    def check(self, st: _State) -> None:
        st.index("D", self.index)
        if not isinstance(self.page, (bytes, bytearray, memoryview)):
            raise _Bad(f"D: page must be bytes, not {type(self.page).__name__}")
        if len(self.page) != st.page_size:
            raise _Bad(f"D: page is {len(self.page)} bytes, the trace's page_size is {st.page_size}")


@_record("G", ("index",), "zram read (changes no counter but num_reads).")
@dataclass(frozen=True, slots=True)
class ZramRead(Record):
    index: int
    line: int = field(default=0, compare=False, repr=False)

    def to_line(self) -> str:
        return f"G {self.index}"

    @staticmethod
    def parse(t, n):
        return ZramRead(_int(t[1], "G: index"), n)

    def check(self, st: _State) -> None:
        st.index("G", self.index)


@_record("X", ("index", "count"), "discard pages index..index+count-1.")
@dataclass(frozen=True, slots=True)
class Discard(Record):
    index: int
    count: int = 1
    line: int = field(default=0, compare=False, repr=False)

    def to_line(self) -> str:
        return f"X {self.index} {self.count}"

    @staticmethod
    def parse(t, n):
        return Discard(_int(t[1], "X: index"), _int(t[2], "X: count"), n)

    def check(self, st: _State) -> None:
        st.index("X", self.index)
        _need_int(self.count, "X: count", 1, st.max_index + 1 - self.index)


@_record("C", (), "zram compact.")
@dataclass(frozen=True, slots=True)
class Compact(Record):
    line: int = field(default=0, compare=False, repr=False)

    def to_line(self) -> str:
        return "C"

    @staticmethod
    def parse(t, n):
        return Compact(n)

    def check(self, st: _State) -> None:
        pass


@_record("L", ("bytes",), "set zram mem_limit (0 = none).")
@dataclass(frozen=True, slots=True)
class MemLimit(Record):
    nbytes: int
    line: int = field(default=0, compare=False, repr=False)

    def to_line(self) -> str:
        return f"L {self.nbytes}"

    @staticmethod
    def parse(t, n):
        return MemLimit(_int(t[1], "L: bytes"), n)

    def check(self, st: _State) -> None:
        _need_int(self.nbytes, "L: bytes", 0, MAX_INT)


@_record("M", (), "reset zram mem_used_max to the current use.")
@dataclass(frozen=True, slots=True)
class ResetMax(Record):
    line: int = field(default=0, compare=False, repr=False)

    def to_line(self) -> str:
        return "M"

    @staticmethod
    def parse(t, n):
        return ResetMax(n)

    def check(self, st: _State) -> None:
        pass


@_record("R", (), "reset the zram device.")
@dataclass(frozen=True, slots=True)
class Reset(Record):
    line: int = field(default=0, compare=False, repr=False)

    def to_line(self) -> str:
        return "R"

    @staticmethod
    def parse(t, n):
        return Reset(n)

    def check(self, st: _State) -> None:
        pass


@_record("A", ("id", "size"), "pool malloc of size bytes, named by a trace-local id.")
@dataclass(frozen=True, slots=True)
class Malloc(Record):
    id: int
    size: int
    line: int = field(default=0, compare=False, repr=False)

    def to_line(self) -> str:
        return f"A {self.id} {self.size}"

    @staticmethod
    def parse(t, n):
        return Malloc(_int(t[1], "A: id"), _int(t[2], "A: size"), n)

    def check(self, st: _State) -> None:
        _need_int(self.id, "A: id", 0, MAX_INT)
        _need_int(self.size, "A: size", 1, st.page_size)
        if self.id in st.live:
            raise _Bad(f"A: id {self.id} is already live (malloc of an existing id)")
        st.live.add(self.id)


@_record("F", ("id",), "pool free of the object with that id.")
@dataclass(frozen=True, slots=True)
class Free(Record):
    id: int
    line: int = field(default=0, compare=False, repr=False)

    def to_line(self) -> str:
        return f"F {self.id}"

    @staticmethod
    def parse(t, n):
        return Free(_int(t[1], "F: id"), n)

    def check(self, st: _State) -> None:
        _need_int(self.id, "F: id", 0, MAX_INT)
        try:
            st.live.remove(self.id)
        except KeyError:
            raise _Bad(f"F: id {self.id} is not live (free of an unknown or freed id)") from None


@_record("PC", (), "pool compact.")
@dataclass(frozen=True, slots=True)
class PoolCompact(Record):
    line: int = field(default=0, compare=False, repr=False)

    def to_line(self) -> str:
        return "PC"

    @staticmethod
    def parse(t, n):
        return PoolCompact(n)

    def check(self, st: _State) -> None:
        pass


ZRAM_RECORDS = (ZramWrite, ZramSame, ZramData, ZramRead, Discard, Compact, MemLimit,
                ResetMax, Reset)
POOL_RECORDS = (Malloc, Free, PoolCompact)
RECORD_TYPES = {cls.CODE: cls for cls in ZRAM_RECORDS + POOL_RECORDS}


# ---- reader -----------------------------------------------------------------------------

GZIP_MAGIC = b"\x1f\x8b"


def _open_write(path):
    """A binary file for writing ``path``; gzip when its name ends in ``.gz``."""
    p = os.fspath(path)
    if os.fsdecode(p).endswith(".gz"):
        return gzip.open(p, "wb")
    return open(p, "wb")


def _open_read(path):
    """A binary file reading ``path``, decompressed when it *starts* with the gzip magic.

    The content decides, not the name: a plain trace named ``.gz`` or a gzip one named
    ``.zst`` reads as what it is (a mislabelled file is not an error)."""
    f = open(os.fspath(path), "rb")
    try:
        if f.peek(2)[:2] == GZIP_MAGIC:
            return gzip.GzipFile(fileobj=f, mode="rb"), f
    except BaseException:
        f.close()
        raise
    return f, None


# what a damaged gzip stream raises while it is read (EOFError: truncated)
_STREAM_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, OSError)


class TraceReader:
    """Iterate over the records of a trace; ``.header`` is parsed on construction.

    ``TraceReader(path_or_file)``: a path (``.gz`` is decompressed), a binary or text file
    object, or any iterable of lines. Single pass. Raises TraceError for a malformed header
    at once and for a malformed record when iteration reaches it. Closes a file it opened
    when iteration ends, on ``close()`` or on leaving a ``with`` block.
    Cost: one split and a few int() per line; memory: the live pool ids only.
    """

    def __init__(self, source):
        self._owned = self._raw = None
        if isinstance(source, (str, bytes, os.PathLike)):
            self.name = os.fsdecode(source)
            self._owned, self._raw = f, _ = _open_read(source)
        else:
            f = source
            self.name = str(getattr(source, "name", "<trace>"))
        self._lines = self._read_lines(iter(f))
        self.lineno = 0
        self.records = 0
        try:
            first = next(self._lines, None)
            if first is None:
                raise TraceError(self.name, 1, "empty trace: no 'zstrace 1 ...' header line")
            self.lineno = 1
            try:
                self.header = TraceHeader.parse(self._text(first))
            except _Bad as e:
                raise TraceError(self.name, 1, str(e)) from None
        except BaseException:
            self.close()
            raise
        self._state = _State(self.header)
        self._it = self._records()

    def _read_lines(self, it):
        """The file's lines; a damaged stream (truncated or corrupt gzip, a read error)
        becomes a TraceError naming the line where it broke."""
        while True:
            try:
                raw = next(it)
            except StopIteration:
                return
            except _STREAM_ERRORS as e:
                what = ("compressed data ends early (truncated .gz file?)"
                        if isinstance(e, EOFError) else f"cannot read: {e}")
                raise TraceError(self.name, self.lineno + 1, what) from None
            yield raw

    def _text(self, raw) -> str:
        if isinstance(raw, str):
            return raw
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as e:
            raise TraceError(self.name, self.lineno or 1,
                             f"non-ASCII byte {raw[e.start]:#04x} at column {e.start + 1}") from None
        except AttributeError:
            raise TraceError(self.name, self.lineno or 1,
                             f"lines must be str or bytes, not {type(raw).__name__}") from None

    def _records(self):
        st = self._state
        types = RECORD_TYPES
        name = self.name
        n = self.lineno
        try:
            for raw in self._lines:
                n += 1
                self.lineno = n
                t = (raw if isinstance(raw, str) else self._text(raw)).split()
                if not t or t[0][0] == "#":
                    continue
                cls = types.get(t[0])
                if cls is None:
                    raise TraceError(name, n, f"unknown record {t[0][:24]!r}")
                if len(t) != len(cls.FIELDS) + 1:
                    want = " ".join(f"<{f}>" for f in cls.FIELDS) or "nothing"
                    raise TraceError(name, n, f"{t[0]} takes {len(cls.FIELDS)} field(s) ({want}), "
                                              f"got {len(t) - 1}")
                try:
                    rec = cls.parse(t, n)
                    rec.check(st)
                except _Bad as e:
                    raise TraceError(name, n, str(e)) from None
                self.records += 1
                yield rec
        finally:
            self.close()

    def __iter__(self):
        return self

    def __next__(self) -> Record:
        return next(self._it)

    def close(self) -> None:
        for f in (self._owned, self._raw):
            if f is not None:
                f.close()
        self._owned = self._raw = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_trace(source) -> TraceReader:
    """Open a trace for reading: ``for rec in read_trace(path): ...``. See TraceReader."""
    return TraceReader(source)


# ---- writer -----------------------------------------------------------------------------

class TraceWriter:
    """Write a trace, one record at a time; checks each record as the reader would.

    ``TraceWriter(dest, page_size=4096, disksize=None, comp=None, profile=None,
    chain_size=None)`` or ``TraceWriter(dest, header=TraceHeader(...))``; ``dest`` is a path
    (``.gz`` compresses) or a text or binary file object. The header line is written at
    once. A record that breaks a rule raises TraceError (naming the line it would have had)
    and writes nothing. Cost per record: one check and one formatted line (~2 us).
    """

    def __init__(self, dest, page_size: int = 4096, *, disksize=None, comp=None, profile=None,
                 chain_size=None, header: TraceHeader | None = None):
        if header is None:
            header = TraceHeader(page_size=page_size, disksize=disksize, comp=comp,
                                 profile=profile, chain_size=chain_size)
        self.header = header
        self._owned = None
        if isinstance(dest, (str, bytes, os.PathLike)):
            self.name = os.fsdecode(dest)
            self._owned = f = _open_write(dest)
        else:
            f = dest
            self.name = str(getattr(dest, "name", "<trace>"))
        if isinstance(f, io.TextIOBase):
            self._put = f.write
        else:
            raw_write = f.write
            self._put = lambda s: raw_write(s.encode("ascii"))
        self._f = f
        self._state = _State(header)
        self.lineno = 1
        self.records = 0
        self._put(header.to_line() + "\n")

    @classmethod
    def for_zram(cls, zram, dest) -> "TraceWriter":
        """A writer whose header describes ``zram`` (page size, disksize, codec, pool config)."""
        cfg = zram.config
        return cls(dest, cfg.page_size, disksize=zram.disksize, comp=zram.comp_algorithm,
                   profile=cfg.profile, chain_size=cfg.chain_size)

    @classmethod
    def for_pool(cls, pool, dest) -> "TraceWriter":
        """A writer whose header describes ``pool`` (page size and, for a Pool, its config)."""
        cfg = getattr(pool, "config", None)
        if cfg is None:
            return cls(dest, pool.page_size)
        return cls(dest, cfg.page_size, profile=cfg.profile, chain_size=cfg.chain_size)

    def write(self, rec: Record) -> None:
        """Append one record (checked first; nothing written if it breaks a rule)."""
        try:
            check = rec.check
        except AttributeError:
            raise TraceError(self.name, self.lineno + 1,
                             f"not a trace record: {type(rec).__name__}") from None
        try:
            check(self._state)
        except _Bad as e:
            raise TraceError(self.name, self.lineno + 1, str(e)) from None
        self._put(rec.to_line() + "\n")
        self.lineno += 1
        self.records += 1

    # one helper per record kind, for recorders and generators
    def zram_write(self, index: int, comp_len: int) -> None:
        self.write(ZramWrite(index, comp_len))

    def zram_same(self, index: int, word: int) -> None:
        self.write(ZramSame(index, word))

    def zram_data(self, index: int, page) -> None:
        self.write(ZramData(index, bytes(page)))

    def zram_read(self, index: int) -> None:
        self.write(ZramRead(index))

    def discard(self, index: int, count: int = 1) -> None:
        self.write(Discard(index, count))

    def compact(self) -> None:
        self.write(Compact())

    def mem_limit(self, nbytes: int) -> None:
        self.write(MemLimit(nbytes))

    def reset_mem_used_max(self) -> None:
        self.write(ResetMax())

    def reset(self) -> None:
        self.write(Reset())

    def malloc(self, id: int, size: int) -> None:
        self.write(Malloc(id, size))

    def free(self, id: int) -> None:
        self.write(Free(id))

    def pool_compact(self) -> None:
        self.write(PoolCompact())

    def comment(self, text: str) -> None:
        """A ``# text`` line (one line of ASCII)."""
        if not isinstance(text, str) or "\n" in text or "\r" in text or not text.isascii():
            raise ValueError(f"comment {text!r} must be one line of ASCII text")
        self._put(f"# {text}\n")
        self.lineno += 1

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        """Flush; close the file if the writer opened it."""
        if self._owned is not None:
            self._owned.close()
            self._owned = None
        else:
            try:
                self._f.flush()
            except (AttributeError, ValueError):
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
