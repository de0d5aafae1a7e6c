"""Chunked linear + cross-entropy (ops.linear_cross_entropy) against the plain F.linear + masked CE reference.

Tolerances: in fp32 both paths do the same float operations except the order of the sums (log-sum-exp per chunk
vs over the whole (N, V) block, grad_weight accumulated chunk by chunk), so they agree to a few ulp of the
largest value: 2e-6 relative to the largest magnitude (observed ~5e-7). In fp64 they agree to 1e-12. Under bf16
the project rule applies: the error against an fp64 truth is at most 2x the plain path's error in the same dtype.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bigmodel_fast.ops.linear_cross_entropy import (
    default_chunk_size,
    linear_cross_entropy,
    linear_cross_entropy_reference,
)


def _inputs(n, e, v, ignore_every=0, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, e, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    w = (torch.randn(v, e, generator=g, dtype=torch.float64) * 0.5).to(dtype).requires_grad_()
    t = torch.randint(0, v, (n,), generator=g)
    if ignore_every:
        t[::ignore_every] = -100
    return h, w, t


def _loss_grads(fn, h, w, t, scale=1.0, **kw):
    """(loss, grad_hidden, grad_weight) of ``scale * fn(h, w, t)``: scale != 1 checks the backward's scaling."""
    loss = fn(h, w, t, **kw)
    gh, gw = torch.autograd.grad(loss * scale, (h, w))
    return loss.detach(), gh, gw


def _rel_err(got, want):
    got, want = got.detach().double(), want.detach().double()
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-30))


@pytest.mark.parametrize("n,e,v,ignore_every,chunk", [
    (37, 16, 53, 5, 1),      # one token per chunk
    (37, 16, 53, 5, 7),      # odd chunk, N not a multiple of it
    (37, 16, 53, 0, 100),    # chunk > N, nothing ignored
    (64, 24, 301, 3, 16),    # N a multiple of the chunk, V odd
    (50, 8, 1001, 2, None),  # default chunk size
])
def test_fp32_loss_and_grads_equal_the_reference(n, e, v, ignore_every, chunk):
    h, w, t = _inputs(n, e, v, ignore_every)
    got = _loss_grads(linear_cross_entropy, h, w, t, scale=2.5, chunk_size=chunk)
    want = _loss_grads(linear_cross_entropy_reference, h, w, t, scale=2.5)
    for name, a, b in zip(("loss", "grad_hidden", "grad_weight"), got, want):
        assert a.dtype == b.dtype == torch.float32, name
        assert _rel_err(a, b) < 2e-6, (name, _rel_err(a, b))


def test_fp64_matches_to_1e_12_and_finite_differences():
    h, w, t = _inputs(19, 6, 23, 4, dtype=torch.float64)
    got = _loss_grads(linear_cross_entropy, h, w, t, chunk_size=4)
    want = _loss_grads(linear_cross_entropy_reference, h, w, t)
    for a, b in zip(got, want):
        assert a.dtype == torch.float64 and _rel_err(a, b) < 1e-12
    # directional central differences (gradcheck needs several backwards of one graph, which the in-place scaled
    # backward refuses by design)
    g = torch.Generator().manual_seed(1)
    for reduction in ("mean", "sum"):
        _, gh, gw = _loss_grads(linear_cross_entropy, h, w, t, chunk_size=5, reduction=reduction)
        for _ in range(3):
            dh = torch.randn(h.shape, generator=g, dtype=torch.float64)
            dw = torch.randn(w.shape, generator=g, dtype=torch.float64)
            eps = 1e-6
            with torch.no_grad():
                up = linear_cross_entropy(h + eps * dh, w + eps * dw, t, reduction=reduction)
                down = linear_cross_entropy(h - eps * dh, w - eps * dw, t, reduction=reduction)
            numeric = float((up - down) / (2 * eps))
            analytic = float((gh * dh).sum() + (gw * dw).sum())
            assert abs(numeric - analytic) <= 1e-7 * max(1.0, abs(analytic)), (reduction, numeric, analytic)


def test_sum_reduction_equals_the_reference_sum():
    h, w, t = _inputs(29, 8, 41, 3)
    got = _loss_grads(linear_cross_entropy, h, w, t, chunk_size=5, reduction="sum")
    want = _loss_grads(linear_cross_entropy_reference, h, w, t, reduction="sum")
    for a, b in zip(got, want):
        assert _rel_err(a, b) < 2e-6


def test_all_ignored_gives_zero_loss_and_zero_grads():
    h, w, _ = _inputs(11, 8, 17)
    t = torch.full((11,), -100)
    loss, gh, gw = _loss_grads(linear_cross_entropy, h, w, t, chunk_size=3)
    assert float(loss) == 0.0 and torch.count_nonzero(gh) == 0 and torch.count_nonzero(gw) == 0
    assert float(linear_cross_entropy_reference(h, w, t).detach()) == 0.0


def test_custom_ignore_index_and_large_logits_stay_finite():
    h, w, t = _inputs(20, 8, 31)
    t[::2] = 7  # 7 is the ignored value here
    with torch.no_grad():
        h *= 60.0  # logits in the hundreds: the log-sum-exp must not overflow
    got = _loss_grads(linear_cross_entropy, h, w, t, ignore_index=7, chunk_size=6)
    want = _loss_grads(linear_cross_entropy_reference, h, w, t, ignore_index=7)
    assert all(torch.isfinite(x).all() for x in got)
    for a, b in zip(got, want):
        assert _rel_err(a, b) < 2e-6


