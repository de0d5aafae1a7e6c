"""bigmodel_fast.nn.lstm.LSTM against torch.nn.LSTM with the same weights: outputs, final states, every gradient.

Reference backend (the CPU path) at moderate sizes, Triton backend at tiny sizes (interpreter without a GPU;
``TRITON_INTERPRET=1`` is set below before triton is imported). Low precision rule: err(ours in fp16/bf16 vs
torch fp32) <= 2 * err(torch in fp16/bf16 vs torch fp32) + floor, where "torch in fp16" is ``torch.nn.LSTM`` run in
fp16 (it runs on CPU in torch 2.13; on GPU it is cuDNN). bf16 is checked on GPU only.
"""

from __future__ import annotations

import os
import warnings

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

from bigmodel_fast.nn.lstm import LSTM  # noqa: E402
from bigmodel_fast.ops import lstm as L  # noqa: E402

CUDA = torch.cuda.is_available()
DEV = "cuda" if CUDA else "cpu"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(L.ENV_VAR, raising=False)
    monkeypatch.delenv(L.MODE_ENV_VAR, raising=False)
    if CUDA:
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


def _pair(input_size, hidden, seed=0, dtype=torch.float32, device="cpu", **kw):
    torch.manual_seed(seed)
    ref = torch.nn.LSTM(input_size, hidden, **kw).to(device=device, dtype=dtype)
    ours = LSTM(input_size, hidden, **kw).to(device=device, dtype=dtype)
    ours.load_state_dict(ref.state_dict())  # strict: raises on any missing or unexpected key
    return ref, ours


def _forward_backward(model, x, hx, seed=5, **kw):
    """Outputs (output, h_n, c_n) and the gradients w.r.t. x, h0, c0 and every parameter, for a fixed random
    linear functional of the outputs."""
    model.zero_grad()
    x = x.detach().clone().requires_grad_()
    hx = tuple(s.detach().clone().requires_grad_() for s in hx)
    out, (h_n, c_n) = model(x, hx, **kw)
    g = torch.Generator().manual_seed(seed)
    loss = sum((y.double() * torch.randn(y.shape, generator=g, dtype=torch.float64).to(y.device)).sum()
               for y in (out, h_n, c_n))
    loss.backward()
    grads = [x.grad, hx[0].grad, hx[1].grad] + [p.grad for _, p in sorted(model.named_parameters())]
    return [out, h_n, c_n] + grads


def _errs(a, b):
    return [(x.detach().double().cpu() - y.detach().double().cpu()).abs().max().item() for x, y in zip(a, b)]


