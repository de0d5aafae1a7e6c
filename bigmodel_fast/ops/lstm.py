"""LSTM recurrence: the single dispatch point for every LSTM in bigmodel_fast.

A layer of one direction is split in two parts:

1. the input projection for all time steps at once, ``xg = x @ W_ih^T + (b_ih + b_hh)``: one large matmul
   (``F.linear``; cuBLAS on GPU, autograd gives its gradients as large matmuls too);
2. the recurrence over time, :func:`lstm_recurrence`, dispatched by :func:`lstm_backend` from the environment
   variable ``BMF_LSTM``:

   * unset / ``auto`` (default): ``triton`` for CUDA tensors, ``reference`` otherwise;
   * ``reference``: :func:`lstm_recurrence_reference`, a plain PyTorch loop over time (the CPU and TorchScript
     export path, and the oracle of the tests);
   * ``triton``: the fused Triton kernels of ``ops/lstm_triton.py`` behind the custom ops
     ``bmf::lstm_recurrence_fwd`` / ``bmf::lstm_recurrence_bwd`` (with autograd). On CPU only under the Triton
     interpreter (``TRITON_INTERPRET=1``), otherwise :class:`LSTMBackendError`.

   The Triton forward is one kernel per time step that fuses ``h @ W_hh^T`` (one ``tl.dot`` per gate block), the
   bias-carrying ``xg``, the gate nonlinearities and the c/h update; when the grid fits on the GPU it runs
   *persistent* (one launch loops over all time steps, programs synchronise per step through a grid barrier).
   The backward fuses the pointwise gate gradients with the recurrent-gradient matmul ``dg[t+1] @ W_hh``; the
   weight gradient is one large matmul after the time loop. ``BMF_LSTM_TRITON_MODE=auto|persistent|step`` forces
   the launch mode (for tests and benchmarks); ``BMF_LSTM_TUNED=file.json`` (written by
   ``benchmarks/ops/bench_lstm.py --tune --tune-out``) overrides the tile sizes per (kernel, batch, hidden, dtype).

:func:`lstm` runs a whole ``torch.nn.LSTM``-style stack (layers, directions, inter-layer dropout, padded batches)
on top of the dispatch; ``bigmodel_fast.nn.lstm.LSTM`` is the module.

Conventions: gate order i, f, g, o (as ``torch.nn.LSTM``); time-major tensors; ``lengths`` (B,) int means time
step t of row b is real iff ``t < lengths[b]``: padded steps leave h and c unchanged and output 0, so the reverse
direction of a padded row starts at its last real token (exactly what ``nn.LSTM`` does on a ``PackedSequence``).
Computation dtype is ``xg.dtype`` (``W_hh``, ``h0`` are cast to it); the gates and the cell state are computed
and kept in fp32 inside a sequence, ``h`` is rounded to the compute dtype every step (as cuDNN does).

TorchScript: :func:`lstm` and :func:`lstm_recurrence` are scriptable; under ``torch.jit.is_scripting()`` the
dispatch returns early into :func:`lstm_recurrence_reference`.
"""

from __future__ import annotations

import os
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from bigmodel_fast.ops.triton_env import HAS_TRITON, interpreting

__all__ = [
    "ENV_VAR",
    "MODE_ENV_VAR",
    "VALID_BACKENDS",
    "LSTMBackendError",
    "lstm",
    "lstm_backend",
    "lstm_recurrence",
    "lstm_recurrence_reference",
    "lstm_recurrence_triton",
]

ENV_VAR = "BMF_LSTM"
MODE_ENV_VAR = "BMF_LSTM_TRITON_MODE"
VALID_BACKENDS = ("auto", "reference", "triton")
VALID_MODES = ("auto", "persistent", "step")


class LSTMBackendError(ValueError):
    """``BMF_LSTM`` names an unknown backend, or ``triton`` cannot run on the given device."""


