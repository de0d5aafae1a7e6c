"""Document quality filters: Gopher quality, Gopher repetition, C4 and FineWeb rules, CJK-aware.

Usage::

    from bigmodel_fast.data.quality import QualityConfig, QualityFilter, QualityStats, filter_documents

    qf = QualityFilter()                      # every family on, datatrove-like thresholds
    r = qf(text)                              # FilterResult(keep, text, reason)
    r.reason                                  # e.g. "gopher_quality:word_count", None when kept
    stats = QualityStats()
    kept = list(filter_documents(docs, QualityConfig(), stats))
    stats.to_dict()                           # drops per reason, lines removed per C4 line rule

The chain runs the families in this order, each on by default and switchable (``enabled=False``), with every
rule switchable by setting its threshold to ``None`` (or its flag to ``False``):

1. ``gopher_quality`` (:mod:`.filters.gopher_quality`): 50..100,000 words, mean word length 3..10, '#' and
   ellipsis per word <= 0.1, bullet lines <= 90%, ellipsis-ending lines <= 30%, >= 80% of words with a letter,
   >= 2 stop words;
2. ``gopher_repetition`` (:mod:`.filters.gopher_repetition`): duplicate paragraphs (0.3 / 0.2 of characters),
   duplicate lines (0.3 / 0.2), top 2/3/4-gram character fractions (0.20/0.18/0.16), duplicated 5..10-gram
   character fractions (0.15 .. 0.10);
3. ``c4`` (:mod:`.filters.c4`): *removes lines* without terminal punctuation, with fewer than 3 words, with
   "javascript" or cookie/terms boilerplate; drops documents containing "lorem ipsum", with fewer than 5
   sentences left, or (off by default: it drops every document containing code) with a ``{``;
4. ``fineweb`` (:mod:`.filters.fineweb`): >= 12% of lines end in punctuation, <= 67% short lines, <= 10% of
   characters in duplicated lines, <= 0.3 line breaks per word — on the text after C4.

The drop reason is ``"<family>:<rule>"`` of the first rule that fails (an empty or all-whitespace text gives
``"quality:empty"``). :data:`REASONS` lists them all.

**CJK.** A document is CJK when CJK characters are at least ``cjk_min_fraction`` (0.3) of its non-whitespace
characters (language ``zh``/``ja``/``ko`` from kana and Hangul counts). Then every CJK character is one word for
all word-based rules (word count, n-grams, words per line, words per newline) and

* ``mean_word_length`` uses ``cjk_min/max_mean_word_length`` (1..4; the mean of one-character words sits near 1,
  so only an excess of long Latin tokens trips it);
* ``stop_words`` counts the characters of a small zh/ja/ko set (:mod:`.stopwords`: 的 了 是 在 和 有 我 不 for
  Chinese), or is skipped with ``gopher_quality.cjk_stop_words=False``;
* ``alpha_words`` divides by the non-punctuation tokens (CJK punctuation is always a token of its own);
* ``ellipsis_lines`` does not count lines ending in the CJK ellipsis ``……`` (NFKC ``......``);
* terminal punctuation (C4 lines, FineWeb ``line_punct_ratio``) adds ``。！？；…」』`` (and their NFKC forms) and
  an ellipsis ending does not remove a line;
* n-gram repetition works on character n-grams twice as long as the word n-grams (``cjk_ngram_scale=2``: a
  Chinese word is ~1.5-2 characters) with the same thresholds, and the top n-gram counts no joining spaces;
* FineWeb's short line is <= 15 characters (not 30), C4's wrapped-line joining uses 20..60 characters and joins
  without a space.

Unchanged for CJK: ``word_count`` (50 characters), the symbol/bullet rules, line/paragraph duplication, C4's
``min_sentences`` (sentences end at ``。！？…``) and ``min_words_per_line`` (3 characters), FineWeb's ratios.

Every rule reads a shared per-document :class:`~.filters._text.TextView` that computes lines, tokens, word
statistics and the script once, lazily (a document dropped by an early rule never pays for the later ones).
Throughput (one core, ``benchmarks/data/bench_quality.py``): ~10 MB/s on the English Python docs, ~6.5 MB/s
(2.3 M characters/s) on the Chinese sample's one-paragraph documents.

Wiring: the filters expect cleaned text (:func:`~bigmodel_fast.data.clean.clean_documents`: NFKC, stripped lines,
single blank lines between paragraphs), so ``filter_documents`` goes after cleaning and before dedup;
:func:`bigmodel_fast.data.pii.mask_documents` after both. ``QualityConfig.to_dict()``/``from_dict()`` round-trip
through JSON for ``stats.json`` and CLI config files.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .filters import c4, fineweb, gopher_quality, gopher_repetition
from .filters._text import TextView
from .filters.c4 import C4Config
from .filters.fineweb import FineWebConfig
from .filters.gopher_quality import GopherQualityConfig
from .filters.gopher_repetition import GopherRepetitionConfig
from .sources import Document

__all__ = [
    "QualityConfig", "GopherQualityConfig", "GopherRepetitionConfig", "C4Config", "FineWebConfig",
    "FilterResult", "QualityFilter", "QualityStats", "filter_documents", "REASONS", "C4_LINE_RULES",
]

FAMILIES = ("gopher_quality", "gopher_repetition", "c4", "fineweb")
REASONS: tuple[str, ...] = (
    ("quality:empty",)
    + tuple(f"gopher_quality:{r}" for r in gopher_quality.RULES)
    + tuple(f"gopher_repetition:{r}" for r in gopher_repetition.RULES)
    + tuple(f"c4:{r}" for r in c4.DOC_RULES)
    + tuple(f"fineweb:{r}" for r in fineweb.RULES)
)
C4_LINE_RULES = c4.LINE_RULES


@dataclass(frozen=True)
class QualityConfig:
    """One nested config per family (see the module docstring); all JSON-friendly (:meth:`from_dict`)."""

    gopher_quality: GopherQualityConfig = field(default_factory=GopherQualityConfig)
    gopher_repetition: GopherRepetitionConfig = field(default_factory=GopherRepetitionConfig)
    c4: C4Config = field(default_factory=C4Config)
    fineweb: FineWebConfig = field(default_factory=FineWebConfig)
    cjk_min_fraction: float = 0.3
    detect_cjk: bool = True  # False: every document is treated as whitespace-separated words

    def __post_init__(self) -> None:
        if not 0.0 <= self.cjk_min_fraction <= 1.0:
            raise ValueError(f"QualityConfig.cjk_min_fraction={self.cjk_min_fraction!r}: expected 0..1")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "QualityConfig":
        """Build from a (JSON) mapping such as ``{"c4": {"drop_curly_bracket": true}, "fineweb": {"enabled":
        false}}``; missing keys keep their defaults, unknown keys raise ``ValueError`` naming them."""
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        nested = {"gopher_quality": GopherQualityConfig, "gopher_repetition": GopherRepetitionConfig,
                  "c4": C4Config, "fineweb": FineWebConfig}
        unknown = sorted(set(d) - set(kinds))
        if unknown:
            raise ValueError(f"QualityConfig: unknown keys {unknown}; expected some of {sorted(kinds)}")
        kw: dict[str, Any] = {}
        for key, value in d.items():
            if key in nested:
                sub = nested[key]
                names = {f.name for f in dataclasses.fields(sub)}
                bad = sorted(set(value) - names)
                if bad:
                    raise ValueError(f"QualityConfig.{key}: unknown keys {bad}; expected some of {sorted(names)}")
                kw[key] = sub(**{k: _tuplify(v) for k, v in value.items()})
            else:
                kw[key] = value
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tuplify(v: Any) -> Any:
    return tuple(_tuplify(x) for x in v) if isinstance(v, (list, tuple)) else v


@dataclass(frozen=True)
class FilterResult:
    """``keep``; ``text`` (C4 may have removed lines, also when the document is dropped afterwards); ``reason``
    (``"<family>:<rule>"`` of the first failed rule, ``None`` when kept)."""

    keep: bool
    text: str
    reason: str | None = None


class QualityFilter:
    """The configured filter chain; call it on a text. Stateless and cheap to build; safe to share."""

    def __init__(self, cfg: QualityConfig | None = None):
        self.cfg = cfg if cfg is not None else QualityConfig()

    def __call__(self, text: str, line_stats: dict[str, int] | None = None) -> FilterResult:
        """Run the chain on ``text``; ``line_stats`` (optional) accumulates lines removed per C4 line rule."""
        cfg = self.cfg
        if not text or text.isspace():
            return FilterResult(False, text, "quality:empty")
        view = TextView(text, cfg.cjk_min_fraction if cfg.detect_cjk else float("inf"))
        if cfg.gopher_quality.enabled:
            rule = gopher_quality.check(view, cfg.gopher_quality)
            if rule is not None:
                return FilterResult(False, text, f"gopher_quality:{rule}")
        if cfg.gopher_repetition.enabled:
            rule = gopher_repetition.check(view, cfg.gopher_repetition)
            if rule is not None:
                return FilterResult(False, text, f"gopher_repetition:{rule}")
        if cfg.c4.enabled:
            rule, new_text = c4.apply(view, cfg.c4, line_stats)
            if rule is not None:
                return FilterResult(False, new_text, f"c4:{rule}")
            if new_text is not text:
                text = new_text
                lang = view.lang
                view = TextView(text)
                view._lang = lang  # C4 only removed lines: keep the script decision of the whole document
        if cfg.fineweb.enabled:
            rule = fineweb.check(view, cfg.fineweb)
            if rule is not None:
                return FilterResult(False, text, f"fineweb:{rule}")
        return FilterResult(True, text, None)


@dataclass
class QualityStats:
    """Counters filled in by :func:`filter_documents`; ``seen == kept + sum(dropped.values())``.

    ``dropped`` maps a reason (see :data:`REASONS`) to documents dropped; ``lines_dropped`` maps a C4 line rule
    to physical lines removed (from kept and dropped documents alike); ``modified`` counts kept documents whose
    text C4 shortened.
    """

    seen: int = 0
    kept: int = 0
    modified: int = 0
    chars_in: int = 0
    chars_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    lines_dropped: dict[str, int] = field(default_factory=dict)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def add(self, other: "QualityStats") -> None:
        """Merge another worker's counters into this one."""
        self.seen += other.seen
        self.kept += other.kept
        self.modified += other.modified
        self.chars_in += other.chars_in
        self.chars_out += other.chars_out
        for mine, theirs in ((self.dropped, other.dropped), (self.lines_dropped, other.lines_dropped)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (reasons sorted by count), with ``dropped_total``."""
        d = asdict(self)
        d["dropped"] = dict(sorted(self.dropped.items(), key=lambda kv: (-kv[1], kv[0])))
        d["lines_dropped"] = dict(sorted(self.lines_dropped.items(), key=lambda kv: (-kv[1], kv[0])))
        d["dropped_total"] = self.dropped_total
        return d


def filter_documents(
    docs: Iterable[Document], cfg: QualityConfig | None = None, stats: QualityStats | None = None
) -> Iterator[Document]:
    """Yield the documents the chain keeps (with C4-shortened text where lines were removed), counting in
    ``stats``."""
    qf = QualityFilter(cfg)
    stats = stats if stats is not None else QualityStats()
    for doc in docs:
        stats.seen += 1
        stats.chars_in += len(doc.text)
        r = qf(doc.text, stats.lines_dropped)
        if not r.keep:
            stats.dropped[r.reason] = stats.dropped.get(r.reason, 0) + 1
            continue
        stats.kept += 1
        stats.chars_out += len(r.text)
        if r.text is not doc.text:
            stats.modified += 1
            doc = dataclasses.replace(doc, text=r.text)
        yield doc
