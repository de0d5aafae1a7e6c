from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from bigmodel_fast.nn import MLP, Block, Embeddings, MultiHeadAttention, init_weights, key_padding_mask


def manual_mha(mha: MultiHeadAttention, x: torch.Tensor, causal: bool) -> torch.Tensor:
    """Independent per-head loop using the module's weights."""
    b, s, e = x.shape
    h, h_kv, d = mha.num_heads, mha.num_kv_heads, mha.head_dim
    qkv = x @ mha.qkv.weight.T + mha.qkv.bias
    q, k, v = qkv.split([h * d, h_kv * d, h_kv * d], dim=-1)
    outs = []
    for hi in range(h):
        kh = hi // (h // h_kv)
        qh = q[..., hi * d:(hi + 1) * d]
        kk = k[..., kh * d:(kh + 1) * d]
        vv = v[..., kh * d:(kh + 1) * d]
        sc = qh @ kk.transpose(1, 2) / math.sqrt(d)
        if causal:
            sc = sc.masked_fill(torch.ones(s, s, dtype=torch.bool).triu(1), float("-inf"))
        outs.append(torch.softmax(sc, -1) @ vv)
    return torch.cat(outs, -1) @ mha.out.weight.T + mha.out.bias


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kv_heads", [None, 2, 1])
def test_mha_matches_manual(causal, kv_heads):
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4, kv_heads, dropout=0.0, causal=causal).eval()
    x = torch.randn(2, 7, 32)
    expected_qkv = (4 + 2 * (kv_heads or 4)) * 8
    assert mha.qkv.out_features == expected_qkv
    torch.testing.assert_close(mha(x), manual_mha(mha, x, causal), atol=1e-5, rtol=1e-5)


def test_mha_rejects_bad_heads():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(30, 4)
    with pytest.raises(ValueError, match="multiple"):
        MultiHeadAttention(32, 4, num_kv_heads=3)


def test_block_pre_and_post_ln_formulas():
    torch.manual_seed(1)
    x = torch.randn(2, 5, 32)
    for pre_ln in (True, False):
        blk = Block(32, 4, 64, dropout=0.0, pre_ln=pre_ln).eval()
        with torch.no_grad():  # make the two LayerNorms distinguishable
            blk.ln1.weight.uniform_(0.5, 1.5)
            blk.ln2.bias.uniform_(-0.5, 0.5)
        if pre_ln:
            h = x + blk.attn(blk.ln1(x))
            expect = h + blk.mlp(blk.ln2(h))
        else:
            h = blk.ln1(x + blk.attn(x))
            expect = blk.ln2(h + blk.mlp(h))
        torch.testing.assert_close(blk(x), expect)
    a = Block(32, 4, 64, pre_ln=True).eval()
    b = Block(32, 4, 64, pre_ln=False).eval()
    b.load_state_dict(a.state_dict())
    assert not torch.allclose(a(x), b(x))


def test_mlp_is_gelu_ffn():
    torch.manual_seed(2)
    mlp = MLP(16, 40)
    x = torch.randn(3, 16)
    torch.testing.assert_close(mlp(x), F.linear(F.gelu(F.linear(x, mlp.fc1.weight, mlp.fc1.bias)),
                                                mlp.fc2.weight, mlp.fc2.bias))


def test_causal_block_ignores_future():
    torch.manual_seed(3)
    blk = Block(32, 4, 64, causal=True).eval()
    x = torch.randn(1, 9, 32)
    y = x.clone()
    y[:, 5:] = torch.randn(1, 4, 32)
    torch.testing.assert_close(blk(x)[:, :5], blk(y)[:, :5])
    assert not torch.allclose(blk(x)[:, 5:], blk(y)[:, 5:])