def lstm_backend(device: Optional[torch.device] = None) -> str:
    """Resolve ``BMF_LSTM`` for tensors on ``device``: returns ``"reference"`` or ``"triton"``.

    Unset, empty or ``auto``: ``triton`` on CUDA when Triton is installed, ``reference`` elsewhere. Case and whitespace are ignored.

    Raises:
        LSTMBackendError: unknown value, or ``triton`` forced for a non-CUDA device without ``TRITON_INTERPRET=1``.
    """
    raw = os.environ.get(ENV_VAR, "")
    name = raw.strip().lower() or "auto"
    if name not in VALID_BACKENDS:
        raise LSTMBackendError(
            f"environment variable {ENV_VAR}={raw!r} is not a valid LSTM backend; expected one of "
            f"{', '.join(VALID_BACKENDS)} (or unset for auto: triton on CUDA, reference elsewhere)"
        )
    is_cuda = device is not None and device.type == "cuda"
    if name == "auto":
        return "triton" if is_cuda and HAS_TRITON else "reference"
    if name == "triton" and not is_cuda and not interpreting():
        raise LSTMBackendError(
            f"{ENV_VAR}=triton on a {device.type if device is not None else 'cpu'} tensor needs the Triton "
            f"interpreter: set TRITON_INTERPRET=1 before triton is imported, or use {ENV_VAR}=reference"
        )
    return name


def _triton_mode() -> str:
    raw = os.environ.get(MODE_ENV_VAR, "")
    name = raw.strip().lower() or "auto"
    if name not in VALID_MODES:
        raise LSTMBackendError(f"environment variable {MODE_ENV_VAR}={raw!r} is not valid; expected one of "
                               f"{', '.join(VALID_MODES)}")
    return name


# ------------------------------------------------------------------------------------------------------ reference