def test_tied_weight_gradients_add_up_with_the_embedding_path():
    """The projection is the embedding matrix: its gradient is the lookup's plus the head's, as in the plain path."""
    torch.manual_seed(0)
    emb = nn.Embedding(45, 12)
    mix = nn.Linear(12, 12)
    ids = torch.randint(0, 45, (3, 7))
    labels = torch.roll(ids, -1, dims=1)
    labels[:, -1] = -100

    def grads(fn, **kw):
        emb.zero_grad(set_to_none=True)
        mix.zero_grad(set_to_none=True)
        hidden = torch.tanh(mix(emb(ids))).reshape(-1, 12)  # (21, 12)
        loss = fn(hidden, emb.weight, labels.reshape(-1), **kw)
        loss.backward()
        return loss.detach(), emb.weight.grad.clone(), mix.weight.grad.clone()

    got, want = grads(linear_cross_entropy, chunk_size=4), grads(linear_cross_entropy_reference)
    for a, b in zip(got, want):
        assert _rel_err(a, b) < 2e-6
    rows_seen = torch.zeros(45, dtype=torch.bool)
    rows_seen[ids.reshape(-1)] = True
    head_only = torch.autograd.grad(linear_cross_entropy(torch.tanh(mix(emb(ids))).reshape(-1, 12).detach(),
                                                         emb.weight, labels.reshape(-1)), emb.weight)[0]
    assert not torch.allclose(got[1][rows_seen], head_only[rows_seen])  # the lookup's share is really in there


def _bf16_errors(dtype_mode):
    """Max errors (loss, grad_hidden, grad_weight) vs an fp64 truth of the plain and the chunked path, either
    under CPU bf16 autocast with fp32 tensors or with bf16 tensors and no autocast."""
    h64, w64, t = _inputs(90, 32, 517, 4, dtype=torch.float64, seed=3)
    truth = _loss_grads(linear_cross_entropy_reference, h64, w64, t)
    errs = {}
    for name, fn, kw in (("plain", linear_cross_entropy_reference, {}), ("chunked", linear_cross_entropy,
                                                                          {"chunk_size": 13})):
        dt = torch.float32 if dtype_mode == "autocast" else torch.bfloat16
        h = h64.detach().to(dt).requires_grad_()
        w = w64.detach().to(dt).requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype_mode == "autocast"):
            loss = fn(h, w, t, **kw)
        gh, gw = torch.autograd.grad(loss, (h, w))
        assert loss.dtype == torch.float32 and gh.dtype == dt and gw.dtype == dt  # grads in the input dtypes
        errs[name] = [float((a.double() - b).abs().max()) for a, b in zip((loss.detach(), gh, gw), truth)]
    return errs


@pytest.mark.parametrize("mode", ["autocast", "bf16_tensors"])
def test_bf16_error_is_within_twice_the_plain_path(mode):
    errs = _bf16_errors(mode)
    for i, name in enumerate(("loss", "grad_hidden", "grad_weight")):
        plain, chunked = errs["plain"][i], errs["chunked"][i]
        assert plain > 0 or name == "loss"  # bf16 really was used
        assert chunked <= 2 * plain + 1e-7, (mode, name, chunked, plain)


def test_frozen_weight_no_grad_and_a_second_backward_is_refused():
    h, w, t = _inputs(21, 8, 33, 3)
    frozen = w.detach()
    (gh,) = torch.autograd.grad(linear_cross_entropy(h, frozen, t, chunk_size=5), (h,))
    (want,) = torch.autograd.grad(linear_cross_entropy_reference(h, frozen, t), (h,))
    assert _rel_err(gh, want) < 2e-6
    with torch.no_grad():
        loss = linear_cross_entropy(h, w, t, chunk_size=5)
    assert not loss.requires_grad
    assert _rel_err(loss, linear_cross_entropy_reference(h, w, t)) < 2e-6
    loss = linear_cross_entropy(h, w, t, chunk_size=4)
    torch.autograd.grad(loss, (h, w), retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):  # scaled in place: one backward
        torch.autograd.grad(loss, (h, w))


def test_default_chunk_size_and_argument_errors():
    assert default_chunk_size(16384, 50257) == 166  # 32 MiB of fp32 logits per chunk
    assert default_chunk_size(10, 50257) == 10 and default_chunk_size(0, 50257) == 1
    assert default_chunk_size(100, 10**9) == 1
    h, w, t = _inputs(5, 4, 9)
    with pytest.raises(ValueError, match="hidden must be"):
        linear_cross_entropy(h[0], w, t)
    with pytest.raises(ValueError, match=r"weight must be \(V, 4\)"):
        linear_cross_entropy(h, w[:, :3], t)
    with pytest.raises(ValueError, match=r"targets must be \(5,\)"):
        linear_cross_entropy(h, w, t[:4])
    with pytest.raises(ValueError, match="targets must be torch.long"):
        linear_cross_entropy(h, w, t.int())
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        linear_cross_entropy(h, w, t, chunk_size=0)
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
        linear_cross_entropy(h, w, t, reduction="none")