def _data(t, b, i, layers, dirs, hidden, batch_first, seed=1, dtype=torch.float32, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((b, t, i) if batch_first else (t, b, i), generator=g)
    h0 = torch.randn(layers * dirs, b, hidden, generator=g) * 0.5
    c0 = torch.randn(layers * dirs, b, hidden, generator=g) * 0.5
    return [v.to(device=device, dtype=dtype) for v in (x, h0, c0)]


# --------------------------------------------------------------------------------------------- API / drop-in

def test_parameters_and_state_dict_round_trip():
    ref = torch.nn.LSTM(5, 7, num_layers=2, bidirectional=True, bias=True)
    ours = LSTM(5, 7, num_layers=2, bidirectional=True)
    assert [(n, p.shape) for n, p in ref.named_parameters()] == [(n, p.shape) for n, p in ours.named_parameters()]
    ours.load_state_dict(ref.state_dict())
    back = torch.nn.LSTM(5, 7, num_layers=2, bidirectional=True)
    back.load_state_dict(ours.state_dict())
    for (n, a), (_, b) in zip(ref.named_parameters(), back.named_parameters()):
        assert torch.equal(a, b), n
    assert [n for n, _ in LSTM(3, 4, bias=False).named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    lim = 1 / 7 ** 0.5
    assert all(p.abs().max() <= lim for p in LSTM(5, 7).parameters())
    assert repr(LSTM(5, 7, num_layers=2, batch_first=True)) == "LSTM(5, 7, num_layers=2, batch_first=True)"
    with pytest.raises(ValueError, match="proj_size"):
        LSTM(5, 7, proj_size=3)


def test_dtype_conversion_and_assign_keep_the_flat_weights_live():
    torch.manual_seed(0)
    ref = torch.nn.LSTM(4, 6).double()
    ours = LSTM(4, 6).double()
    ours.load_state_dict(ref.state_dict(), assign=True)
    x = torch.randn(3, 2, 4, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])
    assert all(w.dtype == torch.float64 for w in ours._flat_weights)


@pytest.mark.parametrize("layers,bidir,batch_first,bias", [
    (1, False, False, True), (2, True, True, True), (3, True, False, True), (2, False, True, False),
])
def test_reference_backend_matches_torch(layers, bidir, batch_first, bias):
    dirs = 2 if bidir else 1
    ref, ours = _pair(10, 33, seed=layers, num_layers=layers, bidirectional=bidir, batch_first=batch_first,
                      bias=bias)
    x, h0, c0 = _data(7, 4, 10, layers, dirs, 33, batch_first)
    errs = _errs(_forward_backward(ours, x, (h0, c0)), _forward_backward(ref, x, (h0, c0)))
    assert max(errs) < 1e-5, errs


def test_default_states_unbatched_and_eval_dropout():
    ref, ours = _pair(6, 8, num_layers=2, dropout=0.3)
    ref.eval(), ours.eval()
    x = torch.randn(5, 3, 6)
    a, b = ref(x), ours(x)
    torch.testing.assert_close(b[0], a[0])
    torch.testing.assert_close(b[1][0], a[1][0])
    u = torch.randn(5, 6)
    hx = (torch.randn(2, 8), torch.randn(2, 8))
    a, b = ref(u, hx), ours(u, hx)
    assert b[0].shape == (5, 8) and b[1][0].shape == (2, 8)
    torch.testing.assert_close(b[0], a[0])
    ours.train()
    torch.manual_seed(0)
    o1 = ours(x)[0]
    torch.manual_seed(1)
    assert not torch.allclose(o1, ours(x)[0])  # dropout between the layers is active in training


def test_packed_sequence_and_lengths_match_torch():
    ref, ours = _pair(6, 9, num_layers=2, bidirectional=True, batch_first=True)
    x, h0, c0 = _data(6, 4, 6, 2, 2, 9, batch_first=True)
    lengths = torch.tensor([3, 6, 1, 4])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    want, (hn, cn) = ref(packed, (h0, c0))
    got, (gh, gc) = ours(packed, (h0, c0))
    assert torch.equal(got.batch_sizes, want.batch_sizes) and torch.equal(got.sorted_indices, want.sorted_indices)
    torch.testing.assert_close(got.data, want.data)
    torch.testing.assert_close(gh, hn)
    torch.testing.assert_close(gc, cn)
    padded, _ = pad_packed_sequence(want, batch_first=True, total_length=6)
    out, (lh, lc) = ours(x, (h0, c0), lengths=lengths)
    torch.testing.assert_close(out, padded)  # padded positions are 0
    torch.testing.assert_close(lh, hn)
    # gradients through the lengths path equal torch's through the packed path
    errs = _errs(_forward_backward(ours, x, (h0, c0), lengths=lengths),
                 _packed_forward_backward(ref, x, (h0, c0), lengths))
    assert max(errs) < 1e-5, errs
    with pytest.raises(ValueError, match="not both"):
        ours(packed, lengths=lengths)


def _packed_forward_backward(ref, x, hx, lengths):
    """:func:`_forward_backward` of torch's LSTM run on the packed batch, outputs padded back (pads 0)."""
    ref.zero_grad()
    x = x.detach().clone().requires_grad_()
    hx = tuple(s.detach().clone().requires_grad_() for s in hx)
    out, (h_n, c_n) = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False), hx)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    g = torch.Generator().manual_seed(5)
    loss = sum((y.double() * torch.randn(y.shape, generator=g, dtype=torch.float64)).sum() for y in (out, h_n, c_n))
    loss.backward()
    return [out, h_n, c_n, x.grad, hx[0].grad, hx[1].grad] + [p.grad for _, p in sorted(ref.named_parameters())]


