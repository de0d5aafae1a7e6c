"""The fused Triton attention kernels as PyTorch ops: custom ops, their fake implementations and autograd.

* ``bmf::flash_attn_fwd`` / ``bmf::flash_attn_bwd`` (:func:`_flash_attn_fwd`, :func:`_flash_attn_bwd`): custom
  ops with fake implementations (shapes from :mod:`bigmodel_fast.ops.attention_layout`), so ``torch.compile``
  traces through them as one opaque op each; the forward's autograd calls the backward op.
* :class:`_FlashAttnFunction`: an ``autograd.Function`` over the same launchers, for eager calls (cheaper
  dispatch, bit-identical results).
* :func:`_flash_attn`: the one entry point, picking between the two.

The launchers (:mod:`bigmodel_fast.ops.attention_triton`, which imports Triton) are imported on first use, so that
``TRITON_INTERPRET=1`` can still be set after ``bigmodel_fast`` is imported. The dispatch, checks and the public
functions live in :mod:`bigmodel_fast.ops.attention`.
"""

from __future__ import annotations

import importlib
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from bigmodel_fast.ops.attention_layout import empty_like_bshd, grad_like, lse_shape

__all__: list = []  # private glue; the public names are in bigmodel_fast.ops.attention


def _triton_module():
    """:mod:`bigmodel_fast.ops.attention_triton` (imported on first use)."""
    return importlib.import_module("bigmodel_fast.ops.attention_triton")


@torch.library.custom_op("bmf::flash_attn_fwd", mutates_args=())
def _flash_attn_fwd(q: Tensor, k: Tensor, v: Tensor, kmask: Optional[Tensor], cu_seqlens: Optional[Tensor],
                    max_seqlen: int, causal: bool, scale: float) -> Tuple[Tensor, Tensor]:
    """Fused attention forward. Dense (B, H, S, D) when ``cu_seqlens`` is None, else packed (T, H, D).
    ``kmask``: optional (B, S_k) uint8 key mask (non-zero = attend). Returns (out, lse)."""
    return _triton_module().flash_attn_forward(q, k, v, kmask, cu_seqlens, max_seqlen, causal, scale)


@_flash_attn_fwd.register_fake
def _(q, k, v, kmask, cu_seqlens, max_seqlen, causal, scale):
    lse = torch.empty(lse_shape(q, cu_seqlens is not None), dtype=torch.float32, device=q.device)
    return empty_like_bshd(q), lse


@torch.library.custom_op("bmf::flash_attn_bwd", mutates_args=())
def _flash_attn_bwd(do: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, kmask: Optional[Tensor],
                    cu_seqlens: Optional[Tensor], max_seqlen: int, causal: bool,
                    scale: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Fused attention backward from the saved ``lse``; returns (dq, dk, dv)."""
    return _triton_module().flash_attn_backward(do, q, k, v, out, lse, kmask, cu_seqlens, max_seqlen, causal, scale)


@_flash_attn_bwd.register_fake
def _(do, q, k, v, out, lse, kmask, cu_seqlens, max_seqlen, causal, scale):
    return grad_like(q), grad_like(k), grad_like(v)


def _save(ctx, inputs: tuple, out: Tensor, lse: Tensor) -> None:
    """Keep what the backward needs; ``inputs`` are the 8 forward arguments."""
    q, k, v, kmask, cu_seqlens, max_seqlen, causal, scale = inputs
    ctx.save_for_backward(q, k, v, out, lse, kmask, cu_seqlens)
    ctx.max_seqlen, ctx.causal, ctx.scale = max_seqlen, causal, scale


def _grads(ctx, dout: Tensor, backward: Callable) -> tuple:
    """(dq, dk, dv, None x 5) from what :func:`_save` kept, through ``backward`` (the op or the launcher)."""
    q, k, v, out, lse, kmask, cu_seqlens = ctx.saved_tensors
    dq, dk, dv = backward(dout, q, k, v, out, lse, kmask, cu_seqlens, ctx.max_seqlen, ctx.causal, ctx.scale)
    return dq, dk, dv, None, None, None, None, None


def _fwd_setup_context(ctx, inputs, output):
    _save(ctx, inputs, *output)


def _fwd_backward(ctx, dout, dlse):
    return _grads(ctx, dout, _flash_attn_bwd)


_flash_attn_fwd.register_autograd(_fwd_backward, setup_context=_fwd_setup_context)


class _FlashAttnFunction(torch.autograd.Function):
    """Eager-mode autograd around the same launchers as the custom ops.

    A custom-op call costs about 3x the host time of an ``autograd.Function`` call forward, 2x forward + backward
    (argument normalisation and dispatcher hops; ``benchmarks/ops/bench_attention_dispatch.py``), which matters when
    short sequences or small models leave the GPU waiting on the host. Eager calls therefore come here; under
    ``torch.compile`` the custom ops are used, so the compiler still sees one opaque op with a fake implementation.
    """

    @staticmethod
    def forward(ctx, q, k, v, kmask, cu_seqlens, max_seqlen, causal, scale):
        inputs = (q, k, v, kmask, cu_seqlens, max_seqlen, causal, scale)
        out, lse = _triton_module().flash_attn_forward(*inputs)
        _save(ctx, inputs, out, lse)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable  # the backward kernels have no backward of their own
    def backward(ctx, dout):
        return _grads(ctx, dout, _triton_module().flash_attn_backward)


def _flash_attn(q: Tensor, k: Tensor, v: Tensor, kmask: Optional[Tensor], cu_seqlens: Optional[Tensor],
                max_seqlen: int, causal: bool, scale: float) -> Tensor:
    """The one call into the Triton kernels: the custom op while ``torch.compile`` traces, the cheaper
    ``autograd.Function`` in eager mode (same kernels, bit-identical results). Returns out shaped like q."""
    if torch.compiler.is_compiling():
        return _flash_attn_fwd(q, k, v, kmask, cu_seqlens, max_seqlen, causal, scale)[0]
    return _FlashAttnFunction.apply(q, k, v, kmask, cu_seqlens, max_seqlen, causal, scale)
