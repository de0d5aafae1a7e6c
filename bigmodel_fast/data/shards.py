"""Token shards: token ids of many documents in a memory-mappable pair of files.

A shard ``<prefix>`` is two files, both starting with the same 64-byte little-endian header:

- ``<prefix>.bin``: header, then ``num_tokens`` token ids (uint16 or uint32) of all documents back to back;
- ``<prefix>.idx``: header, then ``num_docs + 1`` int64 offsets into the ids, ``offsets[0] == 0``,
  ``offsets[-1] == num_tokens``; document ``i`` is ``ids[offsets[i]:offsets[i + 1]]`` (may be empty).

Header layout (struct format ``<8sIIQQQ24x``):

| offset | size | field      | type    | value                                                        |
|-------:|-----:|------------|---------|--------------------------------------------------------------|
|      0 |    8 | magic      | bytes   | ``b"BMFTOKS\\0"`` in .bin, ``b"BMFTIDX\\0"`` in .idx          |
|      8 |    4 | version    | u32     | format version, currently 1                                  |
|     12 |    4 | dtype code | u32     | 1 = uint16 (vocab_size <= 65536), 2 = uint32 (larger vocabs) |
|     16 |    8 | vocab_size | u64     | ids are < vocab_size                                         |
|     24 |    8 | num_tokens | u64     | number of ids in .bin                                        |
|     32 |    8 | num_docs   | u64     | number of documents (.idx holds num_docs + 1 offsets)        |
|     40 |   24 | reserved   | zeros   | padding to 64 bytes (keeps the body 64-byte aligned)         |

The two headers must agree field for field (except the magic). Writers write to a temporary file in
the destination directory and ``os.replace`` it into place, so a reader never sees a half-written shard.
Readers (:class:`Shard`) validate sizes, magics, version, dtype, counts and offsets on open and raise
:class:`ShardFormatError` naming the file, the problem, what was expected and a hint.
"""
from __future__ import annotations

import glob
import operator
import os
import stat
import struct
import tempfile
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Sequence

import numpy as np

from ..fsio import fsync_dir

__all__ = [
    "BIN_MAGIC",
    "IDX_MAGIC",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "ShardFormatError",
    "ShardInfo",
    "ShardWriter",
    "Shard",
    "dtype_for_vocab",
    "write_shard",
    "open_shards",
    "resolve_shard_paths",
    "shard_name",
    "split_shard_paths",
    "check_vocab",
    "check_token_ids",
]

BIN_MAGIC = b"BMFTOKS\x00"
IDX_MAGIC = b"BMFTIDX\x00"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sIIQQQ24x")
HEADER_SIZE = _HEADER.size  # 64
_DTYPES = {1: np.dtype("<u2"), 2: np.dtype("<u4")}
_CODES = {np.dtype("<u2"): 1, np.dtype("<u4"): 2}
_OFFSET_DTYPE = np.dtype("<i8")
_REBUILD_HINT = "re-run `bmf prepare` to rebuild the shards"
_VALIDATE_CHUNK = 1 << 24  # ids scanned per step by validate_ids


class ShardFormatError(ValueError):
    """A shard file is missing, truncated or inconsistent.

    The message reads ``<file>: <problem>; expected <expected>. HINT: <hint>``; the parts are also
    available as attributes ``path``, ``problem``, ``expected`` and ``hint``.
    """

    def __init__(self, path: str | Path, problem: str, expected: str, hint: str = _REBUILD_HINT):
        self.path = Path(path)
        self.problem = problem
        self.expected = expected
        self.hint = hint
        super().__init__(f"{self.path}: {problem}; expected {expected}. HINT: {hint}")


