"""Importing HF BERT / RoBERTa checkpoints: hidden states, MLM / NSP / classifier logits within 1e-5 of
transformers (fp32 CPU, reference attention), losses within 1e-5; safetensors, pytorch_model.bin and sharded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bigmodel_fast.ops.backend import use_backends
from tests.hf.conftest import batch, import_and_load, max_err, save_hf

T = pytest.importorskip("transformers")

SHAPES = [dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48),
          dict(vocab_size=131, hidden_size=24, num_hidden_layers=3, num_attention_heads=3, intermediate_size=40,
               max_position_embeddings=64, type_vocab_size=3, hidden_act="gelu_new", layer_norm_eps=1e-6)]


def _hf(cls, **kw):
    torch.manual_seed(0)
    return cls(T.BertConfig(**kw)).eval()


@pytest.mark.parametrize("shape", SHAPES, ids=["v97", "v131-gelu_new"])
def test_bert_for_pretraining_matches(tmp_path, shape):
    hf = _hf(T.BertForPreTraining, **shape)
    src = save_hf(hf, tmp_path / "hf")
    ours, cfg, summary = import_and_load(src, tmp_path / "ckpt")
    assert summary["fresh_heads"] == [] and summary["kind"] == "pretrain"
    ids, mask = batch(cfg.vocab_size)
    tt = torch.zeros_like(ids)
    tt[:, 5:] = 1
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 4], labels[2, 1] = 7, 9, 11
    nsp = torch.tensor([0, 1, 0])
    with torch.no_grad(), use_backends(attention="reference"):
        ref = hf(input_ids=ids, attention_mask=mask.long(), token_type_ids=tt, labels=labels,
                 next_sentence_label=nsp, output_hidden_states=True)
        hidden = ours.backbone(ids, mask, tt)
        out = ours(ids, tt, mask)
        lossy = ours(ids, tt, mask, mlm_labels=labels, nsp_labels=nsp)
    assert max_err(hidden, ref.hidden_states[-1]) < 1e-5
    assert max_err(out["mlm_logits"], ref.prediction_logits) < 1e-5
    assert max_err(out["nsp_logits"], ref.seq_relationship_logits) < 1e-5
    assert abs(lossy["loss"].item() - ref.loss.item()) < 1e-5


def test_bert_masked_lm_loss_and_fresh_heads(tmp_path, monkeypatch):
    hf = _hf(T.BertForMaskedLM, **SHAPES[0])
    src = save_hf(hf, tmp_path / "hf", bin=True)  # pytorch_model.bin, read with weights_only
    assert (src / "pytorch_model.bin").is_file() and not (src / "model.safetensors").exists()
    from bigmodel_fast import checkpoint

    loads, real_load = [], checkpoint.safe_torch_load
    monkeypatch.setattr(checkpoint, "safe_torch_load", lambda f, *a, **k: loads.append(Path(f).name) or
                        real_load(f, *a, **k))
    ours, cfg, summary = import_and_load(src, tmp_path / "ckpt")
    assert loads.count("pytorch_model.bin") == 1  # shapes and tensors from one read
    assert summary["fresh_heads"] == ["nsp_head", "pooler"]
    ids, mask = batch(cfg.vocab_size, seed=3)
    labels = ids.masked_fill(~mask, -100)
    labels[:, ::2] = -100
    with torch.no_grad(), use_backends(attention="reference"):
        ref = hf(input_ids=ids, attention_mask=mask.long(), labels=labels)
        out = ours(ids, None, mask, mlm_labels=labels)
        full = ours(ids, None, mask)
    assert max_err(full["mlm_logits"], ref.logits) < 1e-5
    assert abs(out["mlm_loss"].item() - ref.loss.item()) < 1e-5


def test_bert_model_sharded(tmp_path):
    hf = _hf(T.BertModel, **SHAPES[1])
    src = save_hf(hf, tmp_path / "hf", max_shard_size="20KB")
    assert (src / "model.safetensors.index.json").is_file() and len(list(src.glob("model-*.safetensors"))) > 1
    ours, cfg, summary = import_and_load(src, tmp_path / "ckpt")
    assert summary["fresh_heads"] == ["mlm_head", "nsp_head"]
    ids, mask = batch(cfg.vocab_size, seed=5)
    with torch.no_grad(), use_backends(attention="reference"):
        ref = hf(input_ids=ids, attention_mask=mask.long())
        hidden = ours.backbone(ids, mask)
    assert max_err(hidden, ref.last_hidden_state) < 1e-5
    assert max_err(ours.backbone.pool(hidden), ref.pooler_output) < 1e-5


def test_bert_sequence_classification_keeps_head_and_labels(tmp_path):
    hf = _hf(T.BertForSequenceClassification, **SHAPES[0], num_labels=3,
             id2label={0: "neg", 1: "neu", 2: "pos"}, label2id={"neg": 0, "neu": 1, "pos": 2})
    src = save_hf(hf, tmp_path / "hf")
    ours, cfg, summary = import_and_load(src, tmp_path / "ckpt", kind="classifier")
    assert summary["kind"] == "classifier" and summary["fresh_heads"] == []
    assert cfg.num_labels == 3 and cfg.label_names == ["neg", "neu", "pos"]
    ids, mask = batch(cfg.vocab_size, seed=7)
    with torch.no_grad(), use_backends(attention="reference"):
        ref = hf(input_ids=ids, attention_mask=mask.long()).logits
        logits = ours(ids, mask)
    assert max_err(logits, ref) < 1e-5


@pytest.mark.parametrize("pad", [1, 3])
def test_roberta_masked_lm_positions_from_padding_idx(tmp_path, pad):
    torch.manual_seed(0)
    conf = T.RobertaConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=40, type_vocab_size=1, pad_token_id=pad)
    hf = T.RobertaForMaskedLM(conf).eval()
    src = save_hf(hf, tmp_path / "hf")
    ours, cfg, summary = import_and_load(src, tmp_path / "ckpt")
    assert cfg.position_offset == pad + 1 and cfg.type_vocab_size == 1 and cfg.pad_id == pad
    assert summary["fresh_heads"] == ["nsp_head", "pooler"]
    ids, mask = batch(cfg.vocab_size, s=40 - pad - 1, pad_id=pad, seed=9)  # the longest input RoBERTa accepts
    labels = ids.masked_fill(~mask, -100)
    with torch.no_grad(), use_backends(attention="reference"):
        ref = hf(input_ids=ids, attention_mask=mask.long(), labels=labels, output_hidden_states=True)
        hidden = ours.backbone(ids, mask)
        out = ours(ids, None, mask, mlm_labels=labels)
        full = ours(ids, None, mask)
    assert max_err(hidden, ref.hidden_states[-1]) < 1e-5
    assert max_err(full["mlm_logits"], ref.logits) < 1e-5
    assert abs(out["mlm_loss"].item() - ref.loss.item()) < 1e-5
    with pytest.raises(ValueError, match="position_offset"):
        ours.backbone(torch.full((1, 40 - pad), 7), None)