def lstm_recurrence_reference(
    xg: Tensor,
    w_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    lengths: Optional[Tensor] = None,
    reverse: bool = False,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Plain PyTorch loop over time; arguments and results as in :func:`lstm_recurrence`."""
    t_len = xg.shape[0]
    dtype = xg.dtype
    acc = torch.float32 if dtype == torch.float16 or dtype == torch.bfloat16 else dtype  # gates and c
    w_t = w_hh.to(dtype).t()  # (H, 4H)
    h = h0.to(dtype)  # (B, H)
    c = c0.to(acc)  # (B, H)
    lens: Optional[Tensor] = None
    if lengths is not None:
        lens = lengths.to(device=xg.device, dtype=torch.long).unsqueeze(1)  # (B, 1)
    outs: List[Tensor] = []
    for k in range(t_len):
        t = t_len - 1 - k if reverse else k
        gates = xg[t].to(acc) + torch.mm(h, w_t).to(acc)  # (B, 4H)
        i, f, g, o = gates.chunk(4, 1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = (torch.sigmoid(o) * torch.tanh(c_new)).to(dtype)
        if lens is not None:
            active = lens > t  # (B, 1)
            c = torch.where(active, c_new, c)
            h = torch.where(active, h_new, h)
            outs.append(torch.where(active, h_new, torch.zeros_like(h_new)))
        else:
            c = c_new
            h = h_new
            outs.append(h_new)
    out = torch.stack(outs)  # (T, B, H), processed order
    if reverse:
        out = out.flip(0)
    return out, h, c.to(dtype)


# ------------------------------------------------------------------------------------- custom ops (Triton kernels)

@torch.library.custom_op("bmf::lstm_recurrence_fwd", mutates_args=())
def _lstm_fwd_op(
    xg: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor, lengths: Optional[Tensor], reverse: bool
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    from bigmodel_fast.ops import lstm_triton

    return lstm_triton.lstm_fwd(xg, w_hh, h0, c0, lengths, reverse, mode=_triton_mode())


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
    from bigmodel_fast.ops import lstm_triton

    return lstm_triton.lstm_bwd(d_out, d_hn, d_cn, w_hh, lengths, gates, hs, cs, reverse, mode=_triton_mode())


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


def lstm_recurrence_triton(
    xg: Tensor,
    w_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    lengths: Optional[Tensor] = None,
    reverse: bool = False,
) -> Tuple[Tensor, Tensor, Tensor]:
    """The fused Triton recurrence (custom op with autograd); arguments and results as in :func:`lstm_recurrence`."""
    dtype = xg.dtype
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"lstm triton backend supports float32/float16/bfloat16, got {dtype}")
    lens = None if lengths is None else lengths.to(device=xg.device, dtype=torch.long).contiguous()
    out, h_n, c_n, _, _, _ = _lstm_fwd_op(xg.contiguous(), w_hh.to(dtype), h0.to(dtype).contiguous(),
                                          c0.contiguous(), lens, reverse)
    return out, h_n, c_n.to(dtype)


# ----------------------------------------------------------------------------------------------------- dispatch

def lstm_recurrence(
    xg: Tensor,
    w_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    lengths: Optional[Tensor] = None,
    reverse: bool = False,
) -> Tuple[Tensor, Tensor, Tensor]:
    """One direction of one LSTM layer over a sequence, through the backend chosen by ``BMF_LSTM``.

    Args:
        xg: (T, B, 4H) input projection ``x @ W_ih^T + b_ih + b_hh``, time-major; its dtype is the compute dtype.
        w_hh: (4H, H) recurrent weight (cast to ``xg.dtype``).
        h0, c0: (B, H) initial states.
        lengths: optional (B,) integer tensor, ``0 <= lengths[b] <= T``; padded steps keep the state and output 0.
        reverse: run from the last (real) time step to the first.

    Returns:
        ``(out (T, B, H), h_n (B, H), c_n (B, H))`` in ``xg.dtype``; ``out`` in time order.
    """
    if torch.jit.is_scripting():
        return lstm_recurrence_reference(xg, w_hh, h0, c0, lengths, reverse)
    if lstm_backend(xg.device) == "reference":
        return lstm_recurrence_reference(xg, w_hh, h0, c0, lengths, reverse)
    return lstm_recurrence_triton(xg, w_hh, h0, c0, lengths, reverse)


def lstm(
    x: Tensor,
    weights: List[Tensor],
    h0: Optional[Tensor],
    c0: Optional[Tensor],
    lengths: Optional[Tensor],
    num_layers: int,
    hidden_size: int,
    bidirectional: bool = False,
    has_bias: bool = True,
    dropout: float = 0.0,
    training: bool = False,
) -> Tuple[Tensor, Tensor, Tensor]:
    """A ``torch.nn.LSTM`` stack on a time-major batch.

    Args:
        x: (T, B, I) input.
        weights: per layer and direction (``l0``, ``l0_reverse``, ``l1``, ...), ``[W_ih, W_hh, b_ih, b_hh]``
            (``[W_ih, W_hh]`` without bias): ``torch.nn.LSTM``'s ``_flat_weights`` order.
        h0, c0: (num_layers * D, B, H) initial states or None (zeros); D = 2 if bidirectional else 1.
        lengths: optional (B,) real lengths (padded batch); see :func:`lstm_recurrence`.
        dropout: dropout on the outputs of every layer but the last, applied when ``training``.

    Returns:
        ``(output (T, B, D*H), h_n (num_layers*D, B, H), c_n (num_layers*D, B, H))``.
    """
    if x.dim() != 3:
        raise ValueError("lstm: input must be (T, B, I) (time-major); got shape " + str(x.shape))
    num_dirs = 2 if bidirectional else 1
    per = 4 if has_bias else 2
    if len(weights) != num_layers * num_dirs * per:
        raise ValueError("lstm: expected " + str(num_layers * num_dirs * per) + " weight tensors, got "
                         + str(len(weights)))
    batch = x.shape[1]
    state_shape = [num_layers * num_dirs, batch, hidden_size]
    if h0 is None:
        h0 = torch.zeros(state_shape, dtype=x.dtype, device=x.device)
    if c0 is None:
        c0 = torch.zeros(state_shape, dtype=x.dtype, device=x.device)
    if list(h0.shape) != state_shape or list(c0.shape) != state_shape:
        raise ValueError("lstm: initial states must have shape " + str(state_shape) + "; got h0 "
                         + str(list(h0.shape)) + ", c0 " + str(list(c0.shape)))
    layer_in = x
    h_n: List[Tensor] = []
    c_n: List[Tensor] = []
    for layer in range(num_layers):
        outs: List[Tensor] = []
        for d in range(num_dirs):
            idx = layer * num_dirs + d
            w_ih = weights[idx * per]
            w_hh = weights[idx * per + 1]
            if has_bias:
                xg = F.linear(layer_in, w_ih, weights[idx * per + 2] + weights[idx * per + 3])  # (T, B, 4H)
            else:
                xg = F.linear(layer_in, w_ih)  # (T, B, 4H)
            out, h, c = lstm_recurrence(xg, w_hh, h0[idx], c0[idx], lengths, d == 1)
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
        layer_in = outs[0] if num_dirs == 1 else torch.cat(outs, dim=2)  # (T, B, D*H)
        if dropout > 0.0 and training and layer < num_layers - 1:
            layer_in = F.dropout(layer_in, dropout, True)
    return layer_in, torch.stack(h_n), torch.stack(c_n)
