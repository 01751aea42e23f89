"""The records of a zstrace trace: one class per code, each parsing, checking and
printing its own line (see zsmalloc.trace.format for the rules)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from .header import _HEX_RE, _WORD_MAX, MAX_INT, TraceHeader, _Bad, _int, _need_int

__all__ = ["Record", "ZramWrite", "ZramSame", "ZramData", "ZramRead", "Discard",
           "Compact", "MemLimit", "ResetMax", "Reset", "Malloc", "Free", "PoolCompact",
           "ZRAM_RECORDS", "POOL_RECORDS", "RECORD_TYPES"]


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
