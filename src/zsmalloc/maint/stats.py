"""Statistics: per-class counters and the debugfs ``classes`` table.

Kernel: zs_stats_size_show (debugfs /sys/kernel/debug/zsmalloc/<pool>/classes, needs
CONFIG_ZSMALLOC_STAT), class_stat_read, zs_get_total_pages.

The counters cost nothing extra: they are the per-group list lengths and the ZS_OBJS_*
counts the allocator keeps anyway. Reading them is O(classes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.compaction import zs_can_compact


@dataclass(frozen=True)
class ClassStats:
    """One row of the classes table (one distinct class)."""

    index: int
    size: int
    pages_per_zspage: int
    objs_per_zspage: int
    huge: bool
    zspages_per_group: list = field(hash=False)   # 12 counts (6.18) or 4 (4.8: empty..full)
    obj_allocated: int = 0
    obj_used: int = 0
    pages_used: int = 0
    freeable: int = 0

    @property
    def almost_full(self) -> int:
        """4.8 column (group ZS_ALMOST_FULL)."""
        return self.zspages_per_group[2] if len(self.zspages_per_group) == 4 else 0

    @property
    def almost_empty(self) -> int:
        return self.zspages_per_group[1] if len(self.zspages_per_group) == 4 else 0

    def as_dict(self) -> dict:
        return {"index": self.index, "size": self.size, "pages_per_zspage": self.pages_per_zspage,
                "objs_per_zspage": self.objs_per_zspage, "huge": self.huge,
                "zspages_per_group": list(self.zspages_per_group),
                "obj_allocated": self.obj_allocated, "obj_used": self.obj_used,
                "pages_used": self.pages_used, "freeable": self.freeable}


def class_stats(pool) -> list:
    """One row per distinct class, ascending index."""
    return [ClassStats(index=c.index, size=c.size, pages_per_zspage=c.ppz,
                       objs_per_zspage=c.objs, huge=c.huge,
                       zspages_per_group=c.group_counts(), obj_allocated=c.allocated,
                       obj_used=c.inuse, pages_used=c.allocated // c.objs * c.ppz,
                       freeable=zs_can_compact(c))
            for c in pool.classes]


def format_classes(pool) -> str:
    """The debugfs ``classes`` text for the pool's profile, Total row included."""
    rows = class_stats(pool)
    out = []
    if pool.kernel_48:
        # Kernel (4.9 tree): " %5s %5s %11s %12s %13s %10s %10s %16s %8s"
        out.append(" %5s %5s %11s %12s %13s %10s %10s %16s %8s" % (
            "class", "size", "almost_full", "almost_empty", "obj_allocated", "obj_used",
            "pages_used", "pages_per_zspage", "freeable"))
        t = [0] * 6
        for r in rows:
            out.append(" %5u %5u %11u %12u %13u %10u %10u %16d %8u" % (
                r.index, r.size, r.almost_full, r.almost_empty, r.obj_allocated, r.obj_used,
                r.pages_used, r.pages_per_zspage, r.freeable))
            for i, v in enumerate((r.almost_full, r.almost_empty, r.obj_allocated, r.obj_used,
                                   r.pages_used, r.freeable)):
                t[i] += v
        out.append("")
        out.append(" %5s %5s %11u %12u %13u %10u %10u %16s %8u" % (
            "Total", "", t[0], t[1], t[2], t[3], t[4], "", t[5]))
        return "\n".join(out) + "\n"
    # Kernel (6.4+): groups 10%..100% (1..11), then the object and page columns
    names = ["10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%", "90%", "99%", "100%"]
    out.append((" %5s %5s " + "%9s " * 11 + "%13s %10s %10s %16s %8s") % (
        "class", "size", *names, "obj_allocated", "obj_used", "pages_used",
        "pages_per_zspage", "freeable"))
    gt = [0] * 11
    tot = [0] * 4
    for r in rows:
        groups = r.zspages_per_group[1:12]
        for i, v in enumerate(groups):
            gt[i] += v
        out.append((" %5u %5u " + "%9u " * 11 + "%13u %10u %10u %16d %8u") % (
            r.index, r.size, *groups, r.obj_allocated, r.obj_used, r.pages_used,
            r.pages_per_zspage, r.freeable))
        tot[0] += r.obj_allocated
        tot[1] += r.obj_used
        tot[2] += r.pages_used
        tot[3] += r.freeable
    out.append("")
    out.append((" %5s %5s " + "%9u " * 11 + "%13u %10u %10u %16s %8u") % (
        "Total", "", *gt, tot[0], tot[1], tot[2], "", tot[3]))
    return "\n".join(out) + "\n"


def metadata_bytes(pool) -> dict:
    """Bytes of the pool's metadata by structure (the typed columns' buffers, capacity
    included; frames excluded). An accounting aid: bench_pool measures RSS too."""
    parts = {"handles": pool.handles.nbytes(), "zspages": pool.zspages.nbytes_rows(),
             "frames": pool.zspages.nbytes_frames(), "arena": pool.arena.nbytes()}
    parts["total"] = sum(parts.values())
    return parts
