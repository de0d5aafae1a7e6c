"""The tokenizer interface: load_tokenizer / find_tokenizer_file on both kinds, role ids, classification inputs by
role, checkpoints keeping the tokenizer's own file name, and one HF-tokenizer run through prepare -> pretrain ->
finetune -> export -> predict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast.data.classification import encode_for_classifier
from bigmodel_fast.data.tokenizer import Tokenizer
from bigmodel_fast.data.tokenizer_base import (
    TOKENIZER_FILES,
    BaseTokenizer,
    TokenizerFileNotFoundError,
    find_tokenizer_file,
    load_tokenizer,
)


def test_sentencepiece_is_a_base_tokenizer_with_fixed_roles(tiny_data):
    tok = load_tokenizer(tiny_data)
    assert isinstance(tok, Tokenizer) and isinstance(tok, BaseTokenizer)
    assert load_tokenizer(tiny_data / "tokenizer.model").vocab_size == tok.vocab_size
    assert tok.special_ids() == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4, "bos": 5, "eos": 6}
    assert tok.all_special_ids == tuple(range(7)) and tok.file_name == "tokenizer.model"


def test_find_tokenizer_file_order_and_errors(tmp_path):
    assert TOKENIZER_FILES == ("tokenizer.model", "tokenizer.json")
    with pytest.raises(TokenizerFileNotFoundError, match=f"{tmp_path}: no tokenizer file; expected one of "
                                                         "tokenizer.model, tokenizer.json"):
        find_tokenizer_file(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{}")
    assert find_tokenizer_file(tmp_path) == tmp_path / "tokenizer.json"
    (tmp_path / "tokenizer.model").write_bytes(b"x")
    assert find_tokenizer_file(tmp_path) == tmp_path / "tokenizer.model"
    with pytest.raises(FileNotFoundError, match="tokenizer file not found"):
        load_tokenizer(tmp_path / "missing.json")


class _FakeTok:
    """A whitespace tokenizer with chosen roles (ids = word lengths + 10)."""

    def __init__(self, cls_id, sep_id):
        self.cls_id, self.sep_id = cls_id, sep_id

    def encode(self, text):
        return [len(w) + 10 for w in text.split()]

    def encode_batch(self, texts):
        return [self.encode(t) for t in texts]


def test_classifier_inputs_follow_the_roles():
    bert, gpt = _FakeTok(101, 102), _FakeTok(None, None)
    assert encode_for_classifier(bert, ["a bb ccc dddd"], 5) == [[101, 11, 12, 13, 102]]
    assert encode_for_classifier(gpt, ["a bb ccc dddd"], 3) == [[11, 12, 13]]
    with pytest.raises(ValueError, match="no cls/sep, bos or eos"):  # an empty row would reach the model
        encode_for_classifier(gpt, [""], 3)
    gpt.eos_id = 7  # GPT-2: <|endoftext|> stands for an empty text; bos first when there is one
    assert encode_for_classifier(gpt, ["", "a"], 3) == [[7], [11]]
    gpt.bos_id = 5
    assert encode_for_classifier(gpt, [""], 3) == [[5]]
    assert encode_for_classifier(bert, [""], 3) == [[101, 102]]
    long = " ".join(["word"] * 5000)  # longer than the 8 * max_len byte prefix: the doubling rule
    assert encode_for_classifier(bert, [long], 16) == [[101, *[14] * 14, 102]]
    assert encode_for_classifier(gpt, [long], 16) == [[14] * 16]
    with pytest.raises(ValueError, match="max_len must be >= 3"):
        encode_for_classifier(bert, ["a"], 2)
    with pytest.raises(ValueError, match="max_len must be >= 1"):
        encode_for_classifier(gpt, ["a"], 0)


def test_classifier_prefix_rule_equals_full_encoding(tiny_data):
    tok = load_tokenizer(tiny_data)
    texts = ["这本书写得非常好，强烈推荐！" * 300, "plain words " * 800, "😀" * 3000]
    for max_len in (8, 33, 128):
        full = [[tok.cls_id, *tok.encode(t)[: max_len - 2], tok.sep_id] for t in texts]
        assert encode_for_classifier(tok, texts, max_len) == full


def test_checkpoint_keeps_the_tokenizer_file_name(tmp_path):
    model = torch.nn.Linear(2, 2)
    src = tmp_path / "src"
    src.mkdir()
    (src / "tokenizer.json").write_text('{"fake": 1}')
    path = ckpt.save_checkpoint(tmp_path / "c", model, {"arch": "x"}, src / "tokenizer.json", {"kind": "pretrain"})
    assert (path / "tokenizer.json").read_text() == '{"fake": 1}' and not (path / "tokenizer.model").exists()
    assert ckpt.tokenizer_path(path) == path / "tokenizer.json"
    (src / "sp.model").write_bytes(b"sp")
    path = ckpt.save_checkpoint(tmp_path / "d", model, {"arch": "x"}, src / "sp.model", {"kind": "pretrain"})
    assert ckpt.tokenizer_path(path) == path / "tokenizer.model"
    (path / "tokenizer.model").unlink()
    with pytest.raises(ckpt.CheckpointError, match="tokenizer.model, tokenizer.json"):
        ckpt.tokenizer_path(path)


def test_hf_tokenizer_through_pretrain_finetune_export(tmp_path, sentiment_small):
    """prepare --tokenizer (WordPiece, specials at 0/100..103) -> BERT pretraining -> fine-tuning -> bundle:
    the tokenizer.json travels under its own name and bundle.json carries its role ids."""
    pytest.importorskip("tokenizers", reason="the optional 'tokenizers' package is not installed")
    from bigmodel_fast.eval.predict import Predictor
    from bigmodel_fast.export.bundle import export_bundle, read_bundle
    from bigmodel_fast.train.finetune import FinetuneConfig, finetune
    from bigmodel_fast.train.pretrain import PretrainConfig, pretrain

    from .test_hf_tokenizer import _prepare_with, _wordpiece_dirs

    vdir, _ = _wordpiece_dirs(tmp_path / "tok", True, True)
    data, _ = _prepare_with(tmp_path, vdir)
    tiny = {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64}
    summary = pretrain(PretrainConfig(data=str(data), out=str(tmp_path / "pre"), model_overrides=tiny, seq_len=32,
                                      batch_size=8, max_steps=3, eval_every=3, eval_batches=1, device="cpu",
                                      progress=False))
    pre = Path(summary["checkpoint"])
    assert (pre / "tokenizer.json").read_bytes() == (data / "tokenizer.json").read_bytes()
    summary = finetune(FinetuneConfig(checkpoint=str(pre), train=str(sentiment_small["train"]),
                                      out=str(tmp_path / "ft"), max_len=24, epochs=1, device="cpu", progress=False))
    clf = Path(summary["checkpoint"])
    assert ckpt.tokenizer_path(clf).name == "tokenizer.json"
    bundle = export_bundle(clf, tmp_path / "bundle")
    info = read_bundle(bundle)
    assert info["tokenizer_file"] == "tokenizer.json" and (bundle / "tokenizer.json").is_file()
    assert not (bundle / "tokenizer.model").exists()
    assert info["special_ids"] == {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103, "bos": None,
                                   "eos": None}
    on_disk = json.loads((bundle / "bundle.json").read_text())
    assert on_disk["special_ids"]["bos"] is None
    texts = ["这本书写得非常好，强烈推荐！", "质量太差了。", "", "a " * 3000]
    eager = Predictor(clf, device="cpu").predict_proba(texts)
    scripted = Predictor(bundle, device="cpu").predict_proba(texts)
    torch.testing.assert_close(scripted, eager, atol=1e-5, rtol=0)
    tok = load_tokenizer(bundle)
    assert encode_for_classifier(tok, ["hello world"], 24)[0][0] == 101
