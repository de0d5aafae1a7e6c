"""``bmf predict --input``: read, predict and write in batches, with memory bounded whatever the input size.

Lines come from :func:`bigmodel_fast.data.lines.iter_lines` (the policy ``bmf_runner`` implements too: ``\\n``,
``\\r\\n`` or ``\\r`` end a line, a line is cut at ``max_line_bytes`` bytes, invalid UTF-8 becomes U+FFFD). A batch
is answered when it is full, at the end of the input, or as soon as the input would block (a pipe or terminal
with nothing more to read right now), so an interactive producer gets its answers without filling a batch.
Each batch's JSON lines are written and flushed before the next batch is read.
"""

from __future__ import annotations

import os
import select
import stat
import sys
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator, TextIO

from ..data.lines import DEFAULT_MAX_LINE_BYTES, LineStats, iter_lines
from ..jsonio import dumps
from .outputs import record_finite
from .predict import DEFAULT_BATCH_SIZE

STDIN = "-"


def check_input(path: str) -> None:
    """Refuse, before any model is loaded, an ``--input`` that is missing or not something to read lines from.

    Regular files, pipes/FIFOs (``<(cmd)``, ``mkfifo``) and character devices (a terminal) are read as streams;
    a directory, socket or block device is an error naming the path."""
    if path == STDIN:
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such input file (expected a text file with one text per line, "
                                f"or - for stdin)") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read the input file ({e.strerror})") from None
    if stat.S_ISDIR(mode):
        raise ValueError(f"{path}: is a directory; expected a text file with one text per line")
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        kind = "socket" if stat.S_ISSOCK(mode) else "block device" if stat.S_ISBLK(mode) else "special file"
        raise ValueError(f"{path}: is a {kind}; expected a text file with one text per line (or a pipe)")


def open_input(path: str) -> BinaryIO:
    """An unbuffered binary stream of ``path`` (``-``: stdin), so a read returns what is there instead of
    waiting for a whole chunk."""
    check_input(path)
    if path != STDIN:
        try:
            return open(path, "rb", buffering=0)
        except OSError as e:
            raise ValueError(f"{path}: cannot open the input file ({e.strerror})") from None
    try:
        return open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    except (AttributeError, OSError, ValueError):  # stdin replaced by an object without a descriptor
        return sys.stdin.buffer


def silence_stdout() -> None:
    """Point stdout at /dev/null (after a broken pipe, so the interpreter's final flush does not fail too)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _would_block(fd: int) -> bool:
    return not select.select([fd], [], [], 0)[0]


class IdleAwareReader:
    """``read(n)`` over ``raw`` that calls ``on_idle()`` first whenever the read would block (pipes and terminals
    only: a regular file never waits), so the caller can answer the lines it already holds."""

    def __init__(self, raw: BinaryIO, on_idle: Callable[[], None], name: str = "input"):
        self.on_idle, self.name = on_idle, name
        self._read = getattr(raw, "read1", raw.read)  # a buffered stream: what is there, not a whole chunk
        self.fd = None
        try:
            fd = raw.fileno()
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self.fd = fd
        except (AttributeError, OSError, ValueError):  # in-memory streams have no descriptor
            pass

    def read(self, n: int) -> bytes:
        if self.fd is not None and _would_block(self.fd):
            self.on_idle()
        try:
            return self._read(n) or b""
        except OSError as e:  # e.g. stdin redirected from a directory (EISDIR), a device error (EIO)
            raise ValueError(f"{self.name}: cannot read the input ({e.strerror or e})") from None


@dataclass
class StreamStats:
    lines: int = 0
    truncated: int = 0  # lines longer than max_line_bytes (only their first bytes were used)
    nonfinite: int = 0  # predictions whose probabilities were not finite (label null)


SORT_WINDOW_BATCHES = 8  # texts are length-sorted within this many batches (less padding), then written in order
SORT_WINDOW_CHARS = 1 << 23  # ... or within 8 Mi characters, whichever comes first (long lines: less held)


class BatchWriter:
    """Collects texts and, every ``SORT_WINDOW_BATCHES * batch_size`` texts or ``SORT_WINDOW_CHARS`` characters (or
    when :meth:`flush` is called: the input would block, or ended), predicts them in length-sorted batches of
    ``batch_size`` and writes one strict-JSON line per text, in input order."""

    def __init__(self, predictor, out: TextIO, batch_size: int, stats: StreamStats,
                 row: Callable[[str, dict | None, dict], dict] | None = None):
        if batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
        self.predictor, self.out, self.batch_size, self.stats = predictor, out, batch_size, stats
        # the output record of (text, the input row's other fields, prediction): eval/inputs.py output_row
        self.row = row or (lambda text, extra, result: {"text": text, **result})
        self.window = batch_size * SORT_WINDOW_BATCHES
        self.pending: list[str] = []
        self.pending_extra: list[dict | None] = []
        self.pending_chars = 0

    def add(self, text: str, extra: dict | None = None) -> None:
        self.pending.append(text)
        self.pending_extra.append(extra)
        self.pending_chars += len(text)
        if len(self.pending) >= self.window or self.pending_chars >= SORT_WINDOW_CHARS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        texts, extras = self.pending, self.pending_extra
        self.pending, self.pending_extra, self.pending_chars = [], [], 0
        for text, extra, result in zip(texts, extras, self.predictor.predict(texts, self.batch_size)):
            self.stats.nonfinite += not record_finite(result)
            self.out.write(dumps(self.row(text, extra, result)) + "\n")
        self.out.flush()


def predict_stream(predictor, stream: BinaryIO, out: TextIO, batch_size: int = DEFAULT_BATCH_SIZE,
                   max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, stats: StreamStats | None = None,
                   name: str = "input") -> StreamStats:
    """Predict every line of the binary ``stream`` (see the module docstring) and write JSON lines to ``out``;
    the stream is consumed lazily, at most one sort window of lines is held."""
    stats = stats if stats is not None else StreamStats()
    writer = BatchWriter(predictor, out, batch_size, stats)
    line_stats = LineStats()
    lines: Iterator[str] = iter_lines(IdleAwareReader(stream, writer.flush, name), max_line_bytes, line_stats)
    for text in lines:
        writer.add(text)
    writer.flush()
    stats.lines += line_stats.lines
    stats.truncated += line_stats.truncated
    return stats
