"""Stage lines on stderr for long steps that print nothing themselves (AOTInductor compile, the runner's CMake
build): ``[aoti] compiling ... done in 12.3 s``.

    with stage("runner", "cmake build -j 2"):
        subprocess.run(...)

prints ``[runner] cmake build -j 2 ...`` when the step starts and ``[runner] cmake build -j 2: done in 57.1 s`` (or
``failed after``) when it ends; on a terminal the first line also counts the seconds while it runs. Commands with
``--no-progress`` turn the lines off for everything they call with ``with stage_lines(False):``.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, TextIO

__all__ = ["stage", "stage_lines"]

_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("bmf_stage_lines", default=True)
TICK_S = 1.0  # a terminal's running line is rewritten this often


@contextmanager
def stage_lines(enabled: bool) -> Iterator[None]:
    """Turn stage lines on or off for the calls inside (the default of :func:`stage`'s ``enabled``)."""
    token = _ENABLED.set(enabled)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def stage(tag: str, what: str, *, enabled: bool | None = None, stream: TextIO | None = None) -> Iterator[None]:
    """Announce the step ``what`` of ``tag`` on ``stream`` (stderr) and report its elapsed seconds at the end.

    ``enabled`` None: as set by :func:`stage_lines` (on by default)."""
    if not (_ENABLED.get() if enabled is None else enabled):
        yield
        return
    out = stream if stream is not None else sys.stderr
    head = f"[{tag}] {what}"
    t0 = time.perf_counter()
    tty = _is_tty(out)
    done = threading.Event()
    ticker = None
    out.write(head + " ..." + ("" if tty else "\n"))
    out.flush()
    if tty:
        def tick() -> None:
            while not done.wait(TICK_S):
                out.write(f"\r{head} ... {time.perf_counter() - t0:.0f} s")
                out.flush()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        done.set()
        if ticker is not None:
            ticker.join()
        verdict = "done in" if ok else "failed after"
        out.write(("\r\033[K" if tty else "") + f"{head}: {verdict} {time.perf_counter() - t0:.1f} s\n")
        out.flush()
