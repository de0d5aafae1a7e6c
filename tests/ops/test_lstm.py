"""ops.lstm: backend dispatch, the reference recurrence, and the Triton kernels against a float64 oracle.

Without a GPU the Triton kernels run in the interpreter (``TRITON_INTERPRET=1``, set below before triton is
imported): fp32 and fp16 only (``tl.dot`` on bf16 is wrong in the interpreter), tiny sizes. On a GPU the same tests
run natively, plus bf16 and the multi-block persistent (grid barrier) kernels at real sizes.
"""

from __future__ import annotations

import os
import warnings

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

from bigmodel_fast.ops import lstm as L  # noqa: E402
from bigmodel_fast.ops import lstm_op  # noqa: E402

CUDA = torch.cuda.is_available()
DEV = "cuda" if CUDA else "cpu"
needs_gpu_bf16 = pytest.mark.skipif(not CUDA, reason="bf16 tl.dot is not supported by the Triton interpreter; "
                                                     "bf16 runs on GPU only")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(L.ENV_VAR, raising=False)
    monkeypatch.delenv(L.MODE_ENV_VAR, raising=False)
    if CUDA:  # fp32 comparisons are tight: no TF32 in our kernels (they follow cudnn.allow_tf32) or in torch
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


# ------------------------------------------------------------------------------------------------------- dispatch

