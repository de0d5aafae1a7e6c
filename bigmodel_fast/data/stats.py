"""One counter type for every document stage of ``bmf prepare``: read, clean, quality, PII and dedup.

A stage sees documents (``seen``), keeps some (``kept``) and drops the others per reason
(``dropped["<reason>"]``, e.g. ``"gopher_quality:word_count"``); anything else it counts is a named scalar in
``counts`` (characters in and out, bytes read, ...) or a per-key tally in ``tallies`` (lines removed per C4 rule,
masks per PII kind, ...). :class:`StageStats` holds these; each stage's subclass below only names its counters
(``COUNTS``/``TALLIES`` become attributes: ``stats.chars_in += 3`` updates ``stats.counts["chars_in"]``) and keeps
the ``to_dict()`` layout that ``stats.json`` has always had::

    stats = QualityStats()
    stats.seen += 1; stats.drop("c4:min_sentences"); stats.tally("lines_dropped", "javascript", 2)
    stats.to_dict()  # {"seen": 1, "kept": 0, "modified": 0, ..., "dropped": {...}, "lines_dropped": {...}, ...}

Workers merge with :meth:`StageStats.add`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["StageStats", "ReadStats", "CleanStats", "QualityStats", "PIIStats", "DedupStats", "MAX_ERRORS_KEPT"]

MAX_ERRORS_KEPT = 1000  # ReadStats.errors keeps the first messages; ReadStats.error_count counts all of them


class _Count:
    """``stats.<name>`` reads and writes ``stats.counts[<name>]``."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, obj: StageStats | None, owner: type | None = None) -> Any:
        return self if obj is None else obj.counts[self.name]

    def __set__(self, obj: StageStats, value: int) -> None:
        obj.counts[self.name] = value


