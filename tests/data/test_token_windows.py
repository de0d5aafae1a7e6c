"""data.token_windows: first-sub-token labels and overlapping windows that cover long sentences."""

from __future__ import annotations

import random

import pytest

from bigmodel_fast.data.token_windows import IGNORE_INDEX, label_subtokens, owner_windows, window_spans


def test_ignore_index_is_the_losses_one():
    from bigmodel_fast.nn import IGNORE_INDEX as LOSS_IGNORE_INDEX  # the data layer keeps its own copy (no torch)

    assert IGNORE_INDEX == LOSS_IGNORE_INDEX


def test_labels_go_on_first_subtokens():
    ids, targets, word_of = label_subtokens([[5], [6, 7, 8], [9, 10]], [1, 2, 0])
    assert ids == [5, 6, 7, 8, 9, 10]
    assert targets == [1, 2, IGNORE_INDEX, IGNORE_INDEX, 0, IGNORE_INDEX]
    assert word_of == [0, 1, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="2 words but 1 labels"):
        label_subtokens([[1], [2]], [0])
    with pytest.raises(ValueError, match="word 1 has no sub-token"):
        label_subtokens([[1], []], [0, 0])


def test_short_sentence_is_one_window_and_bad_arguments_raise():
    assert window_spans([0, 0, 1], 8, 2) == [(0, 3)]
    assert window_spans([], 8, 2) == [(0, 0)]
    for width, overlap in ((0, 0), (4, 4), (4, -1)):
        with pytest.raises(ValueError, match="window width"):
            window_spans([0, 1], width, overlap)
    with pytest.raises(ValueError, match="lie in no window"):
        owner_windows([(0, 2)], 3)


@pytest.mark.parametrize("seed", range(6))
def test_windows_cover_everything_within_width_and_start_at_words(seed):
    rng = random.Random(seed)
    for _ in range(200):
        lengths = [rng.randint(1, 4) for _ in range(rng.randint(1, 60))]
        word_of = [w for w, n in enumerate(lengths) for _ in range(n)]
        n = len(word_of)
        width = rng.randint(4, 24)
        overlap = rng.randint(0, width // 2)
        spans = window_spans(word_of, width, overlap)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(0 < b - a <= width for a, b in spans)
        assert all(a2 > a1 and a2 <= b1 for (a1, b1), (a2, b2) in zip(spans, spans[1:]))  # progress, no gap
        # every window starts at a word start, and (but the last) ends at one: words of <= 4 sub-tokens fit
        assert all(a == 0 or word_of[a] != word_of[a - 1] for a, _ in spans)
        assert all(word_of[b] != word_of[b - 1] for _, b in spans[:-1])
        owner = owner_windows(spans, n)
        for i, k in enumerate(owner):
            a, b = spans[k]
            assert a <= i < b
            margin = min(i - a, b - 1 - i)
            assert all(min(i - a2, b2 - 1 - i) <= margin for a2, b2 in spans if a2 <= i < b2)


def test_overlap_gives_both_sides_context():
    word_of = list(range(20))  # one sub-token per word
    spans = window_spans(word_of, 8, 4)
    assert spans == [(0, 8), (4, 12), (8, 16), (12, 20)]
    owner = owner_windows(spans, 20)
    assert owner[:7] == [0, 0, 0, 0, 0, 0, 1] and owner[13:] == [2] + [3] * 6


def test_a_word_longer_than_the_window_is_split_not_lost():
    word_of = [0] * 10 + [1, 2]
    spans = window_spans(word_of, 4, 1)
    assert spans[0] == (0, 4) and spans[-1][1] == 12
    assert all(0 < b - a <= 4 for a, b in spans)
    assert all(a2 > a1 and a2 <= b1 for (a1, b1), (a2, b2) in zip(spans, spans[1:]))
    assert sorted(set(owner_windows(spans, 12))) == list(range(len(spans)))
