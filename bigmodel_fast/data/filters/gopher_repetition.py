"""Gopher repetition rules (Rae et al., 2021, table A1; thresholds as datatrove's ``GopherRepetitionFilter``).

Document rules, in order (drop reason ``gopher_repetition:<rule>``):

======================== ===============================================================================
``dup_para_frac``        duplicate paragraphs / paragraphs ``<= 0.3`` (a paragraph equal to an earlier one)
``dup_para_char_frac``   characters in duplicate paragraphs / characters ``<= 0.2``
``dup_line_frac``        duplicate non-blank lines / non-blank lines ``<= 0.3``
``dup_line_char_frac``   characters in duplicate lines / characters ``<= 0.2``
``top_{n}gram``          characters of the most frequent word n-gram times its count / characters, for
                         n = 2, 3, 4 ``<= 0.20, 0.18, 0.16`` (only n-grams occurring at least twice count)
``dup_{n}gram``          characters of words covered by duplicate n-grams / characters, for n = 5..10
                         ``<= 0.15, 0.14, 0.13, 0.12, 0.11, 0.10``
======================== ===============================================================================

A *duplicate n-gram* is an occurrence of an n-gram that already occurred earlier in the document; the words it
covers are counted once even where duplicate occurrences overlap (the Gopher paper's definition). datatrove
instead scans greedily and skips ``n`` words after each hit, which can count a little less on overlapping runs.
Because covered words only shrink as ``n`` grows, a document whose 5-gram coverage is under the smallest
remaining threshold passes all larger ``n`` without computing them.

For CJK documents the "words" are single CJK characters (see :mod:`._text`) and a Chinese word is about 1.5-2
characters long, so each word n-gram rule looks at character n-grams ``cjk_ngram_scale`` (2) times longer
(``top_2gram`` at 4-character grams, ``dup_5gram`` .. ``dup_10gram`` at 10..20 characters) with the same
thresholds; with scale 1, news prose that names "中共中央政治局委员" twice in 60 characters fails ``dup_9gram``.
N-gram characters never include the spaces between words, except that the top n-gram of a spaced document
counts its ``n - 1`` joining spaces as datatrove does.

N-grams are compared by 64-bit rolling hashes of the words computed with numpy (collisions are astronomically
unlikely and would only make a document look more repetitive).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import accumulate, compress
from operator import itemgetter, sub

import numpy as np

from ._text import TextView
from .base import RuleFilter

__all__ = ["GopherRepetitionConfig", "GopherRepetitionFilter", "check", "RULES", "duplicates"]

RULES = ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac",
         "top_2gram", "top_3gram", "top_4gram",
         "dup_5gram", "dup_6gram", "dup_7gram", "dup_8gram", "dup_9gram", "dup_10gram")


@dataclass(frozen=True)
class GopherRepetitionConfig:
    """Gopher repetition thresholds. ``None`` turns a rule off; drop an ``(n, frac)`` pair (or set its frac to
    ``None``) to turn one n-gram rule off."""

    enabled: bool = True
    max_dup_para_frac: float | None = 0.3
    max_dup_para_char_frac: float | None = 0.2
    max_dup_line_frac: float | None = 0.3
    max_dup_line_char_frac: float | None = 0.2
    top_ngrams: tuple[tuple[int, float | None], ...] = ((2, 0.20), (3, 0.18), (4, 0.16))
    dup_ngrams: tuple[tuple[int, float | None], ...] = (
        (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
    cjk_ngram_scale: int = 2  # CJK documents: a word n-gram rule looks at (n * scale)-character n-grams


def duplicates(items: list[str]) -> tuple[int, int]:
    """``(number, characters)`` of the items equal to an earlier item."""
    seen: set[str] = set()
    n = chars = 0
    for x in items:
        if x in seen:
            n += 1
            chars += len(x)
        else:
            seen.add(x)
    return n, chars


class _PyNGrams:
    """Pure-Python n-gram statistics: faster than numpy below a few hundred words (numpy call overhead)."""

    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.cum: list[int] | None = None

    def _grams(self, n: int) -> zip:
        t = self.tokens
        return zip(*[t[i:] for i in range(n)])

    def top(self, n: int, sep: int) -> tuple[int, int]:
        """``(characters of the most frequent n-gram times its count, that count)``; the earliest n-gram wins
        ties; ``(0, count)`` when no n-gram occurs twice."""
        if len(self.tokens) < n + 1:
            return 0, int(len(self.tokens) >= n)
        gram, count = max(Counter(self._grams(n)).items(), key=itemgetter(1))  # first max = earliest
        return (count * (sum(map(len, gram)) + sep * (n - 1)) if count > 1 else 0), count

    def max_window(self, n: int) -> int:
        """Most characters any n consecutive words have."""
        if self.cum is None:
            self.cum = list(accumulate(map(len, self.tokens), initial=0))
        c = self.cum
        return max(map(sub, c[n:], c)) if len(c) > n else 0

    def dup_chars(self, n: int) -> int:
        """Characters of the words covered by n-gram occurrences that repeat an earlier occurrence."""
        t = self.tokens
        if len(t) < n + 1:
            return 0
        seen: set[tuple[str, ...]] = set()
        add = seen.add
        covered = bytearray(len(t))
        ones = b"\x01" * n
        hit = False
        for i, g in enumerate(self._grams(n)):
            if g in seen:
                covered[i:i + n] = ones
                hit = True
            else:
                add(g)
        return sum(map(len, compress(t, covered))) if hit else 0


class _NpNGrams:
    """The same statistics with numpy: 64-bit polynomial n-gram hashes, cached per n and built by composition
    (``h[a+b](i) = h[a](i) * M**b + h[b](i+a)``, wrapping uint64 arithmetic), then one sort per n.

    Word hashes are Python's own ``hash(str)`` (SipHash, cached on the string object, so this is C-speed);
    they are salted per process, which only changes which astronomically unlikely collisions could happen.
    """

    _MUL = 0x9E3779B97F4A7C15

    def __init__(self, tokens: list[str]):
        k = len(tokens)
        self.k = k
        self.cache = {1: np.fromiter(map(hash, tokens), dtype=np.int64, count=k).view(np.uint64)}
        self.lens = np.fromiter(map(len, tokens), dtype=np.int64, count=k)
        self.cum = np.zeros(k + 1, dtype=np.int64)
        np.cumsum(self.lens, out=self.cum[1:])

    def hashes(self, n: int) -> np.ndarray:
        h = self.cache.get(n)
        if h is not None:
            return h
        pairs = [a for a in self.cache if n - a in self.cache]
        a = max(pairs) if pairs else n // 2
        b = n - a
        ha, hb = self.hashes(a), self.hashes(b)
        m = self.k - n + 1
        h = ha[:m] * np.uint64(pow(self._MUL, b, 1 << 64)) + hb[a:a + m]  # array ops wrap silently
        self.cache[n] = h
        return h

    def max_window(self, n: int) -> int:
        return int((self.cum[n:] - self.cum[:-n]).max()) if self.k >= n else 0

    def _sorted(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The n-gram hashes sorted, with their positions: the position is packed into the low bits of the key
        (so one plain sort, no stable argsort, and equal hashes come out earliest first). That leaves
        64 - log2(words) hash bits, still far beyond any document's number of n-grams."""
        h = self.hashes(n)
        shift = np.uint64(max(1, len(h).bit_length()))
        keys = (h >> shift << shift) | np.arange(len(h), dtype=np.uint64)
        keys.sort()
        return keys >> shift, (keys & ((np.uint64(1) << shift) - np.uint64(1))).astype(np.int64)

    def top(self, n: int, sep: int) -> tuple[int, int]:
        m = self.k - n + 1
        if m < 2:
            return 0, max(m, 0)
        s, pos = self._sorted(n)
        edges = np.flatnonzero(s[1:] != s[:-1]) + 1  # where runs of equal hashes start (after the first)
        if len(edges) == m - 1:
            return 0, 1  # all distinct
        bounds = np.concatenate(([0], edges, [m]))
        runs = np.diff(bounds)
        count = int(runs.max())
        first = int(pos[bounds[:-1][runs == count]].min())  # ties: the earliest, as the Python path
        return count * (int(self.cum[first + n] - self.cum[first]) + sep * (n - 1)), count

    def dup_chars(self, n: int) -> int:
        m = self.k - n + 1
        if m < 2:
            return 0
        s, pos = self._sorted(n)
        later = s[1:] == s[:-1]  # every occurrence of a run but its first (= earliest)
        if not later.any():
            return 0
        starts = pos[1:][later]
        w = self.k
        depth = np.cumsum(np.bincount(starts, minlength=w + 1)[:w] - np.bincount(starts + n, minlength=w + 1)[:w])
        return int(self.lens[depth > 0].sum())


