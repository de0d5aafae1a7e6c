"""Per-document analysis shared by the filter families, computed once and lazily (:class:`TextView`).

Script detection: a document is treated as CJK when CJK characters (Han ideographs, kana, Hangul, bopomofo) make up
at least ``cjk_min_fraction`` of its non-whitespace characters. For a CJK document every CJK character is one
*token* ("word") and the non-CJK runs in between are split on whitespace, so ``"1998年新年讲话"`` has the tokens
``1998 年 新 年 讲 话``; otherwise tokens are the whitespace-separated words. The language key is ``"zh"``,
``"ja"`` (at least 10% of the CJK characters are kana), ``"ko"`` (at least half are Hangul) or ``"en"`` (any
non-CJK document: the word-based rules and the English stop words apply).
"""
from __future__ import annotations

import re
from itertools import filterfalse

__all__ = ["TextView", "TERMINAL_PUNCT", "TERMINAL_PUNCT_CJK", "ELLIPSES", "CJK_CHARS", "ends_terminal", "detect_lang",
           "count_cjk", "cjk_tokens"]

CJK_CHARS = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK and Kangxi radicals
    "\u3005\u3007"  # 々 iteration mark, 〇 ideographic zero
    "\u3040-\u309f"  # Hiragana
    "\u30a0-\u30fa\u30fc-\u30ff"  # Katakana (not the U+30FB middle dot)
    "\u3100-\u312f"  # Bopomofo
    "\u3130-\u318f"  # Hangul compatibility Jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003134f"  # CJK extensions B-H
)
_CJK = re.compile(f"[{CJK_CHARS}]")
_CJK_SPLIT = re.compile(f"([{CJK_CHARS}]+)")
_CJK_RUN = re.compile(f"[{CJK_CHARS}]+")
_KANA = re.compile("[\u3040-\u309f\u30a0-\u30fa\u30fc-\u30ff\u31f0-\u31ff]")
_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_HAS_ALPHA = re.compile(r"[^\W\d_]")  # a letter (any script)
_HAS_WORDCHAR = re.compile(r"\w")
_ASCII_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~"  # string.punctuation without "_" (a word character)
# punctuation stripped off token ends before the isalpha() fast path (all of it is [^\w\s])
_STRIP_PUNCT = _ASCII_PUNCT + (
    "\u3002\u3001\u300c\u300d\u300e\u300f\u300a\u300b\u3010\u3011"  # 。、「」『』《》【】
    "\u2026\u2014\u2013\u00b7\u201c\u201d\u2018\u2019"  # … — – · “ ” ‘ ’
)
_NONASCII_PUNCT = re.compile(r"[^\w\s\x00-\x7f]")
_PUNCT = re.compile(r"[^\w\s]")
_PARAGRAPH_SPLIT = re.compile(r"\n[^\S\n]*\n\s*")

# Lines "end in terminal punctuation" when they end with one of these (C4's set plus closing curly quotes and
# guillemets; for CJK documents also the CJK full stop, ！？；, ellipsis and closing corner brackets — both the
# full-width forms and the ASCII ones NFKC maps them to).
TERMINAL_PUNCT: tuple[str, ...] = (".", "!", "?", '"', "'", "\u201d", "\u2019", "\u00bb")
TERMINAL_PUNCT_CJK: tuple[str, ...] = TERMINAL_PUNCT + (
    "\u3002", "\uff01", "\uff1f", "\uff1b", ";", "\u2026", "\u300d", "\u300f", "\uff61",
)
ELLIPSES: tuple[str, ...] = ("...", "\u2026")
_CLOSERS = ")]\"'\u201d\u2019\u00bb\u300d\u300f\u300b\u3011\uff09"
_CLOSER_TUPLE = tuple(_CLOSERS)


def ends_terminal(line: str, term: tuple[str, ...], ellipsis_ok: bool) -> bool:
    """Whether the stripped ``line`` ends a sentence: a terminal mark from ``term``, possibly followed by closing
    brackets/quotes (``"(see above.)"``, ``"。)"``); an ellipsis ending counts only when ``ellipsis_ok``."""
    if not line.endswith(term):
        if not line.endswith(_CLOSER_TUPLE):
            return False
        line = line.rstrip(_CLOSERS)
        if not line.endswith(term):
            return False
    return ellipsis_ok or not line.endswith(ELLIPSES)


