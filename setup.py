"""Build script for the native extension ``bigmodel_fast._C``.

Project metadata lives in pyproject.toml; this file only declares the one pybind11 extension,
compiled from every ``csrc/**/*.cpp`` except ``csrc/deploy`` (the standalone C++ runtime, built
separately). No libtorch: numpy buffers go through pybind11/numpy.h.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

ROOT = Path(__file__).resolve().parent
EXCLUDED_DIRS = ("csrc/deploy",)


def native_sources() -> list[str]:
    """All extension sources as sorted paths relative to the project root (setuptools wants relative)."""
    sources = []
    for path in sorted((ROOT / "csrc").rglob("*.cpp")):
        rel = path.relative_to(ROOT).as_posix()
        if not any(rel.startswith(d + "/") for d in EXCLUDED_DIRS):
            sources.append(rel)
    if "csrc/module.cpp" not in sources:
        raise RuntimeError("csrc/module.cpp (the PYBIND11_MODULE) is missing; cannot build bigmodel_fast._C")
    return sources


if sys.platform == "win32":
    COMPILE_ARGS, LINK_ARGS = ["/O2"], []
else:
    COMPILE_ARGS, LINK_ARGS = ["-O3", "-fvisibility=hidden", "-pthread"], ["-pthread"]

ext_modules = [
    Pybind11Extension(
        "bigmodel_fast._C",
        native_sources(),
        include_dirs=["csrc"],
        cxx_std=17,
        extra_compile_args=COMPILE_ARGS,
        extra_link_args=LINK_ARGS,
    ),
]

setup(ext_modules=ext_modules, cmdclass={"build_ext": build_ext})