NUMPY_MIN_TOKENS = 200  # below this many words the pure-Python path is faster (measured crossover)


def ngram_stats(tokens: list[str]) -> _PyNGrams | _NpNGrams:
    """The faster n-gram statistics object for a document of this size (both give identical numbers)."""
    return _NpNGrams(tokens) if len(tokens) >= NUMPY_MIN_TOKENS else _PyNGrams(tokens)


def _dup_items(items: list[str], total: int, max_frac: float | None, max_char_frac: float | None,
               kind: str) -> str | None:
    """``dup_<kind>_frac`` / ``dup_<kind>_char_frac`` when too many ``items`` (paragraphs or lines), or too many of
    the ``total`` characters, repeat an earlier item; else ``None``."""
    if len(items) > 1:
        n, chars = duplicates(items)
        if max_frac is not None and n > max_frac * len(items):
            return f"dup_{kind}_frac"
        if max_char_frac is not None and chars > max_char_frac * total:
            return f"dup_{kind}_char_frac"
    return None


def check(view: TextView, cfg: GopherRepetitionConfig) -> str | None:
    """Name of the first failed rule, or ``None`` when the document passes."""
    text = view.text
    total = len(text)
    if not total:
        return None
    if cfg.max_dup_para_frac is not None or cfg.max_dup_para_char_frac is not None:
        rule = _dup_items(view.paragraphs, total, cfg.max_dup_para_frac, cfg.max_dup_para_char_frac, "para")
        if rule is not None:
            return rule
    if cfg.max_dup_line_frac is not None or cfg.max_dup_line_char_frac is not None:
        rule = _dup_items(view.nonblank_lines, total, cfg.max_dup_line_frac, cfg.max_dup_line_char_frac, "line")
        if rule is not None:
            return rule
    top = [(n, f) for n, f in cfg.top_ngrams if f is not None]
    dup = sorted((n, f) for n, f in cfg.dup_ngrams if f is not None)
    if not top and not dup:
        return None
    tokens = view.tokens
    if len(tokens) < 2:
        return None
    g = ngram_stats(tokens)
    sep, scale = (0, max(1, cfg.cjk_ngram_scale)) if view.cjk else (1, 1)
    # The top count only shrinks as n grows, so a larger n can be skipped when even its longest window
    # repeated that often stays under the threshold; once no n-gram repeats, no longer one does either.
    count, no_repeat_from = None, None
    for n, frac in sorted(top):
        k = n * scale
        if count is not None:
            if count < 2:
                break
            if count * (g.max_window(k) + sep * (k - 1)) <= frac * total:
                continue
        chars, count = g.top(k, sep)
        if chars > frac * total:
            return f"top_{n}gram"
        if count < 2:
            no_repeat_from = k
    for i, (n, frac) in enumerate(dup):
        if no_repeat_from is not None and n * scale >= no_repeat_from:
            break
        chars = g.dup_chars(n * scale)
        if chars > frac * total:
            return f"dup_{n}gram"
        rest = [f for _, f in dup[i + 1:]]
        if not rest or chars <= min(rest) * total:
            break  # coverage only shrinks with n: every later rule passes
    return None


class GopherRepetitionFilter(RuleFilter):
    """This family as a :class:`~.base.DocFilter`: drops with ``gopher_repetition:<rule>`` (:func:`check`)."""

    name = "gopher_repetition"
    Config = GopherRepetitionConfig
    RULES = RULES
    check = staticmethod(check)
