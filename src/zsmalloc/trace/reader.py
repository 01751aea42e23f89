"""Reading a trace: a stream of checked records from a path (gzip by content), a
file object or any iterable of lines."""

from __future__ import annotations

import gzip
import os
import zlib

from .header import TraceError, TraceHeader, _Bad
from .records import RECORD_TYPES, Record, _State

__all__ = ["GZIP_MAGIC", "TraceReader", "read_trace"]

GZIP_MAGIC = b"\x1f\x8b"


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