@dataclass
class ShardInfo:
    """What a writer produced: one shard's paths and counts."""

    prefix: Path
    bin_path: Path
    idx_path: Path
    num_tokens: int
    num_docs: int
    vocab_size: int
    dtype: str  # "uint16" | "uint32"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (paths as strings)."""
        return {
            "prefix": str(self.prefix),
            "bin_path": str(self.bin_path),
            "idx_path": str(self.idx_path),
            "num_tokens": self.num_tokens,
            "num_docs": self.num_docs,
            "vocab_size": self.vocab_size,
            "dtype": self.dtype,
        }


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    """Smallest id dtype for a vocabulary: little-endian uint16 up to 65536 ids, else uint32."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)):
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
    if vocab_size < 1 or vocab_size > 2**32:
        raise ValueError(f"vocab_size must be in [1, 2**32], got {vocab_size}")
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


# ----------------------------------------------------------------------------------------------- paths
# The one place shard file names are made and found: writers name shards with `shard_name`, readers list a split
# with `split_shard_paths` and turn any shard argument into .bin paths with `resolve_shard_paths`.


def _paths(prefix_or_path: str | Path) -> tuple[Path, Path, Path]:
    """(prefix, bin_path, idx_path) from a prefix, a ``.bin`` or a ``.idx`` path."""
    p = Path(prefix_or_path)
    prefix = p.with_suffix("") if p.suffix in (".bin", ".idx") else p
    return prefix, prefix.with_name(prefix.name + ".bin"), prefix.with_name(prefix.name + ".idx")


def shard_name(prefix: str, index: int) -> str:
    """The prefix of shard ``index`` of a run: ``"<prefix>_00000"``, ``"<prefix>_00001"``, ..."""
    return f"{prefix}_{index:05d}"


def split_shard_paths(directory: str | Path, prefix: str) -> list[Path]:
    """The ``.bin`` paths of the shards :class:`ShardWriter` wrote with ``prefix`` in ``directory``
    (``<prefix>_*.bin``, sorted: the write order); empty when there are none."""
    return sorted(Path(directory).glob(f"{glob.escape(prefix)}_*.bin"))


def _dir_shard_paths(directory: Path) -> list[Path]:
    bins = sorted(directory.glob("*.bin"))
    if not bins:
        raise ShardFormatError(directory, "directory holds no *.bin shard files", "at least one <prefix>.bin/.idx pair")
    return bins


def resolve_shard_paths(shards: Any) -> list[str]:
    """``.bin`` paths from a directory (every ``*.bin``, sorted), a prefix / ``.bin`` / ``.idx`` path, a
    :class:`Shard`, or a list of those. Raises TypeError for anything else and :class:`ShardFormatError` for a
    directory without shards (missing files are reported when opened)."""
    if isinstance(shards, (str, os.PathLike, Shard)):
        shards = [shards]
    paths: list[str] = []
    for s in shards:
        if isinstance(s, Shard):
            paths.append(str(s.path))
            continue
        if not isinstance(s, (str, os.PathLike)):
            raise TypeError(f"shards: expected paths, a directory or Shard objects, got {type(s).__name__}")
        p = Path(s)
        paths.extend(str(b) for b in (_dir_shard_paths(p) if p.is_dir() else [_paths(p)[1]]))
    return paths


# ----------------------------------------------------------------------------------------------- write


class _ShardFileWriter:
    """Streams documents into temporary .bin/.idx files; ``finish`` moves them into place."""

    def __init__(self, prefix: str | Path, vocab_size: int):
        self.prefix, self.bin_path, self.idx_path = _paths(prefix)
        self.vocab_size = int(vocab_size)
        self.dtype = dtype_for_vocab(vocab_size)
        self.num_tokens = 0
        self.offsets = array("q", [0])
        self.bin_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.bin_path.parent, prefix=self.bin_path.name + ".", suffix=".tmp")
        self._bin_tmp = Path(tmp)
        self._bin: BinaryIO | None = os.fdopen(fd, "wb", buffering=1 << 20)
        self._bin.write(b"\x00" * HEADER_SIZE)  # header written last, once the counts are known

    def _header(self, magic: bytes) -> bytes:
        return _HEADER.pack(
            magic, FORMAT_VERSION, _CODES[self.dtype], self.vocab_size, self.num_tokens, len(self.offsets) - 1
        )

    def add(self, doc: Sequence[int] | np.ndarray) -> None:
        """Append one document's ids (1-D integers in [0, vocab_size))."""
        doc_index = len(self.offsets) - 1
        arr = np.asarray(doc)
        if arr.ndim != 1:
            raise ValueError(f"document {doc_index}: token ids must be 1-D, got shape {arr.shape}")
        if arr.size:
            if arr.dtype.kind not in "iu":
                raise ValueError(f"document {doc_index}: token ids must be integers, got dtype {arr.dtype}")
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi >= self.vocab_size:
                bad = lo if lo < 0 else hi
                raise ValueError(
                    f"document {doc_index}: token id {bad} out of range; expected 0 <= id < vocab_size "
                    f"({self.vocab_size})"
                )
            assert self._bin is not None, "writer already finished"
            self._bin.write(arr.astype(self.dtype, copy=False).tobytes())
            self.num_tokens += int(arr.size)
        self.offsets.append(self.num_tokens)

    def finish(self) -> ShardInfo:
        """Write headers and offsets, fsync, atomically rename both files into place and fsync the directory."""
        assert self._bin is not None, "writer already finished"
        idx_tmp: Path | None = None
        try:
            self._bin.seek(0)
            self._bin.write(self._header(BIN_MAGIC))
            self._bin.flush()
            os.fsync(self._bin.fileno())
            self._bin.close()
            self._bin = None
            fd, tmp = tempfile.mkstemp(dir=self.idx_path.parent, prefix=self.idx_path.name + ".", suffix=".tmp")
            idx_tmp = Path(tmp)
            with os.fdopen(fd, "wb") as f:
                f.write(self._header(IDX_MAGIC))
                f.write(np.frombuffer(self.offsets, dtype=np.int64).astype(_OFFSET_DTYPE, copy=False).tobytes())
                f.flush()
                os.fsync(f.fileno())
            os.replace(self._bin_tmp, self.bin_path)
            os.replace(idx_tmp, self.idx_path)
            fsync_dir(self.bin_path.parent)  # the renames themselves survive a power cut
        except BaseException:
            self.abort()
            if idx_tmp is not None:
                idx_tmp.unlink(missing_ok=True)
            raise
        return ShardInfo(
            prefix=self.prefix,
            bin_path=self.bin_path,
            idx_path=self.idx_path,
            num_tokens=self.num_tokens,
            num_docs=len(self.offsets) - 1,
            vocab_size=self.vocab_size,
            dtype=self.dtype.name,
        )

    def abort(self) -> None:
        """Drop the temporary files (nothing is written at the final paths)."""
        if self._bin is not None:
            self._bin.close()
            self._bin = None
        self._bin_tmp.unlink(missing_ok=True)


