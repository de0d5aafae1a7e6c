"""Raw text -> words with character offsets, and words -> sub-token ids: the input side of token classification.

Training data for token classification comes already split into words (CoNLL / JSONL ``tokens``); text given to
``bmf predict`` and ``bmf_runner`` does not, so both split it with :func:`split_words`, and both turn words into
sub-token ids with :func:`encode_words`. The C++ runner (``csrc/deploy/token.cpp``) implements the same two rules;
they use explicit code-point tables, not a Unicode database, so the two sides cannot drift with a Unicode version.

The split rule, over code points (offsets are indices into the Python ``str``, i.e. code points):

- :data:`WHITESPACE` (the 25 code points of Unicode's ``White_Space`` property) separates words and is in none;
- a code point in :data:`SINGLE_RANGES` is a word on its own: CJK ideographs, kana, hangul syllables, CJK and
  full-width punctuation and symbols, ASCII punctuation, the General Punctuation block (so Chinese is read a
  character at a time, as the People's Daily sample is tagged, and ``Paris,`` is two words);
- any other run of code points is one word.

Sub-tokens of a word: its ids from the tokenizer on the word alone; SentencePiece puts a word-boundary piece
(``▁``) in front of a word, and where that piece comes out as an id of its own (``▁`` then ``中``) it is dropped,
so a Chinese character is one id as it is inside running text. A word the tokenizer gives no id for (a control
character its normaliser removes) gets the unknown id, so every word has at least one sub-token.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["SINGLE_RANGES", "WHITESPACE", "boundary_id", "encode_words", "is_single", "split_words"]

# Unicode White_Space (PropList.txt): the characters that separate words.
WHITESPACE = frozenset([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                        0x2028, 0x2029, 0x202F, 0x205F, 0x3000])

# Inclusive code-point ranges whose characters are words on their own (sorted, disjoint).
SINGLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E),  # ASCII punctuation and symbols
    (0x2010, 0x2027), (0x2030, 0x205E),  # General Punctuation (its spaces are WHITESPACE)
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3001, 0x303F),  # CJK symbols and punctuation (U+3000 is WHITESPACE)
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xAC00, 0xD7A3),  # hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF01, 0xFF65),  # full-width ASCII forms, half-width CJK punctuation
    (0x20000, 0x2FA1F),  # CJK Extensions B-F, compatibility supplement
)


def is_single(cp: int) -> bool:
    """True when code point ``cp`` is a word on its own (:data:`SINGLE_RANGES`)."""
    for lo, hi in SINGLE_RANGES:
        if cp < lo:
            return False
        if cp <= hi:
            return True
    return False


def split_words(text: str) -> list[tuple[int, int]]:
    """Half-open ``(start, end)`` code-point spans of the words of ``text`` (module docstring), in order.

    >>> split_words("江泽民在北京。")
    [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7)]
    >>> split_words("Hi, Paris!")
    [(0, 2), (2, 3), (4, 9), (9, 10)]
    """
    spans: list[tuple[int, int]] = []
    start = -1
    for i, ch in enumerate(text):
        cp = ord(ch)
        if cp in WHITESPACE or is_single(cp):
            if start >= 0:
                spans.append((start, i))
                start = -1
            if cp not in WHITESPACE:
                spans.append((i, i + 1))
        elif start < 0:
            start = i
    if start >= 0:
        spans.append((start, len(text)))
    return spans


def boundary_id(tok) -> int:
    """The id of SentencePiece's bare word-boundary piece ``▁`` in ``tok``'s vocabulary, or -1 when it has none
    (tokenizer.json tokenizers, or a SentencePiece vocabulary without that piece)."""
    from .tokenizer import Tokenizer

    if not isinstance(tok, Tokenizer):
        return -1
    i = tok.piece_to_id("\u2581")
    return -1 if i == tok.unk_id else i


def encode_words(tok, words: Sequence[str], boundary: int | None = None) -> list[list[int]]:
    """Sub-token ids of each word (module docstring): ``tok.encode(word)`` without a leading bare ``boundary``
    id (default: :func:`boundary_id`) when more ids follow it, ``[unk_id]`` when that leaves nothing."""
    if boundary is None:
        boundary = boundary_id(tok)
    unk = tok.unk_id
    out: list[list[int]] = []
    for ids in tok.encode_batch(list(words)) if words else []:
        ids = list(ids)
        if len(ids) > 1 and ids[0] == boundary:
            ids = ids[1:]
        out.append(ids if ids else [unk])
    return out
