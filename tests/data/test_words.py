"""data.words: raw text -> words with code-point offsets, words -> sub-token ids (the rule the runner ports)."""

from __future__ import annotations

import random
import re
import unicodedata

import pytest

from bigmodel_fast.data.words import SINGLE_RANGES, WHITESPACE, encode_words, is_single, split_words


def test_chinese_is_one_word_per_character_and_punctuation_splits():
    text = "江泽民在北京。"
    assert [text[a:b] for a, b in split_words(text)] == list(text)
    text = "Hi, Paris!  (New-York)\tend"
    assert [text[a:b] for a, b in split_words(text)] == ["Hi", ",", "Paris", "!", "(", "New", "-", "York", ")", "end"]
    mixed = "Obama访问Berlin，2024年"
    assert [mixed[a:b] for a, b in split_words(mixed)] == ["Obama", "访", "问", "Berlin", "，", "2024", "年"]
    assert split_words("") == [] and split_words(" \u3000\u00a0\n") == []


def test_ranges_are_sorted_disjoint_and_whitespace_is_unicode_white_space():
    for (a, b), (c, d) in zip(SINGLE_RANGES, SINGLE_RANGES[1:]):
        assert a <= b < c <= d
    assert not any(is_single(cp) for cp in WHITESPACE)
    # every code point Python's regex treats as \s and that Unicode lists as White_Space (Zs, and the controls
    # \t..\r, U+0085, U+2028/9): the 25 of the table
    zs = {cp for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Zs"}
    assert zs <= WHITESPACE and len(WHITESPACE) == 25
    assert all(re.match(r"\s", chr(cp)) for cp in WHITESPACE)
    assert is_single(ord("中")) and is_single(ord(",")) and is_single(ord("。")) and not is_single(ord("a"))
    assert not is_single(ord("é")) and is_single(0x20001)


@pytest.mark.parametrize("seed", range(3))
def test_spans_cover_every_non_space_code_point_once_in_order(seed):
    rng = random.Random(seed)
    pool = [" ", "\t", "\u3000", "a", "Z", "9", "é", "中", "。", ",", "-", "\x00", "\ufffd", "😀", "\u2028", "ß", "ー"]
    text = "".join(rng.choice(pool) for _ in range(2000))
    spans = split_words(text)
    covered = [i for a, b in spans for i in range(a, b)]
    assert covered == sorted(covered) == [i for i, ch in enumerate(text) if ord(ch) not in WHITESPACE]
    for a, b in spans:
        word = text[a:b]
        assert len(word) == 1 or not any(is_single(ord(c)) for c in word)
    # consecutive multi-character words are separated by whitespace or a single-character word
    for (a, b), (c, d) in zip(spans, spans[1:]):
        if b == c:
            assert b - a == 1 or d - c == 1 or is_single(ord(text[a])) or is_single(ord(text[c]))


class FakeSpm:
    """encode(word) = [boundary] + one id per character; the unk id for a control character."""

    unk_id = 1

    def encode_batch(self, words):
        return [[] if w == "\x07" else [7] + [100 + ord(c) % 50 for c in w] for w in words]


def test_encode_words_drops_a_bare_boundary_and_never_leaves_a_word_empty():
    tok = FakeSpm()
    assert encode_words(tok, ["中", "ab", "\x07"], boundary=7) == [[100 + ord("中") % 50],
                                                                  [100 + ord("a") % 50, 100 + ord("b") % 50], [1]]
    assert encode_words(tok, ["a"], boundary=-1) == [[7, 100 + ord("a") % 50]]  # no boundary piece: kept
    assert encode_words(tok, []) == []


def test_encode_words_with_a_real_sentencepiece_model(tiny_pretrained):
    from bigmodel_fast import checkpoint as ckpt
    from bigmodel_fast.data.tokenizer_base import load_tokenizer
    from bigmodel_fast.data.words import boundary_id

    tok = load_tokenizer(ckpt.tokenizer_path(tiny_pretrained))
    b = boundary_id(tok)
    assert b >= 0 and tok.id_to_piece(b) == "\u2581"
    words = ["北", "京", "Python", "the", "。"]
    pieces = encode_words(tok, words)
    assert all(p and p[0] != b for p in pieces)
    for word, p in zip(words, pieces):  # the pieces spell the word
        assert tok.decode(p).strip() == word
