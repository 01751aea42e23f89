"""Compiled or pure: which implementation of the core this process runs.

The core's ``.py`` files are the only source. Built with Cython (``setup.py``), each module
with a ``.pxd`` beside it also exists as an extension module, and Python's import system
prefers the extension. This module decides once, before any core module is imported:

* ``ZSMALLOC_PURE=1`` in the environment: run the ``.py`` files (debugging, coverage).
* No build (no ``_compiled.json``): run the ``.py`` files; nothing to say.
* A build whose recorded source hash differs from a ``.py``/``.pxd`` now (an edit since the
  build, an editable install left behind, a new module not yet built), or whose extension
  file is missing: run the ``.py`` files and warn, naming the module. A compiled module older
  than its source is never used silently.

In pure mode a finder placed first on ``sys.meta_path`` loads every compiled module from its
``.py``: modules must be all compiled or all pure, since compiled ones call each other
through C.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import sys
import warnings
from ._sources import PKG_DIR, compilable as _compilable, source_hash

MANIFEST = PKG_DIR / "_compiled.json"


def decide() -> tuple[bool, str]:
    """(compiled?, why) for this process."""
    mods = _compilable()
    if os.environ.get("ZSMALLOC_PURE", "") not in ("", "0"):
        return False, "ZSMALLOC_PURE is set"
    if not MANIFEST.exists():
        return False, "the compiled core is not built"
    try:
        data = json.loads(MANIFEST.read_text())
        built = data["modules"]
        tag = data["python"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return False, f"unreadable build manifest {MANIFEST}: {e}"
    if tag != sys.implementation.cache_tag:
        return False, f"the compiled core was built for {tag}, this is {sys.implementation.cache_tag}"
    stale = []
    for name, py in sorted(mods.items()):
        rec = built.get(name)
        if rec is None:
            stale.append(f"{name} (not built)")
        elif not py.with_name(rec["so"]).exists():
            stale.append(f"{name} (extension {rec['so']} missing)")
        elif source_hash(py) != rec["source_sha256"]:
            stale.append(f"{name} (source changed since the build)")
    if stale:
        return False, ("compiled modules out of date with their source: " + ", ".join(stale)
                       + "; rebuild with `pip install -e .` or "
                       "`python setup.py build_ext --inplace`")
    return True, "compiled modules match their source"


class _PureFinder(importlib.abc.MetaPathFinder):
    """Loads the listed modules from their .py even where an extension module exists."""

    def __init__(self, modules: dict[str, Path]):
        self.modules = modules

    def find_spec(self, fullname, path=None, target=None):
        py = self.modules.get(fullname)
        if py is None:
            return None
        return importlib.util.spec_from_file_location(fullname, py)


COMPILED, REASON = decide()
if not COMPILED:
    if REASON.startswith("compiled modules out of date") or REASON.startswith("unreadable") \
            or REASON.startswith("the compiled core was built for"):
        warnings.warn(f"zsmalloc: running the pure-Python core: {REASON}", RuntimeWarning,
                      stacklevel=2)
    if not any(isinstance(f, _PureFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PureFinder(_compilable()))


def loaded_modes() -> dict[str, bool]:
    """For each compilable module already imported: True if it came from an extension."""
    out = {}
    for name in _compilable():
        m = sys.modules.get(name)
        if m is not None:
            out[name] = not str(getattr(m, "__file__", "")).endswith(".py")
    return out
