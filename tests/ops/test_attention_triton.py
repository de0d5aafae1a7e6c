"""Triton fused attention: numerics against an fp32 reference, varlen, key padding, GQA, dispatch, torch.compile.

Error rule (outputs and dQ, dK, dV): ``err(ours) <= 2 * err(PyTorch SDPA in the same dtype) + floor``, both errors
measured as max |x - x_fp32| against :func:`attention_reference` run in fp32 on the same (upcast) inputs.
Without a GPU the kernels run in the Triton interpreter (``tests/ops/conftest.py`` sets ``TRITON_INTERPRET=1``),
in fp32 and fp16 at small sizes; bf16 runs only on a GPU (the interpreter miscomputes bf16 ``tl.dot``).
"""

from __future__ import annotations

import importlib
import os

import pytest
import torch

from bigmodel_fast.ops.attention import (
    TritonUnavailableError,
    attention,
    attention_backend,
    attention_reference,
    attention_sdpa,
    triton_attention,
    triton_fallback_reason,
    triton_varlen_attention,
    varlen_attention,
    varlen_attention_reference,
)

attn_mod = importlib.import_module("bigmodel_fast.ops.attention")
attn_op = importlib.import_module("bigmodel_fast.ops.attention_op")  # the custom ops and their autograd

CUDA = torch.cuda.is_available()
DEV = "cuda" if CUDA else "cpu"
if not CUDA and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no GPU and TRITON_INTERPRET is not 1 (tests/ops/conftest.py sets it)", allow_module_level=True)

FLOOR = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 8e-3}
BF16 = pytest.param(torch.bfloat16, marks=pytest.mark.skipif(
    not CUDA, reason="bf16 needs a GPU: the Triton interpreter miscomputes bf16 tl.dot"))
DTYPES = [torch.float32, torch.float16, BF16]
SLOW = pytest.mark.skipif(os.environ.get("BMF_SLOW_TESTS") != "1",
                          reason="larger sweep, too slow for the CPU Triton interpreter; set BMF_SLOW_TESTS=1")


def randn(*shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).to(device=DEV, dtype=dtype)


def run(fn, inputs, do):
    """fn(*inputs) and the gradients of <out, do> w.r.t. the inputs."""
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    out = fn(*leaves)
    out.backward(do)
    return [out.detach()] + [x.grad for x in leaves]


def assert_rule(ours, base, ref, dtype, names=("out", "dq", "dk", "dv")):
    for name, o, b, r in zip(names, ours, base, ref):
        assert torch.isfinite(o).all(), name + ": non-finite values"
        err = (o.float() - r.float()).abs().max().item()
        err_base = (b.float() - r.float()).abs().max().item()
        bound = 2 * err_base + FLOOR[dtype]
        assert err <= bound, f"{name}: err {err:.3e} > 2 * torch err {err_base:.3e} + floor {FLOOR[dtype]:.0e}"


def check_dense(b, h, h_kv, s_q, s_k, d, causal, dtype, mask=None, scale=None, seed=0):
    q = randn(b, h, s_q, d, dtype=dtype, seed=seed)
    k = randn(b, h_kv, s_k, d, dtype=dtype, seed=seed + 1)
    v = randn(b, h_kv, s_k, d, dtype=dtype, seed=seed + 2)
    do = randn(b, h, s_q, d, dtype=dtype, seed=seed + 3)
    ref = run(lambda q, k, v: attention_reference(q, k, v, mask, causal, scale), [x.float() for x in (q, k, v)],
              do.float())
    base = run(lambda q, k, v: attention_sdpa(q, k, v, mask, causal, scale), [q, k, v], do)
    ours = run(lambda q, k, v: triton_attention(q, k, v, mask, causal, scale), [q, k, v], do)
    assert ours[0].dtype == dtype and ours[0].shape == q.shape
    assert_rule(ours, base, ref, dtype)
    return ours


# ------------------------------------------------------------------------------------------------------ dense
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seq,head_dim", [(1, 32), (17, 64), (97, 80), (17, 128), (257, 32)])
def test_dense_odd_lengths_and_head_dims(seq, head_dim, causal, dtype):
    check_dense(1, 2, 2, seq, seq, head_dim, causal, dtype, seed=seq + head_dim)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("h,h_kv", [(4, 2), (4, 1)])
def test_gqa(h, h_kv, causal, dtype):
    check_dense(2, h, h_kv, 33, 33, 32, causal, dtype, seed=h_kv)


