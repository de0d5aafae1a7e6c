"""Importing an HF ``RobertaForSequenceClassification``: its head (``classifier.dense`` -> our pooler,
``classifier.out_proj`` -> our classifier) and ``id2label`` are kept, logits within 1e-5 of transformers on padded
batches (fp32 CPU, reference attention), and ``export-hf`` writes it back so transformers loads identical tensors
and the same logits."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from bigmodel_fast.cli import main
from bigmodel_fast.ops.backend import use_backends
from tests.hf.conftest import batch, import_and_load, max_err, save_hf

T = pytest.importorskip("transformers")

LABELS = {0: "sports", 1: "world", 2: "business", 3: "sci/tech"}
SHAPES = [dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
               max_position_embeddings=40, pad_token_id=1),
          dict(vocab_size=131, hidden_size=24, num_hidden_layers=3, num_attention_heads=3, intermediate_size=40,
               max_position_embeddings=50, pad_token_id=3, layer_norm_eps=1e-6)]


def _hf(shape: dict):
    torch.manual_seed(0)
    conf = T.RobertaConfig(**shape, type_vocab_size=1, num_labels=len(LABELS), id2label=LABELS,
                           label2id={v: k for k, v in LABELS.items()})
    return T.RobertaForSequenceClassification(conf).eval()


@pytest.mark.parametrize("shape", SHAPES, ids=["v97-pad1", "v131-pad3"])
def test_roberta_classifier_keeps_head_labels_and_logits(tmp_path, shape):
    hf = _hf(shape)
    ours, cfg, summary = import_and_load(save_hf(hf, tmp_path / "hf"), tmp_path / "ckpt", kind="classifier")
    assert summary["kind"] == "classifier" and summary["fresh_heads"] == []
    assert cfg.num_labels == 4 and cfg.label_names == ["sports", "world", "business", "sci/tech"]
    assert cfg.position_offset == shape["pad_token_id"] + 1 and cfg.pad_id == shape["pad_token_id"]
    assert torch.equal(ours.backbone.pooler.weight, hf.classifier.dense.weight)
    assert torch.equal(ours.classifier.weight, hf.classifier.out_proj.weight)
    ids, mask = batch(cfg.vocab_size, s=16, pad_id=cfg.pad_id, seed=11)
    with torch.no_grad(), use_backends(attention="reference"):
        ref = hf(input_ids=ids, attention_mask=mask.long()).logits
        logits = ours(ids, mask)
    assert logits.shape == (3, 4)
    assert max_err(logits, ref) < 1e-5
    assert max_err(logits, torch.zeros_like(logits)) > 1e-3  # the head is not trivially zero


def test_roberta_classifier_export_hf_round_trip(tmp_path):
    hf = _hf(SHAPES[1])
    src = save_hf(hf, tmp_path / "hf")
    ours, cfg, _ = import_and_load(src, tmp_path / "ckpt", kind="classifier")
    assert main(["export-hf", str(tmp_path / "ckpt"), "--out", str(tmp_path / "back")]) == 0
    before, after = load_file(str(src / "model.safetensors")), load_file(str(tmp_path / "back" / "model.safetensors"))
    assert sorted(before) == sorted(after)
    for k in before:
        assert torch.equal(before[k], after[k]), k
    loaded = T.AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "back")).eval()
    assert type(loaded).__name__ == "RobertaForSequenceClassification"
    assert loaded.config.id2label == LABELS and loaded.config.pad_token_id == 3
    ids, mask = batch(cfg.vocab_size, s=20, pad_id=cfg.pad_id, seed=13)
    with torch.no_grad(), use_backends(attention="reference"):
        back = loaded(input_ids=ids, attention_mask=mask.long()).logits
        ref = hf(input_ids=ids, attention_mask=mask.long()).logits
        mine = ours(ids, mask)
    assert max_err(mine, back) < 1e-5 and max_err(back, ref) < 1e-5
