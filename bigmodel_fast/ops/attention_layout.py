"""Output layouts of the fused attention kernels, shared by their launchers (``ops/attention_triton.py``) and the
fake implementations of the custom ops (``ops/attention_op.py``), so that both always agree.

Importing this module does not import Triton.
"""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor

__all__ = ["empty_like_bshd", "grad_like", "lse_shape"]


def empty_like_bshd(x: Tensor) -> Tensor:
    """Uninitialised tensor shaped like ``x``: dense (B, H, S, D) laid out as (B, S, H, D) in memory (so the usual
    ``transpose(1, 2).reshape(B, S, H * D)`` after attention is free); packed (T, H, D) contiguous."""
    if x.dim() == 4:
        b, h, s, d = x.shape
        return torch.empty(b, s, h, d, dtype=x.dtype, device=x.device).transpose(1, 2)
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


def grad_like(x: Tensor) -> Tensor:
    """Uninitialised gradient buffer for input ``x``: ``x``'s own strides when it is dense (so autograd does not copy
    it into the leaf's layout), contiguous otherwise."""
    if x.dim() > 0 and x.stride(-1) != 1:
        return torch.empty(x.shape, dtype=x.dtype, device=x.device)
    return torch.empty_like(x)


def lse_shape(q: Tensor, varlen: bool) -> List[int]:
    """Shape of the fp32 log-sum-exp (log2 units) saved by the forward: (B, H, S_q) for dense q (B, H, S_q, D),
    (H, T) for packed q (T, H, D)."""
    return [q.shape[1], q.shape[0]] if varlen else [q.shape[0], q.shape[1], q.shape[2]]