@pytest.mark.parametrize("s_q,s_k", [(5, 40), (40, 5), (1, 17)])
def test_unequal_lengths_bottom_right_causal(s_q, s_k):
    # s_q > s_k: the first s_q - s_k rows see no key (output and gradients 0)
    check_dense(1, 2, 1, s_q, s_k, 64, True, torch.float32, seed=s_q)
    check_dense(1, 2, 2, s_q, s_k, 48, False, torch.float16, seed=s_k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_key_padding_mask_right_and_left(causal, dtype):
    s = 37
    lengths = torch.tensor([37, 20, 1])
    pos = torch.arange(s)[None, :]
    right = (pos < lengths[:, None])[:, None, None, :].to(DEV)  # (B, 1, 1, S)
    left = (pos >= s - lengths[:, None])[:, None, None, :].to(DEV)
    check_dense(3, 2, 1, s, s, 32, causal, dtype, mask=right, seed=3)
    if not causal:  # left padding + causal leaves rows without keys, where SDPA's gradient is NaN
        check_dense(3, 2, 1, s, s, 32, causal, dtype, mask=left, seed=4)


def test_fully_masked_rows_give_zero_output_and_gradients():
    q, k, v = (randn(2, 2, 9, 32, dtype=torch.float32, seed=i) for i in range(3))
    mask = torch.ones(2, 1, 1, 9, dtype=torch.bool, device=DEV)
    mask[1] = False  # second batch entry: no key at all
    out, dq, dk, dv = run(lambda q, k, v: triton_attention(q, k, v, mask), [q, k, v], torch.ones_like(q))
    ref = attention_reference(q, k, v, mask)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for t in (out, dq, dk, dv):
        assert torch.isfinite(t).all() and t[1].abs().max() == 0


def test_custom_scale_and_noncontiguous_inputs():
    # the models pass q, k, v as transposed slices of one fused QKV projection
    b, s, h, d = 2, 19, 2, 32
    qkv = randn(b, s, 3 * h * d, dtype=torch.float16, seed=11)
    q, k, v = (qkv[..., i * h * d:(i + 1) * h * d].view(b, s, h, d).transpose(1, 2) for i in range(3))
    assert not q.is_contiguous()
    out = triton_attention(q, k, v, None, True, 0.3)
    torch.testing.assert_close(out, attention_reference(q, k, v, None, True, 0.3), atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("head_dim", [16, 8])
def test_small_head_dims(head_dim):
    check_dense(1, 2, 2, 20, 20, head_dim, True, torch.float32, seed=head_dim)


@SLOW
@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("head_dim", [32, 64, 80, 128])
@pytest.mark.parametrize("seq", [1, 17, 97, 257])
def test_dense_sweep(seq, head_dim, causal, dtype):
    check_dense(2, 4, 2, seq, seq, head_dim, causal, dtype, seed=seq * head_dim)


# ----------------------------------------------------------------------------------------------------- varlen
def check_varlen(lengths, h, h_kv, d, causal, dtype, seed=0):
    cu = torch.tensor([0] + torch.tensor(lengths).cumsum(0).tolist(), dtype=torch.int32, device=DEV)
    t = sum(lengths)
    q = randn(t, h, d, dtype=dtype, seed=seed)
    k = randn(t, h_kv, d, dtype=dtype, seed=seed + 1)
    v = randn(t, h_kv, d, dtype=dtype, seed=seed + 2)
    do = randn(t, h, d, dtype=dtype, seed=seed + 3)
    mx = max(lengths)
    ref = run(lambda q, k, v: varlen_attention_reference(q, k, v, cu, mx, causal), [x.float() for x in (q, k, v)],
              do.float())
    base = run(lambda q, k, v: varlen_attention_reference(q, k, v, cu, mx, causal, None, "sdpa"), [q, k, v], do)
    ours = run(lambda q, k, v: triton_varlen_attention(q, k, v, cu, mx, causal), [q, k, v], do)
    assert_rule(ours, base, ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_varlen_very_different_lengths(causal, dtype):
    check_varlen([1, 70, 3, 17, 1, 33], 2, 2, 64, causal, dtype, seed=5)


@pytest.mark.parametrize("causal", [False, True])
def test_varlen_gqa_odd_head_dim(causal):
    check_varlen([23, 1, 9], 4, 2, 80, causal, torch.float16, seed=6)


def test_varlen_strided_views_of_fused_qkv():
    # layout of nn.transformer.packed_attention: q, k, v are column slices of one (T, (H + 2 H_kv) D) projection
    t, h, h_kv, d = 30, 4, 2, 32
    flat = randn(t, (h + 2 * h_kv) * d, dtype=torch.float16, seed=12)
    q = flat[:, : h * d].reshape(t, h, d)
    k = flat[:, h * d:(h + h_kv) * d].reshape(t, h_kv, d)
    v = flat[:, (h + h_kv) * d:].reshape(t, h_kv, d)
    cu = torch.tensor([0, 11, 30], dtype=torch.int64, device=DEV)
    out = triton_varlen_attention(q, k, v, cu, 19, causal=True)
    torch.testing.assert_close(out, varlen_attention_reference(q, k, v, cu, 19, True), atol=2e-3, rtol=2e-3)


def test_varlen_has_no_cross_talk():
    # changing one sequence must not change any other sequence's output
    lengths = [7, 12, 5]
    cu = torch.tensor([0, 7, 19, 24], dtype=torch.int32, device=DEV)
    q, k, v = (randn(24, 2, 32, dtype=torch.float32, seed=i) for i in range(3))
    out = triton_varlen_attention(q, k, v, cu, 12, causal=False)
    k2 = k.clone()
    k2[7:19] += 1.0
    out2 = triton_varlen_attention(q, k2, v, cu, 12, causal=False)
    assert torch.equal(out[:7], out2[:7]) and torch.equal(out[19:], out2[19:])
    assert not torch.equal(out[7:19], out2[7:19])
    assert lengths == [7, 12, 5]


def test_varlen_rejects_bad_max_seqlen_on_cpu_offsets():
    q = randn(10, 2, 32, dtype=torch.float32, seed=0)
    with pytest.raises(ValueError, match="max_seqlen"):
        triton_varlen_attention(q, q, q, torch.tensor([0, 4, 10], dtype=torch.int32), 5)


# --------------------------------------------------------------------------------------------------- dispatch
def test_dispatch_defaults(monkeypatch):
    monkeypatch.delenv("BMF_ATTENTION", raising=False)
    assert attention_backend() == "sdpa"
    assert attention_backend(torch.device("cpu")) == "sdpa"
    assert attention_backend(torch.device("cuda")) == ("triton" if attn_mod._HAS_TRITON else "sdpa")
    assert attention_backend(torch.device("cuda"), backend="sdpa") == "sdpa"
    monkeypatch.setenv("BMF_ATTENTION", "reference")
    assert attention_backend(torch.device("cuda")) == "reference"
    assert attention_backend(torch.device("cuda"), backend="triton") == "triton"
    with pytest.raises(ValueError, match="backend"):
        attention_backend(backend="flash9")


def _spy_op(monkeypatch):
    calls = []
    real = attn_mod._flash_attn

    def spy(*args):
        calls.append(args[4] is not None)  # varlen?
        return real(*args)

    monkeypatch.setattr(attn_mod, "_flash_attn", spy)
    return calls


def test_env_var_routes_to_kernel(monkeypatch):
    calls = _spy_op(monkeypatch)
    q, k, v = (randn(2, 2, 9, 32, dtype=torch.float32, seed=i) for i in range(3))
    pad = torch.tensor([[True] * 9, [True] * 4 + [False] * 5], device=DEV)[:, None, None, :]
    monkeypatch.setenv("BMF_ATTENTION", "triton")
    out = attention(q, k, v, pad, True)
    torch.testing.assert_close(out, attention_reference(q, k, v, pad, True), atol=1e-5, rtol=1e-5)
    cu = torch.tensor([0, 4, 9], dtype=torch.int32, device=DEV)
    varlen_attention(q[0].transpose(0, 1), k[0].transpose(0, 1), v[0].transpose(0, 1), cu, 5)
    assert calls == [False, True]
    # unsupported calls fall back to SDPA: dropout, a general (per-query) mask
    full = torch.ones(2, 1, 9, 9, dtype=torch.bool, device=DEV).tril()
    assert "dropout" in triton_fallback_reason(q, k, v, None, 0.1)
    assert "key-padding" in triton_fallback_reason(q, k, v, full)
    attention(q, k, v, full)
    attention(q, k, v, dropout_p=0.5)
    assert calls == [False, True]
    monkeypatch.setenv("BMF_ATTENTION", "sdpa")
    attention(q, k, v, backend="triton")
    assert calls == [False, True, False]


def test_forced_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("BMF_ATTENTION", "triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    q = torch.randn(1, 2, 5, 32)
    with pytest.raises(TritonUnavailableError, match="TRITON_INTERPRET=1"):
        attention(q, q, q)
    with pytest.raises(TritonUnavailableError, match="TRITON_INTERPRET=1"):
        varlen_attention(q[0].transpose(0, 1), q[0].transpose(0, 1), q[0].transpose(0, 1),
                         torch.tensor([0, 5], dtype=torch.int32), 5)
    with pytest.raises(ValueError, match="key-padding"):
        triton_attention(q, q, q, torch.ones(1, 1, 5, 5, dtype=torch.bool))


def test_models_run_through_the_kernel(monkeypatch):
    from bigmodel_fast.models import BertModel, ModelConfig

    cfg = ModelConfig(arch="bert", vocab_size=64, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                      max_position=32, dropout=0.0, type_vocab_size=2)
    torch.manual_seed(0)
    model = BertModel(cfg).to(DEV).eval()
    ids = torch.randint(0, 64, (3, 13), device=DEV)
    am = torch.ones(3, 13, dtype=torch.bool, device=DEV)
    am[1, 6:] = False
    am[2, 1:] = False
    monkeypatch.setenv("BMF_ATTENTION", "sdpa")
    expect = model(ids, am)
    calls = _spy_op(monkeypatch)
    monkeypatch.setenv("BMF_ATTENTION", "triton")
    got = model(ids, am)
    assert len(calls) == cfg.num_layers
    torch.testing.assert_close(got, expect, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------- eager autograd.Function vs custom op, compile
@pytest.mark.parametrize("varlen", [False, True])
def test_eager_function_and_custom_op_agree_bitwise(varlen, monkeypatch):
    """Eager calls skip the custom op (cheaper dispatch) but run the same kernels: results must be identical."""
    if varlen:
        q, k, v, do = (randn(12, 4, 16, dtype=torch.float32, seed=i) for i in range(4))
        k, v = k[:, :2], v[:, :2]  # GQA
        cu = torch.tensor([0, 1, 9, 12], dtype=torch.int32, device=DEV)
        extra = (None, cu, 8, True, 0.3)
    else:
        q, k, v, do = (randn(2, 2, 9, 16, dtype=torch.float32, seed=i) for i in range(4))
        extra = (torch.tensor([[1] * 9, [1] * 5 + [0] * 4], dtype=torch.uint8, device=DEV), None, 0, True, 0.3)
    op_calls = []
    real_op = attn_op._flash_attn_fwd
    monkeypatch.setattr(attn_op, "_flash_attn_fwd", lambda *a: op_calls.append(1) or real_op(*a))
    eager = run(lambda q, k, v: attn_op._flash_attn(q, k, v, *extra), [q, k, v], do)
    assert op_calls == []  # eager mode went through the autograd.Function
    op = run(lambda q, k, v: real_op(q, k, v, *extra)[0], [q, k, v], do)
    for name, a, b in zip(("out", "dq", "dk", "dv"), eager, op):
        assert torch.equal(a, b), name


def test_double_backward_is_a_clear_error():
    q, k, v = (randn(1, 2, 5, 16, dtype=torch.float32, seed=i).requires_grad_() for i in range(3))
    out = triton_attention(q, k, v, None, True)
    (gq,) = torch.autograd.grad(out.square().sum(), q, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        gq.sum().backward()


# ------------------------------------------------------------------------------------------ torch.compile, opcheck
def test_torch_compile_traces_through_the_op():
    class Attn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(32, 3 * 32)

        def forward(self, x, pad):
            b, s, _ = x.shape
            q, k, v = self.proj(x).view(b, s, 3, 2, 16).permute(2, 0, 3, 1, 4)
            return triton_attention(q, k, v, pad, True).transpose(1, 2).reshape(b, s, 32)

    torch.manual_seed(0)
    m = Attn().to(DEV)
    x = torch.randn(2, 11, 32, device=DEV)
    pad = torch.ones(2, 1, 1, 11, dtype=torch.bool, device=DEV)
    pad[1, ..., 7:] = False
    expect = m(x, pad)
    expect.sum().backward()
    g_expect = m.proj.weight.grad.clone()
    m.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    got = compiled(x, pad)
    got.sum().backward()
    torch.testing.assert_close(got, expect, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.proj.weight.grad, g_expect, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("varlen", [False, True])
def test_opcheck(varlen):
    if varlen:
        q, k, v = (randn(12, 2, 16, dtype=torch.float32, seed=i).requires_grad_() for i in range(3))
        cu = torch.tensor([0, 5, 12], dtype=torch.int32, device=DEV)
        args = (q, k, v, None, cu, 7, True, 0.25)
    else:
        q, k, v = (randn(1, 2, 7, 16, dtype=torch.float32, seed=i).requires_grad_() for i in range(3))
        km = torch.tensor([[1, 1, 1, 1, 0, 0, 0]], dtype=torch.uint8, device=DEV)
        args = (q, k, v, km, None, 0, False, 0.25)
    torch.library.opcheck(attn_op._flash_attn_fwd, args)
