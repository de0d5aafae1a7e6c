"""Dropout whose mask costs one random 64-bit word per four elements on CPU.

``torch.nn.functional.dropout`` on CPU draws one Bernoulli sample per element; for the activations of a small
transformer that is several percent of a training step (2.8 ms of a 340 ms step per call for a (2048, 256) fp32
tensor on a 2-core Xeon, nine calls per step in a 4-layer GPT). :func:`dropout` here fills a quarter as many int64
words from the same generator (``Tensor.random_`` over the full 64-bit range), reads them as four uniform 16-bit
lanes each, and keeps an element where its lane is at or above ``round(p * 65536)``: the drop probability is
``round(p * 65536) / 65536`` (within 7.7e-6 of ``p``) and kept elements are scaled by the inverse of the real keep
probability, so the expectation is ``x`` exactly as with PyTorch's dropout. The mask is saved as bool (one byte per
element) for the backward.

- CUDA (and any non-CPU device): ``F.dropout`` (its Philox RNG is already fused and cheap).
- TorchScript (the export path): ``F.dropout``; exported models run in eval mode, where both are the identity.
- Determinism: the mask comes from torch's default CPU generator, so ``torch.manual_seed`` and saved RNG states
  reproduce it (checkpoints resume bit-exactly); the random stream differs from ``F.dropout``'s.

Reference: :func:`dropout_reference` (``F.dropout``), used by the tests for the distribution and the gradients.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["dropout", "dropout_mask", "dropout_reference", "drop_probability"]

_LANES = 65536  # values of one 16-bit lane


def drop_probability(p: float) -> float:
    """The drop probability :func:`dropout` really uses for ``p``: ``round(p * 65536) / 65536``."""
    return round(p * _LANES) / _LANES


def dropout_mask(shape: torch.Size, p: float, device: torch.device) -> Tensor:
    """Bool mask of ``shape`` on ``device``, True (keep) with probability ``1 - drop_probability(p)`` per element,
    independent across elements: four 16-bit lanes per random int64 word of torch's default generator."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), None)
    lanes = words.view(torch.int16)[:n]  # (n,) uniform in [-32768, 32767]
    threshold = round(p * _LANES) - _LANES // 2
    return (lanes >= threshold).view(shape)


class _MaskedScale(torch.autograd.Function):
    """y = x * mask * scale; dx = dy * mask * scale (the bool mask is the only saved tensor)."""

    @staticmethod
    def forward(ctx, x: Tensor, mask: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(mask)
        ctx.scale = scale
        return x * mask * scale

    @staticmethod
    def backward(ctx, grad: Tensor):
        (mask,) = ctx.saved_tensors
        return grad * mask * ctx.scale, None, None


def dropout_reference(x: Tensor, p: float, training: bool = True) -> Tensor:
    """``F.dropout(x, p, training)``: the plain-PyTorch path (CUDA, TorchScript)."""
    return F.dropout(x, p, training)


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Dropout of ``x`` (any shape) with probability ``p`` in [0, 1]; identity when not ``training`` or ``p == 0``.

    CPU: the lane mask of :func:`dropout_mask` (drop probability :func:`drop_probability`); elsewhere ``F.dropout``.
    Raises ValueError for ``p`` outside [0, 1] (as ``F.dropout``).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not x.is_floating_point():
        return F.dropout(x, p, training)
    q = drop_probability(p)
    if q >= 1.0:
        return x * 0.0
    mask = dropout_mask(x.shape, p, x.device)
    return _MaskedScale.apply(x, mask, 1.0 / (1.0 - q))