class _Tally:
    """``stats.<name>`` is the dict ``stats.tallies[<name>]`` (key -> count)."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, obj: StageStats | None, owner: type | None = None) -> Any:
        return self if obj is None else obj.tallies[self.name]


def _by_count(d: dict[str, int]) -> dict[str, int]:
    return dict(sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass
class StageStats:
    """Counters of one stage (see the module docstring); ``seen == kept + dropped_total`` for the stages that keep or
    drop each document they see (clean, quality)."""

    COUNTS: ClassVar[tuple[str, ...]] = ()  # scalar counters a stage always reports (start at 0)
    TALLIES: ClassVar[tuple[str, ...]] = ()  # per-key counters a stage always reports (start empty)

    seen: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    tallies: dict[str, dict[str, int]] = field(default_factory=dict)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls.COUNTS:
            setattr(cls, name, _Count(name))
        for name in cls.TALLIES:
            setattr(cls, name, _Tally(name))

    def __post_init__(self) -> None:
        for name in self.COUNTS:
            self.counts.setdefault(name, 0)
        for name in self.TALLIES:
            self.tallies.setdefault(name, {})

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` documents dropped for ``reason``."""
        self.dropped[reason] = self.dropped.get(reason, 0) + n

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the scalar counter ``name``."""
        self.counts[name] = self.counts.get(name, 0) + n

    def tally(self, group: str, key: str, n: int = 1) -> None:
        """Add ``n`` to ``key`` of the per-key counter ``group`` (``n=0`` records the key)."""
        d = self.tallies.setdefault(group, {})
        d[key] = d.get(key, 0) + n

    def tally_of(self, group: str) -> dict[str, int]:
        """The (live) dict of the per-key counter ``group``, for a hot loop to update directly."""
        return self.tallies.setdefault(group, {})

    def add(self, other: StageStats) -> None:
        """Merge another worker's counters of the same stage into this one."""
        self.seen += other.seen
        self.kept += other.kept
        for key, n in other.dropped.items():
            self.drop(key, n)
        for key, n in other.counts.items():
            self.count(key, n)
        for group, d in other.tallies.items():
            for key, n in d.items():
                self.tally(group, key, n)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy: ``seen``, ``kept``, the counters, ``dropped`` and each tally (sorted by count,
        largest first), ``dropped_total``."""
        return {"seen": self.seen, "kept": self.kept, **self.counts, "dropped": _by_count(self.dropped),
                **{g: _by_count(d) for g, d in self.tallies.items()}, "dropped_total": self.dropped_total}


@dataclass
class ReadStats(StageStats):
    """Read stage (:func:`~bigmodel_fast.data.sources.iter_documents`; pass one in, read it once the iterator is
    exhausted). Its unit is the file: ``files`` read and ``documents`` yielded; ``dropped`` (also
    ``skipped_counts``) counts the files not read per kind (``unknown extension``, ``hidden``, ``not a regular
    file``, ``unreadable``) and ``skipped_files`` maps each such path to why.

    ``bytes`` counts decompressed bytes read (UTF-8 bytes for a re-encoded UTF-16/32 file); ``repaired_bytes`` the
    bytes that were not valid UTF-8 and were decoded as cp1252/latin-1; ``bom_encodings`` counts the files decoded
    as UTF-16/UTF-32 because of their byte-order mark; ``errors`` holds the first ``MAX_ERRORS_KEPT``
    ``"file:line: ..."`` messages and ``error_count`` counts all of them.
    """

    COUNTS = ("files", "documents", "bytes", "repaired_bytes", "error_count", "empty_files")
    TALLIES = ("bom_encodings",)

    skipped_files: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def skipped_counts(self) -> dict[str, int]:
        return self.dropped

    def skip(self, path: str | Path, kind: str, reason: str) -> None:
        """Record that ``path`` was not read: ``reason`` in ``skipped_files``, one more ``kind`` in
        ``skipped_counts``."""
        self.skipped_files[str(path)] = reason
        self.drop(kind)

    def add_error(self, message: str) -> None:
        """Record one error message (kept up to ``MAX_ERRORS_KEPT``, always counted)."""
        self.counts["error_count"] += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(message)

    def add(self, other: StageStats) -> None:
        super().add(other)
        if isinstance(other, ReadStats):
            self.skipped_files.update(other.skipped_files)
            self.errors.extend(other.errors[: max(0, MAX_ERRORS_KEPT - len(self.errors))])

    def to_dict(self) -> dict[str, Any]:
        c = self.counts
        return {"files": c["files"], "documents": c["documents"], "bytes": c["bytes"],
                "repaired_bytes": c["repaired_bytes"], "skipped_files": dict(self.skipped_files),
                "errors": list(self.errors), "error_count": c["error_count"], "empty_files": c["empty_files"],
                "skipped_counts": dict(self.dropped), "bom_encodings": dict(self.bom_encodings)}


class CleanStats(StageStats):
    """Clean stage (:func:`~bigmodel_fast.data.clean.clean_documents`): ``dropped`` reasons ``empty`` (nothing left
    after cleaning) and ``short`` (under ``min_chars``); characters before/after cleaning."""

    COUNTS = ("chars_in", "chars_out")

    @property
    def dropped_empty(self) -> int:
        return self.dropped.get("empty", 0)

    @property
    def dropped_short(self) -> int:
        return self.dropped.get("short", 0)

    def to_dict(self) -> dict[str, Any]:
        return {"seen": self.seen, "kept": self.kept, "dropped_empty": self.dropped_empty,
                "dropped_short": self.dropped_short, **self.counts}


class QualityStats(StageStats):
    """Quality stage (:func:`~bigmodel_fast.data.quality.filter_documents`): ``dropped`` maps a reason
    (``"<family>:<rule>"``, see :data:`~bigmodel_fast.data.quality.REASONS`) to documents dropped;
    ``lines_dropped`` maps a C4 line rule to physical lines removed (from kept and dropped documents alike);
    ``modified`` counts kept documents whose text a filter (C4) shortened. Layout: :meth:`StageStats.to_dict`."""

    COUNTS = ("modified", "chars_in", "chars_out")
    TALLIES = ("lines_dropped",)


class PIIStats(StageStats):
    """PII stage (:func:`~bigmodel_fast.data.pii.mask_documents`): documents seen (all kept), ``modified`` (at least
    one mask), ``masked`` replacements per kind (every kind present once a document was seen)."""

    COUNTS = ("modified",)
    TALLIES = ("masked",)

    def to_dict(self) -> dict[str, Any]:
        return {"masked": dict(self.masked)}


@dataclass
class DedupStats(StageStats):
    """Dedup stage (exact, then MinHash near-dedup): ``seen``/``kept`` documents in and out, ``dropped`` duplicates
    per method (``exact``, ``minhash``); ``method`` the configured one and ``reports`` each step's detailed report
    (``exact``, ``index_loaded``, ``minhash``) in the order they ran."""

    method: str = ""
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "documents_in": self.seen, **self.reports, "documents_out": self.kept,
                "duplicates": self.seen - self.kept}