def test_key_padding_mask():
    assert key_padding_mask(None) is None
    m = key_padding_mask(torch.tensor([[1, 1, 0], [1, 0, 0]]))
    assert m.shape == (2, 1, 1, 3) and m.dtype == torch.bool
    assert m[:, 0, 0].tolist() == [[True, True, False], [True, False, False]]
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        key_padding_mask(torch.ones(3, dtype=torch.bool))


def test_padding_keys_are_ignored():
    torch.manual_seed(4)
    blk = Block(32, 4, 64).eval()
    x = torch.randn(1, 4, 32)
    padded = torch.cat([x, torch.randn(1, 3, 32)], dim=1)
    mask = key_padding_mask(torch.tensor([[True] * 4 + [False] * 3]))
    torch.testing.assert_close(blk(padded, mask)[:, :4], blk(x), atol=1e-5, rtol=1e-5)


def test_embeddings():
    torch.manual_seed(5)
    emb = Embeddings(20, 16, max_position=8, type_vocab_size=2, dropout=0.0, layer_norm=False).eval()
    ids = torch.tensor([[3, 4, 5]])
    expect = emb.word_embeddings(ids) + emb.position_embeddings.weight[:3] + emb.token_type_embeddings.weight[0]
    torch.testing.assert_close(emb(ids), expect)
    tt = torch.tensor([[0, 1, 1]])
    expect_tt = emb.word_embeddings(ids) + emb.position_embeddings.weight[:3] + emb.token_type_embeddings(tt)
    torch.testing.assert_close(emb(ids, tt), expect_tt)
    # explicit position ids restart positions (packed documents)
    pos = torch.tensor([[0, 0, 1]])
    assert torch.allclose(emb(ids, None, pos)[0, 1], emb.word_embeddings.weight[4] + emb.position_embeddings.weight[0]
                          + emb.token_type_embeddings.weight[0])
    with pytest.raises(ValueError, match="max_position"):
        emb(torch.zeros(1, 9, dtype=torch.long))
    gpt_emb = Embeddings(20, 16, 8, type_vocab_size=0, layer_norm=False)
    assert gpt_emb.token_type_embeddings is None
    with pytest.raises(ValueError, match="token_type_ids"):
        gpt_emb(ids, tt)
    ln = Embeddings(20, 16, 8, type_vocab_size=2, layer_norm=True).eval()
    out = ln(ids)
    torch.testing.assert_close(out.mean(-1), torch.zeros(1, 3), atol=1e-5, rtol=0)


def test_init_weights():
    torch.manual_seed(6)
    blk = Block(64, 4, 256)
    for p in blk.parameters():
        torch.nn.init.constant_(p, 3.0)
    blk.apply(lambda m: init_weights(m, 0.02))
    assert torch.all(blk.attn.qkv.bias == 0) and torch.all(blk.mlp.fc2.bias == 0)
    assert torch.all(blk.ln1.weight == 1) and torch.all(blk.ln1.bias == 0)
    std = blk.mlp.fc1.weight.std().item()
    assert 0.018 < std < 0.022


