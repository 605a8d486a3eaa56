"""Builds the Cython extensions of the control plane in place.

The Rust media engine is built by maturin (pyproject.toml); this script only compiles ``*.pyx``
modules under ``signaling/`` (the SIP message scanner, the route planner, the collector helper).
Run by ``make install``:
``python setup.py build_ext --inplace``.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
PYX = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "signaling").rglob("*.pyx"))

if PYX:
    from Cython.Build import cythonize

    ext_modules = cythonize(PYX, language_level=3)
else:
    ext_modules = []

setup(name="softswitch-cython-extensions", ext_modules=ext_modules, packages=[])
