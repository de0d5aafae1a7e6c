"""--long-text modes: windows, head-tail, truncation counts (bigmodel_fast.data.long_text)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bigmodel_fast.data.classification import encode_for_classifier
from bigmodel_fast.data.long_text import (
    check_max_len,
    encode_long,
    format_report,
    head_tail,
    long_text_settings,
    window_starts,
)
from bigmodel_fast.models.config import ModelConfig


@dataclass
class WordTok:
    """Whitespace tokenizer: word "wN" -> id N + 10; cls 1 / sep 2 unless ``bare`` (GPT-2-style)."""

    bare: bool = False

    @property
    def cls_id(self):
        return None if self.bare else 1

    @property
    def sep_id(self):
        return None if self.bare else 2

    def encode(self, text):
        return [int(w[1:]) + 10 for w in text.split()]

    def encode_batch(self, texts):
        return [self.encode(t) for t in texts]


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def test_window_starts_cover_every_token_and_end_at_the_text_end():
    assert window_starts(10, 4, 2) == [0, 2, 4, 6]
    assert window_starts(4, 4, 2) == [0]
    assert window_starts(0, 4, 2) == [0]
    assert window_starts(11, 4, 3) == [0, 3, 6, 7]
    for n in range(1, 40):
        for budget in (1, 3, 8):
            for step in range(1, budget + 1):
                starts = window_starts(n, budget, step)
                covered = {t for s in starts for t in range(s, min(n, s + budget))}
                assert covered == set(range(n)), (n, budget, step)
                assert min(n, starts[-1] + budget) == n and starts == sorted(starts)


def test_chunks_windows_carry_the_specials_and_owner():
    enc = encode_long(WordTok(), [words(3), words(10)], max_len=6, mode="chunks", stride=0)  # budget 4, step 2
    ids = [i + 10 for i in range(10)]
    assert enc.seqs == [[1, 10, 11, 12, 2], [1, *ids[0:4], 2], [1, *ids[2:6], 2], [1, *ids[4:8], 2],
                        [1, *ids[6:10], 2]]
    assert enc.owner == [0, 1, 1, 1, 1]
    assert enc.report == {"texts": 2, "over": 1, "max_excess": 6, "mean_excess": 6.0}


def test_chunks_bare_tokenizer_and_explicit_stride():
    enc = encode_long(WordTok(bare=True), [words(7)], max_len=4, mode="chunks", stride=3)
    assert enc.seqs == [[10, 11, 12, 13], [13, 14, 15, 16]]
    assert enc.owner == [0, 0]


def test_head_tail_keeps_the_exact_head_and_tail_tokens():
    enc = encode_long(WordTok(), [words(30), words(5)], max_len=10, mode="head-tail")  # budget 8: head 2, tail 6
    ids = [i + 10 for i in range(30)]
    assert enc.seqs[0] == [1, ids[0], ids[1], *ids[24:30], 2]
    assert enc.seqs[1] == [1, *[i + 10 for i in range(5)], 2]
    assert enc.owner == [0, 1]
    assert head_tail(list(range(9)), 8) == [0, 1, 3, 4, 5, 6, 7, 8]


def test_truncate_is_encode_for_classifier_and_counts_the_cut_texts():
    tok = WordTok()
    texts = [words(3), words(20), words(12), ""]
    enc = encode_long(tok, texts, max_len=10)
    assert enc.seqs == encode_for_classifier(tok, texts, 10)
    assert enc.owner == [0, 1, 2, 3]
    assert enc.report == {"texts": 4, "over": 2, "max_excess": 12, "mean_excess": 8.0}  # 20-8, 12-8
    line = format_report(enc.report, 10, "truncate")
    assert line == ("2 of 4 training texts exceed --max-len 10 by up to 12 tokens (mean 8.0); "
                    "--long-text truncate cuts them")
    assert encode_long(tok, texts, max_len=10, count=False).report == {}


def test_truncate_with_a_real_tokenizer_matches_encode_for_classifier(tiny_pretrained):
    from bigmodel_fast import checkpoint as ckpt
    from bigmodel_fast.data.tokenizer_base import load_tokenizer

    tok = load_tokenizer(ckpt.tokenizer_path(tiny_pretrained))
    texts = ["short one", "a much longer text " * 40, "混合 text 中文 " * 30]
    assert encode_long(tok, texts, 16).seqs == encode_for_classifier(tok, texts, 16)
    chunks = encode_long(tok, texts, 16, mode="chunks", stride=5)
    full = tok.encode_batch(texts)
    for i, ids in enumerate(full):  # concatenating the windows' text ids (minus overlaps) gives the text back
        windows = [s[1:-1] for s, o in zip(chunks.seqs, chunks.owner) if o == i]
        starts = window_starts(len(ids), 14, 5)
        assert [w for w in windows] == [ids[s : s + 14] for s in starts]
        assert chunks.report["over"] == sum(len(x) > 14 for x in full)


@pytest.mark.parametrize("mode,stride,needle", [("split", 0, "mode must be one of truncate, head-tail, chunks"),
                                                ("chunks", -1, "stride must be an int >= 0"),
                                                ("chunks", 9, "stride 9 exceeds the 8 text tokens")])
def test_bad_settings_are_one_line_errors(mode, stride, needle):
    with pytest.raises(ValueError, match=needle) as e:
        encode_long(WordTok(), [words(3)], 10, mode=mode, stride=stride)
    assert "\n" not in str(e.value)


def test_long_text_settings_from_meta():
    assert long_text_settings({}) == ("truncate", 0)
    assert long_text_settings({"long_text": {"mode": "chunks", "stride": 7}}) == ("chunks", 7)
    with pytest.raises(ValueError, match="bundle.json: long_text: mode must be one of"):
        long_text_settings({"long_text": {"mode": "nope"}}, "bundle.json")


def test_max_len_beyond_the_positions_names_the_limit_and_chunks():
    cfg = ModelConfig(arch="bert", vocab_size=50, hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16,
                      max_position=64, num_labels=2)
    check_max_len(64, cfg)
    with pytest.raises(ValueError, match=r"--max-len 65 exceeds the model's 64 positions .*--max-len 64 or less.*"
                                         r"--long-text chunks"):
        check_max_len(65, cfg)
