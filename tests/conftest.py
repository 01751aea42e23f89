"""Shared test configuration.

Tests marked ``kernel`` need root and zram's hot_add (each uses a device of its own);
elsewhere they skip with the reason.
Tests marked ``slow`` (soak and scale runs) only run with ``--run-slow``.
"""

import pytest


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run long soak/scale tests marked slow")


def _kernel_reason():
    try:
        from zsmalloc.zram.kernel import kernel_available
    except ImportError as e:  # pragma: no cover - module missing
        return f"zsmalloc.zram.kernel unavailable: {e}"
    ok, reason = kernel_available()
    return None if ok else reason


def pytest_collection_modifyitems(config, items):
    kernel_reason = None
    checked = False
    for item in items:
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(pytest.mark.skip(reason="slow soak test: run with --run-slow"))
        if "kernel" in item.keywords:
            if not checked:
                kernel_reason, checked = _kernel_reason(), True
            if kernel_reason:
                item.add_marker(pytest.mark.skip(reason=f"needs root and a zram device of its own (hot_add): {kernel_reason}"))