class TextView:
    """Lazily computed, cached views of one document's text; each family reads what it needs.

    Attributes computed on first use: ``lines`` (``text.split("\\n")``), ``nonblank_lines``, ``paragraphs``,
    ``cjk`` / ``lang`` (script detection), ``tokens`` and the word statistics of :meth:`word_stats`.
    """

    __slots__ = ("text", "cjk_min_fraction", "_lines", "_nonblank", "_paragraphs", "_lang", "_tokens", "_wstats")

    def __init__(self, text: str, cjk_min_fraction: float = 0.3, lang: str | None = None):
        """``lang`` (optional) fixes the script decision instead of detecting it from ``text``."""
        self.text = text
        self.cjk_min_fraction = cjk_min_fraction
        self._lines: list[str] | None = None
        self._nonblank: list[str] | None = None
        self._paragraphs: list[str] | None = None
        self._lang: str | None = lang
        self._tokens: list[str] | None = None
        self._wstats: tuple[int, int, int, float] | None = None

    def with_text(self, text: str) -> TextView:
        """A fresh view of ``text`` (this document after a filter changed it, e.g. C4's line removal) that keeps
        this document's script decision: removing lines must not turn a CJK document into an English one."""
        return TextView(text, self.cjk_min_fraction, self.lang)

    # ------------------------------------------------------------------------------------------- lines

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.split("\n")
        return self._lines

    @property
    def nonblank_lines(self) -> list[str]:
        if self._nonblank is None:
            self._nonblank = [ln for ln in self.lines if ln and not ln.isspace()]
        return self._nonblank

    @property
    def paragraphs(self) -> list[str]:
        """Blank-line separated blocks of the stripped text (as datatrove's ``\\n{2,}`` split)."""
        if self._paragraphs is None:
            text = self.text.strip()
            self._paragraphs = _PARAGRAPH_SPLIT.split(text) if "\n" in text else [text]
        return self._paragraphs

    # ------------------------------------------------------------------------------------------- script

    @property
    def lang(self) -> str:
        """``"zh" | "ja" | "ko"`` for CJK documents, else ``"en"``."""
        if self._lang is None:
            self._lang = detect_lang(self.text, self.cjk_min_fraction)
        return self._lang

    @property
    def cjk(self) -> bool:
        return self.lang != "en"

    @property
    def terminal_punct(self) -> tuple[str, ...]:
        return TERMINAL_PUNCT_CJK if self.cjk else TERMINAL_PUNCT

    # ------------------------------------------------------------------------------------------- words

    @property
    def tokens(self) -> list[str]:
        """Words: whitespace-separated, or for CJK documents each CJK character plus the non-CJK runs."""
        if self._tokens is None:
            self._tokens = cjk_tokens(self.text) if self.cjk else self.text.split()
        return self._tokens

    def word_stats(self) -> tuple[int, int, int, float]:
        """``(n_tokens, n_words, n_alpha_tokens, mean_word_length)``.

        ``n_words`` counts tokens with at least one letter or digit (datatrove's "non-symbol words");
        ``n_alpha_tokens`` tokens with at least one letter; the mean word length is taken over the non-symbol
        words with punctuation characters not counted (datatrove's word tokenizer splits punctuation off).
        """
        if self._wstats is None:
            toks = self.tokens
            n = len(toks)
            chars = sum(map(len, toks))
            n_nonalpha = n_symbol = 0
            for w in filterfalse(str.isalpha, toks):  # most tokens are pure letters: C-speed skip
                core = w.strip(_STRIP_PUNCT)
                if core.isalpha():  # "word," "(e.g." "it's": a letter, not a symbol
                    continue
                if not core:  # only punctuation: a symbol token
                    n_nonalpha += 1
                    n_symbol += 1
                    continue
                if _HAS_ALPHA.search(w) is None:
                    n_nonalpha += 1
                    if _HAS_WORDCHAR.search(w) is None:
                        n_symbol += 1
            punct = count_punct(self.text) if chars else 0
            n_words = n - n_symbol
            mean = (chars - punct) / n_words if n_words else 0.0
            self._wstats = (n, n_words, n - n_nonalpha, mean)
        return self._wstats


def detect_lang(text: str, cjk_min_fraction: float = 0.3) -> str:
    """``"zh" | "ja" | "ko"`` when CJK characters are at least ``cjk_min_fraction`` of the non-space characters,
    else ``"en"`` (see the module docstring)."""
    if _CJK.search(text) is None:
        return "en"
    n_cjk = count_cjk(text)
    nonspace = sum(map(len, text.split()))
    if n_cjk < cjk_min_fraction * nonspace:
        return "en"
    if _HANGUL.search(text) is not None and len(_HANGUL.findall(text)) * 2 >= n_cjk:
        return "ko"
    if _KANA.search(text) is not None and len(_KANA.findall(text)) * 10 >= n_cjk:
        return "ja"
    return "zh"


def count_punct(text: str) -> int:
    """Number of punctuation/symbol characters (``[^\\w\\s]``): ``str.count`` per ASCII mark (C speed), a regex
    only for the non-ASCII ones."""
    if len(text) < 1000:  # short texts: one regex pass beats 31 str.count calls
        return len(_PUNCT.findall(text))
    n = 0
    for c in _ASCII_PUNCT:
        n += text.count(c)
    if not text.isascii():
        n += len(_NONASCII_PUNCT.findall(text))
    return n


def count_cjk(text: str) -> int:
    """Number of CJK characters in ``text``."""
    return sum(map(len, _CJK_RUN.findall(text)))


def cjk_tokens(text: str) -> list[str]:
    """Each CJK character, and the whitespace-separated runs between them, in order."""
    parts = iter(_CJK_SPLIT.split(text))  # non-CJK, CJK run, non-CJK, ..., non-CJK
    out = next(parts).split()
    extend = out.extend
    for run in parts:
        extend(run)  # one token per character
        extend(next(parts).split())
    return out
