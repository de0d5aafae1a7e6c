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

:class:`SourceStats` is the cross-stage view of ``bmf prepare``: per source (an input file, or the directory
holding the files read from an input directory) documents and characters in, kept, and dropped per reason, plus the
first dropped documents of every quality rule (``stats.json`` keys ``sources`` and ``dropped_samples``).

Hot loops count in local ints and add to a stage's counters once per file or document: a ``COUNTS`` attribute goes
through a descriptor and costs ~9x a plain ``+=`` (``sources.py`` reads per line).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["StageStats", "ReadStats", "CleanStats", "QualityStats", "PIIStats", "DedupStats", "SourceStats",
           "MAX_ERRORS_KEPT", "SAMPLES_PER_RULE", "SAMPLE_CHARS"]

MAX_ERRORS_KEPT = 1000  # ReadStats.errors keeps the first messages; ReadStats.error_count counts all of them
SAMPLES_PER_RULE = 5  # SourceStats keeps the first dropped documents of each rule ...
SAMPLE_CHARS = 300  # ... each cut to this many characters


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
    ``lines_dropped`` maps a C4 line rule to physical lines removed (from kept and dropped documents alike) and
    ``line_chars_dropped`` to the characters of those lines (newlines not counted); ``modified`` counts kept
    documents whose text a filter (C4) shortened. Layout: :meth:`StageStats.to_dict`."""

    COUNTS = ("modified", "chars_in", "chars_out")
    TALLIES = ("lines_dropped", "line_chars_dropped")


class PIIStats(StageStats):
    """PII stage (:func:`~bigmodel_fast.data.pii.mask_documents`): documents ``seen`` and ``kept`` (all of them),
    ``modified`` (at least one mask), ``masked`` replacements per kind (every kind present once a document was
    seen)."""

    COUNTS = ("modified",)
    TALLIES = ("masked",)

    def to_dict(self) -> dict[str, Any]:
        return {"seen": self.seen, "kept": self.kept, "modified": self.modified, "masked": dict(self.masked)}


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


def _new_source() -> dict[str, Any]:
    return {"documents": 0, "chars": 0, "kept": 0, "chars_kept": 0, "dropped": {}}


@dataclass
class SourceStats:
    """Per-source counts across the stages of one ``bmf prepare`` run, and samples of dropped documents.

    A document's source (:meth:`key`) is its file when that file was named as an input (``explicit``), else the
    directory holding it (files found by walking an input directory are grouped per directory). Per source:
    ``documents``/``chars`` read, ``kept``/``chars_kept`` written (after dedup), ``dropped`` per reason
    (``clean`` (empty or short after cleaning), ``boilerplate:empty``, the quality reasons ``"<family>:<rule>"``,
    ``dedup:exact``, ``dedup:minhash``), so that per source ``documents == kept + sum(dropped)``, and summed over
    sources every number equals its stage's total. ``samples`` keeps the first ``samples_per_rule`` documents
    :meth:`drop` was given per reason: ``{"source": "file:line" (or the file), "chars": n, "text": first
    sample_chars characters}``.
    """

    explicit: frozenset[str] = frozenset()
    samples_per_rule: int = SAMPLES_PER_RULE
    sample_chars: int = SAMPLE_CHARS
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._keys: dict[str, str] = {}

    def key(self, doc: Any) -> str:
        """The source of ``doc`` (anything with a ``source`` path)."""
        src = doc.source
        k = self._keys.get(src)
        if k is None:
            k = self._keys[src] = src if src in self.explicit else (os.path.dirname(src) or ".")
        return k

    def entry(self, key: str) -> dict[str, Any]:
        e = self.sources.get(key)
        if e is None:
            e = self.sources[key] = _new_source()
        return e

    def count_read(self, docs: Any) -> Any:
        """Yield ``docs`` (an iterable of documents), counting each as read from its source."""
        for doc in docs:
            e = self.entry(self.key(doc))
            e["documents"] += 1
            e["chars"] += len(doc.text)
            yield doc

    def drop(self, doc: Any, reason: str, sample: bool = True) -> None:
        """Count ``doc`` as dropped for ``reason``; with ``sample`` keep it among the first of that reason."""
        d = self.entry(self.key(doc))["dropped"]
        d[reason] = d.get(reason, 0) + 1
        if sample and self.samples_per_rule:
            kept = self.samples.setdefault(reason, [])
            if len(kept) < self.samples_per_rule:
                where = doc.source if getattr(doc, "line", None) is None else f"{doc.source}:{doc.line}"
                kept.append({"source": where, "chars": len(doc.text), "text": doc.text[: self.sample_chars]})

    def drop_missing(self, reason: str, before: dict[str, int], after: dict[str, int]) -> None:
        """Count as dropped for ``reason`` the documents a stage lost per source (``before``/``after``: source ->
        documents, from :meth:`census`), for a stage that does not report which documents it dropped."""
        for key, n in before.items():
            lost = n - after.get(key, 0)
            if lost:
                d = self.entry(key)["dropped"]
                d[reason] = d.get(reason, 0) + lost

    def census(self, keys: Any) -> dict[str, int]:
        """Source -> number of entries in ``keys`` (an iterable of source keys)."""
        out: dict[str, int] = {}
        for k in keys:
            out[k] = out.get(k, 0) + 1
        return out

    def keep(self, key: str, chars: int) -> None:
        """Count one document of source ``key`` with ``chars`` characters as written."""
        e = self.entry(key)
        e["kept"] += 1
        e["chars_kept"] += chars

    def to_dict(self) -> dict[str, Any]:
        """``{"sources": {source: counts, drops sorted by count}, "dropped_samples": {reason: [sample, ...]}}``."""
        return {"sources": {k: {**e, "dropped": _by_count(e["dropped"])} for k, e in sorted(self.sources.items())},
                "dropped_samples": {r: [dict(x) for x in v] for r, v in sorted(self.samples.items())}}
