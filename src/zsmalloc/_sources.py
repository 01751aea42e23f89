"""Which modules are compiled, and the hash of the source each compiled module must match.
Stdlib only, no side effects: ``setup.py`` loads this file by path, ``_mode`` imports it.

A module is compiled when a ``.pxd`` sits beside its ``.py``. Its source hash covers the
``.py``, its ``.pxd`` and every shared ``.pxd`` that has no ``.py`` of its own (C helpers
cimported by several modules, e.g. ``lib/_bytes.pxd``): an edit to any of them makes the
build stale.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PKG_DIR = Path(__file__).resolve().parent


def compilable(pkg_dir: Path = PKG_DIR) -> dict:
    """Dotted module name -> .py path, for every .py with a .pxd beside it."""
    out = {}
    for pxd in sorted(pkg_dir.rglob("*.pxd")):
        py = pxd.with_suffix(".py")
        if py.exists():
            out[".".join(py.relative_to(pkg_dir.parent).with_suffix("").parts)] = py
    return out


def shared_pxds(pkg_dir: Path = PKG_DIR) -> list:
    """The .pxd files with no .py of their own."""
    return sorted(p for p in pkg_dir.rglob("*.pxd") if not p.with_suffix(".py").exists())


def source_hash(py: Path, pkg_dir: Path = PKG_DIR) -> str:
    """sha256 of a module's .py, its .pxd and the shared .pxd files."""
    h = hashlib.sha256()
    for p in [py, py.with_suffix(".pxd")] + shared_pxds(pkg_dir):
        h.update(str(p.relative_to(pkg_dir)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()
