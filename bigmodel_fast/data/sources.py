"""Read raw text documents from files and directories.

Supported inputs (each optionally gzip-compressed with a trailing ``.gz``):

* ``.txt`` / ``.text`` / ``.md`` / ``.markdown`` / ``.rst`` (so also ``.rst.txt``): plain text, one document per
  file, per blank-line-separated paragraph (``split="paragraph"``) or per non-blank line (``split="line"``);
* ``.jsonl`` / ``.ndjson``: one JSON object per line with a string ``text_field`` and an optional ``label_field``;
* ``.csv`` / ``.tsv``: a header row naming ``text_field`` (and optionally ``label_field``).

Bytes are decoded as UTF-8 (a leading BOM is dropped, ``\\r\\n`` / ``\\r`` become ``\\n``), unless the file (after
gzip decompression) starts with a UTF-16 or UTF-32 byte-order mark: then it is decoded with that encoding (invalid
code units become U+FFFD) and counted in ``ReadStats.bom_encodings``. Bytes that are not valid UTF-8 never crash
the reader: each run of undecodable bytes is decoded as cp1252 (latin-1 for the five bytes cp1252
leaves undefined) and every such byte is counted in ``ReadStats.repaired_bytes``. This repairs the common case of
latin-1/cp1252 fragments pasted into UTF-8 files.

Bad rows (invalid JSON, a missing or non-string text field, a CSV row with missing columns) are reported as
``"<file>:<line>: <what was wrong>"`` in ``ReadStats.errors`` and skipped; with ``strict=True`` the first one raises
:class:`SourceFormatError` instead. Files with unknown extensions are skipped and listed in
``ReadStats.skipped_files``. Directories are walked in a sorted, deterministic order.

Only regular files are opened (symbolic links to them are followed): the type is checked with ``os.stat`` first, so
a named pipe, device or socket -- even one called ``*.txt`` -- is skipped, never opened (opening a FIFO would block
forever). Those, directories that cannot be listed and files that cannot be opened (e.g. ``PermissionError``) are
skipped with their reason in ``ReadStats.skipped_files`` and counted per kind in ``ReadStats.skipped_counts``.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
import re
import stat as stat_mod
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .stats import MAX_ERRORS_KEPT, ReadStats  # noqa: F401 (MAX_ERRORS_KEPT: re-exported)

__all__ = [
    "Document",
    "ReadStats",
    "SourceError",
    "SourceFormatError",
    "SourceNotFoundError",
    "TEXT_EXTENSIONS",
    "JSONL_EXTENSIONS",
    "CSV_EXTENSIONS",
    "decode_bytes",
    "detect_format",
    "list_files",
    "iter_documents",
    "read_texts",
]

TEXT_EXTENSIONS = (".txt", ".text", ".md", ".markdown", ".rst")
JSONL_EXTENSIONS = (".jsonl", ".ndjson")
CSV_EXTENSIONS = (".csv", ".tsv")
SPLIT_MODES = ("file", "paragraph", "line")
_UNKNOWN_EXT = (
    f"unknown extension (expected one of {', '.join(TEXT_EXTENSIONS + JSONL_EXTENSIONS + CSV_EXTENSIONS)}, "
    "optionally followed by .gz)"
)

# csv's default per-field limit (128 KiB) is too small for real documents.
csv.field_size_limit(2**31 - 1)


class SourceError(ValueError):
    """Base class of the errors raised while reading sources."""


class SourceNotFoundError(SourceError, FileNotFoundError):
    """An input path does not exist."""


class SourceFormatError(SourceError):
    """A file or a row in it is not what its extension promises (message names ``file:line``)."""


@dataclass
class Document:
    """One raw document.

    ``source`` is the file path it came from; ``line`` the 1-based line where it starts (jsonl/csv rows and the
    paragraph/line split modes; ``None`` for whole-file documents); ``label`` comes from the ``label`` field when the
    row has one (converted to ``str``).
    """

    text: str
    source: str
    line: int | None = None
    label: str | None = None


# --------------------------------------------------------------------------------------------------- decoding

_SURROGATE_RUN = re.compile("[\udc80-\udcff]+")


def _repair_run(match: re.Match[str]) -> str:
    raw = bytes(ord(ch) - 0xDC00 for ch in match.group())
    # cp1252 leaves 0x81, 0x8D, 0x8F, 0x90, 0x9D undefined: fall back to latin-1 for those (C1 controls, which
    # clean_text later drops).
    return "".join(_cp1252_char(b) for b in raw)


def _cp1252_char(b: int) -> str:
    try:
        return bytes((b,)).decode("cp1252")
    except UnicodeDecodeError:
        return chr(b)


def decode_bytes(data: bytes) -> tuple[str, int]:
    """Decode ``data`` as UTF-8, repairing undecodable bytes; returns ``(text, repaired_byte_count)``.

    Each undecodable byte becomes its cp1252 character (latin-1 where cp1252 has none). Line endings are *not*
    touched here; a leading UTF-8 BOM is dropped.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="surrogateescape")
    repaired = 0
    for m in _SURROGATE_RUN.finditer(text):
        repaired += len(m.group())
    return _SURROGATE_RUN.sub(_repair_run, text), repaired


