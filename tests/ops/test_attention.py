from __future__ import annotations

import importlib
import math
import warnings

import pytest
import torch

from bigmodel_fast.ops.attention import (
    AttentionBackendError,
    attention,
    attention_backend,
    attention_reference,
    attention_sdpa,
    varlen_attention,
    varlen_attention_reference,
)

# the package re-exports the function `attention`, which shadows the submodule attribute
attn_mod = importlib.import_module("bigmodel_fast.ops.attention")


def naive(q, k, v, mask=None, scale=None):
    """Independent float64 oracle: explicit loops over heads with Python-side masking."""
    b, h, s_q, d = q.shape
    h_kv = k.shape[1]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    out = torch.zeros(b, h, s_q, d, dtype=torch.float64)
    for bi in range(b):
        for hi in range(h):
            kh = hi // (h // h_kv)
            sc = q[bi, hi].double() @ k[bi, kh].double().T * scale  # (S_q, S_k)
            if mask is not None:
                m = mask.expand(b, h, s_q, k.shape[2])[bi, hi]
                sc = sc.masked_fill(~m, float("-inf"))
            for i in range(s_q):
                if torch.isinf(sc[i]).all():
                    continue  # fully masked -> 0
                out[bi, hi, i] = torch.softmax(sc[i], -1) @ v[bi, kh].double()
    return out


