"""Token classification inputs: word labels on first sub-tokens, long sentences as overlapping windows.

A sentence is a list of words, each already split into sub-token ids by the tokenizer (``pieces``, one list per
word). :func:`label_subtokens` flattens them and puts each word's label id on its first sub-token and
``IGNORE_INDEX`` (-100) on the others, so the loss and the scores count every word once.

Long sentences are not truncated: :func:`window_spans` cuts the flat sub-tokens into windows of at most ``width``
(the model's length minus the special tokens around each window) that overlap by ``overlap`` sub-tokens, and
:func:`owner_windows` says which window's prediction each position takes: the one in which it lies farthest from
an edge (ties: the earlier window), so every word is predicted with as much context on both sides as the windows
give. Words are not split across a window edge when they fit in a window (the edges sit on word starts).
"""

from __future__ import annotations

import bisect
from typing import Sequence

IGNORE_INDEX = -100


def label_subtokens(pieces: Sequence[Sequence[int]], labels: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """``(ids, targets, word_of)`` for ``pieces`` (per word, its sub-token ids) and ``labels`` (per word, a label
    id): the flat ids, the targets (the word's label on its first sub-token, -100 elsewhere) and, per sub-token,
    the index of its word. ValueError when the counts differ or a word has no sub-token."""
    if len(pieces) != len(labels):
        raise ValueError(f"{len(pieces)} words but {len(labels)} labels")
    ids: list[int] = []
    targets: list[int] = []
    word_of: list[int] = []
    for w, (word, label) in enumerate(zip(pieces, labels)):
        if not word:
            raise ValueError(f"word {w} has no sub-token (the tokenizer gave nothing for it)")
        ids += word
        targets += [label] + [IGNORE_INDEX] * (len(word) - 1)
        word_of += [w] * len(word)
    return ids, targets, word_of


def window_spans(word_of: Sequence[int], width: int, overlap: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` half-open windows over the ``len(word_of)`` sub-tokens: each at most ``width``
    long, the first starting at 0, the last ending at the end, no gaps; one window when everything fits.

    A window ends at the last word start within ``width`` (mid-word only when one word is longer than ``width``);
    the next starts at the last word start at or before ``stop - overlap`` that is past this window's start, else
    at the first word start after that (so the overlap is about ``overlap`` sub-tokens, more or less by a word).
    When every word fits in ``width``, every window starts and (but the last) ends at a word boundary.
    ValueError unless ``width`` >= 1 and 0 <= ``overlap`` < ``width``."""
    n = len(word_of)
    if width < 1 or not 0 <= overlap < width:
        raise ValueError(f"window width must be >= 1 and overlap in [0, width), got width={width}, overlap={overlap}")
    if n <= width:
        return [(0, n)]
    starts = [i for i in range(n) if i == 0 or word_of[i] != word_of[i - 1]] + [n]  # word starts, and the end
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        limit = start + width
        k = bisect.bisect_right(starts, limit) - 1  # last word start (or the end) <= limit
        stop = starts[k] if starts[k] > start else min(limit, n)
        spans.append((start, stop))
        if stop >= n:
            return spans
        lo = bisect.bisect_right(starts, start)  # first word start after start
        hi = bisect.bisect_right(starts, stop)  # word starts in (start, stop]: starts[lo:hi]
        target = stop - overlap
        j = bisect.bisect_right(starts, target, lo, hi) - 1
        if j >= lo:
            start = starts[j]
        elif lo < hi:
            start = starts[lo]
        else:  # inside one long word: step by width - overlap
            start = max(target, start + 1)


def owner_windows(spans: Sequence[tuple[int, int]], n: int) -> list[int]:
    """Per position 0..n-1, the index of the window in ``spans`` whose prediction it takes: among the windows that
    hold it, the one where min(distance to the start, distance to the end) is largest; ties go to the earlier
    window. ValueError when a position is in no window."""
    owner = [-1] * n
    best = [-1] * n
    for k, (a, b) in enumerate(spans):
        for i in range(a, b):
            margin = min(i - a, b - 1 - i)
            if margin > best[i]:
                best[i], owner[i] = margin, k
    missing = [i for i, k in enumerate(owner) if k < 0]
    if missing:
        raise ValueError(f"positions {missing[:5]} lie in no window")
    return owner