def test_scriptable():
    _, ours = _pair(5, 6, num_layers=2, bidirectional=True, batch_first=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(ours)
    x = torch.randn(3, 4, 5)
    lengths = torch.tensor([4, 2, 3])
    for a, b in zip(scripted(x, None, lengths)[0], ours(x, None, lengths)[0]):
        torch.testing.assert_close(a, b)


# ----------------------------------------------------------------------------------------------- triton backend

TRITON_CASES = [  # tiny for the interpreter: (T, B, input, hidden, layers, bidirectional, batch_first, lengths)
    (1, 1, 3, 1, 1, False, False, None),
    (4, 3, 5, 16, 2, True, True, None),
    (3, 2, 4, 33, 3, False, False, None),
    (5, 3, 6, 17, 2, True, True, [5, 2, 4]),
    (2, 2, 3, 130, 1, False, True, [2, 1]),
]


@pytest.mark.parametrize("t,b,i,h,layers,bidir,batch_first,lengths", TRITON_CASES)
def test_triton_backend_matches_torch_fp32(t, b, i, h, layers, bidir, batch_first, lengths, monkeypatch):
    monkeypatch.setenv(L.ENV_VAR, "triton")
    dirs = 2 if bidir else 1
    ref, ours = _pair(i, h, seed=t + h, device=DEV, num_layers=layers, bidirectional=bidir,
                      batch_first=batch_first)
    x, h0, c0 = _data(t, b, i, layers, dirs, h, batch_first, device=DEV)
    if lengths is None:
        got, want = _forward_backward(ours, x, (h0, c0)), _forward_backward(ref, x, (h0, c0))
    else:
        lens = torch.tensor(lengths)
        got = _forward_backward(ours, x, (h0, c0), lengths=lens)
        want = _packed_forward_backward(ref.cpu(), x.cpu(), (h0.cpu(), c0.cpu()), lens)
    errs = _errs(got, want)
    assert max(errs) < 5e-5, errs


@pytest.mark.parametrize("dtype", [torch.float16, pytest.param(torch.bfloat16, marks=pytest.mark.skipif(
    not CUDA, reason="bf16 tl.dot is not supported by the Triton interpreter; bf16 runs on GPU only"))])
def test_triton_low_precision_within_twice_torchs_own_error(dtype, monkeypatch):
    """err(ours_lowp vs torch fp32) <= 2 * err(torch nn.LSTM in lowp vs torch fp32) + floor, outputs and grads.

    "torch in low precision" is ``torch.nn.LSTM`` itself run in fp16/bf16 (CPU kernels in the interpreter run,
    cuDNN on GPU).
    """
    monkeypatch.setenv(L.ENV_VAR, "triton")
    t, b, i, h, layers = (4, 3, 8, 33, 2) if not CUDA else (32, 16, 64, 256, 2)
    ref32, _ = _pair(i, h, seed=3, device=DEV, num_layers=layers, bidirectional=True)
    ref_lp, ours_lp = _pair(i, h, seed=3, dtype=dtype, device=DEV, num_layers=layers, bidirectional=True)
    x, h0, c0 = _data(t, b, i, layers, 2, h, False, device=DEV)
    want = _forward_backward(ref32, x, (h0, c0))
    base = _forward_backward(ref_lp, x.to(dtype), (h0.to(dtype), c0.to(dtype)))
    got = _forward_backward(ours_lp, x.to(dtype), (h0.to(dtype), c0.to(dtype)))
    floor = 1e-3 if dtype == torch.float16 else 8e-3
    for k, (e_ours, e_torch) in enumerate(zip(_errs(got, want), _errs(base, want))):
        assert e_ours <= 2 * e_torch + floor, (k, e_ours, e_torch)


@pytest.mark.skipif(not CUDA, reason="autocast dtype flow through the kernels: GPU only")
def test_triton_under_bf16_autocast_trains():
    _, ours = _pair(64, 128, device="cuda", num_layers=2)
    x = torch.randn(10, 8, 64, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out, (h_n, c_n) = ours(x)
    assert out.dtype == torch.bfloat16
    out.float().square().mean().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in ours.parameters())
