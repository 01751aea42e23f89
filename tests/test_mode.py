"""Which implementation of the core this run uses, asserted: CI sets ZSMALLOC_EXPECT to
``compiled`` for the main run and ``pure`` for the pure-mode pass, so a build that silently
fell back to pure Python (or a pure pass that loaded extensions) fails instead of passing."""

import os
import sys

import pytest

import zsmalloc


def _loaded_extensions():
    return sorted(n for n, m in sys.modules.items()
                  if n.startswith("zsmalloc.") and getattr(m, "__file__", "")
                  and m.__file__.endswith((".so", ".pyd")))


def test_mode_is_the_expected_one():
    want = os.environ.get("ZSMALLOC_EXPECT")
    if not want:
        pytest.skip("ZSMALLOC_EXPECT not set (CI sets it: compiled, then pure)")
    assert want in ("compiled", "pure"), f"ZSMALLOC_EXPECT={want!r}: compiled or pure"
    got = "compiled" if zsmalloc.COMPILED else "pure"
    assert got == want, f"core mode is {got} ({zsmalloc.MODE_REASON}), expected {want}"


def test_mode_matches_the_modules_loaded():
    import zsmalloc.core.pool                                  # noqa: F401
    exts = _loaded_extensions()
    if zsmalloc.COMPILED:
        assert "zsmalloc.core.pool" in exts
    else:
        assert exts == [], f"pure mode loaded extension modules: {exts}"
