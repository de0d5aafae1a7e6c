"""ops.lstm_op: ``torch.library.opcheck`` on the LSTM custom ops (schema, fake tensors, autograd registration,
AOT dispatch), as ``tests/ops/test_attention_triton.py`` does for attention. CPU runs the kernels through the
Triton interpreter (``tests/ops/conftest.py`` sets ``TRITON_INTERPRET=1``): fp32, tiny shapes.
"""

from __future__ import annotations

import os

import pytest
import torch

from bigmodel_fast.ops import lstm_op

CUDA = torch.cuda.is_available()
DEV = "cuda" if CUDA else "cpu"
if not CUDA and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("no GPU and TRITON_INTERPRET is not 1 (tests/ops/conftest.py sets it)", allow_module_level=True)
pytest.importorskip("triton")


@pytest.fixture(autouse=True)
def _default_mode(monkeypatch):
    monkeypatch.delenv(lstm_op.MODE_ENV_VAR, raising=False)


def _fwd_args(t, b, h, lengths, reverse, seed=0, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    xg = torch.randn(t, b, 4 * h, generator=g) * 0.5  # (T, B, 4H)
    w = torch.randn(4 * h, h, generator=g) / h ** 0.5  # (4H, H)
    h0 = torch.randn(b, h, generator=g) * 0.5  # (B, H)
    c0 = torch.randn(b, h, generator=g) * 0.5  # (B, H)
    tensors = [x.to(DEV).requires_grad_(requires_grad) for x in (xg, w, h0, c0)]
    lens = None if lengths is None else torch.tensor(lengths, dtype=torch.long, device=DEV)
    return (*tensors, lens, reverse)


CASES = [(3, 2, 8, None, False), (4, 3, 8, [4, 1, 0], True)]


@pytest.mark.parametrize("t,b,h,lengths,reverse", CASES)
def test_opcheck_forward(t, b, h, lengths, reverse):
    torch.library.opcheck(lstm_op._lstm_fwd_op, _fwd_args(t, b, h, lengths, reverse))


@pytest.mark.parametrize("t,b,h,lengths,reverse", CASES)
def test_opcheck_backward(t, b, h, lengths, reverse):
    xg, w, h0, c0, lens, rev = _fwd_args(t, b, h, lengths, reverse, requires_grad=False)
    out, h_n, c_n, gates, hs, cs = lstm_op._lstm_fwd_op(xg, w, h0, c0, lens, rev)
    g = torch.Generator().manual_seed(1)
    d_out, d_hn, d_cn = (torch.randn(x.shape, generator=g).to(DEV) for x in (out, h_n, c_n))
    args = (d_out, d_hn, d_cn, w, lens, gates, hs, cs, rev)
    torch.library.opcheck(lstm_op._lstm_bwd_op, args)
    d_xg, d_w, d_h0, d_c0 = lstm_op._lstm_bwd_op(*args)
    assert d_xg.shape == (t, b, 4 * h) and d_w.shape == (4 * h, h)
    assert d_h0.shape == d_c0.shape == (b, h) and d_h0.dtype == d_c0.dtype == torch.float32


def test_fake_shapes_match_the_kernels():
    """The fake implementation (what torch.compile / torch.export see) agrees with a real run, outputs and grads."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    args = _fwd_args(4, 3, 8, [4, 2, 3], False, requires_grad=False)
    real = lstm_op._lstm_fwd_op(*args)
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        fake = lstm_op._lstm_fwd_op(*[mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args])
    for r, f in zip(real, fake, strict=True):
        assert (tuple(r.shape), r.dtype, r.stride()) == (tuple(f.shape), f.dtype, f.stride())
