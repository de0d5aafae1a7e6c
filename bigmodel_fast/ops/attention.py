"""Scaled dot-product attention: the single dispatch point of the code base.

Every attention computation in bigmodel_fast goes through :func:`attention` (dense, padded batches) or
:func:`varlen_attention` (packed batches described by ``cu_seqlens``). The backend is chosen by
:func:`attention_backend` from the environment variable ``BMF_ATTENTION``:

* ``sdpa`` (default): ``torch.nn.functional.scaled_dot_product_attention``; PyTorch picks the fused kernel.
* ``reference``: explicit ``softmax(Q K^T * scale) V`` computed in fp32 and cast back; slow, exact, the oracle
  for tests and the path used inside TorchScript.
* ``triton``: the FlashAttention kernel (not implemented yet; raises :class:`NotImplementedError`).

Conventions shared by all backends:

* ``q`` is (B, H, S_q, D); ``k``/``v`` are (B, H_kv, S_k, D) with ``H % H_kv == 0`` (grouped-query attention,
  each group of ``H // H_kv`` query heads shares one k/v head, ``repeat_interleave`` order).
* ``attn_mask`` is boolean, True = attend, broadcastable to (B, H, S_q, S_k); a key-padding mask is (B, 1, 1, S_k).
* ``causal=True`` lets query ``i`` see key ``j`` iff ``j <= i + (S_k - S_q)`` (bottom-right aligned, as in
  FlashAttention, so a suffix of queries against a longer key cache behaves like decoding). For ``S_q == S_k`` it is
  the usual lower-triangular mask. ``causal`` and ``attn_mask`` combine with a logical AND.
* A query row with no key to attend to produces 0, not NaN, in the reference backend. SDPA on CPU in torch 2.13
  also returns 0 for such rows (checked by the tests); fused CUDA kernels are not guaranteed to, so callers should
  not rely on fully masked rows with ``sdpa`` on GPU (right-padded batches never produce them).

TorchScript: :func:`attention` is scriptable. Under ``torch.jit.is_scripting()`` it returns early into
:func:`attention_reference` (the export path); the environment lookup below that return is parsed but never compiled.
"""

from __future__ import annotations

import math
import os
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ENV_VAR",
    "VALID_BACKENDS",
    "AttentionBackendError",
    "attention",
    "attention_backend",
    "attention_reference",
    "attention_sdpa",
    "varlen_attention",
    "varlen_attention_reference",
]

ENV_VAR = "BMF_ATTENTION"
VALID_BACKENDS = ("sdpa", "reference", "triton")
_DEFAULT_BACKEND = "sdpa"
_TRITON_TODO = (
    "attention backend 'triton' (FlashAttention kernel) is not implemented yet; it is planned in issue #5 "
    "(Triton fused attention). Use BMF_ATTENTION=sdpa (default) or BMF_ATTENTION=reference."
)


class AttentionBackendError(ValueError):
    """Raised when ``BMF_ATTENTION`` (or an explicit ``backend=``) names an unknown backend."""


def attention_backend() -> str:
    """Return the attention backend selected by the ``BMF_ATTENTION`` environment variable.

    Unset or empty means ``"sdpa"``. Case and surrounding whitespace are ignored.

    Raises:
        AttentionBackendError: the variable holds a value outside :data:`VALID_BACKENDS`.
    """
    raw = os.environ.get(ENV_VAR, "")
    name = raw.strip().lower()
    if not name:
        return _DEFAULT_BACKEND
    if name not in VALID_BACKENDS:
        raise AttentionBackendError(
            f"environment variable {ENV_VAR}={raw!r} is not a valid attention backend; "
            f"expected one of {', '.join(VALID_BACKENDS)} (or unset for {_DEFAULT_BACKEND!r})"
        )
    return name