def write_shard(prefix: str | Path, docs: Iterable[Sequence[int] | np.ndarray], vocab_size: int) -> ShardInfo:
    """Write all ``docs`` (each a 1-D sequence of ids) as one shard ``<prefix>.bin`` / ``<prefix>.idx``.

    The id dtype is uint16 when ``vocab_size <= 65536``, else uint32. Zero documents and empty
    documents are allowed. Raises ValueError naming the document for non-integer or out-of-range ids;
    on any error nothing is left at the final paths.
    """
    writer = _ShardFileWriter(prefix, vocab_size)
    try:
        for doc in docs:
            writer.add(doc)
    except BaseException:
        writer.abort()
        raise
    return writer.finish()


class ShardWriter:
    """Writes documents into ``out_dir/<prefix>_00000.bin/.idx``, ``<prefix>_00001`` ...

    A shard is closed as soon as it holds ``max_tokens`` tokens or more (documents are never split,
    so a shard can exceed ``max_tokens`` by less than one document); the next ``add`` opens a new one.
    Use as a context manager or call :meth:`close`, which returns the written shards' ``ShardInfo``
    (an empty list when nothing was added). Leaving the ``with`` block with an exception discards the
    shard in progress and keeps the finished ones.
    """

    def __init__(self, out_dir: str | Path, vocab_size: int, *, prefix: str = "shard", max_tokens: int = 1 << 27):
        if max_tokens < 1:
            raise ValueError(f"ShardWriter: max_tokens must be >= 1, got {max_tokens}")
        dtype_for_vocab(vocab_size)  # validates vocab_size early
        self.out_dir = Path(out_dir)
        self.vocab_size = int(vocab_size)
        self.prefix = prefix
        self.max_tokens = int(max_tokens)
        self.infos: list[ShardInfo] = []
        self._current: _ShardFileWriter | None = None
        self._closed = False

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            if self._current is not None:
                self._current.abort()
                self._current = None
            self._closed = True

    @property
    def paths(self) -> list[Path]:
        """``.bin`` paths of the shards finished so far (all of them after :meth:`close`)."""
        return [info.bin_path for info in self.infos]

    def add(self, doc_ids: Sequence[int] | np.ndarray) -> None:
        """Append one document (1-D ids in [0, vocab_size)), rolling over to a new shard when full."""
        if self._closed:
            raise ValueError("ShardWriter.add: the writer is closed")
        if self._current is None:
            self._current = _ShardFileWriter(self.out_dir / shard_name(self.prefix, len(self.infos)), self.vocab_size)
        self._current.add(doc_ids)
        if self._current.num_tokens >= self.max_tokens:
            self.infos.append(self._current.finish())
            self._current = None

    def close(self) -> list[ShardInfo]:
        """Finish the shard in progress; returns every shard written so far (idempotent)."""
        if self._current is not None:
            self.infos.append(self._current.finish())
            self._current = None
        self._closed = True
        return list(self.infos)


