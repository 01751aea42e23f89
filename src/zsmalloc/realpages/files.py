"""File-backed pages: ELF files and text on this machine, cut as the page cache does
(each file starts on a page boundary, its last page is padded with zeros).

:func:`elf_pages`: shared libraries and executables in file order (what a file-backed zram
or a tmpfs holding binaries sees); :func:`text_pages`: documentation and Python sources.
"""

from __future__ import annotations

import os
import sysconfig

from .common import check_n, check_page_size

__all__ = ["ELF_DIRS", "elf_files", "text_files", "elf_pages", "text_pages"]

ELF_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/bin")
_NOT_TEXT = (".gz", ".bz2", ".xz", ".zst", ".zip", ".png", ".gif", ".jpg", ".pdf", ".ico", ".svg")


def _interleave(iters):
    """Round-robin over several iterables, lazily (so a small request sees every source)."""
    iters = [iter(i) for i in iters]
    while iters:
        for it in list(iters):
            try:
                yield next(it)
            except StopIteration:
                iters.remove(it)


def _walk(top, keep, skip_dirs=()):
    """Paths under ``top`` whose name passes ``keep``, depth first in sorted order."""
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except OSError:
        return
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                if e.name not in skip_dirs:
                    yield from _walk(e.path, keep, skip_dirs)
            elif keep(e.name):
                yield e.path
        except OSError:
            continue


def _listdir(top, keep):
    try:
        names = sorted(os.listdir(top))
    except OSError:
        return []
    return [os.path.join(top, n) for n in names if keep(n)]


def _checked(paths, magic_ok):
    """Regular non-empty files among ``paths`` whose first block passes ``magic_ok``, each
    file once (symlinks and hard links to one inode count once)."""
    seen = set()
    for p in paths:
        try:
            st = os.stat(p)
            if not (st.st_mode & 0o170000 == 0o100000) or st.st_size == 0:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            with open(p, "rb") as f:
                head = f.read(4096)
        except OSError:
            continue
        if magic_ok(head):
            yield p


def _is_elf(head) -> bool:
    return head[:4] == b"\x7fELF"


def _is_text(head) -> bool:
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start > len(head) - 4     # a multi-byte character cut at the block end
    return True


def _file_pages(files, n: int, page_size: int) -> list:
    """Up to ``n`` pages from ``files`` in order, page-cache style (last page zero-padded).

    So that a request sees many files, each file gives at most ``ceil(n / 32)`` pages
    (at least 8), spread evenly over the file and kept in file order.
    """
    cap = max(8, -(-n // 32))
    out: list = []
    for path in files:
        if len(out) >= n:
            break
        try:
            size = os.path.getsize(path)
            npages = -(-size // page_size)
            take = min(npages, cap, n - len(out))
            idx = sorted({i * npages // take for i in range(take)}) if take else []
            with open(path, "rb") as f:
                for i in idx:
                    f.seek(i * page_size)
                    pg = f.read(page_size)
                    if not pg:
                        continue
                    out.append(pg + bytes(page_size - len(pg)) if len(pg) < page_size else pg)
        except OSError:
            continue
    return out


def elf_files():
    """ELF shared libraries and executables on this machine, interleaved by directory
    (a lazy iterator; each file checked for the ELF magic as it is reached)."""
    lib = lambda n: ".so" in n
    groups = [_listdir(d, lib if "lib" in d else (lambda n: True)) for d in ELF_DIRS]
    return _checked(_interleave(groups), _is_elf)


def text_files():
    """Text files: /usr/share/doc (not compressed ones), the Python standard library's
    *.py (not site-packages) and /usr/share/common-licenses, interleaved; lazy."""
    text = lambda n: not n.endswith(_NOT_TEXT)
    stdlib = sysconfig.get_paths().get("stdlib", "")
    groups = [_walk("/usr/share/doc", text),
              _walk(stdlib, lambda n: n.endswith(".py"), ("site-packages", "__pycache__"))
              if stdlib else [],
              _walk("/usr/share/common-licenses", text)]
    return _checked(_interleave(groups), _is_text)


def elf_pages(n, page_size: int = 4096) -> list:
    """Up to ``n`` pages of ELF files here (libraries in /usr/lib/<arch>, /usr/bin), file order.

    Cost: one seek+read per page, plus listing the directories (~50 ms).
    """
    check_n(n)
    check_page_size(page_size)
    return _file_pages(elf_files(), n, page_size) if n else []


def text_pages(n, page_size: int = 4096) -> list:
    """Up to ``n`` pages of text (/usr/share/doc, stdlib *.py, licences), last page zero-padded."""
    check_n(n)
    check_page_size(page_size)
    return _file_pages(text_files(), n, page_size) if n else []