def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    """Shape checks shared by the backends (shape-only, no device sync)."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            "attention: q, k, v must be 4-D (B, H, S, D); got q.dim()="
            + str(q.dim()) + ", k.dim()=" + str(k.dim()) + ", v.dim()=" + str(v.dim())
        )
    if k.shape != v.shape:
        raise ValueError("attention: k and v must have the same shape; got k=" + str(k.shape) + ", v=" + str(v.shape))
    if q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3]:
        raise ValueError(
            "attention: q (B, H, S_q, D) and k (B, H_kv, S_k, D) must agree on B and D; got q="
            + str(q.shape) + ", k=" + str(k.shape)
        )
    if q.shape[1] % k.shape[1] != 0:
        raise ValueError(
            "attention: number of query heads (" + str(q.shape[1]) + ") must be a multiple of the number of "
            "key/value heads (" + str(k.shape[1]) + ")"
        )


def _causal_mask(s_q: int, s_k: int, device: torch.device) -> Tensor:
    """Bottom-right aligned causal mask, (S_q, S_k) bool, True = attend."""
    return torch.ones(s_q, s_k, dtype=torch.bool, device=device).tril(s_k - s_q)


def _combined_mask(
    attn_mask: Optional[Tensor], causal: bool, s_q: int, s_k: int, device: torch.device
) -> Optional[Tensor]:
    """``attn_mask`` (checked to be bool) AND the causal mask when ``causal``; None when neither applies."""
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        raise ValueError("attention: attn_mask must be a bool tensor (True = attend); got " + str(attn_mask.dtype))
    if not causal:
        return attn_mask
    cm = _causal_mask(s_q, s_k, device)  # (S_q, S_k)
    return cm if attn_mask is None else attn_mask & cm


def attention_reference(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Optional[Tensor] = None,
    causal: bool = False,
    scale: Optional[float] = None,
    dropout_p: float = 0.0,
) -> Tensor:
    """Explicit-math attention, computed in fp32 and cast back to ``q.dtype``; arguments as in :func:`attention`.

    ``dropout_p`` is always applied when > 0 (pass 0 in eval). Fully masked query rows are 0.
    """
    _check_qkv(q, k, v)
    h = q.shape[1]
    h_kv = k.shape[1]
    if h_kv != h:
        k = k.repeat_interleave(h // h_kv, dim=1)  # (B, H, S_k, D)
        v = v.repeat_interleave(h // h_kv, dim=1)  # (B, H, S_k, D)
    s_q = q.shape[2]
    s_k = k.shape[2]
    sm_scale = 1.0 / math.sqrt(q.shape[3]) if scale is None else scale
    scores = torch.matmul(q.float(), k.float().transpose(-2, -1)) * sm_scale  # (B, H, S_q, S_k)
    mask = _combined_mask(attn_mask, causal, s_q, s_k, q.device)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)  # (B, H, S_q, S_k), NaN on fully masked rows
    if mask is not None:
        # Rows without any visible key: softmax gave NaN, define the output as 0.
        probs = probs.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    if dropout_p > 0.0:
        probs = F.dropout(probs, p=dropout_p, training=True)
    out = torch.matmul(probs, v.float())  # (B, H, S_q, D)
    return out.to(q.dtype)


def attention_sdpa(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Optional[Tensor] = None,
    causal: bool = False,
    scale: Optional[float] = None,
    dropout_p: float = 0.0,
) -> Tensor:
    """Attention through ``torch.nn.functional.scaled_dot_product_attention``; same contract as the reference.

    ``causal`` with ``S_q == S_k`` and no mask uses SDPA's ``is_causal`` fast path; otherwise an explicit
    bottom-right aligned causal mask is combined with ``attn_mask``. GQA uses SDPA's ``enable_gqa``.
    """
    _check_qkv(q, k, v)
    s_q = q.shape[2]
    s_k = k.shape[2]
    is_causal = causal and attn_mask is None and s_q == s_k
    mask = _combined_mask(attn_mask, causal and not is_causal, s_q, s_k, q.device)
    return F.scaled_dot_product_attention(
        q,
        k,
        v,
        attn_mask=mask,
        dropout_p=dropout_p,
        is_causal=is_causal,
        scale=scale,
        enable_gqa=q.shape[1] != k.shape[1],
    )


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Optional[Tensor] = None,
    causal: bool = False,
    scale: Optional[float] = None,
    dropout_p: float = 0.0,
) -> Tensor:
    """Scaled dot-product attention through the backend chosen by ``BMF_ATTENTION``.

    Args:
        q: (B, H, S_q, D) queries.
        k, v: (B, H_kv, S_k, D) keys/values; ``H % H_kv == 0`` (GQA/MQA when ``H_kv < H``).
        attn_mask: optional bool mask broadcastable to (B, H, S_q, S_k), True = attend
            (a key-padding mask is (B, 1, 1, S_k)).
        causal: bottom-right aligned causal masking, combined with ``attn_mask`` by AND.
        scale: softmax scale, default ``1 / sqrt(D)``.
        dropout_p: attention-probability dropout; callers pass 0.0 in eval mode.

    Returns:
        (B, H, S_q, D) in ``q.dtype``.

    Under TorchScript this always runs :func:`attention_reference`.
    """
    if torch.jit.is_scripting():
        return attention_reference(q, k, v, attn_mask, causal, scale, dropout_p)
    backend = attention_backend()
    if backend == "sdpa":
        return attention_sdpa(q, k, v, attn_mask, causal, scale, dropout_p)
    if backend == "reference":
        return attention_reference(q, k, v, attn_mask, causal, scale, dropout_p)
    raise NotImplementedError(_TRITON_TODO)


def _check_varlen(q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor) -> List[int]:
    """Validate packed inputs and return ``cu_seqlens`` as a host list (one device sync)."""
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise ValueError(
            f"varlen_attention: q, k, v must be packed 3-D (total_tokens, H, D); got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[2] != k.shape[2]:
        raise ValueError(
            f"varlen_attention: q (T, H, D) and k/v (T, H_kv, D) must agree on T and D; got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2 or cu_seqlens.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            f"varlen_attention: cu_seqlens must be a 1-D int32/int64 tensor of N+1 cumulative offsets; got "
            f"shape {tuple(cu_seqlens.shape)}, dtype {cu_seqlens.dtype}"
        )
    offs = [int(x) for x in cu_seqlens.tolist()]
    if offs[0] != 0 or offs[-1] != q.shape[0] or any(b < a for a, b in zip(offs, offs[1:])):
        raise ValueError(
            f"varlen_attention: cu_seqlens must start at 0, be non-decreasing and end at total_tokens="
            f"{q.shape[0]}; got {offs[:8]}{'...' if len(offs) > 8 else ''} (last={offs[-1]})"
        )
    return offs


def varlen_attention_reference(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    cu_seqlens: Tensor,
    max_seqlen: int,
    causal: bool = False,
    scale: Optional[float] = None,
    dense_backend: str = "reference",
) -> Tensor:
    """Reference packed attention: runs dense attention on each sequence separately.

    Arguments and result as in :func:`varlen_attention`; ``dense_backend`` (``"reference"`` or ``"sdpa"``) picks
    the per-sequence dense call. Tokens never attend across sequence boundaries.
    """
    offs = _check_varlen(q, k, v, cu_seqlens)
    longest = max(b - a for a, b in zip(offs, offs[1:]))
    if longest > max_seqlen:
        raise ValueError(f"varlen_attention: max_seqlen={max_seqlen} but cu_seqlens holds a sequence of {longest}")
    dense = attention_reference if dense_backend == "reference" else attention_sdpa
    out = torch.empty_like(q)  # (T, H, D)
    for a, b in zip(offs, offs[1:]):
        if b == a:
            continue
        qs = q[a:b].transpose(0, 1).unsqueeze(0)  # (1, H, L, D)
        ks = k[a:b].transpose(0, 1).unsqueeze(0)  # (1, H_kv, L, D)
        vs = v[a:b].transpose(0, 1).unsqueeze(0)  # (1, H_kv, L, D)
        out[a:b] = dense(qs, ks, vs, None, causal, scale, 0.0)[0].transpose(0, 1)  # (L, H, D)
    return out


def varlen_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    cu_seqlens: Tensor,
    max_seqlen: int,
    causal: bool = False,
    scale: Optional[float] = None,
) -> Tensor:
    """Attention over a packed batch (no padding), FlashAttention-varlen layout.

    Args:
        q: (T, H, D) packed queries of N sequences, T = total tokens; k, v: (T, H_kv, D).
        cu_seqlens: (N + 1,) int32/int64 cumulative sequence lengths, ``cu_seqlens[0] == 0``,
            ``cu_seqlens[-1] == T``.
        max_seqlen: longest sequence in the pack (checked against ``cu_seqlens``).
        causal: causal masking within each sequence.
        scale: softmax scale, default ``1 / sqrt(D)``.

    Returns:
        (T, H, D). Only the per-sequence reference exists for now (one host sync on ``cu_seqlens`` and a Python
        loop over sequences); the Triton kernel will replace it for ``BMF_ATTENTION=triton``.
    """
    backend = attention_backend()
    if backend == "triton":
        raise NotImplementedError(_TRITON_TODO)
    return varlen_attention_reference(q, k, v, cu_seqlens, max_seqlen, causal, scale, dense_backend=backend)
