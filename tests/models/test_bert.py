from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bigmodel_fast.models import BertForPretraining, BertModel, build_pretraining_model


def batch(seed=0, b=3, s=12, vocab=64):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (b, s), generator=g)
    mask = torch.ones(b, s, dtype=torch.bool)
    mask[1, 8:] = False
    ids[~mask] = 0
    tt = torch.zeros(b, s, dtype=torch.long)
    tt[:, s // 2:] = 1
    labels = torch.full((b, s), -100)
    pick = (torch.rand(b, s, generator=g) < 0.3) & mask
    pick[0, 1] = True
    labels[pick] = ids[pick]
    nsp = torch.tensor([0, 1, 1])[:b]
    return ids, tt, mask, labels, nsp


def test_shapes_and_keys(tiny_config):
    torch.manual_seed(0)
    cfg = tiny_config("bert")
    model = build_pretraining_model(cfg)
    assert isinstance(model, BertForPretraining)
    ids, tt, mask, labels, nsp = batch()
    hidden = model.backbone(ids, mask, tt)
    assert hidden.shape == (3, 12, 32)
    out = model(ids, tt, mask, labels, nsp)
    n = int((labels != -100).sum())
    assert set(out) == {"loss", "mlm_loss", "nsp_loss", "mlm_logits", "mlm_targets", "nsp_logits"}
    assert out["mlm_logits"].shape == (n, 64)
    assert torch.equal(out["mlm_targets"], labels[labels != -100])
    assert out["nsp_logits"].shape == (3, 2)
    no_labels = model(ids, tt, mask)
    assert "loss" not in no_labels and no_labels["mlm_logits"].shape == (3, 12, 64)


def test_tied_weights_share_storage(tiny_config):
    torch.manual_seed(0)
    model = BertForPretraining(tiny_config("bert"))
    emb = model.backbone.embeddings.word_embeddings.weight
    assert model.mlm_head.decoder_weight() is emb
    assert model.mlm_head.decoder_weight().data_ptr() == emb.data_ptr()
    # no duplicate tensor in the state dict (safetensors refuses shared tensors)
    ptrs = [t.data_ptr() for t in model.state_dict().values()]
    assert len(ptrs) == len(set(ptrs))
    # gradient of the vocab projection reaches the embedding, also for ids never fed as input
    ids, tt, mask, labels, nsp = batch()
    model(ids, tt, mask, labels)["loss"].backward()
    unseen = sorted(set(range(64)) - set(ids.flatten().tolist()))
    assert unseen and emb.grad[unseen].abs().sum() > 0
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.step()
    assert model.mlm_head.decoder_weight().data_ptr() == model.backbone.embeddings.word_embeddings.weight.data_ptr()


def test_untied_has_own_decoder(tiny_config):
    model = BertForPretraining(tiny_config("bert", tie_embeddings=False))
    assert model.mlm_head.decoder_weight().data_ptr() != model.backbone.embeddings.word_embeddings.weight.data_ptr()
    assert "mlm_head.decoder.weight" in model.state_dict()


def test_mlm_loss_matches_full_vocab_computation(tiny_config):
    torch.manual_seed(1)
    model = BertForPretraining(tiny_config("bert")).eval()
    ids, tt, mask, labels, nsp = batch(seed=3)
    out = model(ids, tt, mask, labels, nsp)
    hidden = model.backbone(ids, mask, tt)
    full_logits = model.mlm_head(hidden)  # (B, S, V) at every position
    mlm = F.cross_entropy(full_logits.reshape(-1, 64), labels.reshape(-1), ignore_index=-100)
    nsp_loss = F.cross_entropy(model.nsp_head(torch.tanh(model.backbone.pooler(hidden[:, 0]))), nsp)
    torch.testing.assert_close(out["mlm_loss"], mlm)
    torch.testing.assert_close(out["nsp_loss"], nsp_loss)
    torch.testing.assert_close(out["loss"], mlm + nsp_loss)
    # loss without NSP labels is the MLM loss alone
    torch.testing.assert_close(model(ids, tt, mask, labels)["loss"], mlm)


def test_no_masked_positions_gives_zero_loss_not_nan(tiny_config):
    model = BertForPretraining(tiny_config("bert"))
    ids, tt, mask, _, _ = batch()
    out = model(ids, tt, mask, torch.full_like(ids, -100))
    assert out["mlm_logits"].shape == (0, 64)
    assert out["loss"].item() == 0.0
    out["loss"].backward()  # graph still valid


@pytest.mark.parametrize("pre_ln", [None, False, True])
def test_pre_and_post_ln(pre_ln, tiny_config):
    torch.manual_seed(2)
    cfg = tiny_config("bert", pre_ln=pre_ln)
    model = BertModel(cfg)
    expect_pre = bool(pre_ln)  # None -> post-LN (original BERT)
    assert all(layer.pre_ln is expect_pre for layer in model.layers)
    assert (model.final_norm is not None) is expect_pre
    ids, tt, mask, _, _ = batch()
    out = model(ids, mask, tt)
    assert torch.isfinite(out).all()


def test_padding_does_not_change_real_positions(tiny_config, assert_right_padding_invariant):
    torch.manual_seed(3)
    model = BertModel(tiny_config("bert")).eval()
    assert_right_padding_invariant(model, torch.randint(5, 64, (1, 7)), n_pad=4)


def test_init_scheme(tiny_config):
    torch.manual_seed(4)
    model = BertForPretraining(tiny_config("bert", hidden_size=64, intermediate_size=256, initializer_range=0.05))
    w = model.backbone.layers[0].mlp.fc1.weight
    assert 0.045 < w.std().item() < 0.055
    assert torch.all(model.backbone.layers[0].attn.qkv.bias == 0)
    assert torch.all(model.mlm_head.bias == 0) and torch.all(model.mlm_head.norm.weight == 1)


def test_sequence_too_long(tiny_config):
    model = BertModel(tiny_config("bert", max_position=8))
    with pytest.raises(ValueError, match="max_position"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_rejects_gpt_config(tiny_config):
    with pytest.raises(ValueError, match="arch='bert'"):
        BertForPretraining(tiny_config("gpt", type_vocab_size=0))


def test_overfits_a_batch(tiny_config, overfit):
    torch.manual_seed(5)
    model = BertForPretraining(tiny_config("bert"))
    ids, tt, mask, labels, nsp = batch(seed=6)
    losses = overfit(model, lambda: model(ids, tt, mask, labels, nsp)["loss"], 30)
    assert losses[-1] < 0.5 * losses[0]
