"""Model inputs of token classification: sentences of words -> framed windows, and window logits -> word logits.

One rule for training, evaluation, ``bmf predict`` and the exported runner (``csrc/deploy/token.cpp`` ports it):

1. each word becomes its sub-token ids (:func:`bigmodel_fast.data.words.encode_words`), flattened per sentence,
   the word's label on its first sub-token and -100 elsewhere (:func:`~.token_windows.label_subtokens`);
2. the flat ids are cut into windows of at most ``width = max_len - specials`` ids overlapping by ``overlap``
   (:func:`~.token_windows.window_spans`); each window is framed like a classifier input
   (``[cls] ids [sep]`` when the tokenizer has both roles, else the ids as they are) with -100 targets on the frame;
3. a word is predicted from the logits at its first sub-token in the window that owns that position
   (:func:`~.token_windows.owner_windows`: the window in which it lies farthest from an edge).

Training uses every window with its targets (a word in an overlap is trained in both windows); scores and
predictions use step 3, so each word counts once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from .classification import classifier_wrap
from .token_windows import IGNORE_INDEX, label_subtokens, owner_windows, window_spans
from .words import boundary_id, encode_words

__all__ = ["TokenWindows", "effective_overlap", "encode_sentences", "window_width", "word_logits"]


def window_width(tok, max_len: int) -> int:
    """Sub-tokens of a sentence per window: ``max_len`` minus the classifier frame; ValueError when none fit."""
    head, tail = classifier_wrap(tok)
    width = max_len - len(head) - len(tail)
    if width < 1:
        raise ValueError(f"max_len {max_len} leaves no room for a sub-token beside the {len(head) + len(tail)} "
                         f"special tokens of each window")
    return width


def effective_overlap(width: int, overlap: int) -> int:
    """The overlap used between windows of ``width``: ``overlap``, at most half a window."""
    if overlap < 0:
        raise ValueError(f"window overlap must be >= 0, got {overlap}")
    return min(overlap, width // 2)


@dataclass
class TokenWindows:
    """Framed windows of a list of sentences.

    Attributes:
        seqs: per window, its model input ids (frame included).
        targets: per window, the targets aligned with ``seqs`` (-100 on the frame and on later sub-tokens of a
            word); None when no labels were given.
        sentence: per window, the index of its sentence.
        first: per sentence, per word, ``(window, position in that window's seqs)`` of the logits that predict
            the word (its first sub-token in the owning window).
    """

    seqs: list[list[int]] = field(default_factory=list)
    targets: list[list[int]] | None = None
    sentence: list[int] = field(default_factory=list)
    first: list[list[tuple[int, int]]] = field(default_factory=list)


def encode_sentences(tok, sentences: Sequence[Sequence[str]], max_len: int, overlap: int,
                     labels: Sequence[Sequence[int]] | None = None) -> TokenWindows:
    """The windows of ``sentences`` (each a list of words) under the module's rule; ``labels`` (per sentence, per
    word, a label id) gives the targets. A sentence without words has no window and an empty ``first``."""
    head, tail = classifier_wrap(tok)
    width = window_width(tok, max_len)
    overlap = effective_overlap(width, overlap)
    boundary = boundary_id(tok)
    out = TokenWindows(targets=[] if labels is not None else None)
    for s, words in enumerate(sentences):
        if not words:
            out.first.append([])
            continue
        pieces = encode_words(tok, words, boundary)
        word_labels = labels[s] if labels is not None else [IGNORE_INDEX] * len(words)
        ids, targets, word_of = label_subtokens(pieces, word_labels)
        spans = window_spans(word_of, width, overlap)
        owner = owner_windows(spans, len(ids))
        base = len(out.seqs)
        for a, b in spans:
            out.seqs.append(head + ids[a:b] + tail)
            out.sentence.append(s)
            if out.targets is not None:
                out.targets.append([IGNORE_INDEX] * len(head) + targets[a:b] + [IGNORE_INDEX] * len(tail))
        firsts, pos = [], 0
        for piece in pieces:
            k = owner[pos]
            firsts.append((base + k, pos - spans[k][0] + len(head)))
            pos += len(piece)
        out.first.append(firsts)
    return out


def word_logits(windows: TokenWindows, logits: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per sentence, (words, C) logits: for each word the row of its first sub-token in its owning window.
    ``logits[k]`` is window k's (S_k, C) output (S_k >= its length)."""
    out = []
    for firsts in windows.first:
        if not firsts:
            c = logits[0].shape[-1] if len(logits) else 0
            out.append(torch.empty(0, c))
            continue
        out.append(torch.stack([logits[k][p] for k, p in firsts]))
    return out


DEFAULT_OVERLAP = 16  # sub-tokens shared by consecutive windows (bmf finetune --window-overlap)


def window_overlap_of(meta: dict | None) -> int:
    """The window overlap a token-classifier checkpoint (meta.json) or bundle (bundle.json ``token``) was trained
    with; :data:`DEFAULT_OVERLAP` when it does not say."""
    meta = meta or {}
    value = (meta.get("token") or {}).get("overlap", DEFAULT_OVERLAP)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"token.overlap must be an int >= 0, got {value!r}")
    return value
