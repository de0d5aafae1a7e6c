"""Tests for bigmodel_fast.data.tokenizer (tiny vocabularies on small real text, so they run in seconds)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import sentencepiece as spm

from bigmodel_fast.data.sample_files import corpus_paths
from bigmodel_fast.data.sources import iter_documents
from bigmodel_fast.data.tokenizer import (
    MODEL_FILENAME,
    SPECIAL_TOKENS,
    Tokenizer,
    TokenizerError,
    TokenizerFileNotFoundError,
    iter_training_sentences,
    split_long_line,
)

VOCAB = 400
N_SPECIAL = len(SPECIAL_TOKENS)
BYTE_IDS = range(N_SPECIAL, N_SPECIAL + 256)


@pytest.fixture(scope="module")
def english_texts() -> list[str]:
    """About 150 KB of the Python-docs sample (real text, small enough to train in well under a second)."""
    texts, size = [], 0
    for doc in iter_documents(corpus_paths()[:1]):
        texts.append(doc.text)
        size += len(doc.text)
        if size > 150_000:
            break
    return texts


@pytest.fixture(scope="module")
def tok(tmp_path_factory, english_texts) -> Tokenizer:
    out = tmp_path_factory.mktemp("tok")
    return Tokenizer.train(english_texts, out, vocab_size=VOCAB)


# ------------------------------------------------------------------------------------------- special ids


def test_special_ids_are_defined_once(tok):
    """Tokenizer, loaders and generation take the special ids from data/special_tokens.SPECIAL."""
    from bigmodel_fast.data.loader import SpecialIds
    from bigmodel_fast.data.special_tokens import SPECIAL, SpecialTokens

    assert SPECIAL.ids == tok.all_special_ids == tuple(range(N_SPECIAL))
    assert SPECIAL.as_dict() == {n: getattr(tok, f"{n}_id") for n in SpecialTokens.names()}
    assert [SpecialTokens.piece(n) for n in SpecialTokens.names()] == list(SPECIAL_TOKENS)
    assert SpecialIds.fixed(tok.vocab_size) == SpecialIds.from_tokenizer(tok)


def test_special_ids_are_fixed(tok):
    assert tok.all_special_ids == tuple(range(N_SPECIAL))
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id, tok.bos_id, tok.eos_id) == tuple(
        range(N_SPECIAL)
    )
    assert [tok.piece_to_id(t) for t in SPECIAL_TOKENS] == list(range(N_SPECIAL))
    assert [tok.id_to_piece(i) for i in range(N_SPECIAL)] == list(SPECIAL_TOKENS)
    # the byte pieces follow, then the learned pieces
    assert tok.id_to_piece(N_SPECIAL) == "<0x00>" and tok.id_to_piece(N_SPECIAL + 255) == "<0xFF>"
    assert tok.vocab_size == VOCAB == len(tok)
    # cross-check with SentencePiece itself
    sp = spm.SentencePieceProcessor(model_file=str(tok.model_file))
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 5, 6)
    assert all(sp.is_control(i) for i in (0, 2, 3, 4, 5, 6))


def test_special_token_text_is_not_special(tok):
    ids = tok.encode("[CLS] a [MASK] b [SEP] <s> </s> [PAD] [UNK]")
    assert not set(ids) & set(tok.all_special_ids)


# ------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "text",
    [
        "Python is an easy to learn, powerful programming language.",
        "人民日报 1998年1月 新年讲话",
        "emoji 🤖🎉 and a family 👨‍👩‍👧 ok",
        "mixed: def f(x): return x ** 2  # 平方",
    ],
)
def test_round_trip(tok, text):
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.unk_id not in ids
    expected = " ".join(text.split())  # nmt_nfkc collapses repeated spaces
    assert tok.decode(ids) == expected


def test_unseen_character_uses_byte_fallback(tok):
    char = "\U00013000"  # an Egyptian hieroglyph, certainly not in the training text
    ids = tok.encode(f"x{char}y")
    byte_ids = [i for i in ids if i in BYTE_IDS]
    assert [tok.id_to_piece(i) for i in byte_ids] == [f"<0x{b:02X}>" for b in char.encode("utf-8")]
    assert tok.decode(ids) == f"x{char}y"


def test_decode_skips_specials_and_rejects_bad_ids(tok):
    ids = tok.encode("hello world")
    wrapped = [tok.cls_id] + ids + [tok.sep_id, tok.mask_id, tok.bos_id, tok.eos_id, tok.unk_id, tok.pad_id]
    assert tok.decode(wrapped) == "hello world"
    assert tok.decode(np.array(ids, dtype=np.int64)) == "hello world"
    with pytest.raises(TokenizerError, match="out of range"):
        tok.decode([tok.vocab_size])
    with pytest.raises(TokenizerError, match="out of range"):
        tok.decode([-1])


def test_encode_batch_matches_encode(tok, english_texts):
    texts = [t[:500] for t in english_texts[:8]] + ["", "中文", "🤖"]
    expected = [tok.encode(t) for t in texts]
    assert tok.encode_batch(texts) == expected
    assert tok.encode_batch(texts, num_threads=1) == expected
    with pytest.raises(TokenizerError):
        tok.encode_batch("not a list")


# ------------------------------------------------------------------------------------------- training


def test_training_is_deterministic(tmp_path, english_texts):
    a = Tokenizer.train(english_texts, tmp_path / "a", vocab_size=VOCAB, seed=3, input_sentence_size=800)
    b = Tokenizer.train(english_texts, tmp_path / "b", vocab_size=VOCAB, seed=3, input_sentence_size=800)
    assert a.model_file.read_bytes() == b.model_file.read_bytes()
    assert (tmp_path / "a" / "tokenizer.vocab").read_text() == (tmp_path / "b" / "tokenizer.vocab").read_text()
    # the sampled subset depends on the seed: another seed gives another vocabulary
    c = Tokenizer.train(english_texts, tmp_path / "c", vocab_size=VOCAB, seed=4, input_sentence_size=800)
    pieces = lambda t: [t.id_to_piece(i) for i in range(t.vocab_size)]  # noqa: E731
    assert pieces(a) != pieces(c)


def test_bpe_pieces_do_not_depend_on_threads(tmp_path, english_texts):
    one = Tokenizer.train(english_texts, tmp_path / "t1", vocab_size=VOCAB, num_threads=1)
    two = Tokenizer.train(english_texts, tmp_path / "t2", vocab_size=VOCAB, num_threads=2)
    assert [one.id_to_piece(i) for i in range(VOCAB)] == [two.id_to_piece(i) for i in range(VOCAB)]


def test_vocab_file_written(tok):
    lines = (tok.model_file.parent / "tokenizer.vocab").read_text(encoding="utf-8").splitlines()
    assert len(lines) == tok.vocab_size
    assert [ln.split("\t")[0] for ln in lines[:N_SPECIAL]] == list(SPECIAL_TOKENS)


def test_long_lines_are_split_not_dropped(tmp_path):
    # the only training text is one 15 KB line; SentencePiece alone would skip it (> max_sentence_length)
    line = " ".join(itertools.islice(itertools.cycle(["zyzzyva", "quokka", "axolotl"]), 2000))
    tok = Tokenizer.train([line], tmp_path, vocab_size=300, max_sentence_length=256)
    assert len(tok.encode("zyzzyva quokka axolotl")) == 3
    assert tok.piece_to_id("▁zyzzyva") != tok.unk_id


def test_split_long_line_respects_bytes_and_characters():
    line = "人民日报 " * 40 + "x" * 100
    chunks = split_long_line(line, 32)
    assert all(len(c.encode("utf-8")) <= 32 for c in chunks)
    assert "".join(chunks).replace(" ", "") == line.replace(" ", "")
    assert split_long_line("short", 32) == ["short"]
    assert list(iter_training_sentences(["a\n\n  \nb  ", "c"], 16)) == ["a", "b", "c"]
    with pytest.raises(TokenizerError):
        split_long_line("abc", 2)


def test_training_errors_are_clear(tmp_path, english_texts):
    with pytest.raises(TokenizerError, match="vocab_size=100"):
        Tokenizer.train(english_texts, tmp_path, vocab_size=100)
    with pytest.raises(TokenizerError, match="no non-blank text"):
        Tokenizer.train(["", "  \n "], tmp_path, vocab_size=VOCAB)
    with pytest.raises(TokenizerError, match="single string"):
        Tokenizer.train("one long string", tmp_path, vocab_size=VOCAB)
    with pytest.raises(TokenizerError, match=r"texts\[1\] is int"):
        Tokenizer.train(["ok", 5], tmp_path, vocab_size=VOCAB)
    with pytest.raises(TokenizerError, match="model_type"):
        Tokenizer.train(english_texts, tmp_path, vocab_size=VOCAB, model_type="wordpiece")
    many_chars = ["".join(chr(0x4E00 + i) for i in range(k, k + 50)) for k in range(0, 2000, 50)]
    with pytest.raises(TokenizerError, match="increase vocab_size"):
        Tokenizer.train(many_chars, tmp_path, vocab_size=VOCAB)


# ------------------------------------------------------------------------------------------- word starts


def test_word_start_mask(tok):
    mask = tok.word_start_mask()
    assert mask.shape == (tok.vocab_size,) and mask.dtype == np.bool_
    assert mask[list(tok.all_special_ids)].all()
    assert not mask[list(BYTE_IDS)].any()
    for i in range(N_SPECIAL + 256, tok.vocab_size):
        assert mask[i] == tok.id_to_piece(i).startswith("▁"), tok.id_to_piece(i)
    # every word of a plain sentence starts exactly one run: count(word starts) == count(words)
    sentence = "the interpreter reads a module and defines classes"
    ids = tok.encode(sentence)
    assert int(mask[ids].sum()) == len(sentence.split())


def test_word_start_mask_cjk_pieces(tmp_path):
    zh = [d.text for d, _ in zip(iter_documents(corpus_paths()[1:]), range(300))]
    tok = Tokenizer.train(zh, tmp_path, vocab_size=2000, character_coverage=0.98)
    mask = tok.word_start_mask()
    cjk = [i for i in range(N_SPECIAL + 256, tok.vocab_size) if "\u4e00" <= tok.id_to_piece(i)[0] <= "\u9fff"]
    assert len(cjk) > 100 and mask[cjk].all()


# ------------------------------------------------------------------------------------------- files


def test_missing_and_corrupt_model_files(tmp_path, tok):
    missing = tmp_path / "missing.model"
    with pytest.raises(TokenizerFileNotFoundError, match="missing.model"):
        Tokenizer(missing)
    assert issubclass(TokenizerFileNotFoundError, FileNotFoundError)
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"\x00\xffthis is not a sentencepiece model" * 10)
    with pytest.raises(TokenizerError, match="garbage.model: not a valid SentencePiece model"):
        Tokenizer(garbage)
    truncated = tmp_path / "truncated.model"
    truncated.write_bytes(tok.model_file.read_bytes()[: 1000])
    with pytest.raises(TokenizerError, match="truncated.model"):
        Tokenizer(truncated)


def test_foreign_model_with_other_special_ids_is_rejected(tmp_path, english_texts):
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(english_texts[0].splitlines()[:400]),
        model_prefix=str(tmp_path / "plain"),
        vocab_size=200,
        minloglevel=2,
    )
    with pytest.raises(TokenizerError, match="not at the fixed ids"):
        Tokenizer(tmp_path / "plain.model")


def test_save_and_reload(tmp_path, tok):
    dest = tok.save(tmp_path / "copy")
    assert dest == tmp_path / "copy" / MODEL_FILENAME
    again = Tokenizer(dest)
    assert again.encode("hello world 中文") == tok.encode("hello world 中文")
    assert Tokenizer(tmp_path / "copy").vocab_size == tok.vocab_size  # a folder resolves to its tokenizer.model
    assert tok.save(tok.model_file.parent) == tok.model_file  # saving onto itself is a no-op
