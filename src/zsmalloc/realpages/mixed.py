"""The mix the benchmarks and the report use: about 60 % anon, 25 % ELF, 15 % text."""

from __future__ import annotations

import random

from .anon import child_anon_pages
from .common import check_n, check_page_size
from .files import elf_pages, text_pages

__all__ = ["MIX", "mixed_pages"]

MIX = (("anon", 0.60), ("elf", 0.25), ("text", 0.15))


def mixed_pages(n, page_size: int = 4096, seed: int = 0, *, stats: dict | None = None,
                on_child=None) -> list:
    """``n`` pages: about 60 % anon, 25 % ELF, 15 % text, shuffled with ``seed``.

    When the machine has too few ELF or text pages, anonymous pages make up the rest.
    ``stats`` (a dict), if given, receives the count per source, ``sources`` (each page's
    source, in the returned order) and the child statistics. The order of sources depends
    only on ``n`` and ``seed``. ``on_child`` as for :func:`~.anon.child_anon_pages`.
    """
    check_n(n)
    check_page_size(page_size)
    n_elf = round(n * MIX[1][1])
    n_text = round(n * MIX[2][1])
    elf = elf_pages(n_elf, page_size)
    text = text_pages(n_text, page_size)
    child = {}
    anon = child_anon_pages(n - len(elf) - len(text), page_size, seed, stats=child,
                            on_child=on_child)
    tagged = [("anon", p) for p in anon] + [("elf", p) for p in elf] + [("text", p) for p in text]
    random.Random(seed).shuffle(tagged)
    if stats is not None:
        stats.update(child)
        stats.update(anon=len(anon), elf=len(elf), text=len(text),
                     sources=[t for t, _ in tagged])
    return [p for _, p in tagged]
