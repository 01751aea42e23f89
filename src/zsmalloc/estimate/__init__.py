"""Predict what zram as swap would use for live processes, and check it with the kernel.

Modules, one job each: :mod:`procfs` (reading /proc), :mod:`guard` (stopping a process,
holding Ctrl-C until a safe point), :mod:`scan` (which pages the swap path takes),
:mod:`swapmodel` (the swap layer's own rules), :mod:`model` (the devices fed per
configuration, sampling), :mod:`engine` (a run), :mod:`verify` (the kernel side),
:mod:`cli` (``zsmalloc estimate``).
"""

from .engine import ConfigResult, Estimate, ProcessReport, disk_pages_for
from .model import EstimateConfig
from .swapmodel import SwapRules

__all__ = ["Estimate", "EstimateConfig", "ConfigResult", "ProcessReport", "SwapRules",
           "disk_pages_for"]