def test_block_scriptable():
    blk = Block(32, 4, 64, num_kv_heads=2, causal=True, pre_ln=False).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(blk)
    x = torch.randn(2, 6, 32)
    mask = key_padding_mask(torch.tensor([[True] * 6, [True] * 4 + [False] * 2]))
    torch.testing.assert_close(scripted(x, mask), blk(x, mask), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ packed rows: dense block mask vs varlen loop
def _packed_stack(causal: bool, type_vocab: int):
    from types import SimpleNamespace

    from bigmodel_fast.nn.transformer import TransformerStack

    cfg = SimpleNamespace(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2, num_kv_heads=None,
                          intermediate_size=32, max_position=16, dropout=0.0, layer_norm_eps=1e-5,
                          initializer_range=0.02, use_pre_ln=lambda: causal)
    torch.manual_seed(7)
    stack = TransformerStack(cfg, causal=causal, type_vocab_size=type_vocab, embedding_layer_norm=not causal)
    stack.reset_parameters()
    return stack


def test_packed_block_mask_marks_same_sequence_pairs():
    from bigmodel_fast.nn.transformer import packed_block_mask

    cu = torch.tensor([0, 2, 4, 5, 8], dtype=torch.int32)  # rows of 4: [2, 2] and [1, 3]
    mask = packed_block_mask(cu, 2, 4)
    seg = torch.tensor([[0, 0, 1, 1], [2, 3, 3, 3]])
    assert mask.shape == (2, 1, 4, 4) and mask.dtype == torch.bool
    assert torch.equal(mask[:, 0], seg[:, :, None] == seg[:, None, :])
    assert not mask[0, 0, 0, 2] and mask[1, 0, 3, 1]
    causal = packed_block_mask(cu, 2, 4, causal=True)
    assert torch.equal(causal, mask & torch.ones(4, 4, dtype=torch.bool).tril())
    # a sequence over a row boundary (4): no per-row mask can express it -> None (the varlen loop is used)
    assert packed_block_mask(torch.tensor([0, 3, 8]), 2, 4) is None
    with pytest.raises(ValueError, match="cu_seqlens"):
        packed_block_mask(torch.tensor([0, 3, 7]), 2, 4)
    with pytest.raises(ValueError, match="max_seqlen"):
        packed_block_mask(cu, 2, 4, max_seqlen=2)


@pytest.mark.parametrize("causal", [True, False])
def test_packed_dense_path_equals_varlen_loop_and_isolates_documents(causal):
    """Stack output and gradients with the block mask (packed_dense) equal the per-sequence varlen loop, and each
    document's hidden states equal running that document alone (no attention across documents)."""
    stack = _packed_stack(causal, type_vocab=0 if causal else 2).train()  # dropout 0: train mode is deterministic
    ids = torch.randint(0, 50, (2, 8))
    cu = torch.tensor([0, 3, 8, 9, 12, 16], dtype=torch.int32)  # row 0: 3 + 5, row 1: 1 + 3 + 4
    pos = torch.cat([torch.arange(n) for n in (cu[1:] - cu[:-1]).tolist()]).view(2, 8)
    outs, grads = [], []
    for dense in (True, False):
        stack.packed_dense = dense
        stack.zero_grad()
        y = stack(ids, position_ids=pos, cu_seqlens=cu)  # (2, 8, 16)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        outs.append(y.detach())
        grads.append([p.grad.clone() for p in stack.parameters() if p.grad is not None])
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    flat_ids, flat_out = ids.reshape(-1), outs[0].reshape(-1, 16)
    stack.eval()
    for a, b in zip(cu[:-1].tolist(), cu[1:].tolist()):
        alone = stack(flat_ids[a:b][None], position_ids=torch.arange(b - a))[0]  # (L, E)
        torch.testing.assert_close(flat_out[a:b], alone, atol=1e-5, rtol=1e-5)


def test_packed_dense_path_runs_one_attention_call_per_layer(monkeypatch):
    import bigmodel_fast.nn.transformer as tr

    stack = _packed_stack(True, type_vocab=0).eval()
    calls = {"dense": 0, "varlen": 0}
    real_dense, real_varlen = tr.attention, tr.varlen_attention
    monkeypatch.setattr(tr, "attention", lambda *a, **k: calls.__setitem__("dense", calls["dense"] + 1)
                        or real_dense(*a, **k))
    monkeypatch.setattr(tr, "varlen_attention", lambda *a, **k: calls.__setitem__("varlen", calls["varlen"] + 1)
                        or real_varlen(*a, **k))
    cu = torch.tensor([0, 3, 8, 9, 12, 16])
    stack(torch.randint(0, 50, (2, 8)), cu_seqlens=cu)
    assert calls == {"dense": 2, "varlen": 0}
    stack(torch.randint(0, 50, (2, 8)), cu_seqlens=torch.tensor([0, 5, 16]))  # crosses the row boundary 8
    assert calls == {"dense": 2, "varlen": 2}
