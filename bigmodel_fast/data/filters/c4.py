"""C4-style filters (Raffel et al., 2020; datatrove's ``C4QualityFilter``): line rules that *remove lines* and
document rules that drop the document (reason ``c4:<rule>``).

Document rules, checked first on the whole text:

* ``lorem_ipsum``: the text contains "lorem ipsum" (any case). On by default.
* ``curly_bracket``: the text contains ``{``. **Off by default**: C4 used it to drop JavaScript/CSS that leaked
  out of HTML extraction, but it also drops every document that contains code, JSON, LaTeX or a format string
  (``str.format("{}")``), i.e. all of the Python documentation and most technical prose we want to keep.

Line rules (each removes the offending line; counted per rule in the ``line_stats`` dict passed in):

* ``long_word``: a word longer than ``max_word_length`` (1000) characters;
* ``no_terminal_punct``: the line does not end in terminal punctuation (``. ! ? " '`` and closing curly
  quotes/guillemets; for CJK documents also ``。！？；…」』`` and their NFKC forms), possibly followed by closing
  brackets/quotes (``(see above.)``), or ends in an ellipsis (allowed in CJK documents, where ``……`` closes a
  sentence);
* ``too_few_words``: fewer than ``min_words_per_line`` (3) words (a CJK character counts as one word);
* ``javascript``: the line contains "javascript" (any case), e.g. "Please enable JavaScript";
* ``policy``: cookie/terms boilerplate ("terms of use", "privacy policy", "cookie policy", "uses cookies",
  "use of cookies", "use cookies").

Then ``min_sentences`` (5) drops documents whose kept lines hold fewer sentences (a sentence ends at a run of
``. ! ?`` followed by a space or the end of the line, or at ``。！？…``; every kept line counts at least one).
When every line is removed and ``min_sentences`` is off, the reason is ``c4:empty``.

**Hard-wrapped text.** C4 and datatrove treat each physical line as a unit, which suits extracted web text
(one paragraph per line) but destroys hard-wrapped prose (``.rst``/``.txt`` files, e-mails): only 16% of the
characters of the shipped Python docs sit on lines ending in terminal punctuation. With ``join_wrapped_lines``
(on by default) a line that does not end in terminal punctuation, is at most ``wrap_max_chars`` (100; CJK 60)
long, and either is at least ``wrap_min_chars`` (40; CJK 20) long or is followed by a line starting with a
lowercase letter, is joined with the next non-blank line of the same paragraph, and the rules judge the joined
*logical line*. Short lines followed by a capitalised line (headings, menu items) and long unpunctuated lines
(web paragraphs without a full stop) are still judged alone. Kept physical lines are written back unchanged and
paragraph breaks are kept. On the Python docs this keeps 63% of the characters instead of 15% (what goes is
mostly code, tables and headings, plus paragraphs ending in ":" that introduce an example).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import islice

from ..stats import StageStats
from ._text import _CJK, TextView, count_cjk, ends_terminal
from .base import KEEP, Verdict

__all__ = ["C4Config", "C4Filter", "apply", "DOC_RULES", "LINE_RULES"]

DOC_RULES = ("lorem_ipsum", "curly_bracket", "min_sentences", "empty")
LINE_RULES = ("long_word", "no_terminal_punct", "too_few_words", "javascript", "policy")

POLICY_SUBSTRINGS: tuple[str, ...] = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
                                      "use of cookies", "use cookies")
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019\u00bb)\]]*(?=\s|$)")
_SENTENCE_END_CJK = re.compile("[\u3002\uff01\uff1f!?\u2026\uff61]+|[.][\"'\u201d\u2019)]*(?=\\s|$)")


@dataclass(frozen=True)
class C4Config:
    """C4 switches and thresholds (``None`` or ``False`` turns one rule off, ``enabled=False`` the family)."""

    enabled: bool = True
    # document rules
    drop_lorem_ipsum: bool = True
    drop_curly_bracket: bool = False  # kills every document with code in it; see the module docstring
    min_sentences: int | None = 5
    # line rules
    drop_no_terminal_punct: bool = True
    min_words_per_line: int | None = 3
    max_word_length: int | None = 1000
    drop_javascript_lines: bool = True
    drop_policy_lines: bool = True
    policy_substrings: tuple[str, ...] = POLICY_SUBSTRINGS
    # hard-wrapped prose
    join_wrapped_lines: bool = True
    wrap_min_chars: int = 40
    wrap_max_chars: int = 100
    cjk_wrap_min_chars: int = 20
    cjk_wrap_max_chars: int = 60


def _line_verdict(line: str, cjk: bool, term: tuple[str, ...], cfg: C4Config) -> str | None:
    """Name of the line rule that removes this logical line, or None to keep it."""
    if cfg.max_word_length is not None and len(line) > cfg.max_word_length:
        if max(map(len, line.split())) > cfg.max_word_length:
            return "long_word"
    if cfg.drop_no_terminal_punct:
        if not ends_terminal(line, term, cjk):
            return "no_terminal_punct"
    if cfg.min_words_per_line:
        need = cfg.min_words_per_line
        if len(line) < need:
            return "too_few_words"
        if len(line.split()) < need:
            if not cjk:
                return "too_few_words"
            # a CJK character is one word: usually `need` of them are found right at the start
            if sum(1 for _ in islice(_CJK.finditer(line), need)) < need:
                if count_cjk(line) + len(_CJK.sub(" ", line).split()) < need:
                    return "too_few_words"
    if cfg.drop_javascript_lines or cfg.drop_policy_lines:
        low = line.lower()
        if cfg.drop_javascript_lines and "javascript" in low:
            return "javascript"
        if cfg.drop_policy_lines and any(p in low for p in cfg.policy_substrings):
            return "policy"
    return None


def apply(view: TextView, cfg: C4Config, line_stats: dict[str, int] | None = None,
          char_stats: dict[str, int] | None = None) -> tuple[str | None, str]:
    """``(reason or None, new text)``: the failed document rule, and the text with the removed lines gone;
    ``line_stats``/``char_stats`` (optional) add up the physical lines / their characters removed per line rule."""
    text = view.text
    if cfg.drop_lorem_ipsum and "lorem ipsum" in text.lower():
        return "lorem_ipsum", text
    if cfg.drop_curly_bracket and "{" in text:
        return "curly_bracket", text
    cjk = view.cjk
    term = view.terminal_punct
    joiner = "" if cjk else " "
    join = cfg.join_wrapped_lines
    wmin, wmax = (cfg.cjk_wrap_min_chars, cfg.cjk_wrap_max_chars) if cjk else (cfg.wrap_min_chars, cfg.wrap_max_chars)
    need_sent = cfg.min_sentences or 0
    sent_re = _SENTENCE_END_CJK if cjk else _SENTENCE_END

    blocks: list[list[str]] = []
    block: list[str] = []
    group: list[str] = []  # stripped physical lines of the current logical line
    raw: list[str] = []  # the same lines as they were
    sentences = 0
    dropped_any = False
    lines = view.lines
    last = len(lines) - 1
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            if block:
                blocks.append(block)
                block = []
            continue
        group.append(s)
        raw.append(line)
        if join and i < last and len(s) <= wmax and not ends_terminal(s, term, cjk):
            nxt = lines[i + 1].lstrip()
            if nxt and (len(s) >= wmin or nxt[0].islower()):
                continue  # a wrapped line: judge it together with the next one
        logical = group[0] if len(group) == 1 else joiner.join(group)
        verdict = _line_verdict(logical, cjk, term, cfg)
        if verdict is None:
            block.extend(raw)
            if sentences < need_sent:
                sentences += max(1, len(sent_re.findall(logical)))
        else:
            dropped_any = True
            if line_stats is not None:
                line_stats[verdict] = line_stats.get(verdict, 0) + len(group)
            if char_stats is not None:
                char_stats[verdict] = char_stats.get(verdict, 0) + sum(map(len, raw))
        group = []
        raw = []
    if block:
        blocks.append(block)
    new_text = "\n\n".join("\n".join(b) for b in blocks) if dropped_any else text
    if need_sent and sentences < need_sent:
        return "min_sentences", new_text
    if not blocks:
        return "empty", new_text
    return None, new_text


class C4Filter:
    """This family as a :class:`~.base.DocFilter` (:func:`apply`): drops with ``c4:<rule>`` or keeps the document
    with the removed lines gone (the verdict's ``text``; a dropped document's shortened text too); lines removed
    and their characters are tallied per line rule in ``stats`` (groups ``lines_dropped``, ``line_chars_dropped``).
    """

    name = "c4"
    Config = C4Config
    RULES = DOC_RULES

    def __init__(self, cfg: C4Config):
        self.cfg = cfg

    def filter(self, view: TextView, stats: StageStats | None = None) -> Verdict:
        if stats is None:
            rule, text = apply(view, self.cfg)
        else:
            rule, text = apply(view, self.cfg, stats.tally_of("lines_dropped"), stats.tally_of("line_chars_dropped"))
        changed = text is not view.text
        if rule is not None:
            return Verdict(False, text if changed else None, f"c4:{rule}")
        return Verdict(True, text) if changed else KEEP

    def __repr__(self) -> str:
        return f"C4Filter({self.cfg!r})"
