"""Build the compiled core: every ``src/zsmalloc/**/X.py`` with a sibling ``X.pxd`` is compiled
by Cython in pure-Python mode (the ``.py`` stays the source; the ``.pxd`` gives it C types).

The extensions are optional: without Cython or a C compiler the package still installs and
runs its ``.py`` modules (``zsmalloc.COMPILED`` is then False), and the build says so. After a
successful build, ``src/zsmalloc/_compiled.json`` records the extension file and a hash of the
``.py`` + ``.pxd`` it came from, so ``zsmalloc`` never uses a compiled module older than its
source (see ``zsmalloc/_mode.py``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
PKG = ROOT / "src" / "zsmalloc"
MANIFEST = "_compiled.json"
SOURCE_HASHES: dict[str, str] = {}

# Directives for every compiled module. Python semantics stay the default where they differ
# from C (division and modulo of negative numbers, integer overflow): the same source must
# mean the same thing compiled and pure. Bounds checks are off: the core checks its
# arguments before it indexes. ZSMALLOC_BOUNDSCHECK=1 builds with them on (every module is
# regenerated): a debugging build that turns an index past a table into an IndexError.
BOUNDSCHECK = os.environ.get("ZSMALLOC_BOUNDSCHECK") == "1"
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": BOUNDSCHECK,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": False,
    "embedsignature": True,
    "freethreading_compatible": False,
}


def _load_sources():
    """src/zsmalloc/_sources.py, loaded by path (the package itself is not importable yet)."""
    spec = importlib.util.spec_from_file_location("_zsmalloc_sources", PKG / "_sources.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_SOURCES = _load_sources()
source_hash = _SOURCES.source_hash


def compiled_sources() -> list[Path]:
    return list(_SOURCES.compilable(PKG).values())


def module_name(py: Path) -> str:
    return ".".join(py.relative_to(PKG.parent).with_suffix("").parts)


def extensions():
    if os.environ.get("ZSMALLOC_NO_BUILD"):
        print("zsmalloc: ZSMALLOC_NO_BUILD is set: installing the pure-Python modules only")
        return []
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError as e:
        print(f"zsmalloc: Cython is not available ({e}): installing the pure-Python modules only")
        return []
    exts = []
    for py in compiled_sources():
        ext = Extension(module_name(py), [str(py.relative_to(ROOT))], extra_compile_args=["-O3"])
        SOURCE_HASHES[ext.name] = source_hash(py)   # before Cython reads it
        exts.append(ext)
    return cythonize(exts, compiler_directives=DIRECTIVES, quiet=True, force=BOUNDSCHECK,
                     include_path=[str(PKG.parent)])


class optional_build_ext(build_ext):
    """build_ext that falls back to the pure-Python modules when compiling fails, and writes
    the manifest of what it built."""

    def run(self):
        try:
            super().run()
        except Exception as e:  # no compiler, missing headers, ...
            self._give_up(e)
            return
        self._write_manifest()

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:
            self._give_up(e)
            raise

    def _give_up(self, e):
        print(f"zsmalloc: WARNING: the compiled core could not be built ({e}); "
              "installing the pure-Python modules only (slower, same behaviour)",
              file=sys.stderr)
        for d in (Path(self.build_lib) / "zsmalloc", PKG):
            m = d / MANIFEST
            if m.exists():
                m.unlink()

    def _write_manifest(self):
        mods = {}
        for ext in self.extensions:
            so = Path(self.get_ext_filename(ext.name)).name
            mods[ext.name] = {"so": so, "source_sha256": SOURCE_HASHES[ext.name]}
        text = json.dumps({"python": sys.implementation.cache_tag, "modules": mods},
                          indent=1, sort_keys=True) + "\n"
        targets = [Path(self.build_lib) / "zsmalloc"]
        if self.inplace or getattr(self, "editable_mode", False):
            targets.append(PKG)
        for d in targets:
            if d.is_dir():
                (d / MANIFEST).write_text(text)

    def get_outputs(self):
        out = super().get_outputs()
        m = Path(self.build_lib) / "zsmalloc" / MANIFEST
        return out + [str(m)]


setup(ext_modules=extensions(), cmdclass={"build_ext": optional_build_ext})
