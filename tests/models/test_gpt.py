from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bigmodel_fast.models import GPTForCausalLM, GPTModel, ModelConfig, build_pretraining_model, causal_lm_labels


def test_shapes_tied_head_and_loss(tiny_config):
    torch.manual_seed(0)
    model = build_pretraining_model(tiny_config("gpt"))
    assert isinstance(model, GPTForCausalLM)
    assert model.backbone.layers[0].pre_ln and model.backbone.final_norm is not None
    ids = torch.randint(0, 64, (2, 10))
    labels = causal_lm_labels(ids)
    assert torch.equal(labels[:, :-1], ids[:, 1:]) and (labels[:, -1] == -100).all()
    assert model.training and model.lm_loss == "chunked"
    chunked = model(ids, labels)
    assert set(chunked) == {"loss"}  # training + grad + labels: the chunked loss, no (B, S, V) logits
    with torch.no_grad():
        assert set(model(ids, labels)) == {"logits", "loss"}  # no grad: logits, as in held-out evaluation
    model.eval()
    out = model(ids, labels)
    assert set(out) == {"logits", "loss"} and out["logits"].shape == (2, 10, 64)
    torch.testing.assert_close(chunked["loss"], out["loss"])  # no dropout: the same model function
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
    assert "lm_head.weight" in GPTForCausalLM(tiny_config("gpt", tie_embeddings=False)).state_dict()


def test_ignore_index_and_causal_lm_labels(tiny_config):
    torch.manual_seed(1)
    model = GPTForCausalLM(tiny_config("gpt")).eval()
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


def test_causal_no_future_dependence(tiny_config):
    torch.manual_seed(2)
    model = GPTForCausalLM(tiny_config("gpt")).eval()
    a = torch.randint(0, 64, (1, 12))
    b = a.clone()
    b[:, 7:] = torch.randint(0, 64, (1, 5))
    la, lb = model(a)["logits"], model(b)["logits"]
    torch.testing.assert_close(la[:, :7], lb[:, :7])
    assert not torch.allclose(la[:, 7:], lb[:, 7:])


def test_position_ids_restart_for_packed_documents(tiny_config):
    torch.manual_seed(3)
    model = GPTModel(tiny_config("gpt")).eval()
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


def test_right_padding_invariance(tiny_config, assert_right_padding_invariant):
    torch.manual_seed(4)
    model = GPTModel(tiny_config("gpt")).eval()
    assert_right_padding_invariant(model, torch.randint(1, 64, (1, 6)), n_pad=3)


def test_gpt_rejects_token_types_and_long_input(tiny_config):
    model = GPTModel(tiny_config("gpt", max_position=8))
    with pytest.raises(ValueError, match="token_type_ids"):
        model(torch.zeros(1, 4, dtype=torch.long), None, torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="max_position"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="arch='gpt'"):
        GPTForCausalLM(ModelConfig(arch="bert", vocab_size=64, hidden_size=32, num_heads=4))


def test_gqa_gpt_runs(tiny_config):
    model = GPTForCausalLM(tiny_config("gpt", num_kv_heads=1))
    ids = torch.randint(0, 64, (2, 5))
    assert torch.isfinite(model(ids, causal_lm_labels(ids))["loss"])


def test_overfits_a_batch(tiny_config, overfit):
    torch.manual_seed(5)
    model = GPTForCausalLM(tiny_config("gpt"))
    ids = torch.randint(0, 64, (4, 16))
    labels = causal_lm_labels(ids)
    losses = overfit(model, lambda: model(ids, labels)["loss"], 30)
    assert losses[-1] < 0.5 * losses[0]


def test_packed_max_seqlen_is_computed_once_per_forward(tiny_config, monkeypatch):
    """Without max_seqlen the stack derives it from cu_seqlens once (a host sync on CUDA), not once per layer."""
    import bigmodel_fast.nn.transformer as tr

    torch.manual_seed(4)
    cfg = tiny_config("gpt")
    assert cfg.num_layers >= 2
    model = GPTModel(cfg).eval()
    ids = torch.randint(0, 64, (2, 6))
    cu = torch.tensor([0, 4, 6, 11, 12], dtype=torch.int32)  # documents of 4, 2, 5, 1 tokens over the 12
    calls = []
    real = tr.packed_max_seqlen
    monkeypatch.setattr(tr, "packed_max_seqlen", lambda c: calls.append(1) or real(c))
    got = model(ids, cu_seqlens=cu)
    assert len(calls) == 1
    torch.testing.assert_close(got, model(ids, cu_seqlens=cu, max_seqlen=5))
    assert real(cu) == 5