# ------------------------------------------------------------------------------------------------ read


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading; ShardFormatError unless it is a regular file.

    Opened non-blocking and checked with ``fstat`` on the open descriptor, so a named pipe cannot block ``open``
    (it would wait forever for a writer) and the file checked is the file read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ShardFormatError(path, "file not found", "an existing shard file", _REBUILD_HINT) from None
    except OSError as e:
        try:  # e.g. a socket cannot be opened at all: say what it is
            _check_regular(path, os.stat(path).st_mode)
        except OSError:
            pass
        raise ShardFormatError(path, f"cannot open the file ({e.strerror})", "a readable regular shard file") from None
    try:
        _check_regular(path, os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _check_regular(path: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
        raise ShardFormatError(path, f"is {kind}, not a regular file", "a regular shard file")


def _read_header(f: BinaryIO, path: Path, magic: bytes, other_magic: bytes) -> tuple[int, int, int, int, int]:
    """(version, dtype_code, vocab_size, num_tokens, num_docs) of one open file, after checking its magic."""
    raw = f.read(HEADER_SIZE)
    if len(raw) < HEADER_SIZE:
        raise ShardFormatError(
            path, f"file is {len(raw)} bytes, too short for the header", f"at least {HEADER_SIZE} bytes"
        )
    got_magic, version, code, vocab, num_tokens, num_docs = _HEADER.unpack(raw)
    if got_magic != magic:
        swapped = ""
        if got_magic == other_magic:
            swapped = " (this is the other file of a shard pair: .bin and .idx swapped?)"
        raise ShardFormatError(path, f"wrong magic {got_magic!r}{swapped}", f"magic {magic!r}")
    if version != FORMAT_VERSION:
        raise ShardFormatError(
            path,
            f"unsupported format version {version}",
            f"version {FORMAT_VERSION}",
            "the shard was written by a different bigmodel_fast version; " + _REBUILD_HINT,
        )
    if code not in _DTYPES:
        raise ShardFormatError(path, f"unknown dtype code {code}", "1 (uint16) or 2 (uint32)")
    if vocab < 1 or (code == 1 and vocab > 2**16) or vocab > 2**32:
        limit = "65536 for uint16" if code == 1 else "2**32 for uint32"
        raise ShardFormatError(path, f"vocab_size {vocab} does not fit the id dtype", f"1 <= vocab_size <= {limit}")
    return version, code, vocab, num_tokens, num_docs


def check_vocab(shard: "Shard", vocab_size: int | None) -> None:
    """Check a shard against a model's vocabulary: its header ``vocab_size`` must not exceed ``vocab_size``
    and every id must be below the header's vocab_size (one vectorised scan, ~25 ms per 100M tokens).

    ``vocab_size=None`` checks the ids against the header only. Raises :class:`ShardFormatError` naming the file,
    both numbers or the first bad id with its token offset.
    """
    if vocab_size is not None and shard.vocab_size > vocab_size:
        raise ShardFormatError(
            shard.path,
            f"header vocab_size {shard.vocab_size} is larger than the model's vocabulary ({vocab_size})",
            f"vocab_size <= {vocab_size}",
            "the shards were written with a different tokenizer; " + _REBUILD_HINT,
        )
    check_token_ids(shard.tokens, shard.offsets, shard.vocab_size, shard.path)


def check_token_ids(tokens: np.ndarray, offsets: np.ndarray, limit: int, path: str | Path) -> None:
    """ShardFormatError naming ``path``, the token offset, document and id of the first id >= ``limit``."""
    for start in range(0, len(tokens), _VALIDATE_CHUNK):
        chunk = tokens[start : start + _VALIDATE_CHUNK]
        if int(chunk.max()) >= limit:
            pos = start + int(np.argmax(chunk >= limit))
            doc = int(np.searchsorted(offsets, pos, side="right")) - 1
            raise ShardFormatError(
                path,
                f"token id {int(tokens[pos])} at token offset {pos} (document {doc}) is out of range",
                f"ids < vocab_size ({limit})",
                "the shard does not match this tokenizer/vocab_size; " + _REBUILD_HINT,
            )


class Shard:
    """Read side of one shard, memory-mapped and validated on open.

    Attributes:
        path: the ``.bin`` path; ``idx_path`` / ``prefix`` the companions.
        tokens: (num_tokens,) uint16/uint32 read-only memmap of all ids.
        offsets: (num_docs + 1,) int64 document boundaries (in memory).
        num_docs, num_tokens, vocab_size: ints; dtype: numpy dtype of ``tokens``.

    ``validate_ids=True`` also scans every id once and rejects ids >= vocab_size.
    """

    def __init__(self, prefix_or_bin_path: str | Path, *, validate_ids: bool = False):
        self.prefix, self.path, self.idx_path = _paths(prefix_or_bin_path)
        self._validate_ids = validate_ids
        with _open_regular(self.path) as bin_file, _open_regular(self.idx_path) as idx_file:
            self._read(bin_file, idx_file)
        if validate_ids:
            check_vocab(self, None)

    def _read(self, bin_file: BinaryIO, idx_file: BinaryIO) -> None:
        """Validate both open files and load the offsets / map the ids (the mapping outlives the files)."""
        _, code, vocab, num_tokens, num_docs = _read_header(bin_file, self.path, BIN_MAGIC, IDX_MAGIC)
        idx_header = _read_header(idx_file, self.idx_path, IDX_MAGIC, BIN_MAGIC)
        names = ("dtype code", "vocab_size", "num_tokens", "num_docs")
        for name, b, i in zip(names, (code, vocab, num_tokens, num_docs), idx_header[1:]):
            if b != i:
                raise ShardFormatError(
                    self.idx_path, f"header {name} is {i} but {self.path.name} says {b}", "both headers to agree"
                )
        self.dtype = _DTYPES[code]
        self.vocab_size = int(vocab)
        self.num_tokens = int(num_tokens)
        self.num_docs = int(num_docs)

        bin_bytes = HEADER_SIZE + self.num_tokens * self.dtype.itemsize
        self._check_size(bin_file, self.path, bin_bytes, f"{self.num_tokens} {self.dtype.name} ids")
        self._check_size(idx_file, self.idx_path, HEADER_SIZE + (self.num_docs + 1) * 8,
                         f"{self.num_docs + 1} int64 offsets")

        idx_file.seek(HEADER_SIZE)
        offsets = np.fromfile(idx_file, dtype=_OFFSET_DTYPE, count=self.num_docs + 1)
        self.offsets = offsets.astype(np.int64, copy=False)  # (num_docs + 1,)
        self._check_offsets()
        if self.num_tokens:
            self.tokens = np.memmap(bin_file, dtype=self.dtype, mode="r", offset=HEADER_SIZE, shape=(self.num_tokens,))
        else:  # mmap cannot map zero bytes
            self.tokens = np.zeros(0, dtype=self.dtype)

    @staticmethod
    def _check_size(f: BinaryIO, path: Path, expected: int, what: str) -> None:
        size = os.fstat(f.fileno()).st_size
        if size != expected:
            problem = "truncated" if size < expected else "has trailing bytes"
            raise ShardFormatError(
                path, f"file is {size} bytes ({problem})", f"{expected} bytes: {HEADER_SIZE}-byte header + {what}"
            )

    def _check_offsets(self) -> None:
        off = self.offsets
        if off[0] != 0:
            raise ShardFormatError(self.idx_path, f"offsets[0] is {int(off[0])}", "offsets[0] == 0")
        too_big = np.flatnonzero((off > self.num_tokens) | (off < 0))
        if too_big.size:
            i = int(too_big[0])
            raise ShardFormatError(
                self.idx_path,
                f"offsets[{i}] = {int(off[i])} is out of range",
                f"0 <= offset <= num_tokens ({self.num_tokens})",
            )
        decreasing = np.flatnonzero(np.diff(off) < 0)
        if decreasing.size:
            i = int(decreasing[0])
            raise ShardFormatError(
                self.idx_path,
                f"offsets are not monotone: offsets[{i}] = {int(off[i])} > offsets[{i + 1}] = {int(off[i + 1])}",
                "non-decreasing offsets",
            )
        if off[-1] != self.num_tokens:
            raise ShardFormatError(
                self.idx_path, f"offsets[-1] is {int(off[-1])}", f"offsets[-1] == num_tokens ({self.num_tokens})"
            )

    def __len__(self) -> int:
        return self.num_docs

    def __getitem__(self, i: int) -> np.ndarray:
        """Ids of document ``i`` (negative indices count from the end): (doc_len,) view of ``tokens``."""
        i = operator.index(i)
        if i < 0:
            i += self.num_docs
        if not 0 <= i < self.num_docs:
            raise IndexError(f"{self.path}: document index out of range for {self.num_docs} documents")
        return self.tokens[int(self.offsets[i]) : int(self.offsets[i + 1])]

    def doc_lengths(self) -> np.ndarray:
        """Token count of every document: int64 array (num_docs,)."""
        return np.diff(self.offsets)

    def __repr__(self) -> str:
        return (
            f"Shard({str(self.path)!r}, num_docs={self.num_docs}, num_tokens={self.num_tokens}, "
            f"vocab_size={self.vocab_size}, dtype={self.dtype.name})"
        )

    # Pickle by path (e.g. for DataLoader workers started with spawn): reopen instead of copying data.
    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "validate_ids": self._validate_ids}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], validate_ids=state["validate_ids"])


def open_shards(paths_or_dir: str | Path | Sequence[str | Path], *, validate_ids: bool = False) -> list[Shard]:
    """Open shards from a directory (every ``*.bin`` in sorted order), one prefix/path, or a list of them."""
    if isinstance(paths_or_dir, (str, os.PathLike)):
        p = Path(paths_or_dir)
        return [Shard(b, validate_ids=validate_ids) for b in (_dir_shard_paths(p) if p.is_dir() else [p])]
    return [Shard(p, validate_ids=validate_ids) for p in paths_or_dir]