def _normalize_newlines(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


# --------------------------------------------------------------------------------------------------- files


def detect_format(path: str | Path) -> tuple[str | None, bool]:
    """Return ``(fmt, gzipped)`` for a file name; ``fmt`` is ``"text"``, ``"jsonl"``, ``"csv"``, ``"tsv"`` or None."""
    name = Path(path).name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[: -len(".gz")]
    ext = os.path.splitext(name)[1]
    if ext in TEXT_EXTENSIONS:
        return "text", gz
    if ext in JSONL_EXTENSIONS:
        return "jsonl", gz
    if ext == ".csv":
        return "csv", gz
    if ext == ".tsv":
        return "tsv", gz
    return None, gz


def list_files(
    paths: Sequence[str | Path] | str | Path, *, recursive: bool = True, stats: ReadStats | None = None
) -> list[Path]:
    """Expand files and directories into the list of readable files, in a deterministic order.

    Explicit files keep the order they were given in; a directory contributes its files sorted by their path
    components relative to it (walking sub-directories when ``recursive``). Hidden entries (leading ``.``) inside
    directories and files with unknown extensions are skipped and reported in ``stats.skipped_files``.
    Raises :class:`SourceNotFoundError` for a path that does not exist.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    stats = stats if stats is not None else ReadStats()
    out: list[Path] = []
    for given in paths:
        p = Path(given)
        st = _stat_given(p, stats)
        if st is None:
            continue
        candidates = _walk_dir(p, recursive, stats) if stat_mod.S_ISDIR(st.st_mode) else [p]
        for f in candidates:
            fmt, _ = detect_format(f)
            if fmt is None:
                stats.skip(f, "unknown extension", _UNKNOWN_EXT)
            elif _is_regular(f, stats):
                out.append(f)
    return out


def _stat_given(p: Path, stats: ReadStats) -> os.stat_result | None:
    """``os.stat`` of a path named by the caller; a missing one is an error, an unreadable one is skipped."""
    try:
        return os.stat(p)
    except FileNotFoundError:
        raise SourceNotFoundError(f"{p}: no such file or directory (expected a text/jsonl/csv file or a folder)") \
            from None
    except OSError as e:
        stats.skip(p, "unreadable", f"unreadable ({type(e).__name__}: {e.strerror or e})")
        return None


_FILE_KINDS = ((stat_mod.S_ISFIFO, "named pipe"), (stat_mod.S_ISCHR, "character device"),
               (stat_mod.S_ISBLK, "block device"), (stat_mod.S_ISSOCK, "socket"), (stat_mod.S_ISDIR, "directory"))


def _is_regular(f: Path, stats: ReadStats) -> bool:
    """True for a regular file (or a link to one), checked with ``os.stat`` without opening it; anything else
    (FIFO, device, socket, dangling link) is recorded in ``stats`` and False."""
    try:
        mode = os.stat(f).st_mode
    except OSError as e:
        stats.skip(f, "unreadable", f"unreadable ({type(e).__name__}: {e.strerror or e})")
        return False
    if stat_mod.S_ISREG(mode):
        return True
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "special file")
    stats.skip(f, "not a regular file", f"not a regular file ({kind}); only regular files are read")
    return False


def _walk_dir(root: Path, recursive: bool, stats: ReadStats) -> list[Path]:
    found: list[Path] = []

    def unreadable(e: OSError) -> None:  # os.walk would otherwise skip a directory it cannot list silently
        stats.skip(e.filename or root, "unreadable",
                   f"unreadable directory ({type(e).__name__}: {e.strerror or e}); its files were not read")

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        here = Path(dirpath)
        hidden = [d for d in dirnames if d.startswith(".")]
        for d in hidden:
            stats.skip(here / d, "hidden", "hidden directory")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        for name in filenames:
            f = here / name
            if name.startswith("."):
                stats.skip(f, "hidden", "hidden file")
            else:
                found.append(f)
        if not recursive:
            break
    found.sort(key=lambda f: f.relative_to(root).parts)
    return found


class NotRegularFileError(SourceError, OSError):
    """The path turned out not to be a regular file when it was opened."""


def _open_regular(path: Path) -> IO[bytes]:
    """Open a regular file for reading. ``O_NONBLOCK`` and the ``fstat`` check close the gap between the type
    check in :func:`list_files` and the open: a FIFO swapped in meanwhile is refused instead of blocking."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFileError(f"{path}: not a regular file; only regular files are read")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),  # before UTF-16: FF FE 00 00 vs FF FE
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _bom_encoding(head: bytes) -> str | None:
    return next((enc for bom, enc in _BOMS if head.startswith(bom)), None)


class _ToUtf8(io.RawIOBase):
    """A UTF-16/UTF-32 byte stream re-encoded as UTF-8 (BOM consumed, invalid code units -> U+FFFD), so every
    reader below works on UTF-8 bytes."""

    def __init__(self, inner: IO[bytes], encoding: str):
        self.inner = inner
        self.decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self.pending = memoryview(b"")
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self.pending and not self.done:
            chunk = self.inner.read(1 << 16)
            self.done = not chunk
            self.pending = memoryview(self.decoder.decode(chunk, final=self.done).encode("utf-8"))
        n = min(len(b), len(self.pending))
        b[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


@contextmanager
def _open_binary(path: Path, gz: bool, stats: ReadStats) -> Iterator[IO[bytes]]:
    """The file's bytes (decompressed when ``gz``) as UTF-8: a UTF-16/32 BOM switches to re-encoding."""
    with _open_regular(path) as raw:
        with (gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw) as fh:
            encoding = _bom_encoding(fh.peek(4)[:4])
            if encoding is None:
                yield fh
                return
            stats.bom_encodings[encoding] = stats.bom_encodings.get(encoding, 0) + 1
            with io.BufferedReader(_ToUtf8(fh, encoding)) as utf8:
                yield utf8


# --------------------------------------------------------------------------------------------------- readers


def _read_text_file(path: Path, gz: bool, split: str, stats: ReadStats) -> Iterator[Document]:
    src = str(path)
    if split == "file":
        with _open_binary(path, gz, stats) as fh:
            data = fh.read()
        stats.bytes += len(data)
        text, repaired = decode_bytes(data)
        stats.repaired_bytes += repaired
        if not text:
            stats.empty_files += 1
            return
        yield Document(text=_normalize_newlines(text), source=src)
        return
    # "line" / "paragraph": stream the file line by line (constant memory for huge files)
    block: list[str] = []
    start = 0
    nlines = 0
    for i, line in _iter_lines(path, gz, stats):
        nlines += 1
        if not line.strip():
            if block:
                yield Document(text="\n".join(block), source=src, line=start)
                block = []
            continue
        if split == "line":
            yield Document(text=line, source=src, line=i)
            continue
        if not block:
            start = i
        block.append(line)
    if block:
        yield Document(text="\n".join(block), source=src, line=start)
    if nlines == 0:
        stats.empty_files += 1


def _iter_lines(path: Path, gz: bool, stats: ReadStats) -> Iterator[tuple[int, str]]:
    """Yield ``(1-based line number, decoded line without its line ending)``; counts bytes and repairs."""
    line_no = nbytes = nrepaired = 0  # local ints, added to stats once per file (a stats counter is ~9x dearer)
    try:
        with _open_binary(path, gz, stats) as fh:
            for raw in fh:
                nbytes += len(raw)
                text, repaired = decode_bytes(raw)
                nrepaired += repaired
                # a lone "\r" (classic Mac line ending) also ends a line
                for part in _normalize_newlines(text.rstrip("\n").rstrip("\r")).split("\n"):
                    line_no += 1
                    yield line_no, part
    finally:
        stats.bytes += nbytes
        stats.repaired_bytes += nrepaired


def _to_label(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _read_jsonl(
    path: Path, gz: bool, text_field: str, label_field: str, strict: bool, stats: ReadStats
) -> Iterator[Document]:
    src = str(path)
    nbytes = nrepaired = 0  # local ints, added to stats once per file
    try:
        with _open_binary(path, gz, stats) as fh:
            for line_no, raw in enumerate(fh, start=1):
                nbytes += len(raw)
                line, repaired = decode_bytes(raw)
                nrepaired += repaired
                if not line.strip():
                    continue
                doc = _jsonl_document(line, src, line_no, text_field, label_field, strict, stats)
                if doc is not None:
                    yield doc
    finally:
        stats.bytes += nbytes
        stats.repaired_bytes += nrepaired


def _jsonl_document(line: str, src: str, line_no: int, text_field: str, label_field: str, strict: bool,
                    stats: ReadStats) -> Document | None:
    """The document of one non-blank JSONL line, or None after reporting why the row is bad."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        _row_error(
            f"{src}:{line_no}: invalid JSON ({e.msg} at column {e.colno}); expected one JSON object per line",
            strict,
            stats,
        )
        return None
    if not isinstance(obj, dict):
        _row_error(
            f"{src}:{line_no}: expected a JSON object with a {text_field!r} field, got {type(obj).__name__}",
            strict,
            stats,
        )
        return None
    if text_field not in obj:
        keys = ", ".join(sorted(map(str, obj))[:10])
        _row_error(
            f"{src}:{line_no}: missing field {text_field!r} (found keys: [{keys}])", strict, stats
        )
        return None
    text = obj[text_field]
    if not isinstance(text, str):
        _row_error(
            f"{src}:{line_no}: field {text_field!r} must be a string, got {type(text).__name__}",
            strict,
            stats,
        )
        return None
    return Document(
        text=_normalize_newlines(text), source=src, line=line_no, label=_to_label(obj.get(label_field))
    )


def _read_csv(
    path: Path, gz: bool, delimiter: str, text_field: str, label_field: str, strict: bool, stats: ReadStats
) -> Iterator[Document]:
    src = str(path)
    with _open_binary(path, gz, stats) as raw:
        counting = _CountingReader(raw)
        fh = io.TextIOWrapper(io.BufferedReader(counting), encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            stats.empty_files += 1
            return
        header = [h.strip() for h in header]
        if text_field not in header:
            _row_error(
                f"{src}:1: header has no column {text_field!r} (found columns: {header})", strict, stats
            )
            return
        ti = header.index(text_field)
        li = header.index(label_field) if label_field in header else None
        start = reader.line_num + 1
        nrepaired = 0  # added to stats once per file
        try:
            for row in reader:
                row_line, start = start, reader.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != len(header):
                    _row_error(
                        f"{src}:{row_line}: expected {len(header)} columns as in the header, got {len(row)}",
                        strict,
                        stats,
                    )
                    continue
                text, n = _repair_field(row[ti])
                nrepaired += n
                label = None
                if li is not None:
                    label, n = _repair_field(row[li])
                    nrepaired += n
                    label = label if label != "" else None
                yield Document(text=_normalize_newlines(text), source=src, line=row_line, label=label)
        except csv.Error as e:
            _row_error(f"{src}:{reader.line_num}: malformed CSV ({e})", strict, stats)
        finally:
            stats.bytes += counting.count
            stats.repaired_bytes += nrepaired


def _repair_field(value: str) -> tuple[str, int]:
    n = 0
    for m in _SURROGATE_RUN.finditer(value):
        n += len(m.group())
    return (_SURROGATE_RUN.sub(_repair_run, value) if n else value), n


class _CountingReader(io.RawIOBase):
    """Binary reader wrapper that counts the bytes passing through (for ``ReadStats.bytes``)."""

    def __init__(self, inner: IO[bytes]):
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.inner.read(len(b))
        n = len(data)
        b[:n] = data
        self.count += n
        return n


def _row_error(message: str, strict: bool, stats: ReadStats) -> None:
    if strict:
        raise SourceFormatError(message)
    stats.add_error(message)


# --------------------------------------------------------------------------------------------------- public


def iter_documents(
    paths: Sequence[str | Path] | str | Path,
    *,
    text_field: str = "text",
    label_field: str = "label",
    stats: ReadStats | None = None,
    recursive: bool = True,
    split: str = "file",
    strict: bool = False,
) -> Iterator[Document]:
    """Yield :class:`Document` s from files and directories (see the module docstring for formats).

    ``split`` applies to plain-text files only: ``"file"`` (one document per file), ``"paragraph"`` (blank-line
    separated blocks) or ``"line"`` (each non-blank line). Empty text files yield nothing (counted in
    ``stats.empty_files``). A file that cannot be read as a whole (e.g. a corrupt ``.gz``) is reported in
    ``stats.errors`` and skipped, or raises :class:`SourceFormatError` when ``strict``.
    """
    if split not in SPLIT_MODES:
        raise ValueError(f"split={split!r}: expected one of {SPLIT_MODES}")
    stats = stats if stats is not None else ReadStats()
    for path in list_files(paths, recursive=recursive, stats=stats):
        fmt, gz = detect_format(path)
        stats.files += 1
        if fmt == "text":
            gen = _read_text_file(path, gz, split, stats)
        elif fmt == "jsonl":
            gen = _read_jsonl(path, gz, text_field, label_field, strict, stats)
        else:
            delim = "\t" if fmt == "tsv" else ","
            gen = _read_csv(path, gz, delim, text_field, label_field, strict, stats)
        ndocs = 0  # added to stats once per file
        try:
            for doc in gen:
                ndocs += 1
                yield doc
        except (PermissionError, NotRegularFileError) as e:  # could not even be opened: not read at all
            if strict:
                raise SourceFormatError(f"{path}: could not open file ({e})") from e
            stats.files -= 1
            stats.skip(path, "unreadable", f"unreadable ({type(e).__name__}: {e})")
        except (OSError, EOFError, zlib.error) as e:
            # truncated / corrupt gzip streams, unreadable files
            msg = f"{path}: could not read file ({type(e).__name__}: {e})"
            if strict:
                raise SourceFormatError(msg) from e
            stats.add_error(msg)
        finally:
            stats.documents += ndocs


def read_texts(paths: Sequence[str | Path] | str | Path, **kwargs: Any) -> Iterator[str]:
    """Like :func:`iter_documents` (same keyword arguments) but yields only the ``text`` of each document."""
    for doc in iter_documents(paths, **kwargs):
        yield doc.text
