"""The device's statistics files: mm_stat, io_stat, debug_stat. Kernel: mm_stat_show,
io_stat_show, debug_stat_show (drivers/block/zram/zram_drv.c)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MmStat:
    """/sys/block/zramN/mm_stat, fields in kernel order; ``str()`` is the sysfs line."""

    orig_data_size: int
    compr_data_size: int
    mem_used_total: int
    mem_limit: int
    mem_used_max: int
    same_pages: int
    pages_compacted: int
    huge_pages: int
    huge_pages_since: int

    FIELDS = ("orig_data_size", "compr_data_size", "mem_used_total", "mem_limit",
              "mem_used_max", "same_pages", "pages_compacted", "huge_pages", "huge_pages_since")

    def __str__(self):
        return "%8d %8d %8d %8d %8d %8d %8d %8d %8d\n" % tuple(self)

    def __iter__(self):
        return iter((self.orig_data_size, self.compr_data_size, self.mem_used_total,
                     self.mem_limit, self.mem_used_max, self.same_pages, self.pages_compacted,
                     self.huge_pages, self.huge_pages_since))

    def as_tuple(self) -> tuple:
        return tuple(self)

    def as_dict(self) -> dict:
        return dict(zip(self.FIELDS, self))


@dataclass(frozen=True)
class IoStat:
    """/sys/block/zramN/io_stat: failed_reads failed_writes 0 notify_free."""

    failed_reads: int
    failed_writes: int
    notify_free: int

    def __str__(self):
        return "%8d %8d %8d %8d\n" % (self.failed_reads, self.failed_writes, 0, self.notify_free)

    def as_tuple(self) -> tuple:
        return (self.failed_reads, self.failed_writes, 0, self.notify_free)


@dataclass(frozen=True)
class DebugStat:
    """/sys/block/zramN/debug_stat."""

    miss_free: int

    def __str__(self):
        return "version: %d\n%8d %8d\n" % (1, 0, self.miss_free)
