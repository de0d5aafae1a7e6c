"""``bmf predict --input`` records: one text per line, JSON lines or CSV, read as a stream and answered in batches.

Formats (``--format``; ``auto`` picks by extension: ``.jsonl`` / ``.ndjson`` -> jsonl, ``.csv`` -> csv, anything
else and stdin -> lines):

* ``lines``: every line is a text (the line policy of :mod:`bigmodel_fast.data.lines`, the same as ``bmf_runner``);
* ``jsonl``: every non-blank line is a JSON object; its ``--text-field`` (default ``text``) string is the text;
* ``csv``: a header row, then one record per row (quoted fields may span lines); the ``--text-field`` column is the
  text.

The other fields of a JSONL / CSV record (an ``id``, a gold ``label``) are copied into its output record, before
the prediction; a field whose name the prediction also uses (``label``, ``probabilities``) is renamed
``input_<name>``. The text itself is written only with ``--echo`` (under the text field's name; ``text`` for lines).

A bad record (not JSON, not an object, no text field, a text that is not a string, a CSV row with the wrong number
of fields) stops the run with a one-line error ``FILE:LINE: ...`` (exit code 2), after the results of the records
before it were written. Lines are still capped at ``--max-line-bytes`` and invalid UTF-8 becomes U+FFFD before
JSON / CSV parsing.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, TextIO

from ..data.lines import DEFAULT_MAX_LINE_BYTES, LineStats, iter_lines
from .predict import INPUT_FORMATS
from .stream import STDIN, BatchWriter, IdleAwareReader, StreamStats

__all__ = ["INPUT_FORMATS", "InputStats", "input_format", "iter_records", "output_row", "predict_records",
           "show_progress"]

_BY_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


def input_format(path: str, fmt: str = "auto") -> str:
    """The concrete format (``lines`` / ``jsonl`` / ``csv``) of ``path`` for ``--format fmt``."""
    if fmt not in INPUT_FORMATS:
        raise ValueError(f"--format must be one of {', '.join(INPUT_FORMATS)}, got {fmt!r}")
    if fmt != "auto":
        return fmt
    return "lines" if path == STDIN else _BY_SUFFIX.get(Path(path).suffix.lower(), "lines")


@dataclass
class InputStats:
    records: int = 0  # texts read (lines: every line; jsonl: non-blank lines; csv: rows after the header)
    blank: int = 0  # blank JSONL lines / empty CSV rows skipped


def _json_records(lines: Iterator[str], text_field: str, name: str, line_stats: LineStats,
                  stats: InputStats) -> Iterator[tuple[str, dict]]:
    cut_before = 0
    for lineno, line in enumerate(lines, 1):
        was_cut, cut_before = line_stats.truncated > cut_before, line_stats.truncated  # counted before the yield
        if not line.strip():
            stats.blank += 1
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            hint = " (the line was cut at --max-line-bytes)" if was_cut else ""
            raise ValueError(f"{name}:{lineno}: not valid JSON ({e.msg}: column {e.colno}){hint}; expected one "
                             f"JSON object per line") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{name}:{lineno}: expected a JSON object with a {text_field!r} field, "
                             f"got a JSON {type(obj).__name__}")
        if text_field not in obj:
            fields = ", ".join(map(repr, list(obj)[:10])) or "none"
            raise ValueError(f"{name}:{lineno}: no {text_field!r} field (fields: {fields}); name the text field "
                             f"with --text-field")
        text = obj.pop(text_field)
        if not isinstance(text, str):
            raise ValueError(f"{name}:{lineno}: field {text_field!r} is a JSON {type(text).__name__}, expected a "
                             f"string")
        yield text, obj


def _csv_records(lines: Iterator[str], text_field: str, name: str, max_line_bytes: int,
                 stats: InputStats) -> Iterator[tuple[str, dict]]:
    # a quoted field may span lines but not grow past the line cap (an unclosed quote cannot swallow the file)
    csv.field_size_limit(max(csv.field_size_limit(), max_line_bytes))
    reader = csv.reader((line + "\n" for line in lines), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        if text_field not in header:
            raise ValueError(f"{name}:1: no column {text_field!r} in the CSV header (columns: "
                             f"{', '.join(map(repr, header[:10]))}); name the text column with --text-field")
        at = header.index(text_field)
        for row in reader:
            if not row:
                stats.blank += 1
                continue
            if len(row) != len(header):
                raise ValueError(f"{name}:{reader.line_num}: {len(row)} fields, the header has {len(header)}")
            yield row[at], {k: v for i, (k, v) in enumerate(zip(header, row)) if i != at}
    except csv.Error as e:
        raise ValueError(f"{name}:{reader.line_num}: bad CSV ({e}); a quoted field may be unclosed") from None


def iter_records(stream: BinaryIO, fmt: str, text_field: str = "text", name: str = "input",
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, line_stats: LineStats | None = None,
                 stats: InputStats | None = None) -> Iterator[tuple[str, dict]]:
    """``(text, other fields)`` of every record of the binary ``stream`` in format ``fmt`` (lines / jsonl / csv),
    read lazily; ValueError ``name:LINE: ...`` for a bad record (see the module docstring)."""
    line_stats = line_stats if line_stats is not None else LineStats()
    stats = stats if stats is not None else InputStats()
    lines = iter_lines(stream, max_line_bytes, line_stats)
    if fmt == "lines":
        records: Iterator[tuple[str, dict]] = ((line, {}) for line in lines)
    elif fmt == "jsonl":
        records = _json_records(lines, text_field, name, line_stats, stats)
    elif fmt == "csv":
        records = _csv_records(lines, text_field, name, max_line_bytes, stats)
    else:
        raise ValueError(f"unknown input format {fmt!r}; expected lines, jsonl or csv")
    for record in records:
        stats.records += 1
        yield record


def output_row(text: str, extra: dict | None, result: dict, *, echo: bool = False, text_key: str = "text") -> dict:
    """The output record of one input: its other fields (renamed ``input_<name>`` when the prediction uses the
    name), the text under ``text_key`` when ``echo``, then the prediction ``result`` (label, probabilities)."""
    row: dict = {}
    for k, v in (extra or {}).items():
        row[f"input_{k}" if k in result else k] = v
    if echo:
        row[f"input_{text_key}" if text_key in result else text_key] = text
    row.update(result)
    return row


class _Progress:
    """``read(n)`` over ``reader`` that advances a tqdm bar (bytes) on stderr."""

    def __init__(self, reader, total: int | None, enabled: bool):
        from tqdm import tqdm

        self.reader = reader
        self.bar = tqdm(total=total, unit="B", unit_scale=True, desc="predict", file=sys.stderr, disable=not enabled,
                        dynamic_ncols=True)

    def read(self, n: int) -> bytes:
        data = self.reader.read(n)
        self.bar.update(len(data))
        return data


def show_progress(no_progress: bool) -> bool:
    """A progress bar when asked for (no ``--no-progress``), the results go to a file or pipe (stdout is not a
    terminal, where the results themselves show progress) and stderr is a terminal (not a log file)."""
    def tty(f) -> bool:
        try:
            return f.isatty()
        except (AttributeError, ValueError):
            return False

    return not no_progress and not tty(sys.stdout) and tty(sys.stderr)


def predict_records(predictor, stream: BinaryIO, out: TextIO, *, fmt: str, text_field: str = "text",
                    echo: bool = False, batch_size: int = 64, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                    stats: StreamStats | None = None, input_stats: InputStats | None = None, name: str = "input",
                    progress: bool = False) -> StreamStats:
    """Predict every record of ``stream`` (see the module docstring) and write one JSON line per record to
    ``out``, batch by batch (at most one sort window of records held: memory does not grow with the input)."""
    stats = stats if stats is not None else StreamStats()
    input_stats = input_stats if input_stats is not None else InputStats()
    text_key = "text" if fmt == "lines" else text_field
    writer = BatchWriter(predictor, out, batch_size, stats,
                         row=lambda text, extra, result: output_row(text, extra, result, echo=echo, text_key=text_key))
    total = None
    try:
        if os.path.isfile(name):
            total = os.path.getsize(name)
    except (OSError, ValueError):
        pass
    reader = _Progress(IdleAwareReader(stream, writer.flush, name), total, progress)
    line_stats = LineStats()
    try:
        for text, extra in iter_records(reader, fmt, text_field, name, max_line_bytes, line_stats, input_stats):
            writer.add(text, extra)
    except ValueError:
        writer.flush()  # the records before the bad one are answered
        raise
    finally:
        reader.bar.close()
    writer.flush()
    stats.lines += line_stats.lines
    stats.truncated += line_stats.truncated
    return stats
