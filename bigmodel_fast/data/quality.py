"""Document quality filters: Gopher quality, Gopher repetition, C4 and FineWeb rules, CJK-aware.

Usage::

    from bigmodel_fast.data.quality import QualityConfig, QualityFilter, QualityStats, filter_documents

    qf = QualityFilter()                      # every family on, datatrove-like thresholds
    r = qf(text)                              # Verdict(keep, text, reason)
    r.reason                                  # e.g. "gopher_quality:word_count", None when kept
    qf.filters                                # [GopherQualityFilter(...), ..., FineWebFilter(...)]
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

Every family is a :class:`~.filters.base.DocFilter` (``filter(view, stats) -> Verdict``: keep, possibly with a new
text, or a drop reason), registered in :data:`.filters.FAMILIES`; :class:`QualityFilter` builds one list of them
from the config (``filters``, extendable with ``extra_filters``) and runs it in order. Every rule reads a shared
per-document :class:`~.filters._text.TextView` that computes lines, tokens, word statistics and the script once,
lazily (a document dropped by an early rule never pays for the later ones); after C4 removed lines the later
filters get a new view of the new text that keeps the document's script decision.
Throughput (one core, ``benchmarks/data/bench_quality.py``): ~10 MB/s on the English Python docs, ~6.5 MB/s
(2.3 M characters/s) on the Chinese sample's one-paragraph documents.

**Presets** (:func:`preset_config`, :mod:`.filters.presets`): ``web`` is the defaults above; ``curated`` (for
documentation, books, technical prose) switches off the word-statistics and terminal-punctuation rules that punish
code, lists and headings and loosens the line-duplication rules; overrides (``--quality-config``) go on top.
:func:`drop_warnings` names every rule that dropped more than a given share of the documents (or a C4 line rule
more than that share of the characters) and how to switch it off.

Wiring: the filters expect cleaned text (:func:`~bigmodel_fast.data.clean.clean_documents`: NFKC, stripped lines,
single blank lines between paragraphs), so ``filter_documents`` goes after cleaning and before dedup;
:func:`bigmodel_fast.data.pii.mask_documents` after both. ``QualityConfig.to_dict()``/``from_dict()`` round-trip
through JSON for ``stats.json`` and CLI config files.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .filters import FAMILIES, c4
from .filters._text import TextView
from .filters.base import KEEP, DocFilter, Verdict
from .filters.c4 import C4Config
from .filters.fineweb import FineWebConfig
from .filters.gopher_quality import GopherQualityConfig
from .filters.gopher_repetition import GopherRepetitionConfig
from .filters.presets import DEFAULT_PRESET, PRESETS, merge_overrides, preset_overrides, switch_off_hint
from .sources import Document
from .stats import QualityStats, SourceStats, StageStats

__all__ = [
    "QualityConfig", "GopherQualityConfig", "GopherRepetitionConfig", "C4Config", "FineWebConfig",
    "FilterResult", "Verdict", "DocFilter", "QualityFilter", "QualityStats", "filter_documents", "REASONS",
    "C4_LINE_RULES", "PRESETS", "DEFAULT_PRESET", "preset_config", "drop_warnings",
]

EMPTY = "quality:empty"
REASONS: tuple[str, ...] = (EMPTY,) + tuple(f"{name}:{rule}" for name, cls in FAMILIES.items() for rule in cls.RULES)
C4_LINE_RULES = c4.LINE_RULES
FilterResult = Verdict  # the chain's answer: a Verdict whose ``text`` is always set


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
    def from_dict(cls, d: Mapping[str, Any]) -> QualityConfig:
        """Build from a (JSON) mapping such as ``{"c4": {"drop_curly_bracket": true}, "fineweb": {"enabled":
        false}}``; missing keys keep their defaults, unknown keys raise ``ValueError`` naming them."""
        kinds = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - kinds)
        if unknown:
            raise ValueError(f"QualityConfig: unknown keys {unknown}; expected some of {sorted(kinds)}")
        kw: dict[str, Any] = {}
        for key, value in d.items():
            if key in FAMILIES:
                sub = FAMILIES[key].Config
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


def preset_config(preset: str = DEFAULT_PRESET, overrides: Mapping[str, Any] | None = None) -> QualityConfig:
    """The config of ``--quality-preset preset`` (:mod:`.filters.presets`) with ``overrides`` (the JSON of
    ``--quality-config``: ``{"<family>": {"<field>": value}}``) merged on top, field by field."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ValueError(f"quality config: expected a JSON object such as {{\"c4\": {{\"enabled\": false}}}}, got "
                         f"{type(overrides).__name__}")
    return QualityConfig.from_dict(merge_overrides(preset_overrides(preset), overrides or {}))


def drop_warnings(stats: QualityStats, max_share: float) -> list[str]:
    """One message per quality rule that dropped more than ``max_share`` of the documents the stage saw, and per C4
    line rule that removed more than ``max_share`` of its characters; each names the rule, the share and how to
    switch it off. Sorted by share, largest first."""
    found: list[tuple[float, str]] = []
    seen, chars = stats.seen, stats.chars_in
    for reason, n in stats.dropped.items():
        if seen and n > max_share * seen:
            found.append((n / seen, f"quality rule {reason} dropped {n} of {seen} documents ({n / seen:.1%}, more "
                                    f"than --warn-drop-share {max_share:g}); see dropped_samples in stats.json; if "
                                    f"such documents are wanted, use {switch_off_hint(reason)}"))
    for rule, n in stats.line_chars_dropped.items():
        if chars and n > max_share * chars:
            reason = f"c4:line:{rule}"
            found.append((n / chars, f"C4 line rule {rule} removed {n} of {chars} characters ({n / chars:.1%}, "
                                     f"more than --warn-drop-share {max_share:g}); if such lines are wanted (code, "
                                     f"lists, headings), use {switch_off_hint(reason)}"))
    return [msg for _, msg in sorted(found, key=lambda x: -x[0])]


def _tuplify(v: Any) -> Any:
    return tuple(_tuplify(x) for x in v) if isinstance(v, (list, tuple)) else v


class QualityFilter:
    """The configured filter chain, itself a :class:`DocFilter` (name ``"quality"``); call it on a text.

    ``filters`` is the one list it runs, in order: the enabled families of ``cfg`` (chain order of
    :data:`~.filters.FAMILIES`), then ``extra_filters`` (any :class:`DocFilter`). Stateless and cheap to build; safe
    to share.
    """

    name = "quality"

    def __init__(self, cfg: QualityConfig | None = None, extra_filters: Sequence[DocFilter] = ()):
        self.cfg = cfg = cfg if cfg is not None else QualityConfig()
        self.filters: list[DocFilter] = [
            fam(sub) for name, fam in FAMILIES.items() if (sub := getattr(cfg, name)).enabled]
        for f in extra_filters:
            if not isinstance(f, DocFilter):
                raise TypeError(f"QualityFilter extra_filters: {f!r} is not a DocFilter; expected an object with a "
                                f"`name` and a `filter(view, stats=None) -> Verdict` method")
            self.filters.append(f)
        self._cjk_min_fraction = cfg.cjk_min_fraction if cfg.detect_cjk else float("inf")

    def filter(self, doc: TextView | str, stats: StageStats | None = None) -> Verdict:
        """Run ``filters`` on ``doc`` (a text or its view) until one drops it; ``stats`` (optional) collects what
        the filters count (lines removed per C4 line rule). The verdict's ``text`` is the text after the filters
        that ran (C4 may have removed lines, also when the document is dropped afterwards)."""
        view = doc if isinstance(doc, TextView) else None
        text = doc if view is None else view.text
        if not text or text.isspace():
            return Verdict(False, text, EMPTY)
        if view is None:
            view = TextView(text, self._cjk_min_fraction)
        for f in self.filters:
            v = f.filter(view, stats)
            if v is KEEP:
                continue
            if v.text is not None:
                text = v.text
                if v.keep:
                    view = view.with_text(text)
            if not v.keep:
                return Verdict(False, text, v.reason)
        return Verdict(True, text)

    def __call__(self, text: str, line_stats: dict[str, int] | None = None) -> Verdict:
        """:meth:`filter` on ``text``; ``line_stats`` (optional) accumulates lines removed per C4 line rule."""
        stats = None
        if line_stats is not None:
            stats = QualityStats(tallies={"lines_dropped": line_stats})
        return self.filter(text, stats)


def filter_documents(
    docs: Iterable[Document], cfg: QualityConfig | None = None, stats: QualityStats | None = None,
    extra_filters: Sequence[DocFilter] = (), sources: SourceStats | None = None,
) -> Iterator[Document]:
    """Yield the documents the chain (:class:`QualityFilter` of ``cfg`` and ``extra_filters``) keeps, with their new
    text where a filter changed it (C4's line removal), counting in ``stats`` (seen, kept, modified, characters in
    and out, drops per reason, C4 lines and their characters removed per rule) and, per source with a sample of
    the dropped documents (their text as it came in), in ``sources``."""
    qf = QualityFilter(cfg, extra_filters)
    stats = stats if stats is not None else QualityStats()
    counts = stats.counts
    for doc in docs:
        stats.seen += 1
        counts["chars_in"] += len(doc.text)
        v = qf.filter(doc.text, stats)
        if not v.keep:
            stats.drop(v.reason)
            if sources is not None:
                sources.drop(doc, v.reason)
            continue
        stats.kept += 1
        counts["chars_out"] += len(v.text)
        if v.text is not doc.text:
            counts["modified"] += 1
            doc = dataclasses.replace(doc, text=v.text)
        yield doc