def test_backend_selection(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert L.lstm_backend(cpu) == "reference"
    assert L.lstm_backend(cuda) == "triton"
    monkeypatch.setenv(L.ENV_VAR, " Reference ")
    assert L.lstm_backend(cuda) == "reference"
    monkeypatch.setenv(L.ENV_VAR, "auto")
    assert L.lstm_backend(cpu) == "reference"
    monkeypatch.setenv(L.ENV_VAR, "cudnn")
    with pytest.raises(L.LSTMBackendError, match="BMF_LSTM='cudnn'.*auto, reference, triton"):
        L.lstm_backend(cpu)
    monkeypatch.setenv(L.ENV_VAR, "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(L.LSTMBackendError, match="TRITON_INTERPRET=1"):
        L.lstm_backend(cpu)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert L.lstm_backend(cpu) == "triton"
    monkeypatch.setenv(L.MODE_ENV_VAR, "sometimes")
    with pytest.raises(L.LSTMBackendError, match=L.MODE_ENV_VAR):
        lstm_op._triton_mode()


def test_dispatch_calls_the_selected_backend(monkeypatch):
    calls = []
    monkeypatch.setattr(L, "lstm_recurrence_triton",
                        lambda *a: calls.append("triton") or L.lstm_recurrence_reference(*a))
    xg, w, h0, c0 = _inputs(2, 2, 3, torch.float32, seed=0)
    L.lstm_recurrence(xg, w, h0, c0)
    assert calls == []
    monkeypatch.setenv(L.ENV_VAR, "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    L.lstm_recurrence(xg, w, h0, c0)
    assert calls == ["triton"]


# ------------------------------------------------------------------------------------------------------ helpers

def _inputs(t, b, h, dtype, seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    xg = torch.randn(t, b, 4 * h, generator=g, dtype=torch.float64)
    w = torch.randn(4 * h, h, generator=g, dtype=torch.float64) / max(1.0, h ** 0.5) * 1.5
    h0 = torch.randn(b, h, generator=g, dtype=torch.float64) * 0.5
    c0 = torch.randn(b, h, generator=g, dtype=torch.float64) * 0.5
    return [x.to(device=device, dtype=dtype) for x in (xg, w, h0, c0)]


def _run(fn, inputs, lengths, reverse, seed=1):
    """Outputs and the gradients of a random linear functional of (out, h_n, c_n) w.r.t. xg, w_hh, h0, c0."""
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    out, h_n, c_n = fn(*leaves, lengths, reverse)
    g = torch.Generator().manual_seed(seed)
    loss = sum((y.double() * torch.randn(y.shape, generator=g, dtype=torch.float64).to(y.device)).sum()
               for y in (out, h_n, c_n))
    loss.backward()
    return [out, h_n, c_n] + [x.grad for x in leaves]


def _oracle(inputs, lengths, reverse):
    return _run(L.lstm_recurrence_reference, [x.detach().cpu().double() for x in inputs],
                None if lengths is None else lengths.cpu(), reverse)


def _max_err(got, ref):
    return [(a.detach().cpu().double() - b.double()).abs().max().item() for a, b in zip(got, ref)]


NAMES = ["out", "h_n", "c_n", "d_xg", "d_w_hh", "d_h0", "d_c0"]


# --------------------------------------------------------------------------------------------------- reference

def test_reference_matches_torch_lstm_single_layer():
    torch.manual_seed(0)
    ref = torch.nn.LSTM(24, 40).double()
    x = torch.randn(9, 5, 24, dtype=torch.float64)
    h0 = torch.randn(1, 5, 40, dtype=torch.float64)
    c0 = torch.randn(1, 5, 40, dtype=torch.float64)
    want, (hn, cn) = ref(x, (h0, c0))
    xg = torch.nn.functional.linear(x, ref.weight_ih_l0, ref.bias_ih_l0 + ref.bias_hh_l0)
    out, h, c = L.lstm_recurrence_reference(xg, ref.weight_hh_l0, h0[0], c0[0])
    torch.testing.assert_close(out, want, atol=1e-12, rtol=0)
    torch.testing.assert_close(h, hn[0], atol=1e-12, rtol=0)
    torch.testing.assert_close(c, cn[0], atol=1e-12, rtol=0)


def test_reference_lengths_equal_truncated_runs():
    xg, w, h0, c0 = _inputs(6, 3, 5, torch.float64, seed=2)
    lengths = torch.tensor([6, 2, 0])
    for reverse in (False, True):
        out, h, c = L.lstm_recurrence_reference(xg, w, h0, c0, lengths, reverse)
        for b, n in enumerate(lengths.tolist()):
            if n == 0:
                torch.testing.assert_close(h[b], h0[b])
                torch.testing.assert_close(c[b], c0[b])
                assert out[:, b].abs().max() == 0
                continue
            o1, h1, c1 = L.lstm_recurrence_reference(xg[:n, b:b + 1], w, h0[b:b + 1], c0[b:b + 1], None, reverse)
            torch.testing.assert_close(out[:n, b], o1[:, 0])
            assert out[n:, b].abs().max() == 0 if n < 6 else True
            torch.testing.assert_close(h[b], h1[0])
            torch.testing.assert_close(c[b], c1[0])


def test_lstm_function_is_scriptable():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(L.lstm)
    torch.manual_seed(3)
    ref = torch.nn.LSTM(6, 7, num_layers=2, bidirectional=True)
    x = torch.randn(4, 3, 6)
    lengths = torch.tensor([4, 1, 3])
    got = scripted(x, ref._flat_weights, None, None, lengths, 2, 7, True, True, 0.0, False)
    eager = L.lstm(x, ref._flat_weights, None, None, lengths, 2, 7, True, True, 0.0, False)
    for a, b in zip(got, eager):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------------------------------------------------ triton

# (T, B, H, lengths, reverse, mode, resident): tiny for the interpreter; together they hit hidden 1 / 16 / 33,
# sequence length 1, padded rows (including length 0), both directions, per-step and persistent launches, and
# the on-chip W_hh (resident) and K-looped variants
CASES = [
    (1, 1, 1, None, False, "auto", None),
    (3, 2, 16, None, True, "persistent", True),
    (4, 3, 33, None, False, "step", False),
    (4, 3, 33, None, True, "step", None),
    (5, 3, 20, [5, 2, 0], False, "persistent", True),
    (5, 3, 20, [1, 5, 3], True, "persistent", True),
    (5, 3, 33, [3, 5, 1], True, "step", False),
]


@pytest.mark.parametrize("t,b,h,lengths,reverse,mode,resident", CASES)
def test_triton_fp32_matches_float64_oracle(t, b, h, lengths, reverse, mode, resident, monkeypatch):
    from bigmodel_fast.ops import lstm_triton

    monkeypatch.setenv(L.MODE_ENV_VAR, mode)
    if resident is not None:
        orig = lstm_triton.lstm_fwd
        monkeypatch.setattr(lstm_triton, "lstm_fwd", lambda *a, **k: orig(*a, **k, resident=resident))
    inputs = _inputs(t, b, h, torch.float32, seed=10 + t + h, device=DEV)
    lens = None if lengths is None else torch.tensor(lengths)
    got = _run(L.lstm_recurrence_triton, inputs, lens, reverse)
    ref = _oracle(inputs, lens, reverse)
    errs = _max_err(got, ref)
    assert max(errs) < 2e-5, dict(zip(NAMES, errs))


def test_triton_hidden_130():
    """One case across several hidden blocks and K tiles (interpreter: per-step launches)."""
    inputs = _inputs(2, 2, 130, torch.float32, seed=7, device=DEV)
    lens = torch.tensor([2, 1])
    got = _run(L.lstm_recurrence_triton, inputs, lens, True)
    errs = _max_err(got, _oracle(inputs, lens, True))
    assert max(errs) < 2e-5, dict(zip(NAMES, errs))


def test_triton_fp16_close_to_oracle():
    inputs = _inputs(4, 3, 33, torch.float16, seed=11, device=DEV)
    lens = torch.tensor([4, 2, 3])
    got = _run(L.lstm_recurrence_triton, inputs, lens, False)
    assert all(x.dtype == torch.float16 for x in got)
    errs = _max_err(got, _oracle(inputs, lens, False))
    assert max(errs) < 2e-2, dict(zip(NAMES, errs))


def test_triton_rejects_other_dtypes():
    xg, w, h0, c0 = _inputs(2, 1, 3, torch.float64, seed=0)
    with pytest.raises(TypeError, match="float32/float16/bfloat16"):
        L.lstm_recurrence_triton(xg, w, h0, c0)


def test_persistent_mode_refuses_grids_that_cannot_be_co_resident(monkeypatch):
    if CUDA:
        pytest.skip("interpreter rule: persistent needs a single hidden block")
    monkeypatch.setenv(L.MODE_ENV_VAR, "persistent")
    xg, w, h0, c0 = _inputs(2, 1, 40, torch.float32, seed=0)
    with pytest.raises(ValueError, match="co-resident"):
        L.lstm_recurrence_triton(xg, w, h0, c0)


@needs_gpu_bf16
def test_triton_bf16_on_gpu():
    inputs = _inputs(16, 8, 96, torch.bfloat16, seed=12, device="cuda")
    lens = torch.tensor([16, 3, 9, 16, 1, 12, 16, 7])
    got = _run(L.lstm_recurrence_triton, inputs, lens, True)
    base = _run(L.lstm_recurrence_reference, inputs, lens, True)  # PyTorch's own bf16 loop on the GPU
    ref = _oracle(inputs, lens, True)
    for name, e_ours, e_torch in zip(NAMES, _max_err(got, ref), _max_err(base, ref)):
        assert e_ours <= 2 * e_torch + 1e-2, (name, e_ours, e_torch)


@pytest.mark.skipif(not CUDA, reason="multi-block persistent kernels (grid barrier) need a GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("h", [130, 512])
def test_gpu_persistent_and_step_agree_at_real_sizes(dtype, h, monkeypatch):
    inputs = _inputs(24, 64, h, dtype, seed=13, device="cuda")
    lens = torch.randint(1, 25, (64,), generator=torch.Generator().manual_seed(0))
    results = {}
    for mode in ("persistent", "step"):
        monkeypatch.setenv(L.MODE_ENV_VAR, mode)
        results[mode] = _run(L.lstm_recurrence_triton, inputs, lens, False)
    ref = _oracle(inputs, lens, False)
    base = _run(L.lstm_recurrence_reference, inputs, lens, False)  # PyTorch loop in the same dtype
    for mode, got in results.items():
        for name, e_ours, e_torch in zip(NAMES, _max_err(got, ref), _max_err(base, ref)):
            bound = 1e-4 if dtype == torch.float32 else 2 * e_torch + 1e-3
            assert e_ours <= bound, (mode, name, e_ours, e_torch)
