"""data.token_inputs: framed windows with first-sub-token targets, and word logits from the owning window."""

from __future__ import annotations

import pytest
import torch

from bigmodel_fast.data.token_inputs import encode_sentences, window_overlap_of, word_logits
from bigmodel_fast.data.token_windows import IGNORE_INDEX


class FakeTok:
    """A tokenizer with [CLS]=2 / [SEP]=3 whose words split into ``len(word)`` ids (one per character)."""

    cls_id, sep_id, unk_id, pad_id = 2, 3, 1, 0

    def encode_batch(self, words):
        return [[10 + ord(c) % 80 for c in w] for w in words]


def test_short_sentence_is_one_framed_window_with_first_subtoken_targets():
    w = encode_sentences(FakeTok(), [["ab", "c"]], max_len=8, overlap=2, labels=[[5, 6]])
    assert w.seqs == [[2, 10 + ord("a") % 80, 10 + ord("b") % 80, 10 + ord("c") % 80, 3]]
    assert w.targets == [[IGNORE_INDEX, 5, IGNORE_INDEX, 6, IGNORE_INDEX]]
    assert w.sentence == [0] and w.first == [[(0, 1), (0, 3)]]


def test_long_sentence_windows_cover_every_word_and_each_word_is_read_once():
    words = [c * (1 + i % 3) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")]  # 1-3 sub-tokens per word
    labels = list(range(len(words)))
    w = encode_sentences(FakeTok(), [words, []], max_len=10, overlap=3, labels=[labels, []])
    assert len(w.seqs) > 3 and all(len(s) <= 10 for s in w.seqs) and set(w.sentence) == {0}
    assert w.first[1] == []
    for k, (seq, tgt) in enumerate(zip(w.seqs, w.targets)):
        assert seq[0] == 2 and seq[-1] == 3 and len(seq) == len(tgt) and tgt[0] == tgt[-1] == IGNORE_INDEX
    # the position that predicts word j carries word j's label in that window
    for j, (k, p) in enumerate(w.first[0]):
        assert w.targets[k][p] == labels[j]
    # every label is trained in at least one window; words in an overlap in more than one
    seen = [t for tgt in w.targets for t in tgt if t != IGNORE_INDEX]
    assert set(seen) == set(labels) and len(seen) > len(labels)
    logits = [torch.randn(len(s), 4) for s in w.seqs]
    got = word_logits(w, logits)
    assert got[0].shape == (len(words), 4) and got[1].shape == (0, 4)
    for j, (k, p) in enumerate(w.first[0]):
        assert torch.equal(got[0][j], logits[k][p])


def test_window_settings_are_checked():
    with pytest.raises(ValueError, match="leaves no room"):
        encode_sentences(FakeTok(), [["a"]], max_len=2, overlap=0)
    assert window_overlap_of({"token": {"overlap": 5}}) == 5 and window_overlap_of({}) == 16
    with pytest.raises(ValueError, match="token.overlap"):
        window_overlap_of({"token": {"overlap": -1}})
