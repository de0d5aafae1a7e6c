"""FineWeb quality rules (Penedo et al., 2024; datatrove's ``FineWebQualityFilter``), reason ``fineweb:<rule>``.

Computed on the non-blank lines of the text *after* the C4 line rules (when C4 is on):

======================== ===============================================================================
``line_punct_ratio``     fraction of lines ending in terminal punctuation ``>= 0.12`` (the CJK set for CJK
                         documents, see :mod:`._text`)
``short_line_ratio``     fraction of lines of at most ``short_line_length`` (30; CJK 15) characters ``<= 0.67``
``dup_line_char_ratio``  characters in lines equal to an earlier line / characters without newlines
                         ``<= 0.1`` (the FineWeb paper's value; datatrove's default is 0.01)
``list_ratio``           line breaks / words ``<= 0.3`` (list-like documents: one or two words per line);
                         line breaks are counted as non-blank lines - 1, so blank lines between paragraphs
                         (which our C4 step keeps) do not count (datatrove counts every ``\n``)
======================== ===============================================================================
"""
from __future__ import annotations

from dataclasses import dataclass

from ._text import TextView, ends_terminal
from .base import RuleFilter
from .gopher_repetition import duplicates

__all__ = ["FineWebConfig", "FineWebFilter", "check", "RULES"]

RULES = ("line_punct_ratio", "short_line_ratio", "dup_line_char_ratio", "list_ratio")


@dataclass(frozen=True)
class FineWebConfig:
    """FineWeb thresholds (``None`` turns one rule off, ``enabled=False`` the family)."""

    enabled: bool = True
    min_line_punct_ratio: float | None = 0.12
    max_short_line_ratio: float | None = 0.67
    short_line_length: int = 30
    cjk_short_line_length: int = 15
    max_dup_line_char_ratio: float | None = 0.1
    max_newline_word_ratio: float | None = 0.3


def check(view: TextView, cfg: FineWebConfig) -> str | None:
    """Name of the first failed rule, or ``None`` when the document passes."""
    lines = view.nonblank_lines
    if not lines:
        return None
    n = len(lines)
    if cfg.min_line_punct_ratio is not None:
        term = view.terminal_punct
        ended = sum(1 for ln in lines if ends_terminal(ln.rstrip(), term, True))
        if ended < cfg.min_line_punct_ratio * n:
            return "line_punct_ratio"
    if cfg.max_short_line_ratio is not None:
        limit = cfg.cjk_short_line_length if view.cjk else cfg.short_line_length
        short = sum(1 for ln in lines if len(ln.strip()) <= limit)
        if short > cfg.max_short_line_ratio * n:
            return "short_line_ratio"
    if cfg.max_dup_line_char_ratio is not None and n > 1:
        chars = duplicates(lines)[1]
        if chars and chars > cfg.max_dup_line_char_ratio * (len(view.text) - view.text.count("\n")):
            return "dup_line_char_ratio"
    if cfg.max_newline_word_ratio is not None:
        if n - 1 > cfg.max_newline_word_ratio * view.word_stats()[0]:
            return "list_ratio"
    return None


class FineWebFilter(RuleFilter):
    """This family as a :class:`~.base.DocFilter`: drops with ``fineweb:<rule>`` (:func:`check`)."""

    name = "fineweb"
    Config = FineWebConfig
    RULES = RULES
    check = staticmethod(check)
