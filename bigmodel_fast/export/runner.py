"""Build and call the C++ runner (``csrc/deploy``, binary ``bmf_runner``) from Python.

``bmf export --build-runner`` calls :func:`build_runner`, which runs the documented CMake commands::

    cmake -S csrc/deploy -B BUILD_DIR -DCMAKE_BUILD_TYPE=Release \\
          -DCMAKE_PREFIX_PATH="$(python -c 'import torch; print(torch.utils.cmake_prefix_path)')"
    cmake --build BUILD_DIR -j

It needs CMake >= 3.18, a C++17 compiler, the installed torch wheel (its CMake config and LibTorch libraries) and
the SentencePiece C++ library (Debian/Ubuntu ``libsentencepiece-dev``), nlohmann/json >= 3 (Debian/Ubuntu
``nlohmann-json3-dev``) and ICU (Debian/Ubuntu ``libicu-dev``: Unicode for the tokenizer.json tokenizers). The
sources ship with a source checkout (``pip install -e .``), not inside a wheel.

:func:`build_tokenize_tool` builds only ``bmf_tokenize`` (the runner's WordPiece / byte-level BPE tokenizers driven
by a ``tokenizer.json``: lines on stdin, ``{"ids": [...]}`` per line) without LibTorch or SentencePiece, in seconds.

:func:`read_lines` is the Python statement of the runner's input policy (line ends, the per-line byte cap and
invalid UTF-8; :mod:`bigmodel_fast.data.lines`), identical to what ``bmf predict --input FILE`` does.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Sequence

from ..data.lines import DEFAULT_MAX_LINE_BYTES, iter_lines
from ..stages import stage

__all__ = ["RUNNER_NAME", "TOKENIZE_NAME", "RunnerBuildError", "build_runner", "build_tokenize_tool",
           "missing_prerequisites", "read_lines", "run_runner", "source_dir"]

RUNNER_NAME = "bmf_runner"
TOKENIZE_NAME = "bmf_tokenize"
DEFAULT_BUILD_DIR = "build/bmf_runner"
DEFAULT_TOKENIZE_BUILD_DIR = "build/bmf_tokenize"


class RunnerBuildError(RuntimeError):
    """The C++ runner could not be configured or built (the message says why and what to install)."""


def source_dir() -> Path:
    """``csrc/deploy`` of the source checkout this package was installed from."""
    src = Path(__file__).resolve().parents[2] / "csrc" / "deploy"
    if not (src / "CMakeLists.txt").is_file():
        raise RunnerBuildError(f"{src}: C++ runner sources not found; the runner builds from a source checkout "
                               f"of bigmodel_fast installed with `pip install -e .`")
    return src


def _sentencepiece_found() -> bool:
    root = os.environ.get("SENTENCEPIECE_ROOT")
    if root:
        return (Path(root) / "include" / "sentencepiece_processor.h").is_file()
    if shutil.which("pkg-config"):
        r = subprocess.run(["pkg-config", "--exists", "sentencepiece"], capture_output=True)
        if r.returncode == 0:
            return True
    return any((Path(p) / "sentencepiece_processor.h").is_file() for p in ("/usr/include", "/usr/local/include"))


def _nlohmann_json_found() -> bool:
    """nlohmann/json's CMake config (what CMakeLists.txt's find_package needs) in a standard prefix or one named by
    ``nlohmann_json_DIR`` / ``CMAKE_PREFIX_PATH``."""
    if os.environ.get("nlohmann_json_DIR"):
        return (Path(os.environ["nlohmann_json_DIR"]) / "nlohmann_jsonConfig.cmake").is_file()
    prefixes = [*filter(None, os.environ.get("CMAKE_PREFIX_PATH", "").split(os.pathsep)), "/usr", "/usr/local"]
    subdirs = ("share/cmake/nlohmann_json", "lib/cmake/nlohmann_json", "lib64/cmake/nlohmann_json",
               "lib/x86_64-linux-gnu/cmake/nlohmann_json", "lib/aarch64-linux-gnu/cmake/nlohmann_json")
    return any((Path(p) / sub / "nlohmann_jsonConfig.cmake").is_file() for p in prefixes for sub in subdirs)


def _icu_found() -> bool:
    """ICU's headers (what CMakeLists.txt's find_package(ICU) needs) under ``ICU_ROOT`` or a standard prefix."""
    roots = [os.environ["ICU_ROOT"]] if os.environ.get("ICU_ROOT") else ["/usr", "/usr/local"]
    return any((Path(r) / "include" / "unicode" / "uchar.h").is_file() for r in roots)


def missing_prerequisites(tokenize_only: bool = False) -> str | None:
    """Why the runner (``tokenize_only``: just ``bmf_tokenize``) cannot be built here (what is missing and how to
    install it), or None when it can."""
    missing = []
    if not shutil.which("cmake"):
        missing.append("cmake")
    if not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++") or os.environ.get("CXX")):
        missing.append("a C++17 compiler (g++)")
    if not tokenize_only and not _sentencepiece_found():
        missing.append("the SentencePiece C++ library (libsentencepiece-dev)")
    if not _nlohmann_json_found():
        missing.append("nlohmann/json >= 3 (nlohmann-json3-dev)")
    if not _icu_found():
        missing.append("ICU (libicu-dev)")
    if not tokenize_only:
        try:
            import torch.utils

            if not (Path(torch.utils.cmake_prefix_path) / "Torch" / "TorchConfig.cmake").is_file():
                missing.append("LibTorch's CMake config (torch/share/cmake/Torch)")
        except ImportError:
            missing.append("torch")
    if not missing:
        return None
    what = "bmf_tokenize" if tokenize_only else "the C++ runner"
    return (f"cannot build {what}: missing " + ", ".join(missing) +
            " (Debian/Ubuntu: apt-get install cmake g++ pkg-config libsentencepiece-dev "
            "nlohmann-json3-dev libicu-dev)")


def _cmake_build(build: Path, configure_args: Sequence[str], jobs: int | None, verbose: bool,
                 progress: bool | None = None, tag: str = "runner") -> None:
    """Configure (once) and build ``build``; RunnerBuildError with the tail of the output on failure. Each of the
    two CMake steps is a stage line with its elapsed seconds on stderr (``progress``: see
    :func:`bigmodel_fast.stages.stage`)."""
    src = source_dir()
    build.mkdir(parents=True, exist_ok=True)
    configure = ["cmake", "-S", str(src), "-B", str(build), *configure_args]
    for var in ("SENTENCEPIECE_ROOT", "ICU_ROOT"):
        if os.environ.get(var):
            configure.append(f"-D{var}={os.environ[var]}")
    compile_ = ["cmake", "--build", str(build), "-j", str(jobs or os.cpu_count() or 1)]
    steps = ((configure, f"cmake configure {build}"),
             (compile_, f"cmake build -j {compile_[-1]} (C++ against LibTorch; ~1 min on 2 busy cores, seconds when "
                        f"up to date)" if tag == "runner" else f"cmake build -j {compile_[-1]}"))
    for cmd, what in steps:
        t0 = time.perf_counter()
        with stage(tag, what, enabled=progress):  # a failure inside reads "failed after N s"
            r = subprocess.run(cmd, capture_output=not verbose, text=True)
            if r.returncode != 0:
                tail = "\n".join(((r.stdout or "") + (r.stderr or "")).splitlines()[-30:])
                raise RunnerBuildError(f"`{' '.join(cmd)}` failed (exit {r.returncode}) after "
                                       f"{time.perf_counter() - t0:.0f}s:\n{tail}")


def build_tokenize_tool(build_dir: str | Path = DEFAULT_TOKENIZE_BUILD_DIR, *, jobs: int | None = None,
                        verbose: bool = False, progress: bool | None = None) -> Path:
    """Configure (once, ``-DBMF_TOKENIZE_ONLY=ON``) and build ``bmf_tokenize`` in ``build_dir`` (no LibTorch, no
    SentencePiece; seconds); returns the binary's path. :class:`RunnerBuildError` when it cannot be built."""
    reason = missing_prerequisites(tokenize_only=True)
    if reason:
        raise RunnerBuildError(reason)
    build = Path(build_dir).resolve()
    _cmake_build(build, ["-DCMAKE_BUILD_TYPE=Release", "-DBMF_TOKENIZE_ONLY=ON"], jobs, verbose, progress,
                 tag="bmf_tokenize")
    binary = build / TOKENIZE_NAME
    if not binary.is_file():
        raise RunnerBuildError(f"{binary}: the build finished but produced no {TOKENIZE_NAME} binary")
    return binary


