"""The fused Triton LSTM recurrence as PyTorch ops: custom ops, their fake implementations and autograd.

``bmf::lstm_recurrence_fwd`` (:func:`_lstm_fwd_op`) returns ``(out, h_n, c_n, gates, hs, cs)``: ``out`` (T, B, H),
``h_n`` (B, H) in the compute dtype, ``c_n`` (B, H) in ``c0``'s dtype, and what the backward needs: ``gates``
(T, B, 4H) fp32, ``hs`` (T + 1, B, H) compute dtype, ``cs`` (T + 1, B, H) fp32. ``bmf::lstm_recurrence_bwd``
(:func:`_lstm_bwd_op`) returns ``(d_xg (T, B, 4H), d_w_hh (4H, H), d_h0 (B, H) fp32, d_c0 (B, H) fp32)``; the
forward's autograd calls it. ``BMF_LSTM_TRITON_MODE=auto|persistent|step`` forces the launch mode of both.

The launchers (:mod:`bigmodel_fast.ops.lstm_triton`, which imports Triton) are imported on first use, so that
``TRITON_INTERPRET=1`` can still be set after ``bigmodel_fast`` is imported. The dispatch and the public functions
live in :mod:`bigmodel_fast.ops.lstm`.
"""

from __future__ import annotations

import importlib
import os
from typing import Optional, Tuple

import torch
from torch import Tensor

from bigmodel_fast.ops.backend import LSTMBackendError

__all__ = ["MODE_ENV_VAR", "VALID_MODES"]

MODE_ENV_VAR = "BMF_LSTM_TRITON_MODE"
VALID_MODES = ("auto", "persistent", "step")


def _triton_module():
    """:mod:`bigmodel_fast.ops.lstm_triton` (imported on first use)."""
    return importlib.import_module("bigmodel_fast.ops.lstm_triton")


def _triton_mode() -> str:
    """``BMF_LSTM_TRITON_MODE`` normalised (unset: ``auto``).

    Raises:
        LSTMBackendError: a value outside :data:`VALID_MODES`.
    """
    raw = os.environ.get(MODE_ENV_VAR, "")
    name = raw.strip().lower() or "auto"
    if name not in VALID_MODES:
        raise LSTMBackendError(f"environment variable {MODE_ENV_VAR}={raw!r} is not valid; expected one of "
                               f"{', '.join(VALID_MODES)}")
    return name


@torch.library.custom_op("bmf::lstm_recurrence_fwd", mutates_args=())
def _lstm_fwd_op(
    xg: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor, lengths: Optional[Tensor], reverse: bool
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    return _triton_module().lstm_fwd(xg, w_hh, h0, c0, lengths, reverse, mode=_triton_mode())


@_lstm_fwd_op.register_fake
def _lstm_fwd_fake(xg, w_hh, h0, c0, lengths, reverse):
    t_len, b, g = xg.shape
    h = g // 4
    return (xg.new_empty(t_len, b, h), xg.new_empty(b, h), c0.new_empty(b, h),
            xg.new_empty(t_len, b, g, dtype=torch.float32), xg.new_empty(t_len + 1, b, h),
            xg.new_empty(t_len + 1, b, h, dtype=torch.float32))


@torch.library.custom_op("bmf::lstm_recurrence_bwd", mutates_args=())
def _lstm_bwd_op(
    d_out: Tensor, d_hn: Tensor, d_cn: Tensor, w_hh: Tensor, lengths: Optional[Tensor], gates: Tensor,
    hs: Tensor, cs: Tensor, reverse: bool
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    return _triton_module().lstm_bwd(d_out, d_hn, d_cn, w_hh, lengths, gates, hs, cs, reverse, mode=_triton_mode())


@_lstm_bwd_op.register_fake
def _lstm_bwd_fake(d_out, d_hn, d_cn, w_hh, lengths, gates, hs, cs, reverse):
    t_len, b, g = gates.shape
    h = g // 4
    return (hs.new_empty(t_len, b, g), w_hh.new_empty(g, h), d_hn.new_empty(b, h, dtype=torch.float32),
            d_cn.new_empty(b, h, dtype=torch.float32))


def _lstm_setup_context(ctx, inputs, output) -> None:
    xg, w_hh, h0, c0, lengths, reverse = inputs
    _, _, _, gates, hs, cs = output
    ctx.save_for_backward(w_hh, lengths, gates, hs, cs)
    ctx.reverse = reverse
    ctx.h0_dtype = h0.dtype
    ctx.c0_dtype = c0.dtype
    ctx.mark_non_differentiable(gates, hs, cs)


def _lstm_backward(ctx, d_out, d_hn, d_cn, _d_gates, _d_hs, _d_cs):
    w_hh, lengths, gates, hs, cs = ctx.saved_tensors
    t_len, b, g = gates.shape
    h = g // 4
    if d_out is None:
        d_out = hs.new_zeros(t_len, b, h)
    if d_hn is None:
        d_hn = hs.new_zeros(b, h)
    if d_cn is None:
        d_cn = cs.new_zeros(b, h)
    d_xg, d_w, d_h0, d_c0 = _lstm_bwd_op(d_out, d_hn, d_cn, w_hh, lengths, gates, hs, cs, ctx.reverse)
    return d_xg, d_w, d_h0.to(ctx.h0_dtype), d_c0.to(ctx.c0_dtype), None, None


_lstm_fwd_op.register_autograd(_lstm_backward, setup_context=_lstm_setup_context)
