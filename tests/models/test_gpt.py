from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bigmodel_fast.models import GPTForCausalLM, GPTModel, ModelConfig, build_pretraining_model, causal_lm_labels


def tiny(**kw) -> ModelConfig:
    base = dict(arch="gpt", vocab_size=64, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                max_position=32, dropout=0.0, type_vocab_size=0)
    base.update(kw)
    return ModelConfig(**base)


def test_shapes_tied_head_and_loss():
    torch.manual_seed(0)
    model = build_pretraining_model(tiny())
    assert isinstance(model, GPTForCausalLM)
    assert model.backbone.layers[0].pre_ln and model.backbone.final_norm is not None
    ids = torch.randint(0, 64, (2, 10))
    labels = causal_lm_labels(ids)
    assert torch.equal(labels[:, :-1], ids[:, 1:]) and (labels[:, -1] == -100).all()
    out = model(ids, labels)
    assert set(out) == {"logits", "loss"} and out["logits"].shape == (2, 10, 64)
    # labels are pre-shifted: position t is scored against the token after it
    expect = F.cross_entropy(out["logits"][:, :-1].reshape(-1, 64), ids[:, 1:].reshape(-1))
    torch.testing.assert_close(out["loss"], expect)
    window = torch.randint(0, 64, (2, 11))  # loader style: S + 1 tokens, no target lost
    full = model(window[:, :-1], window[:, 1:])
    torch.testing.assert_close(full["loss"], F.cross_entropy(full["logits"].reshape(-1, 64), window[:, 1:].reshape(-1)))
    assert "loss" not in model(ids)
    emb = model.backbone.embeddings.word_embeddings.weight
    assert model.output_weight().data_ptr() == emb.data_ptr()
    ptrs = [t.data_ptr() for t in model.state_dict().values()]
    assert len(ptrs) == len(set(ptrs))
    assert "lm_head.weight" in GPTForCausalLM(tiny(tie_embeddings=False)).state_dict()


def test_ignore_index_and_causal_lm_labels():
    torch.manual_seed(1)
    model = GPTForCausalLM(tiny()).eval()
    ids = torch.randint(1, 64, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 5:] = False
    ids[~mask] = 0
    labels = causal_lm_labels(ids, mask)
    assert (labels[1, 4:] == -100).all() and torch.equal(labels[1, :4], ids[1, 1:5])
    assert torch.equal(labels[0, :-1], ids[0, 1:])
    out = model(ids, labels, attention_mask=mask)
    keep = labels != -100
    assert int(keep.sum()) == 7 + 4
    torch.testing.assert_close(out["loss"], F.cross_entropy(out["logits"][keep], labels[keep]))
    none_counted = model(ids, torch.full_like(ids, -100))["loss"]
    assert none_counted.item() == 0.0


def test_causal_no_future_dependence():
    torch.manual_seed(2)
    model = GPTForCausalLM(tiny()).eval()
    a = torch.randint(0, 64, (1, 12))
    b = a.clone()
    b[:, 7:] = torch.randint(0, 64, (1, 5))
    la, lb = model(a)["logits"], model(b)["logits"]
    torch.testing.assert_close(la[:, :7], lb[:, :7])
    assert not torch.allclose(la[:, 7:], lb[:, 7:])


def test_position_ids_restart_for_packed_documents():
    torch.manual_seed(3)
    model = GPTModel(tiny()).eval()
    doc_a = torch.randint(0, 64, (1, 5))
    doc_b = torch.randint(0, 64, (1, 4))
    packed = torch.cat([doc_a, doc_b], dim=1)
    restart = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2, 3]])
    h_default = model(packed)
    h_restart = model(packed, position_ids=restart)
    torch.testing.assert_close(model(packed, position_ids=torch.arange(9)), h_default)
    torch.testing.assert_close(h_restart[:, :5], model(doc_a))  # first doc unaffected by what follows
    assert not torch.allclose(h_restart[:, 5:], h_default[:, 5:])
    # the second token of doc_b sees position 1 embedding: equals the eager computation with those embeddings
    emb = model.embeddings
    x0 = emb.word_embeddings(packed) + emb.position_embeddings(restart)
    torch.testing.assert_close(emb(packed, None, restart), x0)


def test_right_padding_invariance():
    torch.manual_seed(4)
    model = GPTModel(tiny()).eval()
    ids = torch.randint(1, 64, (1, 6))
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.tensor([[True] * 6 + [False] * 3])
    torch.testing.assert_close(model(padded, mask)[:, :6], model(ids), atol=1e-5, rtol=1e-5)


def test_gpt_rejects_token_types_and_long_input():
    model = GPTModel(tiny(max_position=8))
    with pytest.raises(ValueError, match="token_type_ids"):
        model(torch.zeros(1, 4, dtype=torch.long), None, torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="max_position"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="arch='gpt'"):
        GPTForCausalLM(ModelConfig(arch="bert", vocab_size=64, hidden_size=32, num_heads=4))


def test_gqa_gpt_runs():
    model = GPTForCausalLM(tiny(num_kv_heads=1))
    ids = torch.randint(0, 64, (2, 5))
    assert torch.isfinite(model(ids, causal_lm_labels(ids))["loss"])


def test_overfits_a_batch():
    torch.manual_seed(5)
    model = GPTForCausalLM(tiny())
    ids = torch.randint(0, 64, (4, 16))
    labels = causal_lm_labels(ids)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = model(ids, labels)["loss"]
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