def build_runner(build_dir: str | Path = DEFAULT_BUILD_DIR, *, jobs: int | None = None, build_type: str = "Release",
                 cmake_args: Sequence[str] = (), verbose: bool = False, progress: bool | None = None) -> Path:
    """Configure (once) and build ``bmf_runner`` in ``build_dir``; returns the binary's path. ``progress``: stage
    lines ``[runner] cmake build ... done in 57.1 s`` on stderr (None: :func:`bigmodel_fast.stages.stage_lines`).

    Rebuilding an up-to-date tree is a no-op of a second or two. On failure raises :class:`RunnerBuildError` with
    the tail of the CMake output.
    """
    import torch.utils

    reason = missing_prerequisites()
    if reason:
        raise RunnerBuildError(reason)
    build = Path(build_dir).resolve()
    _cmake_build(build, [f"-DCMAKE_BUILD_TYPE={build_type}", f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
                         "-DBMF_TOKENIZE_ONLY=OFF", *cmake_args], jobs, verbose, progress)
    binary = build / RUNNER_NAME
    if not binary.is_file():
        raise RunnerBuildError(f"{binary}: the build finished but produced no runner binary")
    return binary


def read_lines(data: bytes, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[str]:
    """The texts the runner (and ``bmf predict --input``) reads from ``data``: :func:`bigmodel_fast.data.lines.
    iter_lines` (lines end at ``\\n``, ``\\r\\n`` or ``\\r``; at most ``max_line_bytes`` bytes per line, cut back to a
    whole UTF-8 character; invalid UTF-8 becomes U+FFFD per maximal ill-formed subpart)."""
    return list(iter_lines(io.BytesIO(data), max_line_bytes))


def run_runner(binary: str | Path, bundle: str | Path, data: bytes, *args: str,
               timeout: float | None = 600) -> subprocess.CompletedProcess:
    """Run ``binary bundle *args`` with ``data`` on stdin; returns the completed process (bytes stdout/stderr)."""
    return subprocess.run([str(binary), str(bundle), *args], input=data, capture_output=True, timeout=timeout)
