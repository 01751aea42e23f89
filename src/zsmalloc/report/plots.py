"""The report's plots (matplotlib, Agg)."""

from __future__ import annotations

from .specs import RunSpec
from .tables import pct

__all__ = ["plot_pages_over_time", "plot_efficiency", "plot_compaction", "plot_fullness",
           "plot_baselines", "GROUP_NAMES_618"]

_COLORS = {"zsmalloc": "tab:blue", "zbud": "tab:red", "z3fold": "tab:orange", "zblock": "tab:green"}
_STYLES = {4: ":", 8: "-", 16: "--"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _style(spec: RunSpec) -> dict:
    if spec.is_zsmalloc:
        if spec.profile == "linux-4.8":
            return {"color": "tab:purple", "linestyle": "-."}
        return {"color": {4: "tab:cyan", 8: "tab:blue", 16: "navy"}.get(spec.chain_size, "tab:blue"),
                "linestyle": _STYLES.get(spec.chain_size, "-")}
    return {"color": _COLORS.get(spec.allocator, "gray"), "linestyle": "-"}


def plot_pages_over_time(results: list, path: str) -> None:
    """(a) MiB held by each allocator/config against the operation (trace record) number."""
    plt = _plt()
    sizes = list(dict.fromkeys(r.spec.page_size for r in results))
    fig, axes = plt.subplots(len(sizes), 1, figsize=(11, 4.2 * len(sizes)), squeeze=False)
    for ax, P in zip(axes[:, 0], sizes):
        rs = [r for r in results if r.spec.page_size == P]
        for x in (rs[0].compact_at if rs else []):
            ax.axvline(x, color="0.75", linewidth=0.8, zorder=0)
        for r in rs:
            xs = [k for k, _ in r.samples]
            ys = [p * P / 2**20 for _, p in r.samples]
            ax.plot(xs, ys, label=r.spec.label, linewidth=1.3, **_style(r.spec))
        ax.set_title(f"Memory held over the workload, {P // 1024} KiB pages "
                     f"(grey lines: compactions)")
        ax.set_xlabel("operation number (trace record)")
        ax.set_ylabel("memory used (MiB)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_efficiency(rows: list[dict], path: str) -> None:
    """(b) memory per compressed byte stored, one labelled bar per configuration."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.8))
    labels = [d["label"] for d in rows][::-1]
    vals = [d["overhead"] for d in rows][::-1]
    colors = [_COLORS.get(d["allocator"], "gray") for d in rows][::-1]
    bars = ax.barh(labels, vals, color=colors, alpha=0.85)
    for b, d in zip(bars, rows[::-1]):
        extra = f"  ({pct(d['vs_ref'])} pages vs 6.18 c8)" if d["vs_ref"] is not None else ""
        ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {b.get_width():.3f}{extra}",
                va="center", fontsize=8)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlim(min(0.9, min(vals) - 0.05), max(vals) * 1.25)
    ax.set_xlabel("memory used / compressed bytes stored  (pages × page size ÷ compr_data_size; "
                  "1.0 = no waste, lower is better)")
    ax.set_ylabel("allocator / configuration")
    ax.set_title("Memory per compressed byte at the end of the workload")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_compaction(results: list, path: str) -> None:
    """(c) objects moved and pages freed by compaction, per configuration."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 0.42 * len(results) + 2.0), sharey=True)
    labels = [r.spec.label for r in results][::-1]
    moved = [r.moved for r in results][::-1]
    freed = [r.pages_compacted for r in results][::-1]
    colors = [_COLORS.get(r.spec.allocator, "gray") for r in results][::-1]
    for ax, vals, title, xl in (
            (a1, moved, "Objects moved by compaction", "objects moved (zs_object_copy calls)"),
            (a2, freed, "Pages freed by compaction", "pages freed (pages_compacted)")):
        bars = ax.barh(labels, vals, color=colors, alpha=0.85)
        top = max(vals) if max(vals) > 0 else 1
        for b, r in zip(bars, results[::-1]):
            ge = "≥ " if (r.moved_lower_bound and vals is moved) else ""
            txt = f" {ge}{int(b.get_width()):,}" if r.spec.is_zsmalloc else " none (no compaction)"
            ax.text(b.get_width(), b.get_y() + b.get_height() / 2, txt, va="center", fontsize=8)
        ax.set_xlim(0, top * 1.35)
        ax.set_title(f"{title} ({results[0].compactions if results else 0} compactions)")
        ax.set_xlabel(xl)
        ax.grid(axis="x", alpha=0.3)
    a1.set_ylabel("allocator / configuration")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


GROUP_NAMES_618 = ("0", "1-10", "11-20", "21-30", "31-40", "41-50", "51-60", "61-70", "71-80",
                   "81-90", "91-99", "100")


def plot_fullness(result, path: str) -> None:
    """(d) zspages per (class, fullness group) before the last compaction and at the end."""
    plt = _plt()
    import numpy as np
    from matplotlib.colors import LogNorm
    panels = [("before the last compaction", result.classes_before_last_compact),
              ("at the end (after it)", result.classes_end)]
    panels = [(t, rows) for t, rows in panels if rows]
    keep = sorted({i for _, rows in panels for i, r in enumerate(rows) if any(r.zspages_per_group)})
    if not keep:
        keep = [0]
    ngroups = len(panels[0][1][0].zspages_per_group)
    names = GROUP_NAMES_618 if ngroups == 12 else tuple(f"g{i}" for i in range(ngroups))
    mats = [np.array([rows[i].zspages_per_group for i in keep], dtype=float) for _, rows in panels]
    vmax = max(1.0, max(m.max() for m in mats))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), max(5, 0.09 * len(keep) + 2)),
                             squeeze=False)
    im = None
    sizes = [panels[0][1][i].size for i in keep]
    for ax, (title, _), m in zip(axes[0], panels, mats):
        masked = np.ma.masked_equal(m, 0)
        im = ax.imshow(masked, aspect="auto", cmap="viridis", norm=LogNorm(vmin=1, vmax=vmax),
                       interpolation="nearest")
        ax.set_xticks(range(ngroups))
        ax.set_xticklabels(names, rotation=45, fontsize=8)
        step = max(1, len(keep) // 25)
        ax.set_yticks(range(0, len(keep), step))
        ax.set_yticklabels([sizes[i] for i in range(0, len(keep), step)], fontsize=7)
        ax.set_xlabel("fullness group (objects in use, % of the zspage's capacity)")
        ax.set_ylabel("size class (object size, bytes)")
        ax.set_title(f"{result.spec.label}: zspages per group\n{title}", fontsize=10)
    cb = fig.colorbar(im, ax=list(axes[0]), shrink=0.85)
    cb.set_label("zspages (log scale; blank = none)")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_baselines(rows: list[dict], page_size: int, path: str) -> None:
    """Python baselines: RSS growth and throughput side by side."""
    plt = _plt()
    mb = page_size / 2**20
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    names = [d["store"] for d in rows]
    for ax, key, lo, hi, scale, title, xl in (
            (axes[0], "rss_mib", "rss_lo", "rss_hi", 1, "RSS growth while filling", "MiB"),
            (axes[1], "write_pps", "write_lo", "write_hi", mb, "Write throughput", "MiB/s of pages"),
            (axes[2], "read_pps", "read_lo", "read_hi", mb, "Read throughput", "MiB/s of pages")):
        vals = [d[key] * scale for d in rows]
        err = [[d[key] * scale - d[lo] * scale for d in rows], [d[hi] * scale - d[key] * scale for d in rows]]
        bars = ax.bar(names, vals, yerr=err, capsize=4, color=["tab:blue", "tab:gray", "tab:olive"][:len(rows)])
        for b in bars:   # inside the bar: the error bar sits on top
            ax.text(b.get_x() + b.get_width() / 2, b.get_height() / 2, f"{b.get_height():.0f}",
                    ha="center", va="center", fontsize=9, color="white", fontweight="bold")
        ax.set_title(f"{title} (median, min..max)", fontsize=10)
        ax.set_ylabel(xl)
        ax.set_xlabel("store")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
