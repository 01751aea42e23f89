"""Benchmark helpers: machine header, repeated measurement, median and spread, tables.

Every benchmark prints the machine and the date first, measures each figure several times
and reports the median with its spread, and prints tables either with ``rich`` (for a
terminal) or as plain Markdown (``markdown=True``) to paste into docs/performance.md.
"""

from __future__ import annotations

import datetime
import gc
import os
import platform
import statistics
import sys
from dataclasses import dataclass, field


# ---------------------------------------------------------------------------------------
# machine and date
# ---------------------------------------------------------------------------------------

def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo ('unknown' where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    """CPU, cores, memory, kernel, Python and the date (UTC), as strings."""
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
                    break
    except OSError:
        pass
    return {
        "cpu": f"{cpu_model()} ({os.cpu_count()} cores)",
        "memory": mem,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def header_lines(command: str | None = None) -> list[str]:
    """Lines describing the machine, the date and (optionally) the command run."""
    info = machine_info()
    lines = [f"- {k}: {v}" for k, v in info.items()]
    if command:
        lines.append(f"- command: `{command}`")
    lines.append(f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
                 f"(other processes on this machine add noise; see the spreads)")
    try:
        import zsmalloc
        lines.append(f"- zsmalloc core: {'compiled' if zsmalloc.COMPILED else 'pure Python'} "
                     f"({zsmalloc.MODE_REASON})")
    except ImportError:
        pass
    return lines


# ---------------------------------------------------------------------------------------
# repetition and statistics
# ---------------------------------------------------------------------------------------

def repeat(fn, runs: int, *, warmup: int = 0, gc_off: bool = True) -> list[float]:
    """Call ``fn()`` ``runs`` times and return the figures it returns, in order.

    ``warmup`` extra calls come first and are thrown away. With ``gc_off`` the cyclic
    garbage collector is paused during each call (as ``timeit`` does) so a collection
    triggered by unrelated garbage does not land in one run only.
    """
    if type(runs) is not int or runs < 1:
        raise ValueError(f"runs {runs!r} must be a positive int")
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        was = gc.isenabled()
        if gc_off:
            gc.disable()
        try:
            out.append(float(fn()))
        finally:
            if was:
                gc.enable()
    return out


@dataclass
class Summary:
    """Median and spread of a list of figures."""

    values: list = field(repr=False)
    median: float
    low: float
    high: float
    stdev: float       # 0 for a single value
    rel_iqr: float     # (q3 - q1) / median; 0 for fewer than 2 values or a 0 median

    def fmt(self, digits: int = 0, scale: float = 1.0, unit: str = "") -> str:
        """'median (min..max, ±IQR%)' with values divided by ``scale``."""
        f = f"{{:,.{digits}f}}"
        m = f.format(self.median / scale)
        if len(self.values) < 2:
            return m + unit
        return (f"{m}{unit} ({f.format(self.low / scale)}..{f.format(self.high / scale)}, "
                f"IQR {100 * self.rel_iqr:.1f}%)")


def summarize(values) -> Summary:
    """Median, min..max, stdev and relative interquartile range of ``values``."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("summarize needs at least one value")
    med = statistics.median(vals)
    if len(vals) >= 2:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
        rel = (q3 - q1) / med if med else 0.0
        sd = statistics.stdev(vals)
    else:
        rel, sd = 0.0, 0.0
    return Summary(vals, med, min(vals), max(vals), sd, rel)


def median_spread(values) -> tuple[float, float, float, float]:
    """(median, min, max, relative IQR) of ``values``."""
    s = summarize(values)
    return s.median, s.low, s.high, s.rel_iqr


# ---------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------

@dataclass
class Table:
    """A titled table of strings. Right-aligns every column but the first."""

    title: str
    columns: list
    rows: list = field(default_factory=list)
    note: str = ""

    def add(self, *cells) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"row has {len(cells)} cells, table {self.title!r} has "
                             f"{len(self.columns)} columns")
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        """The table as GitHub Markdown, title in bold above it."""
        out = [f"**{self.title}**", ""]
        out.append("| " + " | ".join(self.columns) + " |")
        out.append("|" + "|".join([" --- "] + [" ---: "] * (len(self.columns) - 1)) + "|")
        for r in self.rows:
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
        if self.note:
            out += ["", self.note]
        return "\n".join(out) + "\n"


class Printer:
    """Prints headings, text and tables with rich, or as plain Markdown."""

    def __init__(self, markdown: bool = False, file=None):
        self.markdown = markdown
        self.file = file or sys.stdout
        self._console = None
        if not markdown:
            try:
                from rich.console import Console
                self._console = Console(file=self.file, width=max(100, _term_width()))
            except ImportError:  # rich missing: fall back to Markdown
                self.markdown = True

    def heading(self, text: str, level: int = 2) -> None:
        # plain '#' headings in both modes, so output is greppable and pasteable
        print(f"\n{'#' * level} {text}\n", file=self.file, flush=True)

    def text(self, text: str) -> None:
        print(text, file=self.file, flush=True)

    def code(self, text: str) -> None:
        print("```\n" + text.rstrip("\n") + "\n```", file=self.file, flush=True)

    def table(self, t: Table) -> None:
        if self.markdown:
            print(t.markdown(), file=self.file, flush=True)
            return
        from rich.markup import escape
        from rich.table import Table as RTable
        # escape: text such as 'd[k]' would otherwise be read as rich markup and vanish
        rt = RTable(title=escape(t.title), title_justify="left",
                    caption=escape(t.note) if t.note else None, caption_justify="left")
        for i, c in enumerate(t.columns):
            rt.add_column(escape(c), justify="left" if i == 0 else "right")
        for r in t.rows:
            rt.add_row(*(escape(c) for c in r))
        self._console.print(rt)
        self.file.flush()


def _term_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 120
