"""Gopher quality rules (Rae et al., 2021, appendix A; thresholds as datatrove's ``GopherQualityFilter``).

Document rules, in order (the first that fails names the drop reason ``gopher_quality:<rule>``):

* ``word_count``: ``min_words <= words <= max_words`` (words = tokens with a letter or digit)
* ``mean_word_length``: mean word length (punctuation not counted) in ``[min, max]``; CJK documents use the
  ``cjk_*`` bounds (1..4): every CJK character is a one-character word, so the mean sits
  near 1 and only the upper bound (long Latin/base64/URL runs) means anything
* ``symbol_word_ratio``: ``'#'`` count / tokens and ellipsis count / tokens each ``<= max_symbol_word_ratio``
  (``...``, ``…`` and runs like ``......`` count once)
* ``bullet_lines``: fraction of non-blank lines starting with a bullet (``- * • ● ○ ◦ ▪ ■ □ ‣ ► ▶ ➢ · ・``)
  ``<= max_bullet_lines_ratio``; datatrove counts only ``•`` and ``-`` and divides by all
  lines, blank ones included. Dashes (``—``, ``–``) are not bullets: Chinese ``——`` and
  French dialogue start lines with them
* ``ellipsis_lines``: fraction of non-blank lines ending with an ellipsis ``<= max_ellipsis_lines_ratio``; in CJK
  documents the two-character CJK ellipsis ``……`` (NFKC ``......``) ends sentences and is
  not counted, only a cut-off ``...``/``…``
* ``alpha_words``: fraction of tokens containing a letter ``>= min_alpha_words_ratio`` (CJK characters are
  letters). English punctuation sticks to its word in whitespace tokens, while CJK
  punctuation is always a token of its own, so CJK documents divide by the non-punctuation
  tokens (otherwise every list of names separated by ``、`` fails)
* ``stop_words``: at least ``min_stop_words`` occurrences of the stop words (case-insensitive, whole words;
  datatrove is case-sensitive, so "The" does not count there);
  CJK documents count the characters of :mod:`bigmodel_fast.data.stopwords` ``ZH``/``JA``/
  ``KO`` instead, or skip the rule when ``cjk_stop_words`` is false

Words are whitespace-separated tokens (datatrove uses a word tokenizer that splits punctuation off; the word
count and mean length here leave punctuation out to match). Setting a threshold to ``None`` switches its rule
off.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .. import stopwords
from ._text import ELLIPSES, TextView
from .base import RuleFilter

__all__ = ["GopherQualityConfig", "GopherQualityFilter", "check", "RULES"]

RULES = ("word_count", "mean_word_length", "symbol_word_ratio", "bullet_lines", "ellipsis_lines", "alpha_words",
         "stop_words")

BULLETS: tuple[str, ...] = ("-", "*", "\u2022", "\u2023", "\u2043", "\u25e6", "\u25aa", "\u25cf", "\u25cb", "\u25a0",
                            "\u25a1", "\u25ba", "\u25b6", "\u27a2", "\u00b7", "\u30fb")
CJK_ELLIPSES = ("......", "\u2026\u2026")
_ELLIPSIS_RUN = re.compile(r"\.{3,}|\u2026+")


@dataclass(frozen=True)
class GopherQualityConfig:
    """Gopher quality thresholds (``None`` turns one rule off, ``enabled=False`` the whole family)."""

    enabled: bool = True
    min_words: int | None = 50
    max_words: int | None = 100_000
    min_mean_word_length: float | None = 3.0
    max_mean_word_length: float | None = 10.0
    cjk_min_mean_word_length: float | None = 1.0
    cjk_max_mean_word_length: float | None = 4.0
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2
    stop_words: tuple[str, ...] = stopwords.GOPHER_EN
    cjk_stop_words: bool = True


@lru_cache(maxsize=16)
def _stop_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    alts = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alts})(?!\w)", re.IGNORECASE)


def _enough_stop_words(view: TextView, cfg: GopherQualityConfig, need: int) -> bool | None:
    """True/False, or None when the rule does not apply (a CJK document with ``cjk_stop_words`` off)."""
    if view.cjk:
        if not cfg.cjk_stop_words:
            return None
        found = 0
        text = view.text
        for ch in stopwords.BY_LANGUAGE[view.lang]:
            found += text.count(ch)
            if found >= need:
                return True
        return False
    found = 0
    for _ in _stop_regex(tuple(cfg.stop_words)).finditer(view.text):
        found += 1
        if found >= need:
            return True
    return False


def check(view: TextView, cfg: GopherQualityConfig) -> str | None:
    """Name of the first failed rule, or ``None`` when the document passes."""
    text = view.text
    if cfg.min_words is not None and len(text) < cfg.min_words:
        return "word_count"  # fewer characters than words needed: no need to tokenize
    n_tokens, n_words, n_alpha, mean_len = view.word_stats()
    if cfg.min_words is not None and n_words < cfg.min_words:
        return "word_count"
    if cfg.max_words is not None and n_words > cfg.max_words:
        return "word_count"
    if n_words:
        lo, hi = ((cfg.cjk_min_mean_word_length, cfg.cjk_max_mean_word_length) if view.cjk
                  else (cfg.min_mean_word_length, cfg.max_mean_word_length))
        if (lo is not None and mean_len < lo) or (hi is not None and mean_len > hi):
            return "mean_word_length"
    if cfg.max_symbol_word_ratio is not None and n_tokens:
        limit = cfg.max_symbol_word_ratio * n_tokens
        if text.count("#") > limit:
            return "symbol_word_ratio"
        # every run of dots/ellipses counts at least once in these str.count()s: the regex only runs when needed
        if text.count("...") + text.count("\u2026") > limit and len(_ELLIPSIS_RUN.findall(text)) > limit:
            return "symbol_word_ratio"
    if cfg.max_bullet_lines_ratio is not None or cfg.max_ellipsis_lines_ratio is not None:
        lines = view.nonblank_lines
        if lines:
            if cfg.max_bullet_lines_ratio is not None:
                bullets = sum(1 for ln in lines if ln.lstrip().startswith(BULLETS))
                if bullets > cfg.max_bullet_lines_ratio * len(lines):
                    return "bullet_lines"
            if cfg.max_ellipsis_lines_ratio is not None:
                ell = sum(1 for ln in lines if ln.rstrip().endswith(ELLIPSES))
                if ell and view.cjk:  # the CJK ellipsis "……" (NFKC: "......") ends sentences: not a cut-off
                    ell -= sum(1 for ln in lines if ln.rstrip().endswith(CJK_ELLIPSES))
                if ell > cfg.max_ellipsis_lines_ratio * len(lines):
                    return "ellipsis_lines"
    if cfg.min_alpha_words_ratio is not None:
        # CJK punctuation is always a token of its own (English punctuation sticks to its word): leave
        # punctuation-only tokens out of the CJK denominator, or every list of names separated by "、" fails
        denom = n_words if view.cjk else n_tokens
        if denom and n_alpha < cfg.min_alpha_words_ratio * denom:
            return "alpha_words"
    if cfg.min_stop_words:
        if _enough_stop_words(view, cfg, cfg.min_stop_words) is False:
            return "stop_words"
    return None


class GopherQualityFilter(RuleFilter):
    """This family as a :class:`~.base.DocFilter`: drops with ``gopher_quality:<rule>`` (:func:`check`)."""

    name = "gopher_quality"
    Config = GopherQualityConfig
    RULES = RULES
    check = staticmethod(check)
