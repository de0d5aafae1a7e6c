"""Imported BERT and RoBERTa checkpoints on the Triton attention path (the interpreter on CPU) within the project's
2x rule: the error vs the fp32 reference-attention model is at most 2x plain PyTorch's (SDPA) error in the same
dtype, plus a small floor; fp32 and fp16 (bf16 is not run in the interpreter). The batches are padded, so the
key-padding mask reaches the kernel: a spy on the launcher checks that the kernel ran, with the mask, on every
layer."""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is first imported

import pytest  # noqa: E402

import bigmodel_fast.ops.attention as attention_mod  # noqa: E402
from bigmodel_fast.ops.backend import use_backends  # noqa: E402
from tests.hf.conftest import batch, import_and_load, max_err, save_hf  # noqa: E402

T = pytest.importorskip("transformers")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1",
                                reason="no GPU and TRITON_INTERPRET is not 1")

DTYPES = [torch.float32, torch.float16]
FLOOR = {torch.float32: 1e-6, torch.float16: 2e-4}  # below the fp16 SDPA error (~4e-4) of these models
BERT = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48)
ROBERTA = dict(BERT, vocab_size=89, num_attention_heads=2, max_position_embeddings=40, type_vocab_size=1,
               pad_token_id=1)


def _spy(monkeypatch) -> list[bool]:
    """Record, per call of the Triton launcher, whether a key-padding mask was passed to it."""
    calls: list[bool] = []
    real = attention_mod._triton_dense

    def spy(q, k, v, attn_mask, causal, scale):
        calls.append(attn_mask is not None)
        return real(q, k, v, attn_mask, causal, scale)

    monkeypatch.setattr(attention_mod, "_triton_dense", spy)
    return calls


def _run(model, args: tuple, pick, dtype, monkeypatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list]:
    """(fp32 reference, SDPA in ``dtype``, Triton in ``dtype``) outputs of ``pick(model(*args))``, and the spy."""
    with torch.no_grad():
        with use_backends(attention="reference"):
            ref = pick(model(*args)).float()
        low = model.to(dtype)
        with use_backends(attention="sdpa"):
            base = pick(low(*args)).float()
        calls = _spy(monkeypatch)
        with use_backends(attention="triton"):
            got = pick(low(*args)).float()
    return ref, base, got, calls


def _within_2x(ref, base, got, dtype, real=None) -> None:
    if real is not None:
        ref, base, got = ref * real, base * real, got * real
    err, err_base = max_err(got, ref), max_err(base, ref)
    assert torch.isfinite(got).all() and err <= 2 * err_base + FLOOR[dtype], (err, err_base)


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_bert_triton_attention_with_padding_within_2x_rule(tmp_path, monkeypatch, dtype, side):
    torch.manual_seed(0)
    hf = T.BertForPreTraining(T.BertConfig(**BERT)).eval()
    ours, cfg, _ = import_and_load(save_hf(hf, tmp_path / "hf"), tmp_path / "ckpt")
    ids, mask = batch(cfg.vocab_size, s=16, pad_id=cfg.pad_id)
    if side == "left":  # the kernel takes the key-padding mask on any side
        ids, mask = ids.flip(1), mask.flip(1)
    assert not mask.all()
    tt = torch.zeros_like(ids)
    tt[:, 6:] = 1
    ref, base, got, calls = _run(ours, (ids, tt, mask), lambda o: o["mlm_logits"], dtype, monkeypatch)
    assert calls == [True] * cfg.num_layers  # the kernel ran on every layer, with the padding mask
    _within_2x(ref, base, got, dtype, mask[..., None])
    with torch.no_grad(), use_backends(attention="reference"):  # the fp32 reference is transformers' model
        hf_ref = hf(input_ids=ids, attention_mask=mask.long(), token_type_ids=tt).prediction_logits
    assert max_err(ref * mask[..., None], hf_ref * mask[..., None]) < 1e-5


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
def test_roberta_masked_lm_triton_attention_within_2x_rule(tmp_path, monkeypatch, dtype):
    torch.manual_seed(1)
    hf = T.RobertaForMaskedLM(T.RobertaConfig(**ROBERTA)).eval()
    ours, cfg, _ = import_and_load(save_hf(hf, tmp_path / "hf"), tmp_path / "ckpt")
    ids, mask = batch(cfg.vocab_size, s=16, pad_id=cfg.pad_id, seed=2)
    ref, base, got, calls = _run(ours, (ids, None, mask), lambda o: o["mlm_logits"], dtype, monkeypatch)
    assert calls == [True] * cfg.num_layers
    real = mask[..., None]
    _within_2x(ref, base, got, dtype, real)
    with torch.no_grad(), use_backends(attention="reference"):
        hf_ref = hf(input_ids=ids, attention_mask=mask.long()).logits
    assert max_err(ref * real, hf_ref * real) < 1e-5


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16"])
def test_roberta_classifier_triton_attention_within_2x_rule(tmp_path, monkeypatch, dtype):
    torch.manual_seed(2)
    # a wide init: the default one (0.02) gives logits so small that fp16 rounding hides a wrong mask
    conf = T.RobertaConfig(**ROBERTA, initializer_range=0.3, num_labels=3, id2label={0: "a", 1: "b", 2: "c"},
                           label2id={"a": 0, "b": 1, "c": 2})
    hf = T.RobertaForSequenceClassification(conf).eval()
    ours, cfg, _ = import_and_load(save_hf(hf, tmp_path / "hf"), tmp_path / "ckpt", kind="classifier")
    ids, mask = batch(cfg.vocab_size, s=16, pad_id=cfg.pad_id, seed=4)
    ref, base, got, calls = _run(ours, (ids, mask), lambda o: o, dtype, monkeypatch)
    assert calls == [True] * cfg.num_layers
    _within_2x(ref, base, got, dtype)
    with torch.no_grad(), use_backends(attention="reference"):
        hf_ref = hf(input_ids=ids, attention_mask=mask.long()).logits
    assert max_err(ref, hf_ref) < 1e-5
