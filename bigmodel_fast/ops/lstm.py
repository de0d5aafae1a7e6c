"""LSTM recurrence: the single dispatch point for every LSTM in bigmodel_fast.

A layer of one direction is split in two parts:

1. the input projection for all time steps at once, ``xg = x @ W_ih^T + (b_ih + b_hh)``: one large matmul
   (``F.linear``; cuBLAS on GPU, autograd gives its gradients as large matmuls too);
2. the recurrence over time, :func:`lstm_recurrence`, dispatched by :func:`lstm_backend`
   (:func:`bigmodel_fast.ops.backend.resolve_backend`, shared with attention): the ``backend=`` argument, else
   the innermost :func:`~bigmodel_fast.ops.backend.use_backends` block, else the environment variable
   ``BMF_LSTM``, else the device:

   * unset / ``auto`` (default): ``triton`` for CUDA tensors, ``reference`` otherwise;
   * ``reference``: :func:`lstm_recurrence_reference`, a plain PyTorch loop over time (the CPU and TorchScript
     export path, and the oracle of the tests);
   * ``triton``: the fused Triton kernels of ``ops/lstm_triton.py`` behind the custom ops
     ``bmf::lstm_recurrence_fwd`` / ``bmf::lstm_recurrence_bwd`` (with autograd, ``ops/lstm_op.py``). On CPU only
     under the Triton interpreter (``TRITON_INTERPRET=1``), otherwise :class:`LSTMBackendError` (a
     :class:`~bigmodel_fast.ops.backend.TritonUnavailableError` too) when the backend is resolved.

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

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from bigmodel_fast.ops.backend import OPS, LSTMBackendError, resolve_backend
from bigmodel_fast.ops.lstm_op import MODE_ENV_VAR, VALID_MODES, _lstm_fwd_op

__all__ = [
    "ENV_VAR",
    "MODE_ENV_VAR",
    "VALID_BACKENDS",
    "VALID_MODES",
    "LSTMBackendError",
    "lstm",
    "lstm_backend",
    "lstm_recurrence",
    "lstm_recurrence_reference",
    "lstm_recurrence_triton",
]

ENV_VAR = OPS["lstm"].env_var  # "BMF_LSTM", read by bigmodel_fast.ops.backend only
VALID_BACKENDS = OPS["lstm"].names  # ("auto", "reference", "triton")


def lstm_backend(device: Optional[torch.device] = None, backend: Optional[str] = None) -> str:
    """Return the LSTM backend for tensors on ``device`` (None: CPU): ``"reference"`` or ``"triton"``.

    ``backend`` (if given) wins over :func:`~bigmodel_fast.ops.backend.use_backends` and the ``BMF_LSTM``
    environment variable. Unset, empty or ``auto``: ``triton`` on CUDA when Triton is installed, ``reference``
    elsewhere. Case and whitespace are ignored. See :mod:`bigmodel_fast.ops.backend` for the full rules.

    Raises:
        LSTMBackendError: unknown value, or ``triton`` forced for a non-CUDA device without ``TRITON_INTERPRET=1``.
    """
    return resolve_backend("lstm", device, backend)


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


# ------------------------------------------------------------------------------------------------ triton

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
    backend: Optional[str] = None,
) -> Tuple[Tensor, Tensor, Tensor]:
    """One direction of one LSTM layer over a sequence, through the backend chosen by :func:`lstm_backend`.

    Args:
        xg: (T, B, 4H) input projection ``x @ W_ih^T + b_ih + b_hh``, time-major; its dtype is the compute dtype.
        w_hh: (4H, H) recurrent weight (cast to ``xg.dtype``).
        h0, c0: (B, H) initial states.
        lengths: optional (B,) integer tensor, ``0 <= lengths[b] <= T``; padded steps keep the state and output 0.
        reverse: run from the last (real) time step to the first.
        backend: ``"triton"``, ``"reference"`` or ``"auto"`` to override
            :func:`~bigmodel_fast.ops.backend.use_backends`, ``BMF_LSTM`` and the device default.

    Returns:
        ``(out (T, B, H), h_n (B, H), c_n (B, H))`` in ``xg.dtype``; ``out`` in time order.

    Under TorchScript this always runs :func:`lstm_recurrence_reference`.
    """
    if torch.jit.is_scripting():
        return lstm_recurrence_reference(xg, w_hh, h0, c0, lengths, reverse)
    if lstm_backend(xg.device, backend) == "reference":
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
    backend: Optional[str] = None,
) -> Tuple[Tensor, Tensor, Tensor]:
    """A ``torch.nn.LSTM`` stack on a time-major batch.

    Args:
        x: (T, B, I) input.
        weights: per layer and direction (``l0``, ``l0_reverse``, ``l1``, ...), ``[W_ih, W_hh, b_ih, b_hh]``
            (``[W_ih, W_hh]`` without bias): ``torch.nn.LSTM``'s ``_flat_weights`` order.
        h0, c0: (num_layers * D, B, H) initial states or None (zeros); D = 2 if bidirectional else 1.
        lengths: optional (B,) real lengths (padded batch); see :func:`lstm_recurrence`.
        dropout: dropout on the outputs of every layer but the last, applied when ``training``.
        backend: as in :func:`lstm_recurrence`; resolved once, at the start, for every layer and direction.

    Returns:
        ``(output (T, B, D*H), h_n (num_layers*D, B, H), c_n (num_layers*D, B, H))``.
    """
    if not torch.jit.is_scripting():
        backend = lstm_backend(x.device, backend)
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
            out, h, c = lstm_recurrence(xg, w_hh, h0[idx], c0[idx], lengths, d == 1, backend)
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
        layer_in = outs[0] if num_dirs == 1 else torch.cat(outs, dim=2)  # (T, B, D*H)
        if dropout > 0.0 and training and layer < num_layers - 1:
            layer_in = F.dropout(layer_in, dropout, True)
    return layer_in, torch.stack(h_n), torch.stack(c_n)