def _loss_and_grads(model, **batch):
    """(loss, {name: grad}) of one training-mode forward + backward (names without torch.compile's prefix)."""
    model.zero_grad(set_to_none=True)
    loss = model(**batch)["loss"]
    loss.backward()
    return loss.detach(), {n.removeprefix("_orig_mod."): p.grad.clone() for n, p in model.named_parameters()
                           if p.grad is not None}


def _assert_chunked_matches_plain(model, **batch):
    """The chunked loss (chunks of 5 tokens, not dividing B * S) and every parameter gradient equal the plain
    path's; fp32 and only the summation order differs, so 1e-5 relative (observed ~1e-7)."""
    model.train()
    model.lm_loss, model.lm_loss_chunk_size = "chunked", 5
    assert set(model(**batch)) == {"loss"}
    got_loss, got = _loss_and_grads(model, **batch)
    model.lm_loss = "plain"
    assert set(model(**batch)) == {"logits", "loss"}
    want_loss, want = _loss_and_grads(model, **batch)
    torch.testing.assert_close(got_loss, want_loss, rtol=1e-5, atol=1e-6)
    assert got.keys() == want.keys() and len(got) == len(list(model.parameters()))
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("tie", [True, False])
def test_chunked_lm_loss_equals_plain_loss_and_grads(tiny_config, tie):
    torch.manual_seed(6)
    model = GPTForCausalLM(tiny_config("gpt", tie_embeddings=tie))
    ids = torch.randint(1, 64, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[2, 6:] = False
    _assert_chunked_matches_plain(model, input_ids=ids, labels=causal_lm_labels(ids, mask), attention_mask=mask)


def test_chunked_lm_loss_equals_plain_on_a_packed_batch(tiny_config):
    torch.manual_seed(7)
    model = GPTForCausalLM(tiny_config("gpt"))
    ids = torch.randint(1, 64, (2, 6))
    cu = torch.tensor([0, 4, 6, 11, 12], dtype=torch.int32)  # documents of 4, 2, 5, 1 tokens over the 12
    pos = torch.tensor([[0, 1, 2, 3, 0, 1], [0, 1, 2, 3, 4, 0]])
    labels = torch.roll(ids.reshape(-1), -1).reshape(2, 6)
    labels.reshape(-1)[cu[1:].long() - 1] = -100  # no target across a document end
    _assert_chunked_matches_plain(model, input_ids=ids, labels=labels, position_ids=pos, cu_seqlens=cu,
                                  max_seqlen=5)


def test_lm_loss_switch_is_checked(tiny_config):
    model = GPTForCausalLM(tiny_config("gpt"))
    model.lm_loss = "fused"
    ids = torch.randint(0, 64, (1, 4))
    with pytest.raises(ValueError, match="lm_loss must be 'chunked' or 'plain'"):
        model(ids, ids)
    model.lm_loss = "chunked"
    with pytest.raises(ValueError, match="labels must have the shape"):
        model(ids, ids[:, :3])


def test_compiled_training_step_with_chunked_loss_equals_eager(tiny_config):
    """torch.compile of the training forward + backward through the chunked loss (one compile, on CPU)."""
    torch.manual_seed(8)
    model = GPTForCausalLM(tiny_config("gpt", num_layers=1))
    model.lm_loss_chunk_size = 7
    ids = torch.randint(1, 64, (2, 8))
    labels = causal_lm_labels(ids)
    want_loss, want = _loss_and_grads(model, input_ids=ids, labels=labels)
    compiled = torch.compile(model)
    got_loss, got = _loss_and_grads(compiled, input_ids=ids, labels=labels)
    torch.testing.assert_close(got_loss, want_loss, rtol=1e-5, atol=1e-6)
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6, msg=name)
