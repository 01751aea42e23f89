"""The zstrace header line, the format's constants and its errors."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..config import PAGE_SIZES, PROFILES, MAX_CHAIN, MIN_CHAIN

__all__ = ["MAGIC", "VERSION", "MAX_INT", "TraceError", "TraceHeader"]

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
