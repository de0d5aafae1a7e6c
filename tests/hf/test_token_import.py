"""Token classification on an imported Hugging Face BERT: our TokenClassifier with BertForTokenClassification's
weights gives its logits (1e-5, fp32 CPU), and `bmf finetune --task token` trains on an imported backbone with its
WordPiece tokenizer (tokenizer.json), then evaluates and predicts entities."""

from __future__ import annotations

import pytest
import torch

from bigmodel_fast.ops.backend import use_backends
from tests.hf.conftest import batch, import_and_load, max_err, save_hf

T = pytest.importorskip("transformers")

SHAPE = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48)


def test_token_classifier_equals_bert_for_token_classification(tmp_path):
    from bigmodel_fast.models import registry
    from bigmodel_fast.models.config import ModelConfig

    torch.manual_seed(0)
    hf = T.BertForTokenClassification(T.BertConfig(**SHAPE, num_labels=5)).eval()
    src = save_hf(hf.bert, tmp_path / "hf")  # the backbone as a BertModel directory
    backbone, cfg, _ = import_and_load(src, tmp_path / "ckpt")
    ours = registry.build_model(ModelConfig.from_dict({**cfg.to_dict(), "num_labels": 5}), "token_classify").eval()
    missing, _ = ours.load_backbone(backbone.state_dict())
    assert not missing
    ours.classifier.load_state_dict(hf.classifier.state_dict())
    ids, mask = batch(cfg.vocab_size, seed=3)
    with torch.no_grad(), use_backends(attention="reference"):
        ref = hf(input_ids=ids, attention_mask=mask.long()).logits
        logits = ours(ids, mask)
    assert logits.shape == ref.shape == (3, 11, 5)
    assert max_err(logits[mask], ref[mask]) < 1e-5


def test_finetune_token_on_an_imported_backbone(tmp_path, ner_files):
    from bigmodel_fast.eval.evaluate import evaluate
    from bigmodel_fast.eval.token_predict import TokenPredictor
    from bigmodel_fast.train.finetune import FinetuneConfig, finetune

    torch.manual_seed(0)
    src = save_hf(T.BertModel(T.BertConfig(**{**SHAPE, "vocab_size": 60}, max_position_embeddings=64)),
                  tmp_path / "hf")
    import_and_load(src, tmp_path / "ckpt")
    summary = finetune(FinetuneConfig(checkpoint=str(tmp_path / "ckpt"), train=str(ner_files["train"]),
                                      valid=str(ner_files["valid"]), out=str(tmp_path / "ft"), task="token",
                                      max_len=24, epochs=1, device="cpu", progress=False))
    assert summary["schedule"]["backbone_kind"] == "large"  # imported: the large-model recipe
    report = evaluate(summary["checkpoint"], ner_files["test"], device="cpu")
    assert report["sentences"] == 60 and 0.0 <= report["entity"]["micro"]["f1"] <= 1.0
    (rec,) = TokenPredictor(summary["checkpoint"], device="cpu").predict(["alice visited paris"])
    assert all("alice visited paris"[e["start"]:e["end"]] == e["text"] for e in rec["entities"])
