"""Shared heads and losses: the tied LM head, the masked cross-entropy, lm_outputs, the plain / chunked LM-loss
dispatch (lm_head_outputs) and last-token pooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bigmodel_fast.nn import IGNORE_INDEX, TiedLMHead, init_weights, last_token, lm_outputs, masked_cross_entropy
from bigmodel_fast.nn.heads import lm_head_outputs


def test_tied_head_uses_the_embedding_and_owns_nothing():
    emb = nn.Embedding(11, 4)
    head = TiedLMHead(4, 11, tie=True)
    assert list(head.state_dict()) == [] and head.output_weight(emb.weight) is emb.weight
    h = torch.randn(2, 3, 4)
    torch.testing.assert_close(head(h, emb.weight), h @ emb.weight.T)


def test_untied_head_has_its_own_initialised_weight():
    torch.manual_seed(0)
    head = TiedLMHead(4, 11, tie=False)
    init_weights(head, 0.02)
    assert list(head.state_dict()) == ["weight"] and head.weight.shape == (11, 4)
    assert 0.005 < float(head.weight.detach().std()) < 0.05
    emb = torch.randn(11, 4)
    assert head.output_weight(emb) is head.weight


def test_heads_script():
    scripted = torch.jit.script(TiedLMHead(4, 7, tie=True))
    emb = torch.randn(7, 4)
    h = torch.randn(1, 2, 4)
    torch.testing.assert_close(scripted(h, emb), h @ emb.T)
    untied = TiedLMHead(4, 7, tie=False)
    init_weights(untied, 0.02)
    torch.testing.assert_close(torch.jit.script(untied)(h, emb), h @ untied.weight.T)


def test_masked_cross_entropy_ignores_and_survives_empty():
    logits = torch.randn(4, 5, requires_grad=True)
    targets = torch.tensor([1, IGNORE_INDEX, 3, IGNORE_INDEX])
    torch.testing.assert_close(masked_cross_entropy(logits, targets),
                               F.cross_entropy(logits[[0, 2]], targets[[0, 2]]))
    empty = masked_cross_entropy(logits, torch.full((4,), IGNORE_INDEX))
    assert float(empty) == 0.0
    empty.backward()  # still has a graph


def test_lm_outputs_checks_label_shape():
    logits = torch.randn(2, 3, 5)
    assert set(lm_outputs(logits)) == {"logits"}
    assert set(lm_outputs(logits, torch.zeros(2, 3, dtype=torch.long))) == {"logits", "loss"}
    with pytest.raises(ValueError, match=r"labels must have the shape of input_ids \(2, 3\), got \(2, 4\)"):
        lm_outputs(logits, torch.zeros(2, 4, dtype=torch.long))


def test_lm_head_outputs_chunks_only_when_training_with_grad_and_labels():
    torch.manual_seed(0)
    emb = torch.randn(11, 4, requires_grad=True)
    head = TiedLMHead(4, 11, tie=True)
    h = torch.randn(2, 3, 4, requires_grad=True)
    labels = torch.tensor([[1, IGNORE_INDEX, 3], [10, 0, IGNORE_INDEX]])
    chunked = lm_head_outputs(head, h, emb, labels, "chunked", training=True, chunk_size=2)
    assert set(chunked) == {"loss"}
    plain = lm_head_outputs(head, h, emb, labels, "plain", training=True)
    assert set(plain) == {"logits", "loss"}
    torch.testing.assert_close(chunked["loss"], plain["loss"])
    got = torch.autograd.grad(chunked["loss"], (h, emb))
    want = torch.autograd.grad(plain["loss"], (h, emb))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    assert set(lm_head_outputs(head, h, emb, labels, "chunked", training=False)) == {"logits", "loss"}
    assert set(lm_head_outputs(head, h, emb, None, "chunked", training=True)) == {"logits"}
    with torch.no_grad():
        assert set(lm_head_outputs(head, h, emb, labels, "chunked", training=True)) == {"logits", "loss"}
    with pytest.raises(ValueError, match="lm_loss must be 'chunked' or 'plain', got 'fused'"):
        lm_head_outputs(head, h, emb, labels, "fused", training=True)
    with pytest.raises(ValueError, match=r"labels must have the shape of input_ids \(2, 3\), got \(2, 2\)"):
        lm_head_outputs(head, h, emb, labels[:, :2], "chunked", training=True)


def test_last_token_right_and_left_padding():
    h = torch.arange(2 * 4, dtype=torch.float).reshape(2, 4, 1)
    mask = torch.tensor([[True, True, False, False], [False, True, True, True]])
    assert last_token(h, mask).flatten().tolist() == [1.0, 7.0]
    assert last_token(h).flatten().tolist() == [3.0, 7.0]