def rand_qkv(b, h, s_q, s_k, d, h_kv=None, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    h_kv = h if h_kv is None else h_kv
    q = torch.randn(b, h, s_q, d, generator=g, dtype=dtype)
    k = torch.randn(b, h_kv, s_k, d, generator=g, dtype=dtype)
    v = torch.randn(b, h_kv, s_k, d, generator=g, dtype=dtype)
    return q, k, v


def causal_bool(s_q, s_k):
    i = torch.arange(s_q)[:, None]
    j = torch.arange(s_k)[None, :]
    return j <= i + (s_k - s_q)


@pytest.mark.parametrize("seq", [1, 17, 97])
@pytest.mark.parametrize("head_dim", [32, 64, 80])
def test_sdpa_matches_reference_and_oracle(seq, head_dim):
    q, k, v = rand_qkv(2, 3, seq, seq, head_dim, seed=seq + head_dim)
    ref = attention_reference(q, k, v)
    sdpa = attention_sdpa(q, k, v)
    torch.testing.assert_close(sdpa, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ref.double(), naive(q, k, v), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("s_q,s_k", [(17, 17), (5, 17), (1, 9)])
def test_causal_matches_oracle(s_q, s_k):
    q, k, v = rand_qkv(2, 2, s_q, s_k, 32, seed=1)
    expect = naive(q, k, v, mask=causal_bool(s_q, s_k)[None, None])
    for fn in (attention_reference, attention_sdpa):
        torch.testing.assert_close(fn(q, k, v, causal=True).double(), expect, atol=1e-5, rtol=1e-5)


def test_padding_mask_combined_with_causal():
    q, k, v = rand_qkv(3, 2, 11, 11, 32, seed=2)
    lengths = torch.tensor([11, 6, 1])
    pad = (torch.arange(11)[None, :] < lengths[:, None])[:, None, None, :]  # (B, 1, 1, S)
    for causal in (False, True):
        full = pad & causal_bool(11, 11)[None, None] if causal else pad
        expect = naive(q, k, v, mask=full)
        ref = attention_reference(q, k, v, attn_mask=pad, causal=causal)
        sdpa = attention_sdpa(q, k, v, attn_mask=pad, causal=causal)
        torch.testing.assert_close(ref.double(), expect, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(sdpa, ref, atol=1e-5, rtol=1e-5)


def test_full_query_mask_shape():
    q, k, v = rand_qkv(2, 2, 7, 9, 32, seed=3)
    g = torch.Generator().manual_seed(4)
    mask = torch.rand(2, 1, 7, 9, generator=g) > 0.3
    mask[..., 0] = True  # at least one key per row
    torch.testing.assert_close(attention_reference(q, k, v, mask).double(), naive(q, k, v, mask), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attention_sdpa(q, k, v, mask), attention_reference(q, k, v, mask), atol=1e-5, rtol=1e-5)


def test_fully_masked_rows_are_zero_not_nan():
    q, k, v = rand_qkv(1, 2, 4, 4, 32, seed=5)
    mask = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    mask[..., 1, :] = False
    ref = attention_reference(q, k, v, attn_mask=mask)
    assert not torch.isnan(ref).any()
    assert torch.equal(ref[:, :, 1], torch.zeros_like(ref[:, :, 1]))
    assert ref[:, :, 0].abs().sum() > 0
    # Documented behaviour of SDPA on CPU in this torch: also 0 (not guaranteed for CUDA fused kernels).
    sdpa = attention_sdpa(q, k, v, attn_mask=mask)
    assert torch.equal(sdpa[:, :, 1], torch.zeros_like(sdpa[:, :, 1]))


@pytest.mark.parametrize("h,h_kv", [(4, 2), (4, 1), (6, 3)])
def test_gqa(h, h_kv):
    q, k, v = rand_qkv(2, h, 13, 13, 32, h_kv=h_kv, seed=h * 10 + h_kv)
    expect = naive(q, k, v, mask=causal_bool(13, 13)[None, None])
    ref = attention_reference(q, k, v, causal=True)
    torch.testing.assert_close(ref.double(), expect, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attention_sdpa(q, k, v, causal=True), ref, atol=1e-5, rtol=1e-5)


def test_bad_head_ratio_and_shapes_raise():
    q, k, v = rand_qkv(1, 4, 5, 5, 32, h_kv=3)
    with pytest.raises(ValueError, match="multiple"):
        attention_reference(q, k, v)
    with pytest.raises(ValueError, match="4-D"):
        attention(q[0], k[0], v[0])


def test_non_bool_mask_rejected():
    q, k, v = rand_qkv(1, 2, 5, 5, 32)
    with pytest.raises(ValueError, match="bool"):
        attention_reference(q, k, v, attn_mask=torch.zeros(1, 1, 1, 5))


def test_reference_fp32_accumulation_for_half_inputs():
    q, k, v = rand_qkv(1, 2, 33, 33, 64, seed=6)
    out = attention_reference(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert out.dtype == torch.bfloat16
    expect = naive(q.bfloat16().float(), k.bfloat16().float(), v.bfloat16().float())
    torch.testing.assert_close(out.double(), expect, atol=1e-2, rtol=1e-2)


def test_custom_scale():
    q, k, v = rand_qkv(1, 2, 9, 9, 32, seed=7)
    torch.testing.assert_close(attention_reference(q, k, v, scale=0.3).double(), naive(q, k, v, scale=0.3),
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attention_sdpa(q, k, v, scale=0.3), attention_reference(q, k, v, scale=0.3),
                               atol=1e-5, rtol=1e-5)


def test_dropout_only_when_requested():
    q, k, v = rand_qkv(1, 2, 9, 9, 32, seed=8)
    torch.manual_seed(0)
    dropped = attention_reference(q, k, v, dropout_p=0.5)
    assert not torch.allclose(dropped, attention_reference(q, k, v))


# ---------------------------------------------------------------- backend selection
def test_backend_default_and_env(monkeypatch):
    monkeypatch.delenv("BMF_ATTENTION", raising=False)
    assert attention_backend() == "sdpa"
    monkeypatch.setenv("BMF_ATTENTION", " Reference ")
    assert attention_backend() == "reference"
    monkeypatch.setenv("BMF_ATTENTION", "")
    assert attention_backend() == "sdpa"


def test_bad_env_var_lists_valid_values(monkeypatch):
    monkeypatch.setenv("BMF_ATTENTION", "flash3")
    with pytest.raises(AttentionBackendError, match="flash3") as ei:
        attention_backend()
    for name in ("sdpa", "reference", "triton"):
        assert name in str(ei.value)
    q, k, v = rand_qkv(1, 1, 3, 3, 32)
    with pytest.raises(ValueError, match="BMF_ATTENTION"):
        attention(q, k, v)


def test_dispatch_honours_env_var(monkeypatch):
    calls = []

    def spy(name, real):
        def f(*args):
            calls.append(name)
            return real(*args)
        return f

    monkeypatch.setattr(attn_mod, "attention_sdpa", spy("sdpa", attn_mod.attention_sdpa))
    monkeypatch.setattr(attn_mod, "attention_reference", spy("reference", attn_mod.attention_reference))
    q, k, v = rand_qkv(1, 2, 5, 5, 32)
    monkeypatch.setenv("BMF_ATTENTION", "reference")
    attn_mod.attention(q, k, v)
    monkeypatch.delenv("BMF_ATTENTION")
    attn_mod.attention(q, k, v)
    assert calls == ["reference", "sdpa"]


def test_triton_backend_needs_interpreter_on_cpu(monkeypatch):
    # the kernels themselves are tested in test_attention_triton.py
    from bigmodel_fast.ops.attention import TritonUnavailableError

    monkeypatch.setenv("BMF_ATTENTION", "triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    q, k, v = rand_qkv(1, 2, 5, 5, 32)
    with pytest.raises(TritonUnavailableError, match="[Tt]riton"):
        attention(q, k, v)
    with pytest.raises(TritonUnavailableError, match="[Tt]riton"):
        varlen_attention(q[0].transpose(0, 1), k[0].transpose(0, 1), v[0].transpose(0, 1),
                         torch.tensor([0, 5], dtype=torch.int32), 5)


def test_attention_is_scriptable_and_uses_reference(monkeypatch):
    class M(torch.nn.Module):
        def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            return attention(q, k, v, m, True)

    monkeypatch.setenv("BMF_ATTENTION", "triton")  # ignored inside TorchScript
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(M())
    q, k, v = rand_qkv(2, 4, 6, 6, 32, h_kv=2)
    m = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    m[1, ..., 4:] = False
    torch.testing.assert_close(scripted(q, k, v, m), attention_reference(q, k, v, m, True), atol=0, rtol=0)


# ---------------------------------------------------------------- varlen
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("h_kv", [4, 2])
def test_varlen_equals_per_sequence_dense(causal, h_kv):
    lengths = [5, 1, 17, 9]
    cu = torch.tensor([0] + list(torch.tensor(lengths).cumsum(0)), dtype=torch.int32)
    total = sum(lengths)
    g = torch.Generator().manual_seed(9)
    q = torch.randn(total, 4, 32, generator=g)
    k = torch.randn(total, h_kv, 32, generator=g)
    v = torch.randn(total, h_kv, 32, generator=g)
    out = varlen_attention(q, k, v, cu, max(lengths), causal=causal)
    assert out.shape == q.shape
    start = 0
    for n in lengths:
        sl = slice(start, start + n)
        dense = naive(q[sl].transpose(0, 1)[None], k[sl].transpose(0, 1)[None], v[sl].transpose(0, 1)[None],
                      mask=causal_bool(n, n)[None, None] if causal else None)[0].transpose(0, 1)
        torch.testing.assert_close(out[sl].double(), dense, atol=1e-5, rtol=1e-5)
        start += n
    torch.testing.assert_close(varlen_attention_reference(q, k, v, cu, max(lengths), causal, None, "sdpa"), out,
                               atol=1e-5, rtol=1e-5)


def test_varlen_bad_cu_seqlens():
    q = torch.randn(10, 2, 32)
    with pytest.raises(ValueError, match="cu_seqlens"):
        varlen_attention(q, q, q, torch.tensor([0, 4, 9]), 5)
    with pytest.raises(ValueError, match="max_seqlen"):
        varlen_attention(q, q, q, torch.tensor([0, 4, 10]), 5)
    with pytest.raises(ValueError, match="cu_seqlens"):
        varlen_attention(q, q, q, torch.tensor([0.0, 10.0]), 10)
