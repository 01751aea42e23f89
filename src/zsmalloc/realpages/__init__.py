"""Real page data for benchmarks and reports: memory of a child process we start, ELF files
and text on this machine, a saved-pages file format, and swap-like workloads over page lists.

Sources (each returns a list of ``page_size``-byte ``bytes``):

* :func:`child_anon_pages` (:mod:`.anon`, running the child program :mod:`.heap`): the
  resident private anonymous pages of child Python processes that build a realistic heap.
  This is what zram holds when it is used as swap. Pages are only ever read from a child
  this package started.
* :func:`elf_pages`, :func:`text_pages` (:mod:`.files`): pages of ELF files and of text.
* :func:`mixed_pages` (:mod:`.mixed`): about 60 % anon, 25 % ELF, 15 % text, shuffled.

Also: :mod:`.pagefile` (``save_pages`` / ``load_pages``, the ZSPAGES1 format),
:mod:`.summary` (``summarize``: lz4 size distribution), :mod:`.workloads` (``workload_ops``,
``apply``, ``swap_in_wave``), :mod:`.cli` (``zsmalloc pages SOURCE N OUT``).
"""

from .anon import CHILD_BUDGET, ChildHeap, child_anon_pages
from .cli import SOURCES, register
from .common import SYS_PAGE, mem_available, rss
from .files import ELF_DIRS, elf_files, elf_pages, text_files, text_pages
from .mixed import MIX, mixed_pages
from .pagefile import MAGIC, PageFileError, load_pages, save_pages
from .summary import HUGE_4K, format_summary, summarize
from .workloads import WORKLOADS, apply, swap_in_wave, workload_ops

__all__ = ["child_anon_pages", "elf_pages", "text_pages", "mixed_pages", "save_pages",
           "load_pages", "PageFileError", "summarize", "format_summary", "WORKLOADS",
           "workload_ops", "apply", "swap_in_wave", "rss", "register", "ChildHeap",
           "elf_files", "text_files", "ELF_DIRS", "MIX", "HUGE_4K", "SYS_PAGE", "MAGIC",
           "SOURCES", "CHILD_BUDGET", "mem_available"]
