"""Training-mode unpadding in TransformerStack: same outputs on real tokens and same gradients as the padded
path (dropout 0, fp32), padded positions 0, skipped when there is little padding, off in eval and under script."""

from __future__ import annotations

import pytest
import torch

from bigmodel_fast.models import ModelConfig, build_classifier
from bigmodel_fast.models.registry import build_model
from bigmodel_fast.nn import transformer


def _cfg(arch: str, **kw) -> ModelConfig:
    return ModelConfig(arch=arch, vocab_size=101, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=48,
                       max_position=40, dropout=0.0, **kw)


def _batch(b=5, s=23, vocab=101, seed=0, left=False):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (b, s), generator=g)
    lengths = torch.tensor([s, 1, 9, 17, 4][:b])
    pos = torch.arange(s)[None, :]
    mask = pos >= (s - lengths[:, None]) if left else pos < lengths[:, None]
    return ids.masked_fill(~mask, 0), mask


def _run(model, ids, mask, unpad: bool):
    model.zero_grad()
    for m in model.modules():
        if isinstance(m, transformer.TransformerStack):
            m.unpad = unpad
    hidden = model.backbone(ids, mask) if hasattr(model, "backbone") else model(ids, mask)
    loss = (hidden * mask[..., None]).square().sum()
    loss.backward()
    return hidden.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arch", ["bert", "gpt"])
@pytest.mark.parametrize("left", [False, True], ids=["right-pad", "left-pad"])
def test_unpadded_training_matches_padded(arch, left):
    torch.manual_seed(0)
    model = build_model(_cfg(arch), "pretrain").train()
    ids, mask = _batch(left=left)
    h0, g0 = _run(model, ids, mask, unpad=False)
    h1, g1 = _run(model, ids, mask, unpad=True)
    real = mask[..., None].expand_as(h0)
    assert (h1[real] - h0[real]).abs().max() < 1e-5
    assert h1[~real].abs().max() == 0  # padded positions are 0, not computed
    assert g0.keys() == g1.keys()
    for name in g0:
        assert (g1[name] - g0[name]).abs().max() <= 1e-4 * (1 + g0[name].abs().max()), name


def test_classifier_logits_and_loss_match():
    torch.manual_seed(1)
    cfg = _cfg("bert", num_labels=3)
    model = build_classifier(cfg).train()
    ids, mask = _batch(seed=2)
    y = torch.tensor([0, 1, 2, 1, 0])
    losses = []
    for unpad in (False, True):
        model.backbone.unpad = unpad
        losses.append(torch.nn.functional.cross_entropy(model(ids, mask), y).item())
    assert abs(losses[0] - losses[1]) < 1e-6


def test_index_only_when_padding_is_worth_it():
    full = torch.ones(4, 1, 1, 10, dtype=torch.bool)
    assert transformer.padded_token_index(full) is None
    few = full.clone()
    few[0, ..., -1] = False  # 1 of 40 positions padded: below UNPAD_MIN_SHARE
    assert transformer.padded_token_index(few) is None
    half = full.clone()
    half[:, ..., 5:] = False
    idx = transformer.padded_token_index(half)
    assert idx.tolist() == [r * 10 + c for r in range(4) for c in range(5)]


def test_eval_mode_keeps_padded_positions():
    torch.manual_seed(0)
    model = build_model(_cfg("bert"), "pretrain").eval()
    ids, mask = _batch()
    with torch.no_grad():
        hidden = model.backbone(ids, mask)
    assert hidden[~mask].abs().sum() > 0  # the padded path computes every position


def test_cpu_half_precision_keeps_the_padded_path(monkeypatch):
    """bf16 autocast on CPU does not unpad (measured slower there); fp32 on the same batch does."""
    model = build_model(_cfg("bert"), "pretrain").train()
    ids, mask = _batch()
    calls = []
    real_fn = transformer.padded_token_index
    monkeypatch.setattr(transformer, "padded_token_index", lambda m: calls.append(1) or real_fn(m))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.backbone(ids, mask)
    assert calls == []
    model.backbone(ids, mask)
    assert calls == [1]
